// A pool's processes across what happens to it from outside a reload's plan: an instance killed or evicted while its
// successor gets ready, a successor its bus evicts, the bus closing under a running pool, a resize past what the bus
// takes. Each test counts the processes the pool started and checks that every one is tracked, or ended.
import { describe, expect, test } from "bun:test"
import {
  BusClosedError,
  ReplaceError,
  SlotBus,
  Supervisor,
  SupervisorError,
  superviseWorkers,
} from "../../../src/index.ts"
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { alive, busName, ECHO_WORKER, REPO, until } from "../../support/helpers.ts"

const bun = process.execPath
const script = (code: string) => [bun, "-e", code]

describe("an instance ended on purpose while its successor gets ready", () => {
  test.each(["kill", "evict"] as const)(
    "%s: the successor takes its place once ready; no process is left untracked, and stop() ends them all",
    async (how) => {
      const readies: { pid: number; go: () => void }[] = []
      const sup = new Supervisor({
        command: script("setInterval(() => {}, 1e6)"),
        instances: 2,
        restart: { backoffInitialMs: 60_000 }, // a crash would wait a minute
        ready: (pid) => new Promise<void>((go) => readies.push({ pid, go })),
      })
      const started = new Set<number>()
      const exited: number[] = []
      sup.on("start", (i) => started.add(i.pid))
      sup.on("exit", (_i, e) => exited.push(e.pid))
      sup.start()
      const spawned = new Set(started)
      try {
        const old = sup.instances[0]!.pid
        const reload = sup.reload({ minReadyMs: 0 })
        await until(() => readies.length === 1, "instance 0's successor getting ready")
        const successor = readies[0]!.pid
        spawned.add(successor)
        if (how === "kill") sup.kill(0)
        else expect(sup.evict(old)).toBe(true)
        await until(() => exited.includes(old), "the old process's exit") // (before the fix, respawned there)
        for (const pid of started) spawned.add(pid)
        readies[0]!.go()
        await until(() => readies.length === 2, "instance 1's successor getting ready")
        spawned.add(readies[1]!.pid)
        readies[1]!.go()
        await reload
        for (const pid of started) spawned.add(pid)
        const tracked = new Set(sup.instances.map((i) => i.pid))
        // before: the killed instance respawned at once, and the ready successor was dropped, still running
        expect([...spawned].filter((pid) => alive(pid) && !tracked.has(pid))).toEqual([])
        expect(sup.instances[0]!.pid).toBe(successor)
        expect(sup.instances[1]!.pid).toBe(readies[1]!.pid)
        expect(spawned.size).toBe(4) // two first starts, two successors: nothing else
        expect(sup.replacements[how]).toBe(1)
        expect(sup.restarts).toBe(0)
      } finally {
        await sup.stop({ killGraceMs: 0 })
        const left = [...spawned].filter(alive)
        for (const pid of left) process.kill(pid, "SIGKILL") // what stop() did not end (before the fix: one)
        expect(left).toEqual([])
      }
    },
  )

  test("kill, and then the successor not ready: the instance starts afresh at once, not counted as a crash", async () => {
    let failReady: ((e: Error) => void) | null = null
    const sup = new Supervisor({
      command: script("setInterval(() => {}, 1e6)"),
      restart: { backoffInitialMs: 60_000 },
      ready: () => new Promise((_, reject) => (failReady = reject)),
    })
    const exited: number[] = []
    sup.on("exit", (_i, e) => exited.push(e.pid))
    sup.start()
    try {
      const old = sup.instances[0]!.pid
      const reload = sup.reload({ minReadyMs: 0 }).catch((e: unknown) => e)
      await until(() => failReady !== null, "the successor getting ready")
      sup.kill(0)
      await until(() => exited.includes(old), "the old process's exit")
      failReady!(new Error("failed its ready check"))
      const err = (await reload) as ReplaceError
      expect(err).toBeInstanceOf(ReplaceError)
      await until(() => sup.runningCount === 1, "the instance back")
      expect([0, old, err.successor]).not.toContain(sup.instances[0]!.pid)
      expect(sup.restarts).toBe(0)
      expect(sup.replacements.kill).toBe(1)
      expect(sup.state).toBe("running")
    } finally {
      await sup.stop({ killGraceMs: 0 })
    }
  })
})

describe("a reload's successor the bus evicts before the pool adopts it", () => {
  test("is ended at once and said, the reload rejects, the old process serves on; stop() leaves nothing", async () => {
    const bus = await SlotBus.listen(busName("evict-successor"), { slots: 4, stuckAfterMs: 200, maxStuckSlots: 2 })
    const marker = join(tmpdir(), `${bus.name}.started`)
    const at = JSON.stringify(marker)
    // the first process answers; the next one (the reload's successor) hangs in its handler, its thread blocked
    // (it reads nothing more, so the bus's disconnect does not end it)
    const worker = `import { existsSync, writeFileSync } from "node:fs"
      import { SlotWorker } from ${JSON.stringify(join(REPO, "src/index.ts"))}
      const hang = existsSync(${at})
      writeFileSync(${at}, "")
      await SlotWorker.connect(${JSON.stringify(bus.name)}, (req) => {
        if (hang) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600_000)
        return { status: 200, body: req.body.slice() }
      })`
    const readies: (() => void)[] = []
    const lines: string[] = []
    const sup = superviseWorkers(bus, {
      command: script(worker),
      stdout: "ignore",
      ready: () => new Promise<void>((go) => readies.push(go)), // a ready check that takes its time
      log: (l) => lines.push(l),
    })
    const started = new Set<number>()
    sup.on("start", (i) => started.add(i.pid))
    try {
      await bus.waitForWorkers(1)
      const old = sup.instances[0]!.pid
      const reload = sup.reload({ minReadyMs: 0 }).catch((e: unknown) => e)
      await until(() => bus.workerCount === 2, "the successor joined")
      const successor = bus.workers.find((w) => w.pid !== old)!.pid
      started.add(successor)
      await until(
        async () => {
          const send = () => bus.fetch(new Request("http://x/", { method: "POST", body: "x" }), { timeoutMs: 300 })
          await Promise.all([1, 2, 3, 4].map(() => send().catch(() => null)))
          return bus.stats().evictedWorkers === 1
        },
        "the successor evicted",
        20_000,
      )
      await until(() => !alive(successor), "the successor ended") // before: it ran on, off the bus
      for (const go of readies) go() // before: now adopted, though it serves no bus
      const err = (await reload) as ReplaceError
      expect(err).toBeInstanceOf(ReplaceError)
      expect(err.message).toBe(
        `reload: instance 0's successor (pid ${successor}) was evicted by its bus (its handlers hang) before it was adopted; the old process (pid ${old}) keeps serving`,
      )
      expect(sup.instances.map((i) => i.pid)).toEqual([old])
      expect(bus.workers.map((w) => w.pid)).toEqual([old])
      expect(lines[0]).toMatch(
        new RegExp(
          `: worker pid ${successor} was evicted \\(\\d+ of its slots stuck .*\\); a successor getting ready: it is ended, and its reload \\(or recycle\\) fails$`,
        ),
      )
      expect(lines[1]).toContain(`a reload was rejected (${err.message})`)
      expect(sup.restarts).toBe(0)
    } finally {
      await sup.stop({ killGraceMs: 0 })
      await bus.close()
      rmSync(marker, { force: true })
      const left = [...started].filter(alive)
      for (const pid of left) process.kill(pid, "SIGKILL") // what stop() did not end
      expect(left).toEqual([])
    }
  }, 30_000)
})

describe("resize()", () => {
  test("past the bus's maxWorkers is refused as instances is, and starts nothing", async () => {
    const name = busName("resize-cap")
    await using bus = await SlotBus.listen(name, { maxWorkers: 2 })
    const lines: string[] = []
    const sup = superviseWorkers(bus, {
      command: [bun, ECHO_WORKER, name],
      stdout: "ignore",
      log: (l) => lines.push(l),
    })
    const started: number[] = []
    sup.on("start", (i) => started.push(i.pid))
    try {
      await bus.waitForWorkers(1)
      // before: it resolved, and the third worker was refused as it joined, restarted, refused, until the pool gave up
      const err = await sup.resize(3).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RangeError)
      expect((err as Error).message).toBe(
        "supervisor.resize: n must be an integer in 0..2 (the bus's maxWorkers), got 3",
      )
      expect(sup.instances.length).toBe(1)
      expect(started).toEqual([])
      await sup.resize(2)
      await bus.waitForWorkers(2)
      expect(started.length).toBe(1)
      expect(sup.state).toBe("running")
      expect(sup.restarts).toBe(0)
      expect(lines).toEqual([])
    } finally {
      await sup.stop()
    }
  })
})

describe("bus.close() with its pool running", () => {
  test("the pool stops with its bus: its workers' exits are no crash, nothing restarts, nothing is said", async () => {
    const name = busName("close-pool")
    const bus = await SlotBus.listen(name)
    const lines: string[] = []
    const sup = superviseWorkers(bus, {
      command: [bun, ECHO_WORKER, name],
      instances: 2,
      stdout: "ignore",
      log: (l) => lines.push(l),
    })
    const started: number[] = []
    const exits: string[] = []
    sup.on("start", (i) => started.push(i.pid))
    sup.on("exit", (_i, e) => exits.push(e.cause))
    try {
      await bus.waitForWorkers(2)
      const pids = sup.instances.map((i) => i.pid)
      started.length = 0
      await bus.close()
      // before: close() resolved with both workers alive, the pool "stopping" (they were gone a moment later)
      expect(pids.filter(alive)).toEqual([])
      expect(sup.state).toBe("stopped")
      // before: each exit (code 0, its hub gone) was a crash, restarted into a crash loop until the pool gave up
      expect(exits).toEqual(["stop", "stop"])
      expect(started).toEqual([])
      expect(sup.restarts).toBe(0)
      expect(lines).toEqual([])
    } finally {
      await sup.stop()
      await bus.close()
    }
  })

  test("a reload in flight rejects saying the bus closed, and its successor ends with the pool", async () => {
    const name = busName("close-reload")
    const bus = await SlotBus.listen(name)
    const lines: string[] = []
    const sup = superviseWorkers(bus, {
      command: [bun, ECHO_WORKER, name],
      stdout: "ignore",
      ready: () => new Promise(() => {}), // the successor never gets ready: the reload waits
      log: (l) => lines.push(l),
    })
    const started: number[] = []
    sup.on("start", (i) => started.push(i.pid))
    try {
      await bus.waitForWorkers(1)
      const old = sup.instances[0]!.pid
      const reload = sup.reload().catch((e: unknown) => e)
      await until(() => bus.workerCount === 2, "the successor joined")
      const successor = bus.workers.find((w) => w.pid !== old)!.pid
      await bus.close()
      expect([old, successor].filter(alive)).toEqual([]) // before: both alive as close() resolved
      expect(sup.state).toBe("stopped")
      const err = (await reload) as ReplaceError
      expect(err).toBeInstanceOf(ReplaceError)
      // before: "reload: instance 0's successor (pid S) exited (killed by SIGKILL) …; the old process (pid P) keeps serving"
      expect(err.message).toBe(
        `reload: bus "${name}" closed, and its pool stopped with it; instance 0's successor (pid ${successor}) and its old process (pid ${old}) end with the pool`,
      )
      expect(started).toEqual([])
      expect(sup.restarts).toBe(0)
      expect(lines).toEqual([]) // no "a reload was rejected": the code was not at fault
    } finally {
      await sup.stop()
      await bus.close()
    }
  })

  test.each([
    ["called twice at once", (bus: SlotBus) => Promise.all([bus.close(), bus.close()])],
    [
      "called while the pool's own stop() is under way",
      (bus: SlotBus, sup: Supervisor) => (void sup.stop(), bus.close()),
    ],
  ])("close() %s resolves once the workers exited", async (_, close) => {
    const name = busName("close-twice")
    const bus = await SlotBus.listen(name)
    const sup = superviseWorkers(bus, {
      command: [bun, ECHO_WORKER, name],
      instances: 2,
      stdout: "ignore",
      log: () => {},
    })
    try {
      await bus.waitForWorkers(2)
      const pids = sup.instances.map((i) => i.pid)
      await close(bus, sup)
      expect(pids.filter(alive)).toEqual([]) // before: both alive
      expect(sup.state).toBe("stopped")
      await bus.close() // once more, after: at once
    } finally {
      await sup.stop()
      await bus.close()
    }
  })

  test("start() again on the stopped pool of a closed bus is a BusClosedError, and starts nothing", async () => {
    const name = busName("close-start")
    const bus = await SlotBus.listen(name)
    const sup = superviseWorkers(bus, { command: [bun, ECHO_WORKER, name], stdout: "ignore", log: () => {} })
    const started: number[] = []
    sup.on("start", (i) => started.push(i.pid))
    try {
      await bus.waitForWorkers(1)
      started.length = 0
      await bus.close()
      await until(() => sup.state === "stopped", "the pool stopped")
      // before: it spawned a worker that could never join the closed bus
      const err = (() => {
        try {
          sup.start()
        } catch (e) {
          return e
        }
      })()
      expect(err).toBeInstanceOf(BusClosedError)
      expect((err as Error).message).toBe(
        `bus "${name}" is closed, and its pool stopped with it: start() cannot give it workers; listen again and make a new pool with superviseWorkers`,
      )
      expect(started).toEqual([])
      expect(sup.state).toBe("stopped")
    } finally {
      await sup.stop()
      for (const pid of started.filter(alive)) process.kill(pid, "SIGKILL") // what the pool started (before: one)
    }
  })
})

test("a reload queued behind one whose successor never gets ready is refused by stop() saying the pool is stopping", async () => {
  let second: Promise<unknown> = Promise.resolve()
  const sup = new Supervisor({
    command: script("setInterval(() => {}, 1e6)"),
    instances: 1,
    ready: () => new Promise(() => {}), // the successor never gets ready: the first reload waits, the second queues
    drain: () => second, // stop() stays "stopping" until the queued reload has its answer
  })
  sup.start()
  try {
    const first = sup.reload({ minReadyMs: 0 }).catch((e: unknown) => e)
    second = sup.reload({ minReadyMs: 0 }).catch((e: unknown) => e)
    await until(() => sup.instances[0]!.pid > 0, "the instance started")
    const stopped = sup.stop()
    expect(await first).toBeInstanceOf(ReplaceError)
    const err = (await second) as SupervisorError
    expect(err).toBeInstanceOf(SupervisorError)
    // before: "the pool is stopping: start() it first", odd advice for a pool on its way down (slotbus hub's SIGTERM)
    expect(err.message).toBe("the pool is stopping: it starts no reload, recycle or resize now")
    await stopped
  } finally {
    await sup.stop()
  }
})

test("a pool's process that never joins its bus is said once readyTimeoutMs has passed, not left silent", async () => {
  await using bus = await SlotBus.listen(busName("unjoined"))
  const logs: string[] = []
  const pool = superviseWorkers(bus, {
    command: script("setInterval(() => {}, 1e6)"), // stuck before SlotWorker.connect
    instances: 1,
    readyTimeoutMs: 300,
    log: (l) => logs.push(l),
  })
  try {
    await until(() => logs.some((l) => l.includes("has not joined")), "the log line") // before: no line, ever
    const pid = pool.instances[0]!.pid
    expect(logs).toEqual([
      expect.stringContaining(`worker pid ${pid} started 300 ms ago and has not joined "${bus.name}"`),
    ])
  } finally {
    await pool.stop()
  }
})
