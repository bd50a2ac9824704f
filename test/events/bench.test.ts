// `slotbus bench events` is wired into the command line and explains itself.
import { expect, test } from "bun:test"
import { join } from "node:path"

test("slotbus bench events --help prints what it measures and exits 0", () => {
  const r = Bun.spawnSync(["bun", join(import.meta.dir, "..", "..", "bin", "slotbus.ts"), "bench", "events", "--help"])
  expect(r.exitCode).toBe(0)
  const out = r.stdout.toString()
  expect(out).toContain("slotbus bench events")
  expect(out).toContain("nats-server")
  expect(out).toContain("BroadcastChannel")
})
