// A cluster claim's wait (cluster.ts): its timeoutMs and signal hold over each request it makes (a try, a watch),
// so claim() gives up on time even while the NATS server does not answer (docs/PROTOCOL.md §12.3).
import { TimeoutError } from "../core/index.ts"
import { MAX_TIMER_MS } from "../kit/index.ts"
import { describe, type Subject, waitDeadline } from "./subject.ts"

export class ClaimWait {
  /** When it gives up, on performance.now()'s clock. */
  readonly deadline: number
  /** The holder it last saw, which its TimeoutError names. */
  holder: { owner: string; pid: number; host: string } | undefined

  constructor(
    private readonly subject: Subject,
    private readonly opts: { timeoutMs?: number; signal?: AbortSignal },
    private readonly bucket: string,
  ) {
    this.deadline = waitDeadline(opts)
  }

  timedOut(): TimeoutError {
    const h = this.holder
    const what = describe(this.subject)
    return new TimeoutError(
      h
        ? `${what} is still held by ${h.owner || `pid ${h.pid} on ${h.host}`} after ${this.opts.timeoutMs} ms`
        : `${what} was not claimed within ${this.opts.timeoutMs} ms: the JetStream bucket ${this.bucket} did not answer in time`,
    )
  }

  /**
   * `p`, unless the wait gives up first: then a TimeoutError at the deadline (`timed`), or the signal's reason when
   * it aborts; what `p` brings after that goes to `late` (a claim won meanwhile is let go).
   */
  within<T>(p: Promise<T>, late: (v: T) => void = () => {}, timed = true): Promise<T> {
    const { signal } = this.opts
    const deadline = timed ? this.deadline : Infinity
    if (deadline === Infinity && !signal) return p
    return new Promise<T>((resolve, reject) => {
      const settle = (f: () => void) => {
        clearTimeout(timer)
        signal?.removeEventListener("abort", abort)
        f()
      }
      const giveUp = (e: unknown) => settle(() => (reject(e), p.then(late, () => {})))
      const abort = () => giveUp(signal!.reason)
      const left = Math.min(deadline - performance.now(), MAX_TIMER_MS)
      const timer = left === Infinity ? undefined : setTimeout(() => giveUp(this.timedOut()), Math.max(0, left))
      signal?.addEventListener("abort", abort, { once: true })
      if (signal?.aborted) abort()
      p.then(
        (v) => settle(() => resolve(v)),
        (e) => settle(() => reject(e)),
      )
    })
  }
}

/** For `within`'s `late`: a claim won after its wait gave up is released. */
export const letGo = (r: { claimed: boolean; lease?: { release(): Promise<boolean> } }) =>
  void (r.claimed && r.lease?.release().catch(() => false))
