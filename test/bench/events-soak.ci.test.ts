// `slotbus bench events soak`: its options, and a short run of the chaos it is for (the 10-minute figures are in
// src/events/README.md). Every event is checked by each subscriber and by the witness.
import { expect, test } from "bun:test"
import { join } from "node:path"
import { run } from "../support/helpers.ts"

const repo = join(import.meta.dir, "..", "..")
const soak = (args: string[], timeoutMs?: number) =>
  run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "events", "soak", ...args], { cwd: repo, timeoutMs })

test("slotbus bench events soak --help prints its options; a bad option exits 2 and names it", async () => {
  const help = await soak(["--help"])
  expect(help.code).toBe(0)
  expect(help.stdout).toContain("--publishers")
  const bad = await soak(["--capacity", "100000"])
  expect(bad.code).toBe(2)
  expect(bad.stderr.split("\n")[0]).toContain("--capacity takes a whole number")
})

test("an 8-second soak with publishers and subscribers SIGKILLed and SIGSTOPped: nothing corrupt, foreign, out of order or lost uncounted", async () => {
  const p = await soak(["--seconds", "8", "--chaos-every", "200", "--json"], 90_000)
  if (p.code !== 0) console.error(p.stdout, p.stderr)
  const r = JSON.parse(p.stdout.trim().split("\n").at(-1)!)
  const bad = (c: Record<string, number>) => ({
    corrupt: c.corrupt,
    foreign: c.foreign,
    disorder: c.disorder,
    uncounted: c.uncounted,
  })
  expect(bad(r.witness)).toEqual({ corrupt: 0, foreign: 0, disorder: 0, uncounted: 0 })
  expect(bad(r.subscriberProcesses)).toEqual({ corrupt: 0, foreign: 0, disorder: 0, uncounted: 0 })
  expect(r.witness.received).toBeGreaterThan(0)
  expect(
    r.chaos.publisherKills + r.chaos.publisherStops + r.chaos.subscriberKills + r.chaos.subscriberStops,
  ).toBeGreaterThan(0)
  expect(p.code).toBe(0)
}, 100_000)
