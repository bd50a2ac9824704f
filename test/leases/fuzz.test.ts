// Property test of slotbus/leases: whatever a caller passes (odd subjects and owners, lone surrogates, bad
// options, huge numbers, aborts, timeouts), each call either works or throws a TypeError/RangeError (or a
// documented SlotBusError), nothing escapes, and after each case the contest still serves with no claim, no
// waiter, no waiter thread, no fd and no timer left behind.
import { afterAll, beforeAll, expect, test } from "bun:test"
import fc from "fast-check"
import { Contest, type Lease, ProtocolError, SlotBusError } from "../../src/leases/index.ts"
import { fdCensus, settledCensus } from "../support/fds.ts"
import { liveTimers, restoreTimers, trackTimers } from "../support/timers.ts"
import { busName, until } from "../support/helpers.ts"

let contest: Contest
let baseFds = 0
const escaped: unknown[] = []
const onEscape = (e: unknown) => void escaped.push(e)

beforeAll(async () => {
  process.on("uncaughtException", onEscape)
  process.on("unhandledRejection", onEscape)
  contest = await Contest.open(busName("fuzz"))
  baseFds = (await settledCensus()).total
  trackTimers()
})

afterAll(() => {
  restoreTimers()
  contest?.close()
  process.off("uncaughtException", onEscape)
  process.off("unhandledRejection", onEscape)
})

const units = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 10 }).map((a) => String.fromCharCode(...a))
const anyString = fc.oneof(
  { weight: 4, arbitrary: units },
  {
    weight: 3,
    arbitrary: fc.constantFrom("", "a", "\0", "\uD800", "x\uDC00", "s\u{1F600}", "é".repeat(60), "x".repeat(200)),
  },
)
const oddNumber = fc.oneof(
  fc.constantFrom(Number.NaN, -1, 0, 1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, Infinity, -Infinity, 1e308, -0),
  fc.integer({ min: 0, max: 40 }),
)
const oddValue = fc.oneof(
  { weight: 4, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.constantFrom<unknown>("5", null, {}, [], true, 5n) },
)
const subject = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.oneof(fc.integer({ min: 0, max: 3 }), oddValue),
      label: fc.oneof(fc.constantFrom("a", "b", "c"), anyString),
    }),
  },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, "a", 5, { kind: 1 }, { label: "a" }) },
)
const claimOptions = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      { owner: anyString, ttlMs: oddValue, spinUs: fc.oneof(fc.constant(0), oddValue), timeoutMs: oddValue },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 5, { tlMs: 1 }, { signal: "no" }) },
)
const slot = fc.nat(3)

type Op =
  | { op: "tryClaim"; subject: unknown; opts: unknown }
  | { op: "claim"; subject: unknown; opts: unknown; abortAfterMs: number | null }
  | { op: "release" | "poll"; lease: number }
  | { op: "renew"; lease: number; ttl: unknown }
  | { op: "holders" | "stats" }
  | { op: "reset"; subject: unknown }

const ops: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("tryClaim" as const), subject, opts: claimOptions }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("claim" as const),
      subject,
      opts: claimOptions,
      abortAfterMs: fc.option(fc.integer({ min: 0, max: 15 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("release" as const, "poll" as const), lease: slot }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("renew" as const), lease: slot, ttl: oddValue }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("holders" as const, "stats" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reset" as const), subject }) },
)

// Input mistakes are TypeError/RangeError; the rest are the contest's own answers (a lost lease, a full table,
// a timeout). A ProtocolError would mean the table looked corrupt, which no caller mistake may cause.
const allowed = (e: unknown) =>
  e instanceof TypeError || e instanceof RangeError || (e instanceof SlotBusError && !(e instanceof ProtocolError))

async function runCase(list: Op[]) {
  const leases: Lease[] = []
  const pending: Promise<unknown>[] = []
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn()
    } catch (e) {
      if (!allowed(e)) throw e
      return undefined
    }
  }
  const settle = (p: Promise<unknown>) =>
    pending.push(
      p.catch((e) => {
        if (!allowed(e) && (e as Error)?.name !== "AbortError") throw e
      }),
    )
  try {
    for (const o of list) {
      const lease = "lease" in o ? leases[o.lease % Math.max(1, leases.length)] : undefined
      switch (o.op) {
        case "tryClaim": {
          const r = attempt(() => contest.tryClaim(o.subject as never, o.opts as never))
          if (r?.claimed) leases.push(r.lease)
          break
        }
        case "claim": {
          const ac = new AbortController()
          const opts =
            o.opts !== null && typeof o.opts === "object" ? { ...(o.opts as object), signal: ac.signal } : o.opts
          // a claim that would wait forever gets a deadline here, so the case ends; the option itself is fuzzed
          const bounded =
            opts !== null && typeof opts === "object" && !("timeoutMs" in opts) ? { ...opts, timeoutMs: 50 } : opts
          let p: Promise<Lease> | undefined
          attempt(() => (p = contest.claim(o.subject as never, bounded as never)))
          if (p) settle(p.then((l) => leases.push(l)))
          if (o.abortAfterMs !== null) settle(Bun.sleep(o.abortAfterMs).then(() => ac.abort()))
          else settle(Bun.sleep(60).then(() => ac.abort())) // a huge fuzzed timeoutMs still ends with the case
          break
        }
        case "release":
          if (lease) attempt(() => lease.release())
          break
        case "poll":
          if (lease) attempt(() => lease.poll())
          break
        case "renew":
          if (lease) attempt(() => lease.renew(o.ttl as number))
          break
        case "holders":
          attempt(() => contest.holders())
          break
        case "stats":
          attempt(() => contest.stats())
          break
        case "reset":
          attempt(() => contest.reset(o.subject as never))
          break
      }
    }
    await Bun.sleep(1)
  } finally {
    await Promise.all(pending)
    for (const l of leases) l.release()
  }
}

async function stillServes() {
  await until(() => contest.holders().length === 0, "no claim is left", 2000, 2)
  await until(() => contest.waiterState().waiting === 0 && !contest.waiterState().thread, "no waiter is left", 2000, 2)
  const r = contest.tryClaim({ kind: 9, label: "probe" })
  expect(r.claimed).toBe(true)
  if (r.claimed) expect(r.lease.release()).toBe(true)
  expect(liveTimers.size).toBe(0)
  await until(() => fdCensus().total <= baseFds, `fds back to ${baseFds} (now ${fdCensus().total})`, 2000, 5)
}

test("odd subjects, owners and options, huge numbers, aborts and timeouts: each call works or throws a typed error, and the contest keeps serving with nothing left", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(ops, { minLength: 1, maxLength: 8 }), async (list) => {
      await runCase(list)
      await stillServes()
      expect(escaped).toEqual([])
    }),
    { numRuns: 200 },
  )
}, 120_000)
