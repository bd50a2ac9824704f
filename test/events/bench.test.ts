// `slotbus bench events` is wired into the command line and explains itself.
import { expect, test } from "bun:test"
import { join } from "node:path"
import { run } from "../support/helpers.ts"

test("slotbus bench events --help prints what it measures and exits 0", async () => {
  const r = await run([
    process.execPath,
    join(import.meta.dir, "..", "..", "bin", "slotbus.ts"),
    "bench",
    "events",
    "--help",
  ])
  expect(r.code).toBe(0)
  const out = r.stdout
  expect(out).toContain("slotbus bench events")
  expect(out).toContain("nats-server")
  expect(out).toContain("BroadcastChannel")
})
