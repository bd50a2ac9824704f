// `slotbus bench soak --production`: its options, and a short run of everything it does at once (the 10-minute
// figures are in the README): two fronts, an elastic pool, reloads, kill -9 of workers and a front, a crash bug
// and a spike, every answer checked and every POST's executions counted; under Bun, and under Node 26 (node:http
// fronts with nodeHandler, Node workers).
import { expect, test } from "bun:test"
import { join } from "node:path"
import { run } from "../support/helpers.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"

const repo = join(import.meta.dir, "..", "..")
const soak = (args: string[], timeoutMs?: number) =>
  run([process.execPath, join(repo, "bin", "slotbus.ts"), "bench", "soak", "--production", ...args], {
    cwd: repo,
    timeoutMs,
  })

test("slotbus bench soak --production --help prints its options; a bad option exits 2 and names it", async () => {
  const help = await soak(["--help"])
  expect(help.code).toBe(0)
  expect(help.stdout).toContain("--kill-front-every")
  const bad = await soak(["--min", "3", "--max", "2"])
  expect(bad.code).toBe(2)
  expect(bad.stderr.split("\n")[0]).toBe("--max must be at least --min")
  const runtime = await soak(["--runtime", "deno"])
  expect([runtime.code, runtime.stderr.split("\n")[0]]).toEqual([2, "--runtime takes bun or node"])
})

const CHAOS = [
  ...["--minutes", "0.34", "--lanes", "8", "--spike-lanes", "16", "--crash-every", "150"],
  ...["--reload-every", "4000", "--kill-worker-every", "2500", "--kill-front-every", "9000", "--spike-every", "7000"],
  "--json",
]

const node = findNode()
if (!node) console.log(`skipping the soak under Node: no Node >= 26.1 here (${NODE_INSTALL})`)

for (const runtime of ["bun", "node"] as const)
  test.skipIf(runtime === "node" && !node)(
    `20 s of deploys, kill -9 of workers and a front, a crash bug and a spike, fronts and workers on ${runtime}: nothing wrong, run twice, hung or failed outside the policy, nothing left running`,
    async () => {
      const p = await soak([...CHAOS, "--runtime", runtime], 150_000)
      if (p.code !== 0) console.error(p.stdout, p.stderr)
      const r = JSON.parse(p.stdout.trim().split("\n").at(-1)!)
      expect(r.runtime).toBe(runtime)
      expect({
        wrong: r.wrong,
        duplicated: r.duplicated,
        hung: r.hung,
        failedOtherwise: r.failedOtherwiseFirst,
      }).toEqual({
        wrong: 0,
        duplicated: 0,
        hung: 0,
        failedOtherwise: {},
      })
      expect(r.leftRunning).toEqual([])
      expect(r.answered).toBeGreaterThan(0)
      expect(r.events.reloads + r.events.workerKills + r.events.frontKills + r.events.spikes).toBeGreaterThan(0)
      expect(p.code).toBe(0)
    },
    170_000,
  )
