// What every held claim has, whichever table holds it (a local contest's Lease, lease.ts; a cluster contest's
// ClusterLease, cluster.ts): each lease holds one Holding, which knows whether the claim is lost and why, makes the
// signal that aborts when it is, looks at the lease again on a timer, and makes the LeaseLostError that says why.
// Each kind of lease says when it is still held and what its contest must be told (HoldingHooks).
import { type LongTimer, longTimeout } from "../kit/index.ts"
import { LeaseLostError } from "./errors.ts"
import { describe, type Subject } from "./subject.ts"

/** @internal what a Holding asks of its lease */
export interface HoldingHooks {
  /** Still ours, judged now; the lease marks itself lost (saying why) when it is not. */
  held(): boolean
  /** `signal` was asked for while the lease is held: set its timer, and have the contest look at it. */
  watch(): void
  /** The lease was lost: its contest stops looking at it. */
  unwatch(): void
}

/** @internal what Lease and ClusterLease each hold */
export class Holding {
  private isLost = false
  private why = ""
  private abort?: AbortController
  private timer?: LongTimer

  constructor(
    private readonly subject: Subject,
    private readonly token: bigint,
    private readonly lease: HoldingHooks,
  ) {}

  /** Marked lost: released, expired or past its deadline, taken over, reset, or its contest closed. */
  get lost(): boolean {
    return this.isLost
  }

  /** Throws LeaseLostError, saying why, unless the lease is still ours at this very moment. */
  check(): void {
    if (!this.lease.held()) throw this.lostError()
  }

  /** Aborts when the lease is lost. */
  get signal(): AbortSignal {
    if (!this.abort) {
      this.abort = new AbortController()
      if (!this.lease.held()) this.abort.abort(this.lostError())
      else this.lease.watch()
    }
    return this.abort.signal
  }

  markLost(why: string) {
    if (this.isLost) return
    this.isLost = true
    this.why = why
    this.timer?.clear()
    this.lease.unwatch()
    this.abort?.abort(this.lostError())
  }

  /** Someone asked for `signal`: from then on the lease is looked at when it may be lost. */
  get watched(): boolean {
    return this.abort !== undefined
  }

  /** Looks at `held` again in `ms` (the timer does not keep the process alive); null: no timer. */
  recheckIn(ms: number | null) {
    this.timer?.clear()
    if (ms === null) return
    // a TTL past 2^31 - 1 ms (~24.8 days) would overflow setTimeout: a warning, and a timer due at once
    this.timer = longTimeout(() => this.lease.held(), ms).unref()
  }

  lostError(): LeaseLostError {
    return new LeaseLostError(
      `lease on ${describe(this.subject)} (token ${this.token}) ${this.why}; claim it again to continue`,
    )
  }
}
