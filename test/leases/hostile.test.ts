// A member that scribbles random bytes over the shared table must not crash the others: every call either
// works or throws ProtocolError, and a fresh contest under another name is unaffected.
import { afterEach, expect, test } from "bun:test"
import { Contest, ProtocolError, SlotBusError } from "../../src/leases/index.ts"
import { bunChild, busName, stopAll } from "../support/helpers.ts"

afterEach(stopAll)

test("a member scribbling the table makes others' calls throw ProtocolError (or work), never crash or hang", async () => {
  const name = busName("hostile")
  const c = await Contest.open(name)
  try {
    const held = c.tryClaim({ kind: 1, label: "before" }, { owner: "victim", ttlMs: 60_000 })
    expect(held.claimed).toBe(true)
    const scribbler = bunChild("leases/lease-member.ts", ["scribble", name, "20"])
    await scribbler.waitLine(/^scribbled$/, 30_000)

    const errors = new Map<string, number>()
    let worked = 0
    const attempt = (f: () => unknown) => {
      try {
        f()
        worked++
      } catch (e) {
        expect(e).toBeInstanceOf(SlotBusError)
        const kind = (e as Error).constructor.name
        errors.set(kind, (errors.get(kind) ?? 0) + 1)
      }
    }
    for (let i = 0; i < 300; i++) {
      attempt(() => {
        const r = c.tryClaim({ kind: i % 5, label: `subject-${i % 37}` }, { owner: "victim", ttlMs: 1000 })
        if (r.claimed) r.lease.release()
      })
      attempt(() => c.holders())
      attempt(() => c.stats())
      attempt(() => c.reset({ kind: 1, label: `subject-${i % 37}` }))
    }
    if (held.claimed) attempt(() => held.lease.renew(1000))
    console.log(`after scribbling: ${worked} calls worked, errors: ${JSON.stringify(Object.fromEntries(errors))}`)
    expect(errors.get("ProtocolError") ?? 0).toBeGreaterThan(0) // the damage was noticed, not papered over
    expect(
      [...errors.keys()].every((k) => k === "ProtocolError" || k === "LeaseLostError" || k === "ContestFullError"),
    ).toBe(true)
    // the process is alive and the library still works for other contests
    using other = await Contest.open(busName("unharmed"))
    expect(other.tryClaim({ kind: 1, label: "x" }).claimed).toBe(true)
  } finally {
    c.close()
  }
}, 60_000)

test("ProtocolError is what a corrupt table surfaces as", async () => {
  const name = busName("hostile-direct")
  using c = await Contest.open(name, { capacity: 64 })
  expect(c.tryClaim({ kind: 1, label: "a" }).claimed).toBe(true)
  const { address, size } = c.table()
  const { toArrayBuffer } = require("bun:ffi") as typeof import("bun:ffi")
  const table = new DataView(toArrayBuffer(address as never, 0, size))
  // every entry's claim word gets state 7, which the protocol does not have
  for (let i = 0; i < 64; i++) table.setUint32(20480 + 256 * i + 120, 7, true)
  expect(() => c.tryClaim({ kind: 1, label: "a" })).toThrow(ProtocolError)
})

// 24 repeatable scribblers, half writing plausible words, half random bytes: whatever they do, every other
// member's calls return (work, or throw a typed SlotBusError), a waiting claim settles, nothing crashes.
const SEEDS = Array.from({ length: 24 }, (_, i) => [i + 1, i % 2 === 0 ? "words" : "chaos"] as const)
test.each(SEEDS)(
  "seed %d (%s): the others' calls return or throw a typed error, a waiting claim settles",
  async (seed, mode) => {
    const name = busName(`hostile-${seed}`)
    const c = await Contest.open(name)
    try {
      const held = c.tryClaim({ kind: 1, label: "held" }, { owner: "victim", ttlMs: 60_000 })
      const scribbler = bunChild("leases/lease-member.ts", ["scribble", name, "5", String(seed), mode])
      await scribbler.waitLine(/^scribbled$/, 30_000)
      const kinds = new Set<string>()
      const attempt = (f: () => unknown) => {
        try {
          f()
        } catch (e) {
          expect(e).toBeInstanceOf(SlotBusError)
          kinds.add((e as Error).constructor.name)
        }
      }
      for (let i = 0; i < 60; i++) {
        attempt(() => {
          const r = c.tryClaim({ kind: i % 3, label: `s${i % 11}` }, { owner: "victim", ttlMs: 1000 })
          if (r.claimed) r.lease.release()
        })
        attempt(() => c.holders())
        attempt(() => c.stats())
      }
      if (held.claimed) attempt(() => held.lease.renew(1000))
      // a waiting claim on a subject someone may appear to hold: it must settle, not hang
      const waited = await c.claim({ kind: 1, label: "held" }, { owner: "waiter", timeoutMs: 300 }).then(
        (l) => (l.release(), "claimed"),
        (e) => (expect(e).toBeInstanceOf(SlotBusError), (e as Error).constructor.name),
      )
      expect(typeof waited).toBe("string")
      console.log(`seed ${seed} ${mode}: errors ${[...kinds].join(", ") || "none"}; waiting claim: ${waited}`)
      for (const k of kinds)
        expect(["ProtocolError", "LeaseLostError", "ContestFullError", "TimeoutError"]).toContain(k)
    } finally {
      c.close()
    }
  },
  30_000,
)
