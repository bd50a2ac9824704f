// What every bench method gives the orchestrator: a hub side that sends echo requests to a worker it started.

export interface Transport {
  /**
   * Sends `body` and resolves with the worker's reply (the same bytes, or reversed for the C worker). `lane`: which
   * of the concurrent request loops sends it (0…in flight−1), for a method that keeps a buffer per loop.
   */
  roundTrip(body: Uint8Array, lane?: number): Promise<Uint8Array>
  /** CPU seconds the worker side has used so far. */
  workerCpu(): Promise<number>
  /** The worker is a thread of this process: its CPU is inside the hub's process.cpuUsage(). */
  readonly sameProcess?: boolean
  /** The worker answers with the body reversed rather than echoed. */
  readonly reverses?: boolean
  /** Stops the worker and frees everything; safe to call twice. */
  close(): Promise<void>
}

/** This method cannot run here (no C compiler, missing source, …); the reason goes into the report. */
export class SkipMethod extends Error {}

export const EMPTY = new Uint8Array(0)

/** Requests answered in order: resolves each reply with the oldest waiting request. */
export class FifoReplies {
  private readonly waiting: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }[] = []
  private head = 0

  wait(): Promise<Uint8Array> {
    const { promise, resolve, reject } = Promise.withResolvers<Uint8Array>()
    this.waiting.push({ resolve, reject })
    return promise
  }

  reply(body: Uint8Array) {
    const w = this.waiting[this.head++]
    if (!w) throw new Error("a reply arrived that nobody asked for")
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head)
      this.head = 0
    }
    w.resolve(body)
  }

  failAll(err: Error) {
    for (const w of this.waiting.splice(this.head)) w.reject(err)
    this.waiting.length = 0
    this.head = 0
  }
}
