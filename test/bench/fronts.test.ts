// `slotbus bench fronts`: its options, and its smallest run as JSON: one front and two on one port over one pool,
// each answering every request (no timing asserts); no front or worker left after.
import { expect, test } from "bun:test"
import { join } from "node:path"
import { type FrontsRow, main } from "../../bench/fronts/cli.ts"
import { benchProcesses, usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("fronts", main, [
  ["--fronts", "0"],
  ["--fronts", "1,x"],
  ["--fronts", "65"],
  ["--workers", "0"],
  ["--seconds", "1.5"],
  ["--rounds", "0"],
  ["--client", "curl"],
  ["--idle", "nope"],
  ["--work-us", "-1"],
  ["--what"],
])

const leftovers = () => benchProcesses("fronts")

const wrkSkip = toolSkipReason("wrk")
sayWhySkipped("slotbus bench fronts --json", wrkSkip)

test.skipIf(wrkSkip !== null)(
  "slotbus bench fronts --json measures one front and two on one port, with no socket error and nothing left running",
  async () => {
    const r = await run(
      [
        process.execPath,
        join(repo, "bin", "slotbus.ts"),
        "bench",
        "fronts",
        "--json",
        "--seconds",
        "1",
        "--rounds",
        "1",
        "--clients",
        "8",
      ],
      { cwd: repo, timeoutMs: 150_000 },
    )
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split("\n")
    expect(JSON.parse(lines[0]!).machine.cores).toBeGreaterThan(0)
    const rows = lines.slice(1).map((l) => JSON.parse(l) as FrontsRow)
    expect(rows.map((x) => x.fronts)).toEqual([1, 2])
    for (const row of rows) {
      expect(row.rps).toBeGreaterThan(0)
      expect(row.errors).toBe(0)
    }
    expect(leftovers()).toEqual([])
  },
  180_000,
)
