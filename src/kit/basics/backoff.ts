// Retry delays, one way for every feature: exponential from initialMs, capped at maxMs, optionally jittered.
import { checkNumber } from "../checks/value-check.ts"

export interface BackoffOptions {
  /** The first delay. */
  initialMs: number
  /** No delay grows past this (not even the first). */
  maxMs: number
  /**
   * The fraction of each delay drawn at random, so that peers retrying after the same event spread out:
   * 0 (the default) none, 0.5 a delay between half and all of the exponential one.
   */
  jitter?: number
}

/** Exponential backoff: `next()` gives the delay before the next retry, `reset()` starts over after a success. */
export class Backoff {
  readonly initialMs: number
  readonly maxMs: number
  readonly jitter: number
  private tries = 0

  constructor(opts: BackoffOptions) {
    const where = "Backoff"
    this.initialMs = checkNumber(opts.initialMs, { what: "initialMs", where, max: Number.MAX_VALUE, integer: false })
    this.maxMs = checkNumber(opts.maxMs, { what: "maxMs", where, max: Infinity, integer: false })
    this.jitter = checkNumber(opts.jitter, { what: "jitter", where, max: 1, integer: false, dflt: 0 })
  }

  /** Delays handed out since the last reset. */
  get attempts(): number {
    return this.tries
  }

  /** The delay for retry number `n` (0 is the first): initialMs · 2ⁿ capped at maxMs, less its random part. */
  delayFor(n: number): number {
    const exp = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(Math.max(0, n), 52)) // 2^52: no Infinity, no 0·∞
    return this.jitter === 0 ? exp : exp * (1 - this.jitter * Math.random())
  }

  /** The delay before the next retry; the one after it doubles. */
  next(): number {
    return this.delayFor(this.tries++)
  }

  /**
   * The next delay, cut to the `remainingMs` left before the caller gives up (never below 0): a loop that
   * sleeps this and tries again makes its last try at its deadline, never a whole delay after it.
   */
  nextWithin(remainingMs: number): number {
    return Math.max(0, Math.min(this.next(), remainingMs))
  }

  /** After a success: the next delay is initialMs again. */
  reset(): void {
    this.tries = 0
  }
}
