// `slotbus bench remote`: its options, and a --quick --json run that measures every method at 1 and 32 in flight.
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { main, METHODS, type Row } from "../../bench/remote/cli.ts"
import { usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"
import { natsSkipReason } from "../support/nats.ts"
import { pathWithoutSbin, sayWhySkipped } from "../support/tools.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("remote", main, [["--only", "nope"], ["--time", "5"], ["--rounds", "0"], ["--what"]])

const natsSkip = natsSkipReason()
sayWhySkipped("slotbus bench remote --quick", natsSkip)

describe.skipIf(natsSkip !== null)("with a nats-server", () => {
  test("--quick --json reports every method at 1 and 32 in flight, each with calls and positive figures", async () => {
    const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "remote", "--quick", "--json"], {
      cwd: repo,
      env: { ...process.env, PATH: pathWithoutSbin }, // the bench finds nats-server where the check did
      timeoutMs: 90_000,
    })
    expect(r.code).toBe(0)
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Row)
    expect(rows.map((x) => `${x.method} ${x.inflight}`).sort()).toEqual(
      METHODS.flatMap((m) => [`${m} 1`, `${m} 32`]).sort(),
    )
    for (const row of rows) {
      expect(row.count).toBeGreaterThan(0)
      expect(row.p50us).toBeGreaterThan(0)
      expect(row.callsPerS).toBeGreaterThan(0)
    }
  }, 120_000)
})
