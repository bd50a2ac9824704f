// `slotbus bench rpc`: its options, and a --quick run that measures every method for every call.
import { expect, test } from "bun:test"
import { join } from "node:path"
import { CALLS, main, METHODS } from "../../bench/rpc/cli.ts"
import { usageErrors } from "../support/bench/bench.ts"
import { run } from "../support/helpers.ts"

const repo = join(import.meta.dir, "..", "..")

usageErrors("rpc", main, [
  ["--only", "nope"],
  ["--time", "5"],
  ["--time"],
  ["--what"],
  ["--rounds", "0"],
  ["--only", ""],
])

test("slotbus bench rpc --quick prints a line for every method and call at 1 and 32 in flight, and the verdicts", async () => {
  const r = await run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "rpc", "--quick"], {
    cwd: repo,
    timeoutMs: 90_000,
  })
  expect(r.code).toBe(0)
  for (const call of CALLS)
    for (const method of METHODS)
      for (const n of [1, 32])
        expect(r.stdout).toMatch(
          new RegExp(
            `^${literal(call)}\\s+${literal(method)}\\s+${n}\\s+[\\d.]+\\s+[\\d.]+\\s+[\\d.]+[kM]?\\s+[\\d.]+$`,
            "m",
          ),
        )
  for (const call of CALLS) expect(r.stdout).toContain(`${call}: slotbus RPC p50 `)
}, 120_000)

function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
}
