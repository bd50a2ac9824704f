// What a contest takes and gives back: the options of Contest.open, tryClaim and claim (and their names, for the
// one options check), and the records it returns: Holder, ClaimResult, ContestStats.
import { optionNames, type CreateMode } from "../kit/index.ts"
import type { Lease } from "./lease.ts"
import type { Subject } from "./subject.ts"

export interface ClaimOptions {
  /** A label for people (who holds it); the contest does not interpret it. At most 64 UTF-8 bytes. */
  owner?: string
  /** The claim stops blocking others this many ms after it was made, unless renewed. Default: no expiry. */
  ttlMs?: number
  /**
   * tryClaim / claim: if the subject is held, spin (blocking this thread, no syscalls) up to this many µs
   * for it to be released before yielding or going to sleep: the lowest hand-over latency, for a CPU.
   */
  spinUs?: number
  /** The claimer's W3C trace context, stored with the claim (PROTOCOL.md §7.2). Default: the active span's (an SDK). */
  traceparent?: string
}

export interface WaitOptions extends ClaimOptions {
  /** Stop waiting when this aborts (the promise rejects with its reason). */
  signal?: AbortSignal
  /** Stop waiting after this many ms (rejects with TimeoutError). Default: wait forever. */
  timeoutMs?: number
}

export interface ContestOptions {
  /**
   * Subjects the table can hold: a power of two, 64 … 65536. Default 4096. Given, it is also checked: joining a
   * contest that has another capacity is a SettingsMismatchError (say nothing to join whatever it has).
   */
  capacity?: number
  /** "if-missing" (default): join the contest or create it; "never": join only (NotFoundError); "must": create only (AlreadyExistsError). */
  create?: CreateMode
  /** How long to wait for a member to hand over the table. Default 5000 ms. */
  joinTimeoutMs?: number
}

/** A claim someone holds, as observed. */
export interface Holder {
  /** The claim's identity; equal to its fencing token. */
  readonly claimId: bigint
  /** Fencing token: strictly increasing per subject, also across re-creations of the contest. */
  readonly token: bigint
  readonly subject: Subject
  readonly owner: string
  readonly claimedAt: number
  /** ms; Infinity when the claim has no TTL. */
  readonly expiresAt: number
  /** The holder's process. */
  readonly pid: number
  /** The W3C trace context its claimer stored with the claim, if any. */
  readonly traceparent?: string
}

export type ClaimResult =
  | { readonly claimed: true; readonly lease: Lease }
  | { readonly claimed: false; readonly holder: Holder }

export interface ContestStats {
  /** Successful claims, including takeovers. */
  claims: number
  /** tryClaim calls that yielded to a holder. */
  yields: number
  /** Claims won because the previous claim had expired. */
  expiries: number
  /** Claims won because the previous holder's process had died (or left without releasing). */
  takeovers: number
  releases: number
  members: number
  subjects: number
  capacity: number
}

export const MAX_SPIN_US = 10_000_000
const CLAIM_FIELDS = { owner: true, ttlMs: true, spinUs: true, traceparent: true } as const
export const CLAIM_OPTIONS = optionNames<ClaimOptions>(CLAIM_FIELDS)
export const WAIT_OPTIONS = optionNames<WaitOptions>({ ...CLAIM_FIELDS, signal: true, timeoutMs: true })
export const CONTEST_OPTIONS = optionNames<ContestOptions>({ capacity: true, create: true, joinTimeoutMs: true })
