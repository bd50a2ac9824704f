// A held claim of a local contest (Lease): what it knows of itself, and how it asks its contest whether the claim
// is still the current one (LeaseHost, which Contest implements: contest.ts imports this file, never the reverse).
// What every lease shares is held.ts's.
import { checkNumber, madeBy } from "../kit/index.ts"
import { Holding } from "./held.ts"
import { MAX_TTL_MS, NOW_MS, type Subject } from "./subject.ts"

/** How a claim was won: the subject was free, the last claim had expired, or its holder's process died or left. */
export type ClaimedFrom = "free" | "expired" | "holder-gone"

/** @internal where a claim sits in the table, and the version it had when this process last saw it */
export interface ClaimRef {
  entry: number
  version: number
  member: number
}

/** @internal what a Lease asks of its contest (Contest) */
export interface LeaseHost {
  readonly closed: boolean
  checkClaim(ref: ClaimRef, nowMs: number): boolean
  renewClaim(ref: ClaimRef, nowMs: number, ttlMs: number): { version: number; expiresAt: number } | null
  releaseClaim(lease: Lease): boolean
  watch(lease: Lease): void
  unwatch(lease: Lease): void
}

/** @internal the key only a contest passes to make a Lease */
export const LEASE_KEY = Symbol("contest.tryClaim")

/** A held claim. Release it with `release()` or `using`; `signal` aborts when it is lost. */
export class Lease implements Disposable {
  /** The claim's identity; equal to its fencing token. */
  readonly claimId: bigint
  private readonly holding: Holding
  private trace: { own?: string; replaced?: string } | undefined

  /** @internal */
  constructor(
    key: symbol,
    private readonly contest: LeaseHost,
    /** @internal */ readonly ref: ClaimRef,
    readonly subject: Subject,
    readonly owner: string,
    /** Fencing token: pass it to the storage you write to, which refuses tokens lower than one it saw. */
    readonly token: bigint,
    readonly claimedAt: number,
    private expiry: number,
    readonly from: ClaimedFrom,
    /** false when made with an explicit clock: expiry is then not judged on Date.now() by `held` or `signal` */
    private readonly wallClock: boolean,
  ) {
    this.claimId = token
    this.holding = new Holding(subject, token, {
      held: () => this.held,
      watch: () => {
        this.scheduleExpiry()
        this.contest.watch(this)
      },
      unwatch: () => this.contest.unwatch(this),
    })
    madeBy(key, LEASE_KEY, "Lease", "contest.tryClaim(subject, options) or contest.claim(subject, options)")
  }

  /** The W3C trace context stored with this claim (the claimer's: the option or the active span's), if any. */
  get traceparent(): string | undefined {
    return this.trace?.own
  }
  /** The context stored with the claim this one replaced (the holder change), if it had one. */
  get replacedTraceparent(): string | undefined {
    return this.trace?.replaced
  }
  /** @internal The claim's contexts, set by its contest. */
  traced(own: string | undefined, replaced: string | undefined) {
    this.trace = { own, replaced }
  }

  /** ms; Infinity when the lease has no TTL. */
  get expiresAt(): number {
    return this.expiry
  }

  /** Still ours: not released, not reset or taken over, and (on the wall clock) not expired, judged now. */
  get held(): boolean {
    if (this.holding.lost) return false
    const now = this.wallClock ? Date.now() : -Infinity
    if (this.contest.checkClaim(this.ref, now)) return true
    if (this.contest.closed) this.markLost("was lost: its contest was closed")
    else if (now >= this.expiry) this.markLost(`expired at ${new Date(this.expiry).toISOString()}`)
    else this.markLost("was taken over or reset")
    return false
  }

  /** Extend the lease to now + ttlMs. Throws LeaseLostError if it was already lost (then claim again). */
  renew(ttlMs: number, nowMs?: number): void {
    if (typeof ttlMs === "object" && ttlMs !== null)
      throw new TypeError("lease.renew takes the TTL as a number of ms, renew(30_000), not an options object")
    const where = "lease.renew"
    checkNumber(ttlMs, { what: "ttlMs", where, min: Number.MIN_VALUE, max: MAX_TTL_MS, integer: false, infinite: true })
    if (nowMs !== undefined) checkNumber(nowMs, { ...NOW_MS, where })
    if (this.holding.lost) throw this.holding.lostError()
    const out = this.contest.renewClaim(this.ref, nowMs ?? Date.now(), ttlMs)
    if (out === null) {
      this.markLost("was lost (taken over, reset or expired) before it was renewed")
      throw this.holding.lostError()
    }
    this.ref.version = out.version
    this.expiry = out.expiresAt
    if (this.holding.watched) this.scheduleExpiry()
  }

  /** Let the subject go. true if it was still ours, false if it had been lost already. Idempotent. */
  release(): boolean {
    if (this.holding.lost) return false
    const released = this.contest.releaseClaim(this)
    this.markLost("was released")
    return released
  }

  /**
   * Throws LeaseLostError, saying why, unless the lease is still ours at this very moment (`held`): call it right
   * before a side effect. The storage should still check `token` (a process can stall after the check).
   */
  check(): void {
    this.holding.check()
  }

  /** Aborts when the lease is lost: released, expired, taken over, reset, or its contest closed. */
  get signal(): AbortSignal {
    return this.holding.signal
  }

  [Symbol.dispose](): void {
    this.release()
  }

  /** @internal */
  markLost(why: string) {
    this.holding.markLost(why)
  }

  /** @internal the watcher's check: false once lost */
  poll(): boolean {
    return this.held
  }

  private scheduleExpiry() {
    // +1: expiry is judged as now >= expiresAt, and timers may fire a little early
    this.holding.recheckIn(this.wallClock && this.expiry !== Infinity ? this.expiry - Date.now() + 1 : null)
  }
}
