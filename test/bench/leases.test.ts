// The lease bench's own logic: how handover records of two parties become latencies, and its CLI entry.
import { expect, test } from "bun:test"
import { join } from "node:path"
import { run } from "../support/helpers.ts"
import { latencies } from "../../bench/leases/locks.ts"

test("handover latencies pair each acquire with the other party's release just before it", () => {
  const a = { releases: [100, 300], acquires: [250, 420] }
  const b = { releases: [200, 400], acquires: [110, 305] }
  expect(latencies(a, b)).toEqual({ ns: [5, 10, 20, 50], starved: 0 })
})

test("an acquire that follows its own party's release (the waiter was starved) is left out and counted", () => {
  // a releases at 100, nobody takes it, a takes it back at 150; b only gets it after a's next release
  const a = { releases: [100, 200], acquires: [150] }
  const b = { releases: [], acquires: [230] }
  expect(latencies(a, b)).toEqual({ ns: [30], starved: 1 })
})

test("`slotbus bench leases --help` prints its usage", async () => {
  const r = await run([
    process.execPath,
    join(import.meta.dir, "..", "..", "bin", "slotbus.ts"),
    "bench",
    "leases",
    "--help",
  ])
  expect(r.code).toBe(0)
  expect(r.stdout).toContain("usage: slotbus bench leases")
})

test("`slotbus bench leases --waiters 50 --quick` prints idle CPU, one waiter thread and wake latencies", async () => {
  const r = await run([
    process.execPath,
    join(import.meta.dir, "..", "..", "bin", "slotbus.ts"),
    "bench",
    "leases",
    "--waiters",
    "50",
    "--quick",
  ])
  expect(r.code).toBe(0)
  expect(r.stdout).toMatch(/^\s+50\s+[\d.]+\s+1\s+\d+\s+\d+\s+50$/m)
}, 30_000)
