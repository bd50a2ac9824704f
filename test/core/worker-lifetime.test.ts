// No worker outlives its fronts (docs/api.md, "A worker's lifetime"): a worker a pool started, holding a timer, a
// topic subscription and a claimed lease as an app's worker does, exits once every front of its name was killed
// with kill -9; with exitWithFront: false it lives on as before. Real fronts (test/support/shared-front.ts), real
// workers (test/support/holding-worker.ts), real kill -9.
import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { alive, busName, type Child, FIXTURES, spawn, until } from "../support/helpers.ts"
import { frontChild, poolOf, workerPids, type FrontChild } from "../support/front-child.ts"

const children: Child[] = []
const pids: number[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
  for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL")
})

// The documented bound is 2 s of linger plus the drain (up to 5 s); the wait allows for a loaded machine.
const GONE_WITHIN_MS = 30_000

async function frontsWithPool(
  name: string,
  fronts: number,
  args: string[],
): Promise<{ fs: FrontChild[]; workers: number[] }> {
  const fs: FrontChild[] = []
  for (let i = 0; i < fronts; i++)
    fs.push(await frontChild(name, ["--pool=2", "--worker=holding-worker.ts", ...args], children))
  const leader = fs[0]!
  await until(async () => (await poolOf(leader)).pids.every((p) => p > 0), "the pool started", 20_000, 100)
  const workers = (await poolOf(leader)).pids
  pids.push(...workers)
  for (const f of fs) expect((await workerPids(f, 2)).sort()).toEqual([...workers].sort())
  return { fs, workers }
}

test.each([
  ["two shared fronts", 2, [] as string[]],
  ["one plain front", 1, ["--plain"]],
])(
  "kill -9 of every front (%s) ends the pool's workers that hold a timer, a topic and a lease",
  async (_, n, args) => {
    const name = busName("orphan")
    const { fs, workers } = await frontsWithPool(name, n, args)
    for (const f of fs) await f.child.kill()
    await until(() => workers.every((p) => !alive(p)), "every worker of the pool exited", GONE_WITHIN_MS, 100)
  },
  120_000,
)

test("kill -9 of the front that started them ends the old pool's workers that hold a timer, a topic and a lease, while another front lives on", async () => {
  const name = busName("orphan")
  const { fs, workers } = await frontsWithPool(name, 2, [])
  await fs[0]!.child.kill()
  await until(() => workers.every((p) => !alive(p)), "every worker of the old pool exited", GONE_WITHIN_MS, 100)
  // the surviving front's own pool serves it
  await until(async () => (await poolOf(fs[1]!)).state === "running", "the surviving front runs the pool", 20_000, 100)
  const next = (await poolOf(fs[1]!)).pids
  pids.push(...next)
  expect((await workerPids(fs[1]!, 2)).sort()).toEqual([...next].sort())
}, 120_000)

test("a worker of a pool that passes exitWithFront: false lives on after every front was killed", async () => {
  const name = busName("orphan")
  const { fs, workers } = await frontsWithPool(name, 1, ["--plain", "--", "--exit-with-front=false"])
  await fs[0]!.child.kill()
  // the worker's connection closed (as ever), and its process is still there well past the bound
  await Bun.sleep(9000)
  expect(workers.every((p) => alive(p))).toBe(true)
}, 60_000)

test("a worker started by hand exits with its hub only when it passes exitWithFront: true", async () => {
  const name = busName("orphan")
  const bus = await SlotBus.listen(name)
  try {
    const worker = (flags: string[]) => {
      const w = spawn([process.execPath, join(FIXTURES, "holding-worker.ts"), name, ...flags])
      children.push(w)
      return w
    }
    const optedIn = worker(["--exit-with-front=true"])
    const byDefault = worker([])
    for (const w of [optedIn, byDefault]) await w.waitLine(/^ready \d+$/, 20_000)
    await bus.close()
    expect(await optedIn.exited).toBe(0)
    expect(optedIn.stderr).toContain(`slotbus: worker ${optedIn.pid} of "${name}" exits: hub-closed`)
    await byDefault.waitLine(/^closed hub-closed$/, 20_000)
    await Bun.sleep(1000) // an exit would have come in the turn after worker.closed
    expect(byDefault.running).toBe(true)
  } finally {
    await bus.close()
  }
}, 60_000)
