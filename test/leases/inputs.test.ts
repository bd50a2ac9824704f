// Bad input is a typed error thrown before any native call: a label with a lone surrogate is InvalidSubjectError (an
// owner's a TypeError), bad numbers RangeError (or TypeError when not a number), unknown options TypeError naming
// them; the contest serves on.
import { afterAll, beforeAll, expect, test } from "bun:test"
import { Contest, InvalidSubjectError } from "../../src/leases/index.ts"
import { busName } from "../support/helpers.ts"

let c: Contest
beforeAll(async () => void (c = await Contest.open(busName("inputs"))))
afterAll(() => c.close())
const s = { kind: 1, label: "x" }

test.each([
  ["a label with a lone high surrogate", () => c.tryClaim({ kind: 1, label: "a\uD800" }), InvalidSubjectError],
  ["a label with a lone low surrogate", () => c.tryClaim({ kind: 1, label: "\uDC00" }), InvalidSubjectError],
  ["an owner with a lone surrogate", () => c.tryClaim(s, { owner: "\uD83D" }), TypeError],
  ["a reset of a label with a lone surrogate", () => c.reset({ kind: 1, label: "\uD800" }), InvalidSubjectError],
  ["ttlMs NaN", () => c.tryClaim(s, { ttlMs: NaN }), RangeError],
  ["ttlMs negative", () => c.tryClaim(s, { ttlMs: -1 }), RangeError],
  ["ttlMs 0 (before: a lease with no TTL at all)", () => c.tryClaim(s, { ttlMs: 0 }), RangeError],
  ["ttlMs huge", () => c.tryClaim(s, { ttlMs: 1e300 }), RangeError],
  ["ttlMs a string", () => c.tryClaim(s, { ttlMs: "5" as unknown as number }), TypeError],
  ["spinUs NaN", () => c.tryClaim(s, { spinUs: NaN }), RangeError],
  ["spinUs huge", () => c.tryClaim(s, { spinUs: 1e12 }), RangeError],
  ["an unknown claim option", () => c.tryClaim(s, { ttl: 5 } as never), TypeError],
  ["options that are not an object", () => c.tryClaim(s, 5 as never), TypeError],
  ["nowMs NaN", () => c.tryClaimAt(s, {}, NaN), RangeError],
  ["holders(NaN)", () => c.holders(NaN), RangeError],
  ["a kind of NaN", () => c.tryClaim({ kind: NaN, label: "x" }), InvalidSubjectError],
])("%s throws before anything is claimed", (_what, f, type) => {
  const before = c.stats().claims
  expect(f).toThrow(type)
  expect(c.stats().claims).toBe(before)
})

test("a label with a lone surrogate says why: UTF-8 cannot carry it", () => {
  expect(() => c.tryClaim({ kind: 1, label: "a\uD800" })).toThrow(/subject label has a lone surrogate/)
})

test.each([
  ["timeoutMs NaN", { timeoutMs: NaN }, RangeError],
  ["timeoutMs negative", { timeoutMs: -5 }, RangeError],
  ["timeoutMs beyond setTimeout's range", { timeoutMs: 2 ** 40 }, RangeError],
  ["a signal that is not an AbortSignal", { signal: {} as AbortSignal }, TypeError],
  ["an unknown wait option", { timeout: 5 } as never, TypeError],
])("claim() with %s rejects with a typed error and leaves no waiter", async (_what, opts, type) => {
  await expect(c.claim(s, opts)).rejects.toBeInstanceOf(type)
  expect(c.waiterState()).toEqual({ waiting: 0, thread: false })
})

test.each([
  ["renew(NaN)", (l: { renew(t: number, n?: number): void }) => l.renew(NaN), RangeError],
  ["renew(0)", (l: { renew(t: number, n?: number): void }) => l.renew(0), RangeError],
  ["renew(1e300)", (l: { renew(t: number, n?: number): void }) => l.renew(1e300), RangeError],
  ["renew(100, NaN)", (l: { renew(t: number, n?: number): void }) => l.renew(100, NaN), RangeError],
])("%s throws RangeError and the lease stays held", (_what, f, type) => {
  const r = c.tryClaim({ kind: 9, label: "renew" })
  if (!r.claimed) throw new Error("not claimed")
  expect(() => f(r.lease)).toThrow(type)
  expect(r.lease.held).toBe(true)
  r.lease.release()
})

test("a TTL past setTimeout's range (25 days) is watched without a TimeoutOverflowWarning, and holds", async () => {
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.name)
  process.on("warning", onWarning)
  try {
    const r = c.tryClaim({ kind: 9, label: "long" }, { ttlMs: 25 * 24 * 3600 * 1000 })
    if (!r.claimed) throw new Error("not claimed")
    const { signal } = r.lease // watched: its expiry gets a timer
    r.lease.renew(30 * 24 * 3600 * 1000)
    await Bun.sleep(50)
    expect([signal.aborted, r.lease.held]).toEqual([false, true])
    r.lease.release()
  } finally {
    process.off("warning", onWarning)
  }
  expect(warnings).toEqual([]) // before: ["TimeoutOverflowWarning", "TimeoutOverflowWarning"]
})

test.each([
  ["a name that is not a string", () => Contest.open(42 as never), TypeError],
  ["joinTimeoutMs NaN", () => Contest.open(busName("x"), { joinTimeoutMs: NaN }), RangeError],
  ["joinTimeoutMs huge", () => Contest.open(busName("x"), { joinTimeoutMs: 1e20 }), RangeError],
  ["an unknown open option", () => Contest.open(busName("x"), { size: 64 } as never), TypeError],
])("Contest.open with %s rejects with a typed error", async (_what, f, type) => {
  await expect(f()).rejects.toBeInstanceOf(type)
})
