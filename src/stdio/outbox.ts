// What waits to be written to one worker's stdin, bounded: past `maxBytes` queued, writers wait in order for
// up to `waitMs`, then get BackpressureError. Bytes count as queued until the pipe has taken them (the sink's
// flush() settles: Bun's FileSink, runtime/node/process.ts on Node), so a worker that stops reading holds at most
// maxBytes plus one message.
import type { OutputSink } from "../runtime/index.ts"
import { WorkerGoneError } from "../core/index.ts"
import { longTimeout, type LongTimer } from "../kit/index.ts"
import { BackpressureError } from "./errors.ts"

interface Waiter {
  bytes: number
  resolve: () => void
  reject: (e: Error) => void
  timer: LongTimer
}

export class Outbox {
  queuedBytes = 0
  /** Lines written, their bytes, and writers refused for backpressure, over every process of the instance. */
  messages = 0
  bytes = 0
  rejects = 0
  private sink: OutputSink | null = null
  /** Changes with every process, so a flush that settles after its process died is ignored. */
  private generation = 0
  private flushing = false
  private flushScheduled = false
  private readonly waiters: Waiter[] = []

  constructor(
    private readonly maxBytes: number,
    private readonly waitMs: number,
    private readonly name: string,
  ) {}

  /** A new process: its stdin takes the writes from now on. */
  attach(sink: OutputSink): void {
    this.generation++
    this.sink = sink
    this.queuedBytes = 0
    this.flushing = false
  }

  /** The process is gone: what it did not take is dropped, and waiting writers get `error`. */
  detach(error: Error): void {
    this.generation++
    this.sink = null
    this.queuedBytes = 0
    this.flushing = false
    for (const w of this.waiters.splice(0)) {
      w.timer.clear()
      w.reject(error)
    }
  }

  /** Queues one line; returns a promise only when the writer has to wait for room. */
  write(line: string): Promise<void> | void {
    const bytes = line.length < 64 ? line.length : Buffer.byteLength(line)
    if (this.waiters.length > 0 || (this.queuedBytes > 0 && this.queuedBytes + bytes > this.maxBytes))
      return this.waitForRoom(bytes).then(() => this.put(line, bytes))
    this.put(line, bytes)
  }

  private waitForRoom(bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        resolve,
        reject,
        timer: longTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1)
          this.rejects++
          reject(
            new BackpressureError(
              `${this.name} has not read its stdin for ${this.waitMs} ms (more than max_output_queue ${this.maxBytes} bytes waiting); the worker is stuck or too slow`,
            ),
          )
          this.wakeWriters()
        }, this.waitMs),
      }
      this.waiters.push(waiter)
    })
  }

  private put(line: string, bytes: number): void {
    const sink = this.sink
    if (!sink) throw new WorkerGoneError(`${this.name} exited before the message could be written`)
    this.queuedBytes += bytes
    this.messages++
    this.bytes += bytes
    sink.write(line)
    this.scheduleFlush()
  }

  // One flush per microtask: every line written in the same turn goes out in one write(2).
  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() => this.flush())
  }

  private flush(): void {
    this.flushScheduled = false
    const sink = this.sink
    if (!sink || this.flushing) return
    const covered = this.queuedBytes
    let r: number | Promise<number>
    try {
      r = sink.flush()
    } catch {
      return // EPIPE: the worker is gone; its exit detaches
    }
    if (typeof r === "number") return this.flushed(covered)
    this.flushing = true
    const generation = this.generation
    r.then(
      () => {
        if (this.generation !== generation) return
        this.flushing = false
        this.flushed(covered)
        if (this.queuedBytes > 0) this.scheduleFlush()
      },
      () => {},
    )
  }

  private flushed(bytes: number): void {
    this.queuedBytes -= bytes
    this.wakeWriters()
  }

  private wakeWriters(): void {
    let room = this.maxBytes - this.queuedBytes
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!
      if (this.queuedBytes > 0 && w.bytes > room) break
      this.waiters.shift()
      w.timer.clear()
      room -= w.bytes
      w.resolve()
      if (room <= 0) break
    }
  }
}
