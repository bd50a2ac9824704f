// No worker outlives its fronts (docs/api.md, "A worker's lifetime"): a worker a pool started, holding a timer, a
// topic subscription and a claimed lease as an app's worker does, exits once every front of its name was killed
// with kill -9; with exitWithFront: false it lives on as before. Real fronts (test/support/core/shared-front.ts), real
// workers (test/support/core/holding-worker.ts), real kill -9.
import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { SlotBus, WorkerGoneError } from "../../../src/index.ts"
import { ORPHAN_LINGER_MS } from "../../../src/core/ops/fronts.ts"
import {
  alive,
  busName,
  type Child,
  FIXTURES,
  observed,
  outcome,
  rejection,
  spawn,
  until,
} from "../../support/helpers.ts"
import { frontChild, poolOf, startedBy, workerPids, type FrontChild } from "../../support/core/front-child.ts"

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
      const w = spawn([process.execPath, join(FIXTURES, "core/holding-worker.ts"), name, ...flags])
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

// Workers that load for 1.5 s before they connect: a kill -9 of their plain front just after it started them.
const LOADING = ["--plain", "--pool=2", "--worker=pool-worker.ts", "--", "--start-delay-ms=1500"]

test("kill -9 of a plain front before its workers connected leaves none of them serving the next front of the name", async () => {
  const name = busName("orphan")
  const old = await frontChild(name, [...LOADING, "--wait-for-hub-ms=30000"], children)
  await until(() => startedBy(old.child.pid).length === 2, "the front started its pool", 20_000, 5)
  const first = startedBy(old.child.pid)
  pids.push(...first)
  await old.child.kill()
  const next = await frontChild(name, LOADING, children)
  await until(async () => (await poolOf(next)).pids.every((p) => p > 0), "the next front started its pool", 20_000, 100)
  const own = (await poolOf(next)).pids
  pids.push(...own)
  await until(() => first.every((p) => !alive(p)), "the dead front's workers exited", GONE_WITHIN_MS, 100)
  expect((await workerPids(next, 2)).sort()).toEqual([...own].sort())
}, 120_000)

test("kill -9 of a plain front before its workers connected ends them though no front of the name comes", async () => {
  const name = busName("orphan")
  const old = await frontChild(name, [...LOADING, "--wait-for-hub-ms=600000"], children)
  await until(() => startedBy(old.child.pid).length === 2, "the front started its pool", 20_000, 5)
  const first = startedBy(old.child.pid)
  pids.push(...first)
  await old.child.kill()
  await until(() => first.every((p) => !alive(p)), "the dead front's workers exited", GONE_WITHIN_MS, 100)
}, 120_000)

test.each(["shared", "plain"])(
  "a pool's worker that also serves another process's %s bus lives on, and through that bus's close",
  async (kind) => {
    const name = busName("orphan")
    const extra = busName("extra")
    const other = await SlotBus.listen(extra, { shared: kind === "shared" })
    try {
      const args = ["--plain", "--pool=1", "--worker=pool-worker.ts", "--", `--extra-bus=${extra}`]
      const f = await frontChild(name, args, children)
      await other.waitForWorkers(1, 30_000)
      const [pid] = (await poolOf(f)).pids as [number]
      pids.push(pid)
      expect(other.workers.map((w) => w.pid)).toEqual([pid])
      // past the linger and a drain: an exit as an orphan of the other bus would have come
      await Bun.sleep(ORPHAN_LINGER_MS + 4000)
      expect(alive(pid)).toBe(true)
      await other.close()
      await Bun.sleep(2000) // an exit with the other bus would have come
      expect(alive(pid)).toBe(true)
      expect((await poolOf(f)).pids).toEqual([pid])
      expect(await workerPids(f, 1)).toEqual([pid])
    } finally {
      await other.close()
    }
  },
  60_000,
)

test("a process a pool's worker started is no worker of the pool: it outlives a kill -9 of the front", async () => {
  const name = busName("orphan")
  const f = await frontChild(name, ["--plain", "--pool=1", "--worker=pool-worker.ts", "--", "--child"], children)
  const both = await workerPids(f, 2) // the pool's worker and the process it started serve the front
  const [worker] = (await poolOf(f)).pids as [number]
  const grandchild = both.find((p) => p !== worker)!
  pids.push(...both)
  await f.child.kill()
  await until(() => !alive(worker), "the pool's worker exited", GONE_WITHIN_MS, 100)
  await Bun.sleep(ORPHAN_LINGER_MS + 2000) // an exit with the front would have come
  expect(alive(grandchild)).toBe(true)
}, 60_000)

// A pool's worker whose app listens to no SIGTERM (pool-worker.ts) drains (worker.close()) before it dies of one; a
// worker started by hand dies of it at once, as before. The front here is this process (SLOTBUS_FRONT_PARENT).
function poolWorker(name: string, ofPool: boolean): Child {
  const env: Record<string, string | undefined> = { ...process.env, SLOTBUS_FRONT_BUS: name }
  env.SLOTBUS_FRONT_PARENT = ofPool ? String(process.pid) : undefined
  const w = spawn([process.execPath, join(FIXTURES, "core/pool-worker.ts"), name], { env })
  children.push(w)
  return w
}

// A hang guard under the drain's 5 s bound, not a timing assert: an idle drain takes a few milliseconds.
const PROMPTLY_MS = 4000

test.each([
  ["a pool's worker", true],
  ["a worker started by hand", false],
])(
  "%s with no SIGTERM listener of its own dies of SIGTERM promptly when idle",
  async (_, ofPool) => {
    const name = busName("term")
    const bus = await SlotBus.listen(name)
    try {
      const w = poolWorker(name, ofPool)
      await w.waitLine(/^ready \d+$/, 20_000)
      await bus.waitForWorkers(1, 20_000)
      w.signal("SIGTERM")
      expect((await outcome(w.exited, PROMPTLY_MS)).state).not.toBe("hung")
      expect(w.proc.signalCode).toBe("SIGTERM")
      // the pool's worker closed first (its drain); the one started by hand just died
      expect(w.output.includes(`closed ${name} closed`)).toBe(ofPool)
    } finally {
      await bus.close({ drain: false })
    }
  },
  60_000,
)

test("a second SIGTERM while a pool's worker drains ends it at once", async () => {
  const name = busName("term")
  const bus = await SlotBus.listen(name)
  try {
    const w = poolWorker(name, true)
    await w.waitLine(/^ready \d+$/, 20_000)
    await bus.waitForWorkers(1, 20_000)
    const held = observed(bus.request({ body: "?hold" }, { timeoutMs: 60_000 }))
    await until(() => bus.workers[0]?.inFlight === 1, "the worker holds the request")
    w.signal("SIGTERM")
    await until(() => bus.workers[0]?.state === "draining", "the worker drains (it said D)")
    expect(w.running).toBe(true) // it waits for the request it holds
    w.signal("SIGTERM")
    expect((await outcome(w.exited, PROMPTLY_MS)).state).not.toBe("hung")
    expect(w.proc.signalCode).toBe("SIGTERM")
    expect(await rejection(held)).toBeInstanceOf(WorkerGoneError)
  } finally {
    await bus.close({ drain: false })
  }
}, 60_000)
