// What local and cluster contests share: the subject, and the checks of what callers pass.
import { InvalidSubjectError } from "./errors.ts"

/** What is contested: a kind (a small integer namespace) and a label. Different kinds never compete. */
export interface Subject {
  readonly kind: number
  readonly label: string
}

export const MAX_TTL_MS = 1e15 // ~31 700 years: past it, say Infinity (or leave ttlMs out)
export const MAX_TIMER_MS = 2 ** 31 - 1 // setTimeout's limit (~24.8 days)

export function describe(s: Subject) {
  return `subject ${s.kind}/${JSON.stringify(s.label)}`
}

export function checkKind(s: Subject): number {
  if (!s || typeof s !== "object") throw new InvalidSubjectError(`a subject is { kind, label }, got ${String(s)}`)
  const k = s.kind
  if (!Number.isInteger(k) || k < 0 || k > 0xffffffff)
    throw new InvalidSubjectError(`subject kind must be an integer 0 … 2^32-1, got ${k}`)
  if (typeof s.label !== "string")
    throw new InvalidSubjectError(`subject label must be a string, got ${typeof s.label}`)
  return k
}

/** A number in [min, max] (Infinity allowed when `infinite`), else TypeError (not a number) or RangeError. */
export function checkNumber(v: unknown, name: string, min: number, max: number, infinite = false): number {
  if (typeof v !== "number") throw new TypeError(`${name} must be a number, got ${typeof v}`)
  if (v === Infinity && infinite) return v
  if (!(v >= min && v <= max))
    throw new RangeError(`${name} must be ${min} … ${max}${infinite ? " or Infinity" : ""}, got ${v}`)
  return v
}
