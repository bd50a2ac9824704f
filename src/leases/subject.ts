// What local and cluster contests share: the subject, and the checks of what callers pass.
import { checkNumber, MAX_TIMER_MS, type NameRule, type NumberRule } from "../kit/index.ts"
import { checkWellFormed } from "../core/internal.ts"
import { ContestFrameTooLargeError, ContestOpenError, InvalidSubjectError } from "./errors.ts"

/** What is contested: a kind (a small integer namespace) and a label. Different kinds never compete. */
export interface Subject {
  readonly kind: number
  readonly label: string
}

export const MAX_TTL_MS = 1e15 // ~31 700 years: past it, say Infinity (or leave ttlMs out)

/** A clock reading in ms (Date's range), as tryClaimAt, holders and renew take it. */
export const NOW_MS: NumberRule = { what: "nowMs", min: -8.64e15, max: 8.64e15, integer: false }

/** A contest's name, local or cluster-wide: a ContestOpenError with reason "invalid-name" when it is not one. */
export const CONTEST_NAME: NameRule = {
  what: "contest name",
  where: "Contest.open",
  error: (p) => new ContestOpenError(p.message, "invalid-name"),
}

export function describe(s: Subject) {
  return `subject ${s.kind}/${JSON.stringify(s.label)}`
}

export function checkKind(s: Subject): number {
  if (!s || typeof s !== "object") throw new InvalidSubjectError(`a subject is { kind, label }, got ${String(s)}`)
  const k = s.kind
  checkNumber(k, { what: "subject kind", max: 0xffffffff, error: (p) => new InvalidSubjectError(p.message) })
  if (typeof s.label !== "string")
    throw new InvalidSubjectError(`subject label must be a string, got ${typeof s.label}`)
  return k
}

/** A claim's wait (its timeoutMs and signal) checked: when it gives up, on performance.now()'s clock. */
export function waitDeadline(opts: { timeoutMs?: number; signal?: AbortSignal }): number {
  if (opts.timeoutMs !== undefined)
    checkNumber(opts.timeoutMs, {
      what: "timeoutMs",
      where: "claim",
      max: MAX_TIMER_MS,
      integer: false,
      infinite: true,
    })
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal))
    throw new TypeError("signal must be an AbortSignal")
  return opts.timeoutMs === undefined ? Infinity : performance.now() + opts.timeoutMs
}

const encoder = new TextEncoder()

/**
 * A label or owner checked well formed: a label with a lone surrogate, which UTF-8 cannot carry (two such labels
 * would encode alike), is not a subject (InvalidSubjectError); such an owner is a TypeError.
 */
export function wellFormed(s: string, field: "label" | "owner"): string {
  if (field === "owner" || s.isWellFormed()) return checkWellFormed(s, field)
  throw new InvalidSubjectError(
    `subject label has a lone surrogate (${JSON.stringify(s)}), which UTF-8 cannot carry; pass well-formed text`,
  )
}

/** A cluster claim's label or owner as UTF-8: a string, well formed, at most `limit` bytes. */
export function encodeField(s: string, field: "label" | "owner", limit: number): Uint8Array {
  if (typeof s !== "string") throw new InvalidSubjectError(`${field} must be a string, got ${typeof s}`)
  const b = encoder.encode(wellFormed(s, field))
  if (b.length > limit)
    throw new ContestFrameTooLargeError(
      `${field} is ${b.length} bytes; the limit is ${limit}. Use a shorter ${field}, e.g. a hash.`,
      field,
      limit,
      b.length,
    )
  return b
}
