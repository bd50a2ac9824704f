// Many fronts, one pool (docs/PROTOCOL.md §15), with real processes: fronts listening shared under one name
// (test/support/core/shared-front.ts), echo workers serving all of them, kill -9 of fronts under load, the pool's
// supervision moving to a surviving front, and no worker left once the last front is gone.
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { SharingMismatchError, SlotBus } from "../../../src/index.ts"
import type { StatusSection } from "../../../src/status/index.ts"
import { alive, busName, ECHO_WORKER, spawn, spawnWorker, until, type Child } from "../../support/helpers.ts"
import {
  frontChild,
  poolOf,
  removeFrontBuilds,
  startedBy,
  workerPids,
  type FrontChild as Front,
} from "../../support/core/front-child.ts"
import { PEER_RUNTIMES, peerSkip, removeNodeBuilds, type PeerRuntime } from "../../support/runtime/peers.ts"

const children: Child[] = []
const pids: number[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
  for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL")
})
afterAll(() => {
  removeNodeBuilds()
  removeFrontBuilds()
})

/** A front process of `name` (under Node: Node workers); resolves once it listens, with its index among the name's fronts. */
function front(name: string, pool = 0, runtime: PeerRuntime = "bun"): Promise<Front> {
  return frontChild(name, pool > 0 ? [`--pool=${pool}`] : [], children, runtime)
}

async function report(f: Front) {
  const [answered, failed, wrong, who] = await f.ask("report", /^report (\d+) (\d+) (\d+) (.*)$/)
  return { answered: Number(answered), failed: Number(failed), wrong: Number(wrong), pids: new Set(who!.split(",")) }
}

async function workers(name: string, n: number): Promise<Child[]> {
  const ws = await Promise.all(Array.from({ length: n }, () => spawnWorker(name, { waitForHubMs: 10_000 })))
  children.push(...ws)
  return ws
}

describe("fronts of one shared name", () => {
  test.each([2, 3])(
    "%i fronts listening shared under one name are each served by every worker",
    async (n) => {
      const name = busName("fronts")
      const fronts: Front[] = []
      for (let i = 0; i < n; i++) fronts.push(await front(name))
      expect(fronts.map((f) => f.index).sort()).toEqual(Array.from({ length: n }, (_, i) => i))
      const ws = await workers(name, 2)
      for (const f of fronts) expect((await workerPids(f, 2)).sort()).toEqual(ws.map((w) => w.pid).sort())
      for (const f of fronts) f.child.write("load\n")
      await Bun.sleep(500)
      for (const f of fronts) {
        const r = await report(f)
        expect(r.failed).toBe(0)
        expect(r.wrong).toBe(0)
        expect(r.answered).toBeGreaterThan(0)
        expect([...r.pids].sort()).toEqual(ws.map((w) => String(w.pid)).sort())
      }
    },
    120_000,
  )

  test("a kill -9 of one front under load leaves the others serving with no failed request", async () => {
    const name = busName("fronts")
    const fronts = [await front(name), await front(name), await front(name)]
    await workers(name, 2)
    for (const f of fronts) await workerPids(f, 2)
    for (const f of fronts) f.child.write("load\n")
    await Bun.sleep(300)
    for (const f of fronts.slice(1)) await report(f) // from here on
    await fronts[0]!.child.kill() // the front on the plain name, which the workers connected to first
    await Bun.sleep(1000)
    for (const f of fronts.slice(1)) {
      const r = await report(f)
      expect(r.failed).toBe(0)
      expect(r.wrong).toBe(0)
      expect(r.answered).toBeGreaterThan(0)
    }
    // a front started now takes the free plain name, and the workers come to it too
    const late = await front(name)
    expect(late.index).toBe(0)
    expect((await workerPids(late, 2)).length).toBe(2)
  }, 120_000)

  test("a front started later gets every worker of the name", async () => {
    const name = busName("fronts")
    const first = await front(name)
    const ws = await workers(name, 2)
    await workerPids(first, 2)
    const late = await front(name)
    expect(late.index).toBe(1)
    expect((await workerPids(late, 2)).sort()).toEqual(ws.map((w) => w.pid).sort())
  }, 60_000)

  test("a worker that finds no front on the plain name serves the others", async () => {
    const name = busName("fronts")
    const a = await front(name)
    const b = await front(name)
    await a.child.kill()
    const [w] = await workers(name, 1)
    expect(await workerPids(b, 1)).toEqual([w!.pid])
  }, 60_000)
})

const python = Bun.which("python3")

test.skipIf(python === null)(
  "a worker that knows only §1 (the Python one) serves the front on the plain name",
  async () => {
    const name = busName("fronts")
    const bus = await SlotBus.listen(name, { shared: true })
    try {
      const other = await front(name)
      expect(other.index).toBe(1)
      const py = spawn([python!, `${import.meta.dir}/../../../examples/python-worker/echo.py`, name])
      children.push(py)
      await py.waitLine(/^ready$/, 30_000)
      await bus.waitForWorkers(1, 30_000)
      const r = await bus.request({ method: "POST", path: "/echo", body: "from front 0" })
      expect(r.text()).toBe("from front 0")
    } finally {
      await bus.close({ drain: false })
    }
  },
  60_000,
)

describe("the pool of a shared name", () => {
  test.each(PEER_RUNTIMES)(
    "kill -9 of the %s front that runs the pool: a surviving front takes it over and replaces a worker killed later",
    async (runtime) => {
      if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
      const name = busName("pool")
      const a = await front(name, 2, runtime)
      const b = await front(name, 2, runtime)
      const first = await poolOf(a)
      expect(first.state).toBe("running")
      expect((await poolOf(b)).state).toBe("created") // standing by: one pool per name
      pids.push(...first.pids)
      await workerPids(b, 2)
      b.child.write("load\n")
      await a.child.kill()
      await until(async () => (await poolOf(b)).state === "running", "the surviving front runs the pool", 20_000, 100)
      const second = await poolOf(b)
      pids.push(...second.pids)
      // the old pool's workers leave once the front that started them is gone; the new pool's serve on
      await until(() => first.pids.every((p) => !alive(p)), "the old pool's workers are gone", 20_000, 100)
      // across the takeover, nothing the surviving front asked failed
      const r = await report(b)
      expect(r.failed).toBe(0)
      expect(r.wrong).toBe(0)
      expect(r.answered).toBeGreaterThan(0)
      const now = await poolOf(b)
      expect(now.pids.every((p) => alive(p))).toBe(true)
      process.kill(now.pids[0]!, "SIGKILL")
      await until(
        async () => {
          const p = await poolOf(b)
          return p.pids.length === 2 && p.pids.every((x) => x > 0 && x !== now.pids[0] && alive(x))
        },
        "the killed worker is replaced",
        20_000,
        100,
      )
      pids.push(...(await poolOf(b)).pids)
      expect((await report(b)).answered).toBeGreaterThan(0) // what the killed worker held failed; the rest is served
    },
    120_000,
  )

  test("a leader that closes its bus without stopping its pool leaves the name one pool, the new leader's", async () => {
    const name = busName("pool")
    const a = await front(name, 2)
    const b = await front(name, 2)
    const first = await poolOf(a)
    expect(first.state).toBe("running")
    pids.push(...first.pids)
    await workerPids(b, 2)
    await a.ask("close", /^(closed)$/)
    await until(async () => (await poolOf(b)).state === "running", "the surviving front runs the pool", 20_000, 100)
    const second = await poolOf(b)
    pids.push(...second.pids)
    // a stopped pool has seen every process it started exit: none is left to join b
    await until(async () => (await poolOf(a)).state === "stopped", "the closed front's pool stopped", 20_000, 100)
    expect(startedBy(a.child.pid)).toEqual([])
    expect((await workerPids(b, 2)).sort()).toEqual(second.pids.sort())
  }, 120_000)

  test("a leader that closes draining a request: the new leader takes the control socket, a reload through it works", async () => {
    const name = busName("pool")
    const a = await front(name, 2)
    const [b, c] = [await front(name, 2), await front(name, 2)]
    pids.push(...(await poolOf(a)).pids)
    await workerPids(b, 2)
    await workerPids(c, 2)
    void a.ask("close drain", /^(closed)$/)
    const leads = async (f: Front) => (await poolOf(f)).state === "running"
    await until(async () => (await leads(b)) || (await leads(c)), "a standby runs the pool", 20_000, 100)
    const [leader, standby] = (await leads(b)) ? [b, c] : [c, b]
    pids.push(...(await poolOf(leader)).pids)
    // the standby's reload goes to the leader over the name's control socket (before: the new leader had none)
    const [result] = await standby.ask("redeploy", /^(reloaded|reload failed .*)$/)
    expect(result).toBe("reloaded")
    pids.push(...(await poolOf(leader)).pids)
  }, 120_000)

  test("a worker whose parent front it never reached leaves after the linger", async () => {
    const name = busName("pool")
    const b = await front(name)
    // its parent lives (this test's process) but is no front of the name: the worker serves b, and never its parent
    const w = spawn([process.execPath, ECHO_WORKER, name], {
      env: { ...process.env, SLOTBUS_FRONT_PARENT: String(process.pid) },
    })
    children.push(w)
    await w.waitLine(/^ready$/, 20_000)
    expect(await workerPids(b, 1)).toEqual([w.pid])
    await w.waitLine(/^closed closed$/, 20_000)
    expect(await w.exited).toBe(0)
  }, 60_000)

  test("kill -9 of the leader just after a reload started its successors leaves none of them serving", async () => {
    const name = busName("pool")
    const a = await front(name, 2)
    const b = await front(name, 2)
    pids.push(...(await poolOf(a)).pids)
    await workerPids(b, 2)
    await a.ask("reload", /^(reloading)$/)
    await until(() => startedBy(a.child.pid).length > 2, "the reload started a successor", 20_000, 5)
    const started = startedBy(a.child.pid)
    pids.push(...started)
    await a.child.kill()
    await until(async () => (await poolOf(b)).state === "running", "the surviving front runs the pool", 20_000, 100)
    const second = await poolOf(b)
    pids.push(...second.pids)
    await until(() => started.every((p) => !alive(p)), "every worker the dead leader started is gone", 20_000, 100)
    expect((await workerPids(b, 2)).sort()).toEqual(second.pids.sort())
  }, 120_000)

  test.each(PEER_RUNTIMES)(
    "when the last %s front is gone no worker of the pool is left",
    async (runtime) => {
      if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
      const name = busName("pool")
      const a = await front(name, 2, runtime)
      const b = await front(name, 2, runtime)
      const p = await poolOf(a)
      pids.push(...p.pids)
      await workerPids(b, 2)
      await a.child.kill()
      await until(async () => (await poolOf(b)).state === "running", "the surviving front runs the pool", 20_000, 100)
      const q = await poolOf(b)
      pids.push(...q.pids)
      await b.child.kill()
      await until(() => [...p.pids, ...q.pids].every((pid) => !alive(pid)), "no worker is left", 20_000, 100)
    },
    120_000,
  )
})

describe("the status view of a shared front", () => {
  test("shows its index among the fronts, which one leads, and the pool standing by on the others", async () => {
    const name = busName("fronts")
    const a = await front(name, 1)
    const b = await front(name, 1)
    const view = async (f: Front) => JSON.parse((await f.ask("status", /^status (.*)$/))[0]!) as StatusSection
    const fact = (s: StatusSection) => s.facts.find(([k]) => k === "front")?.[1]
    pids.push(...(await poolOf(a)).pids)
    const [sa, sb] = [await view(a), await view(b)]
    expect(fact(sa)).toBe("0 of the shared name (the plain name); the leader: runs the name's pool")
    expect(fact(sb)).toBe(`1 of the shared name (${name}~1); another front leads`)
    const poolState = (s: StatusSection) => s.tables.find((t) => t.title.startsWith("worker pools"))?.rows[0]?.[1]
    expect(poolState(sa)).toBe("running")
    expect(poolState(sb)).toBe("standby (another front runs the name's pool)")
  }, 60_000)
})

describe("shared and plain listens of one name", () => {
  test("a plain listen of a name shared fronts hold fails with SharingMismatchError", async () => {
    const name = busName("fronts")
    await front(name)
    const e = await SlotBus.listen(name).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(SharingMismatchError)
    expect((e as SharingMismatchError).shared).toBe(true)
    expect(String(e)).toContain("shared: true")
  })

  test("a shared listen of a name a plain hub holds fails with SharingMismatchError", async () => {
    const name = busName("fronts")
    const plain = spawn(
      [
        process.execPath,
        "-e",
        `const { SlotBus } = await import(${JSON.stringify(`${import.meta.dir}/../../../src/index.ts`)}); await SlotBus.listen(${JSON.stringify(name)}); console.log("ready"); setInterval(() => {}, 1000)`,
      ],
      {},
    )
    children.push(plain)
    await plain.waitLine(/^ready$/)
    const e = await SlotBus.listen(name, { shared: true }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(SharingMismatchError)
    expect((e as SharingMismatchError).shared).toBe(false)
  })
})
