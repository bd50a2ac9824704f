// Server-sent events on the hub: framing, and one client stream that never blocks the hub.
import type { SseEvent } from "../wire.ts"

const encoder = new TextEncoder()
const NEWLINE = /\r\n|\r|\n/
const SLOW_GRACE_MS = 1000

/** One event in text/event-stream framing. */
export function sseFrame(ev: SseEvent): Uint8Array {
  let s = ""
  if (ev.event !== undefined) s += `event: ${oneLine(ev.event)}\n`
  if (ev.id !== undefined) s += `id: ${oneLine(ev.id)}\n`
  for (const line of ev.data.split(NEWLINE)) s += `data: ${line}\n`
  return encoder.encode(s + "\n")
}

const oneLine = (s: string) => String(s).replace(/[\r\n\0]/g, " ")

export const HEARTBEAT = encoder.encode(": heartbeat\n\n")
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  "x-accel-buffering": "no",
}

/**
 * The hub side of one SSE client. `send` queues bytes without waiting. A client whose queue stays over
 * `maxBufferedBytes` for SLOW_GRACE_MS, or ever exceeds four times that, is too slow: `send` returns false
 * and the caller drops it. (A short burst over the limit is fine: Bun drains to the socket between turns.)
 * `stalledMs` says how long queued bytes have waited for a client that takes nothing: Bun takes from the
 * queue only as the socket accepts, so this grows once the client stops reading and its buffers are full.
 */
export class SseStream {
  readonly stream: ReadableStream<Uint8Array>
  private controller!: ReadableStreamDefaultController<Uint8Array>
  private ended = false
  private overSince = 0
  /** When the client was last seen taking bytes, or the queue last seen empty. */
  private lastProgress = performance.now()
  /** The queue's size when last looked at: less now means the client took some since. */
  private lastQueued = 0

  /** `retryMs`: the `retry:` field of its first bytes, how soon a browser reconnects after a cut (0: none sent). */
  constructor(
    private readonly maxBufferedBytes: number,
    onCancel: () => void,
    retryMs = 0,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c
          // the comment lets the client see the headers at once
          c.enqueue(encoder.encode(retryMs > 0 ? `: connected\nretry: ${retryMs}\n\n` : ": connected\n\n"))
        },
        cancel: () => {
          this.ended = true
          onCancel()
        },
      },
      { highWaterMark: maxBufferedBytes, size: (chunk) => chunk?.byteLength ?? 0 },
    )
  }

  get isOpen() {
    return !this.ended
  }

  send(bytes: Uint8Array): boolean {
    if (this.ended) return true
    const now = performance.now()
    this.observe(now)
    this.controller.enqueue(bytes)
    const queued = (this.lastQueued = this.queued)
    if (queued <= this.maxBufferedBytes) {
      this.overSince = 0
      return true
    }
    if (queued > 4 * this.maxBufferedBytes) return false
    this.overSince ||= now
    return now - this.overSince < SLOW_GRACE_MS
  }

  private get queued(): number {
    return this.maxBufferedBytes - this.controller.desiredSize!
  }

  // Bun takes a chunk off the queue when the socket can take it, so a shrinking queue is the client reading.
  // (The stream's pull() is no sign of it: it runs after every enqueue while the queue is under its mark.)
  private observe(now: number): number {
    const q = this.queued
    if (q === 0 || q < this.lastQueued) this.lastProgress = now
    this.lastQueued = q
    return q
  }

  /** How long bytes have waited in the queue without the client taking any, in ms; 0 when none wait. */
  stalledMs(now = performance.now()): number {
    if (this.ended) return 0
    return this.observe(now) === 0 ? 0 : now - this.lastProgress
  }

  /** Ends the stream after what is queued (the client sees EOF and may reconnect). */
  end() {
    if (this.ended) return
    this.ended = true
    this.controller.close()
  }

  /** Drops the client now, discarding what is queued. */
  abort() {
    if (this.ended) return
    this.ended = true
    this.controller.error(undefined) // an Error here would be printed by Bun.serve (BUN_QUIRKS.STREAM_ERROR_PRINTED); the caller closes the socket
  }
}
