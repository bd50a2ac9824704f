// A thrown value's words for an error answer (answer.ts) or a stream's error END (stream-out.ts), read without a
// throw of their own: a handler may throw anything.
import { PayloadTooLargeError } from "../../errors.ts"
import { OWN_ERROR } from "../wire/codec.ts"

/** The OWN_ERROR pair for an answer slotbus could not send (too large), else none: a handler's error is never one. */
export const ownError = (e: unknown): string[] =>
  e instanceof PayloadTooLargeError ? [OWN_ERROR, "PayloadTooLargeError"] : []

/**
 * Any thrown value's name or message as a string, never a throw: an Error whose name is a number or a Symbol, or a
 * value whose toString throws, left the call unanswered (the error answer itself threw) until the caller's timeout.
 */
export function thrownText(v: unknown): string {
  try {
    return String(v)
  } catch {
    return "(a value that cannot be made a string)"
  }
}

/** An Error's field, undefined where reading it throws (a getter; Bun's stack of an Error named by a Symbol). */
export function thrownField(err: Error, key: "name" | "message" | "stack"): unknown {
  try {
    return err[key]
  } catch {
    return undefined
  }
}
