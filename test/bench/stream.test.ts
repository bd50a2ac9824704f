// `slotbus bench stream`: its options, and a --quick --json run that reports every line with figures (no timing asserts).
import { expect, test } from "bun:test"
import { join } from "node:path"
import { LINES, main, type Row } from "../../bench/stream/cli.ts"
import { usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("stream", main, [
  ["--only", "nope"],
  ["--only", "first,"],
  ["--time", "5"],
  ["--time"],
  ["--what"],
  ["--rounds", "0"],
])

test("slotbus bench stream --quick --json reports every first-chunk and 64 MiB line with positive figures", async () => {
  const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "stream", "--quick", "--json"], {
    cwd: repo,
    timeoutMs: 120_000,
  })
  expect(r.stderr).toBe("")
  expect(r.code).toBe(0)
  const rows = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Row)
  expect(rows.length).toBe(LINES.length)
  expect(rows.filter((x) => x.section === "first").length).toBe(LINES.filter((l) => l.section === "first").length)
  for (const row of rows) {
    if (row.section === "first") {
      expect(row.runs).toBeGreaterThanOrEqual(3)
      for (const v of [row.headersMs, row.firstChunkMs, row.endMs]) expect(v).toBeGreaterThan(0)
    } else {
      expect(row.bodies).toBeGreaterThanOrEqual(2)
      for (const v of [row.msP50, row.mbPerS, row.cpuMsPerBody]) expect(v).toBeGreaterThan(0)
    }
  }
  const methods = new Set(rows.map((x) => x.method))
  for (const m of ["request {stream}", "request", "bus.fetch", "HTTP fetch ← Bun.serve"]) expect(methods).toContain(m)
}, 150_000)
