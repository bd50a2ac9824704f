// A standby front covers a stopped leader (docs/PROTOCOL.md §15.5): real fronts (test/support/core/shared-front.ts),
// the leader SIGSTOPped as docker pause or a debugger would, every worker of its pool killed meanwhile. Linux only
// (the leader's state is read from /proc).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { SlotBus } from "../../../src/index.ts"
import { procState } from "../../../src/kit/index.ts"
import { libraryPath } from "../../../src/native/lib-path.ts"
import type { StatusSection } from "../../../src/status/index.ts"
import { alive, busName, until, type Child } from "../../support/helpers.ts"
import {
  frontChild,
  nodeWorkerCommand,
  poolOf,
  removeFrontBuilds,
  startedBy,
  workerPids,
  type FrontChild,
} from "../../support/core/front-child.ts"
import { peerSkip, removeNodeBuilds, type PeerRuntime } from "../../support/runtime/peers.ts"

const children: Child[] = []
const pids: number[] = []
afterEach(async () => {
  for (const c of children) if (alive(c.pid)) process.kill(c.pid, "SIGCONT")
  await Promise.all(children.splice(0).map((c) => c.kill()))
  for (const pid of pids.splice(0)) if (pid > 0 && alive(pid)) process.kill(pid, "SIGKILL") // 0: a restart under way
})
afterAll(() => {
  removeNodeBuilds()
  removeFrontBuilds()
})

async function report(f: FrontChild) {
  const [answered, failed, wrong, by] = await f.ask("report", /^report (\d+) (\d+) (\d+) (.*)$/)
  const pids = by!.split(",").filter(Boolean).map(Number)
  return { answered: Number(answered), failed: Number(failed), wrong: Number(wrong), pids }
}

/** n fronts of `runtime` of a new name with a pool of 2: the leader `a` runs it, the others stand by. */
async function fronts(n = 2, runtime: PeerRuntime = "bun") {
  const name = busName("cover")
  const a = await frontChild(name, ["--pool=2"], children, runtime)
  const standbys: FrontChild[] = []
  for (let i = 1; i < n; i++) standbys.push(await frontChild(name, ["--pool=2"], children, runtime))
  await until(async () => (await poolOf(a)).pids.every((p) => p > 0), "the leader's pool started", 20_000, 100)
  const before = (await poolOf(a)).pids
  pids.push(...before)
  for (const f of standbys) {
    expect((await poolOf(f)).state).toBe("created")
    await workerPids(f, 2)
  }
  return { a, b: standbys[0]!, standbys, before }
}

/** Stops the leader, kills every worker of its pool, and waits for the standby that covers: its pool runs. */
async function stopLeader(a: FrontChild, standbys: FrontChild[], before: number[]) {
  a.child.signal("SIGSTOP")
  for (const pid of before) process.kill(pid, "SIGKILL")
  let coverer: FrontChild | undefined
  // before: the standbys' pools stayed `created` and every request through them waited until the leader ran again
  await until(
    async () => {
      for (const f of standbys) {
        const p = await poolOf(f)
        if (p.state === "running" && p.pids.every((x) => x > 0)) coverer = f
      }
      return coverer !== undefined
    },
    "a standby covers: its pool runs",
    20_000,
    100,
  )
  const cover = (await poolOf(coverer!)).pids
  pids.push(...cover)
  for (const f of standbys) if (f !== coverer) expect((await poolOf(f)).state).toBe("created") // one cover only
  expect(await frontFact(coverer!)).toContain(`covers for the stopped leader (pid ${a.child.pid})`)
  expect(coverer!.child.stderr).toContain(`leader front ${a.child.pid} is stopped; this front runs the pool`)
  return { coverer: coverer!, cover }
}

describe.skipIf(process.platform !== "linux")("a stopped leader front", () => {
  // Node: Node fronts and Node workers (a worker's wait for the hello of a stopped front is the same code in both)
  test.each([
    [2, "bun"],
    [3, "bun"],
    [2, "node"],
  ] as const)(
    "of %i %s fronts, a standby runs the pool while the leader is stopped, and drains it once the leader runs again",
    async (n, runtime) => {
      if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
      const { a, b, standbys, before } = await fronts(n, runtime)
      try {
        b.child.write("load\n") // a steady load through a healthy front, all along
        const { coverer, cover } = await stopLeader(a, standbys, before)
        await workerPids(b, 2)
        await report(b) // what the kill -9 cost (requests in flight on the killed workers) is left out
        await Bun.sleep(1000)
        const covered = await report(b)
        expect(covered.failed).toBe(0)
        expect(covered.answered).toBeGreaterThan(0)
        expect(coverer.child.stderr).not.toMatch(/could not start/)
        expect(startedBy(coverer.child.pid).sort()).toEqual([...cover].sort())

        a.child.signal("SIGCONT")
        await until(async () => (await poolOf(coverer)).state === "stopped", "the cover pool stopped", 20_000, 100)
        await until(() => cover.every((p) => !alive(p)), "the cover pool's workers are gone", 20_000, 100)
        const after = await poolOf(a)
        pids.push(...after.pids)
        expect(after.state).toBe("running")
        // exactly one pool: the leader's two workers, serving every front; none of a standby's left
        await until(() => startedBy(a.child.pid).length === 2, "the leader's pool runs its 2 workers", 20_000, 100)
        for (const f of standbys) expect(startedBy(f.child.pid)).toEqual([])
        for (const f of standbys) expect((await workerPids(f, 2)).sort()).toEqual(startedBy(a.child.pid).sort())
        // its status shows its pool standing by again (before: no pool row at all once the cover ended)
        expect(JSON.stringify(await statusOf(coverer))).toContain("standby (another front runs the name's pool)")
        await Bun.sleep(500)
        const back = await report(b)
        expect(back.failed).toBe(0)
        expect(back.wrong).toBe(0)
        expect(back.answered).toBeGreaterThan(0)
      } finally {
        if (alive(a.child.pid)) process.kill(a.child.pid, "SIGCONT")
      }
    },
    120_000,
  )

  test("a leader killed while covered for: the covering front leads, its pool running on, started once", async () => {
    const { a, b, before } = await fronts(2)
    try {
      const { cover } = await stopLeader(a, [b], before)
      await a.child.kill("SIGKILL")
      await Bun.sleep(1500)
      const p = await poolOf(b)
      expect(p.state).toBe("running")
      expect(p.pids).toEqual(cover)
      expect(b.child.stderr).not.toMatch(/could not start/)
      expect(await frontFact(b)).toContain("the leader: runs the name's pool")
    } finally {
      if (alive(a.child.pid)) process.kill(a.child.pid, "SIGCONT")
    }
  }, 120_000)

  test("a standby's reload while the leader is stopped and nobody covers yet fails at once naming the leader", async () => {
    const { a, b } = await fronts()
    try {
      a.child.signal("SIGSTOP")
      await until(() => procState(a.child.pid) === "T", "the leader is stopped", 5_000, 10)
      // before: the reload waited on the stopped leader's control socket until it ran again
      const [result] = await b.ask("redeploy", /^(reloaded|reload failed .*)$/)
      expect(result).toStartWith("reload failed SupervisorError")
      expect(result).toContain(`the leader front of`)
      expect(result).toContain(`(pid ${a.child.pid}) is stopped`)
    } finally {
      process.kill(a.child.pid, "SIGCONT")
    }
  }, 120_000)

  test("while a standby covers, its own reload reloads the cover pool; another standby's fails naming it", async () => {
    const { a, standbys, before } = await fronts(3)
    try {
      const { coverer, cover } = await stopLeader(a, standbys, before)
      const other = standbys.find((f) => f !== coverer)!
      const [refused] = await other.ask("redeploy", /^(reloaded|reload failed .*)$/)
      expect(refused).toStartWith("reload failed SupervisorError")
      expect(refused).toContain(`front pid ${coverer.child.pid} runs the pool for it meanwhile`)
      const [result] = await coverer.ask("redeploy", /^(reloaded|reload failed .*)$/)
      expect(result).toBe("reloaded")
      const after = (await poolOf(coverer)).pids
      pids.push(...after)
      expect(after.filter((p) => cover.includes(p))).toEqual([])
    } finally {
      if (alive(a.child.pid)) process.kill(a.child.pid, "SIGCONT")
    }
  }, 120_000)

  // Bun fronts; the pool's workers in Bun and in Node. A worker's pid is its code's version: each reads the code at start
  test.each(["bun", "node"] as const)(
    "a reload on the covering front is the deploy: its workers serve, and the resumed leader reloads too (%s workers)",
    async (runtime) => {
      if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
      const name = busName("cover")
      const args = ["--pool=2", ...(runtime === "node" ? [`--command=${JSON.stringify(nodeWorkerCommand(name))}`] : [])]
      process.env.SLOTBUS_LIB ??= await libraryPath() // the Bun front's Node workers load this libslotbus
      const a = await frontChild(name, args, children)
      const b = await frontChild(name, args, children)
      await until(async () => (await poolOf(a)).pids.every((p) => p > 0), "the leader's pool started", 20_000, 100)
      const before = (await poolOf(a)).pids
      pids.push(...before)
      await workerPids(b, 2)
      try {
        a.child.signal("SIGSTOP") // its workers live on, and serve b
        await until(async () => (await poolOf(b)).state === "running", "b covers: its pool runs", 20_000, 100)
        expect((await b.ask("redeploy", /^(reloaded|reload failed .*)$/))[0]).toBe("reloaded")
        const deployed = (await poolOf(b)).pids
        pids.push(...deployed)
        b.child.write("load\n")
        await Bun.sleep(300)
        await report(b)
        await Bun.sleep(1000)
        // before: the stopped leader's workers, of the code before the reload, took their share (2 of 4 workers)
        const during = await report(b)
        expect(during.failed).toBe(0)
        expect(during.answered).toBeGreaterThan(0)
        expect(during.pids.filter((p) => !deployed.includes(p))).toEqual([])

        a.child.signal("SIGCONT")
        await until(async () => (await poolOf(b)).state === "stopped", "the cover pool stopped", 60_000, 100)
        const after = (await poolOf(a)).pids
        pids.push(...after)
        // before: the leader's pool of the code before served on, the cover's (the only reloaded workers) drained
        expect(after.filter((p) => before.includes(p))).toEqual([])
        expect(b.child.stderr).toContain(`leader front ${a.child.pid} reloads its pool before this one drains`)
        await until(() => [...before, ...deployed].every((p) => !alive(p)), "the old workers are gone", 20_000, 100)
        a.child.write("load\n")
        await Bun.sleep(300)
        for (const f of [a, b]) await report(f)
        await Bun.sleep(1000)
        for (const f of [a, b]) {
          const r = await report(f)
          expect(r.failed).toBe(0)
          expect(r.answered).toBeGreaterThan(0)
          expect(r.pids.filter((p) => !after.includes(p))).toEqual([])
        }
      } finally {
        if (alive(a.child.pid)) process.kill(a.child.pid, "SIGCONT")
      }
    },
    120_000,
  )

  test("a leader stopped for 1.5 s just after its reload started a successor: the reload resolves", async () => {
    const { a, before } = await fronts()
    try {
      const reloaded = a.ask("redeploy", /^(reloaded|reload failed .*)$/)
      await until(() => startedBy(a.child.pid).some((p) => !before.includes(p)), "a successor started", 20_000, 5)
      a.child.signal("SIGSTOP")
      await Bun.sleep(1500)
      a.child.signal("SIGCONT")
      // before: the successor, finding its front sent no hello, took it for gone, lingered 2 s and exited (an
      // orphan), and the reload failed with ReplaceError ("exited (code 0) … within minReadyMs")
      expect((await reloaded)[0]).toBe("reloaded")
      const after = (await poolOf(a)).pids
      pids.push(...after)
      expect(after.filter((p) => before.includes(p))).toEqual([])
      expect(after.every((p) => alive(p))).toBe(true)
    } finally {
      process.kill(a.child.pid, "SIGCONT")
    }
  }, 120_000)

  test("a leader stopped for less than 2 s is not covered for", async () => {
    const { a, b, before } = await fronts()
    try {
      a.child.signal("SIGSTOP")
      await Bun.sleep(1000)
      a.child.signal("SIGCONT")
      await Bun.sleep(2500)
      expect((await poolOf(b)).state).toBe("created")
      expect(startedBy(b.child.pid)).toEqual([])
      expect((await poolOf(a)).pids).toEqual(before)
    } finally {
      process.kill(a.child.pid, "SIGCONT")
    }
  }, 120_000)
})

/** The front's status view of its bus. */
async function statusOf(f: FrontChild): Promise<StatusSection> {
  return JSON.parse((await f.ask("status", /^status (.*)$/))[0]!) as StatusSection
}

/** What the front's status view says of it among the name's fronts. */
async function frontFact(f: FrontChild): Promise<string> {
  return String((await statusOf(f)).facts.find(([k]) => k === "front")?.[1])
}

test("a bus name may not take the cover's socket file", async () => {
  await expect(SlotBus.listen("fronts-cover.x")).rejects.toThrow(TypeError)
})
