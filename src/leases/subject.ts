// What local and cluster contests share: the subject, and the checks of what callers pass.
import { checkNumber, MAX_TIMER_MS, type NameRule, type NumberRule } from "../kit/index.ts"
import { ContestOpenError, InvalidSubjectError } from "./errors.ts"

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
