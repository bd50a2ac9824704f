// A worker's stuck slots, and what becomes of a worker evicting for them (docs/api.md, "Handlers that hang").
import type { Pending } from "./endpoint.ts"

/** Slots held stuckAfterMs past their request's deadline, or past its giving up if later; a lent slot is its caller's. */
export function stuckSlots(pending: readonly (Pending | null)[], lent: readonly unknown[], now: number, after: number) {
  let n = 0
  for (let s = 0; s < pending.length; s++) {
    const p = pending[s]
    if (p?.phase === "settled" && lent[s] === null && now - p.stuckFrom >= after) n++
  }
  return n
}

/**
 * What a worker evicting (it held maxStuck stuck slots, and gets nothing new) does once nobody waits for it: serve on
 * if it handed its stuck slots back since (its loop ran again: a handler that blocked it a while); wait while it
 * answered within the last stuckAfterMs (it is handing them back); else go (a hung worker may never answer).
 */
export function evictingNext(
  stuck: number,
  sinceAnswerMs: number,
  s: { maxStuck: number; stuckAfterMs: number },
): "serve" | "wait" | "go" {
  if (stuck < s.maxStuck) return "serve"
  return sinceAnswerMs < s.stuckAfterMs ? "wait" : "go"
}
