// `slotbus bench leases soak`: its options, and a short run of the chaos it is for (the long run's figures
// are in src/leases/README.md).
import { expect, test } from "bun:test"
import { join } from "node:path"
import { run } from "../support/helpers.ts"

const repo = join(import.meta.dir, "..", "..")
const soak = (args: string[], timeoutMs?: number) =>
  run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "leases", "soak", ...args], { cwd: repo, timeoutMs })

test("slotbus bench leases soak --help prints its options; a bad option exits 2 and names it", async () => {
  const help = await soak(["--help"])
  expect(help.code).toBe(0)
  expect(help.stdout).toContain("--holders")
  const bad = await soak(["--holders", "0"])
  expect(bad.code).toBe(2)
  expect(bad.stderr.split("\n")[0]).toContain("--holders takes a whole number")
})

test("an 8-second soak with holders SIGKILLed and SIGSTOPped: no overlap, no token regression, no crash", async () => {
  const p = await soak(["--seconds", "8", "--chaos-every", "200", "--json"], 90_000)
  if (p.code !== 0) console.error(p.stdout, p.stderr)
  const r = JSON.parse(p.stdout.trim().split("\n").at(-1)!)
  expect({ overlaps: r.overlaps, regressions: r.regressions, crashes: r.crashes }).toEqual({
    overlaps: 0,
    regressions: 0,
    crashes: 0,
  })
  expect(r.grants).toBeGreaterThan(0)
  expect(r.chaos.kills + r.chaos.stops).toBeGreaterThan(0)
  expect(p.code).toBe(0)
}, 100_000)
