// What every held claim is, whichever table holds it (a local contest's Lease, lease.ts; a cluster contest's
// ClusterLease, cluster.ts): its identity, whether it is lost and why, the signal that aborts when it is, and the
// LeaseLostError that says why. Each kind says when it is still held and what its contest must be told.
import { LeaseLostError } from "./errors.ts"
import { describe, type Subject } from "./subject.ts"

/** @internal what Lease and ClusterLease share */
export abstract class HeldLease {
  /** The claim's identity; equal to its fencing token. */
  readonly claimId: bigint
  /** Fencing token: pass it to the storage you write to, which refuses tokens lower than one it saw. */
  abstract readonly token: bigint
  protected lost = false
  protected why = ""
  private abort?: AbortController
  private timer?: ReturnType<typeof setTimeout>

  constructor(
    readonly subject: Subject,
    readonly owner: string,
    claimId: bigint,
  ) {
    this.claimId = claimId
  }

  /** Still ours, judged now; marks the lease lost (saying why) when it is not. */
  abstract get held(): boolean

  /**
   * Throws LeaseLostError, saying why, unless the lease is still ours at this very moment (`held`): call it right
   * before a side effect. The storage should still check `token` (a process can stall after the check).
   */
  check(): void {
    if (!this.held) throw this.lostError()
  }

  /** Aborts when the lease is lost: released, expired or past its deadline, taken over, reset, or its contest closed. */
  get signal(): AbortSignal {
    if (!this.abort) {
      this.abort = new AbortController()
      if (!this.held) this.abort.abort(this.lostError())
      else this.watch()
    }
    return this.abort.signal
  }

  /** @internal */
  markLost(why: string) {
    if (this.lost) return
    this.lost = true
    this.why = why
    clearTimeout(this.timer)
    this.unwatch()
    this.abort?.abort(this.lostError())
  }

  /** Someone asked for `signal`: from then on the lease is looked at when it may be lost. */
  protected get watched(): boolean {
    return this.abort !== undefined
  }

  /** Looks at `held` again in `ms` (the timer does not keep the process alive); null: no timer. */
  protected recheckIn(ms: number | null) {
    clearTimeout(this.timer)
    if (ms === null) return
    this.timer = setTimeout(() => this.held, Math.max(0, ms))
    this.timer.unref?.()
  }

  protected lostError(): LeaseLostError {
    return new LeaseLostError(
      `lease on ${describe(this.subject)} (token ${this.token}) ${this.why}; claim it again to continue`,
    )
  }

  /** `signal` was asked for while the lease is held: set its timer, and have the contest look at it. */
  protected abstract watch(): void
  /** The lease was lost: its contest stops looking at it. */
  protected abstract unwatch(): void
}
