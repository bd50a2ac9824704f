// Crashes with real processes and real SIGKILL: the survivor learns at once, keeps serving, and leaks nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SlotBus, SlotWorker, WorkerGoneError, type SlotResponse, type WorkerClosed } from "../../../src/index.ts"
import { bunChild, busName, type Child, eventually, linuxBackend, observed, outcome } from "../../support/helpers.ts"
import { boundBusNames, fdCensus, settledCensus, shmNames, slotbusLeftovers } from "../../support/fds.ts"

// Requests and waits are given this long to time out; the guard says how long "at once" may take at most.
const LONG_TIMEOUT_MS = 20_000
const GUARD_MS = 2_000

const decoder = new TextDecoder()
const reversed = (s: string) => s.split("").reverse().join("")
const summary = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b)
  return `min ${s[0]!.toFixed(1)} ms, median ${s[s.length >> 1]!.toFixed(1)} ms, max ${s[s.length - 1]!.toFixed(1)} ms`
}

async function startWorker(name: string, mode: "echo" | "hang" | "slow"): Promise<Child> {
  const w = bunChild("core/crash-worker.ts", [name, mode])
  await w.waitLine(/^ready /)
  return w
}

async function startHub(name: string, ...flags: string[]): Promise<Child> {
  const h = bunChild("core/crash-hub.ts", [name, ...flags])
  await h.waitLine(/^listening /)
  return h
}

/** The hub's "served" line, or a failure saying why the (reconnecting) worker stopped trying. */
function servedOrGaveUp(hub: Child, worker: SlotWorker): Promise<RegExpMatchArray> {
  const gaveUp = worker.closed.then((c) => {
    throw new Error(
      `the reconnecting worker gave up instead of rejoining: closed ${JSON.stringify(c.reason)}, ${c.error}`,
    )
  })
  // Whichever loses the race settles later (the worker is closed at the end of every test): keep it quiet.
  return Promise.race([observed(hub.waitLine(/^served (\d+) (\d+)$/, 5_000)), observed(gaveUp)])
}

let leftoversBefore: string[] = []
let shmBefore: string[] = []
beforeAll(() => {
  leftoversBefore = slotbusLeftovers()
  shmBefore = shmNames()
})

describe("a worker killed with SIGKILL", () => {
  test("rejects each of its 32 in-flight requests with WorkerGoneError at once instead of at their timeout", async () => {
    const name = busName("crash-inflight")
    const bus = await SlotBus.listen(name, { slots: 32, timeoutMs: LONG_TIMEOUT_MS })
    const procs: Child[] = []
    try {
      const victim = await startWorker(name, "hang")
      procs.push(victim)
      await bus.waitForWorkers(1)
      const calls: Promise<unknown>[] = []
      for (let i = 0; i < 32; i++)
        calls.push(
          observed<unknown>(
            i % 2 ? bus.call(`req-${i}`) : bus.request({ method: "POST", path: `/r/${i}`, body: `req-${i}` }),
          ),
        )
      await victim.waitLine(/^active 32$/) // every request is claimed by a handler that never answers
      expect(bus.stats().inFlight).toBe(32)

      const killedAt = performance.now()
      victim.signal("SIGKILL")
      const outcomes = await Promise.all(calls.map((c) => outcome(c, GUARD_MS, killedAt)))
      console.log(`worker SIGKILL → WorkerGoneError for 32 in-flight requests: ${summary(outcomes.map((o) => o.ms))}`)

      expect(outcomes.map((o) => o.state)).toEqual(Array(32).fill("rejected"))
      for (const o of outcomes) expect(o.state === "rejected" && o.error).toBeInstanceOf(WorkerGoneError)
      const stats = bus.stats()
      expect(stats.workers).toEqual([])
      expect(stats.inFlight).toBe(0)
      expect(stats.errors).toBe(32)
      expect(stats.timeouts).toBe(0)
    } finally {
      await Promise.all(procs.map((p) => p.kill()))
      await bus.close({ drain: false })
    }
  }, 15_000)

  test("leaves the other worker under the same name serving, and a restarted worker rejoins and serves", async () => {
    const name = busName("crash-rejoin")
    const bus = await SlotBus.listen(name, { slots: 8, timeoutMs: LONG_TIMEOUT_MS })
    const procs: Child[] = []
    try {
      const victim = await startWorker(name, "hang")
      procs.push(victim)
      await bus.waitForWorkers(1)
      const doomed = Array.from({ length: 8 }, (_, i) => observed(bus.call(`doomed-${i}`)))
      await victim.waitLine(/^active 8$/)
      const survivor = await startWorker(name, "echo")
      procs.push(survivor)
      await bus.waitForWorkers(2)

      victim.signal("SIGKILL")
      const lost = await Promise.all(doomed.map((c) => outcome(c, GUARD_MS)))
      for (const o of lost) expect(o.state === "rejected" && o.error).toBeInstanceOf(WorkerGoneError)
      expect(bus.workers.map((w) => w.pid)).toEqual([survivor.pid])

      const bodies = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.call(`after-${i}`)))
      expect(bodies.map((b) => decoder.decode(b))).toEqual(Array.from({ length: 50 }, (_, i) => reversed(`after-${i}`)))

      const restarted = await startWorker(name, "echo")
      procs.push(restarted)
      await bus.waitForWorkers(2)
      survivor.signal("SIGKILL")
      expect(await eventually(() => bus.workers.length === 1)).toBe(true)
      expect(bus.workers.map((w) => w.pid)).toEqual([restarted.pid])
      const replies = (await Promise.all(
        Array.from({ length: 20 }, (_, i) => bus.request({ method: "PUT", path: "/again", body: `again-${i}` })),
      )) as SlotResponse[]
      for (const [i, r] of replies.entries()) {
        expect(r.status).toBe(200)
        expect(r.headers.get("x-pid")).toBe(String(restarted.pid))
        expect(r.text()).toBe(`again-${i}`)
      }
    } finally {
      await Promise.all(procs.map((p) => p.kill()))
      await bus.close({ drain: false })
    }
  }, 15_000)
})

describe("a hub killed with SIGKILL", () => {
  test("settles a worker's closed with reason hub-gone at once, even with requests in its handlers", async () => {
    const name = busName("crash-hub")
    const hub = await startHub(name, "--flood")
    let worker: SlotWorker | undefined
    try {
      let handled = 0
      worker = await SlotWorker.connect(
        name,
        async (req) => {
          handled++
          const out = req.body.slice().reverse()
          if (handled % 3 === 0) await Bun.sleep(2) // some answers land after the hub is gone
          return out
        },
        { waitForHubMs: 5_000 },
      )
      await hub.waitLine(/^served 16 /)
      await eventually(() => handled > 200, 5_000) // the flood is running

      const killedAt = performance.now()
      hub.signal("SIGKILL")
      const closed = await outcome(worker.closed, GUARD_MS, killedAt)
      console.log(
        `hub SIGKILL → worker closed "hub-gone" after ${closed.ms.toFixed(1)} ms (handled ${handled} requests)`,
      )
      expect(closed.state).toBe("resolved")
      expect(closed.state === "resolved" && closed.value).toEqual({
        reason: "hub-gone",
        error: undefined,
      } as WorkerClosed)
      expect(worker.connected).toBe(false)
      await Bun.sleep(20) // handlers still sleeping finish into a closed channel without throwing
      expect(worker.stats().active).toBe(0)
    } finally {
      await worker?.close()
      await hub.kill()
    }
  }, 15_000)

  test("makes a spawned worker process print hub-gone and exit 0", async () => {
    const name = busName("crash-hub-proc")
    const hub = await startHub(name, "--flood")
    const worker = await startWorker(name, "echo")
    try {
      await hub.waitLine(/^served 16 /)
      const killedAt = performance.now()
      hub.signal("SIGKILL")
      const line = await outcome(worker.waitLine(/^closed (.*)$/, LONG_TIMEOUT_MS), GUARD_MS, killedAt)
      console.log(`hub SIGKILL → worker process printed "closed" after ${line.ms.toFixed(1)} ms`)
      expect(line.state === "resolved" && line.value[1]).toBe("hub-gone")
      expect(await outcome(worker.proc.exited, GUARD_MS)).toMatchObject({ state: "resolved", value: 0 })
    } finally {
      await worker.kill()
      await hub.kill()
    }
  }, 15_000)

  test("does not crash a worker whose handlers still read request bodies and write replies after the hub died", async () => {
    // SlotRequest.body and req.reply() views are documented as valid until the handler's promise settles.
    const name = busName("crash-hub-views")
    const hub = await startHub(name, "--flood")
    const worker = await startWorker(name, "slow")
    try {
      await hub.waitLine(/^served 16 /)
      await Bun.sleep(60) // the flood keeps 8 handlers sleeping with views into the region
      hub.signal("SIGKILL")
      const line = await outcome(worker.waitLine(/^closed (.*)$/, LONG_TIMEOUT_MS), GUARD_MS)
      expect(line.state === "resolved" && line.value[1]).toBe("hub-gone")
      const exit = await outcome(worker.proc.exited, GUARD_MS)
      expect({ exit: exit.state === "resolved" && exit.value, signal: worker.proc.signalCode }).toEqual({
        exit: 0,
        signal: null,
      })
    } finally {
      await worker.kill()
      await hub.kill()
    }
  }, 15_000)

  test("with reconnect, the worker survives and rejoins a new hub started under the same name", async () => {
    const name = busName("crash-reconnect")
    const procs: Child[] = []
    const connects: number[] = []
    const disconnects: string[] = []
    let worker: SlotWorker | undefined
    try {
      const first = await startHub(name)
      procs.push(first)
      worker = await SlotWorker.connect(name, (req) => req.body.slice().reverse(), {
        waitForHubMs: 5_000,
        reconnect: true,
        onConnect: (pid) => connects.push(pid),
        onDisconnect: (reason) => disconnects.push(reason),
      })
      expect(await first.waitLine(/^served (\d+) (\d+)$/)).toMatchObject({ 1: "16", 2: String(process.pid) })

      first.signal("SIGKILL")
      expect(await eventually(() => disconnects.length === 1, GUARD_MS)).toBe(true)
      expect(disconnects).toEqual(["hub-gone"])
      expect(worker.connected).toBe(false)

      const second = await startHub(name)
      procs.push(second)
      expect(await servedOrGaveUp(second, worker)).toMatchObject({ 1: "16", 2: String(process.pid) })
      expect(connects).toEqual([first.pid, second.pid])
      expect(worker.connected).toBe(true)
      expect(await outcome(worker.closed, 0)).toMatchObject({ state: "hung" }) // still alive
    } finally {
      await worker?.close()
      await Promise.all(procs.map((p) => p.kill()))
    }
    expect(await outcome(worker!.closed, GUARD_MS)).toMatchObject({ state: "resolved", value: { reason: "closed" } })
  }, 15_000)
})

describe.skipIf(!linuxBackend)("after kills nothing of slotbus is left behind", () => {
  test("a hub holds no memfd, doorbell or socket of a worker after 20 connect/SIGKILL cycles", async () => {
    const name = busName("crash-fds-hub")
    const bus = await SlotBus.listen(name, { slots: 4, timeoutMs: LONG_TIMEOUT_MS })
    let victim: Child | undefined
    try {
      const base = await settledCensus()
      expect(base.memfd).toBe(0)
      for (let cycle = 0; cycle < 20; cycle++) {
        victim = await startWorker(name, "hang")
        await bus.waitForWorkers(1)
        const calls = Array.from({ length: 4 }, (_, i) => observed(bus.call(`c${cycle}-${i}`)))
        await victim.waitLine(/^active 4$/)
        const live = fdCensus()
        expect(live.memfd).toBe(1)
        expect(live.socket - base.socket).toBeGreaterThanOrEqual(3) // the connection and two doorbell ends (docs/PROTOCOL.md §1.2)

        victim.signal("SIGKILL")
        for (const o of await Promise.all(calls.map((c) => outcome(c, GUARD_MS))))
          expect(o.state === "rejected" && o.error).toBeInstanceOf(WorkerGoneError)
        await victim.kill()
        await eventually(() => fdCensus().total <= base.total) // the channel closes once Bun lets go of its fds
        const after = fdCensus()
        const grew = (Object.keys(base) as (keyof typeof base)[]).filter((k) => after[k] > base[k])
        expect({ cycle, grew }).toEqual({ cycle, grew: [] })
        Object.assign(base, after) // a socket an earlier test file left in this process may close meanwhile
      }
    } finally {
      await victim?.kill()
      await bus.close({ drain: false })
    }
    expect(await eventually(() => !boundBusNames().includes(`slotbus.${name}`))).toBe(true)
  }, 30_000)

  test("a worker process holds no memfd, doorbell or socket of a hub after 20 connect/hub-SIGKILL cycles", async () => {
    const name = busName("crash-fds-fresh")
    let worker: SlotWorker | undefined
    let hub: Child | undefined
    try {
      const base = await settledCensus()
      expect(base.memfd).toBe(0)
      for (let cycle = 0; cycle < 20; cycle++) {
        hub = await startHub(name)
        worker = await SlotWorker.connect(name, (req) => req.body.slice().reverse(), { waitForHubMs: 5_000 })
        await hub.waitLine(/^served 16 /)
        expect(fdCensus().memfd).toBe(1)

        hub.signal("SIGKILL")
        expect(await outcome(worker.closed, GUARD_MS)).toMatchObject({
          state: "resolved",
          value: { reason: "hub-gone" },
        })
        await hub.kill()
        await eventually(() => fdCensus().memfd === 0 && fdCensus().socket <= base.socket)
        const after = fdCensus()
        expect({ cycle, memfd: after.memfd, socketsOver: Math.max(0, after.socket - base.socket) }).toEqual({
          cycle,
          memfd: 0,
          socketsOver: 0,
        })
        base.socket = after.socket // one an earlier test file left in this process may close meanwhile (3 of 5, in CI)
      }
    } finally {
      await worker?.close()
      await hub?.kill()
    }
  }, 30_000)

  test("a reconnecting worker holds no memfd, doorbell or socket of a hub after 20 hub SIGKILLs", async () => {
    const name = busName("crash-fds-worker")
    const disconnects: string[] = []
    let worker: SlotWorker | undefined
    let hub: Child | undefined
    try {
      const base = await settledCensus()
      expect(base.memfd).toBe(0)
      for (let cycle = 0; cycle < 20; cycle++) {
        hub = await startHub(name)
        worker ??= await SlotWorker.connect(name, (req) => req.body.slice().reverse(), {
          waitForHubMs: 5_000,
          reconnect: true,
          onDisconnect: (reason) => disconnects.push(reason),
        })
        await servedOrGaveUp(hub, worker)
        const live = fdCensus()
        expect(live.memfd).toBe(1)
        expect(live.socket - base.socket).toBeGreaterThanOrEqual(3) // the connection and two doorbell ends (docs/PROTOCOL.md §1.2)

        hub.signal("SIGKILL")
        expect(await eventually(() => disconnects.length === cycle + 1, GUARD_MS)).toBe(true)
        await hub.kill()
        expect(await eventually(() => !boundBusNames().includes(`slotbus.${name}`))).toBe(true)
        await eventually(() => fdCensus().memfd === 0 && fdCensus().socket <= base.socket)
        const after = fdCensus()
        expect({ cycle, memfd: after.memfd, socketsOver: Math.max(0, after.socket - base.socket) }).toEqual({
          cycle,
          memfd: 0,
          socketsOver: 0,
        })
        base.socket = after.socket // one an earlier test file left in this process may close meanwhile (3 of 5, in CI)
      }
      expect(disconnects).toEqual(Array(20).fill("hub-gone"))
    } finally {
      await worker?.close()
      await hub?.kill()
    }
  }, 30_000)

  test("no file named like slotbus appears in /dev/shm, /tmp or /run, and no bus name stays bound", () => {
    // test files run side by side (npm test's --parallel): of the names that appeared, those of this file's buses
    // (crash-…) or this process
    const ours = (names: string[], before: string[]) =>
      names.filter((n) => !before.includes(n) && (n.includes("crash-") || n.includes(String(process.pid))))
    expect(ours(slotbusLeftovers(), leftoversBefore)).toEqual([])
    expect(ours(shmNames(), shmBefore)).toEqual([]) // memfds only: nothing of any name appears there (but the recorders' directory)
    const mine = boundBusNames().filter((n) => n.startsWith("slotbus.crash-") && n.includes(`-${process.pid}-`))
    expect(mine).toEqual([])
  })
})

afterAll(() => {
  const open = fdCensus()
  if (open.memfd > 0) console.warn(`crash.test: ${open.memfd} slotbus memfds still open at the end`)
})
