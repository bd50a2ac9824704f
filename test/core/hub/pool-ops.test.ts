// A pool of real worker processes taken through what production asks of it, under load: reloads that drop nothing,
// a reload whose new code does not start, recycling a leaking worker, growing with a spike and shrinking when idle,
// and a pool that gave up and was stopped taking its failure with it. The load is 16 callers making non-idempotent
// requests as fast as they are answered; every request must be answered, once, with its own body.
import { afterEach, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus, superviseWorkers, type Supervisor } from "../../../src/index.ts"
import { supervisorSettings } from "../../../src/kit/supervision/options.ts"
import { alive, busName, ECHO_WORKER, FIXTURES } from "../../support/helpers.ts"

const bun = process.execPath
const cleanup: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

async function until(cond: () => boolean, what: string, ms = 20_000) {
  const end = performance.now() + ms
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(10)
  }
}

async function listen(opts: Parameters<typeof SlotBus.listen>[1] = {}) {
  const bus = await SlotBus.listen(busName("pool"), opts)
  cleanup.push(() => bus.close({ drain: false }))
  return bus
}

function pool(bus: SlotBus, options: Omit<Parameters<typeof superviseWorkers>[1], "command"> & { command?: string[] }) {
  const sup = superviseWorkers(bus, { command: [bun, ECHO_WORKER, bus.name], stdout: "ignore", ...options })
  cleanup.push(() => sup.stop({ killGraceMs: 500 }))
  return sup
}

/** 16 callers, each making non-idempotent requests until stopped; counts what was answered right and what failed. */
function load(bus: SlotBus, path = "/echo", callers = 16) {
  let on = true
  const tally = { sent: 0, answered: 0, wrong: 0, failed: [] as string[] }
  cleanup.push(() => void (on = false)) // a failed test's callers end with its bus, not spin on its closed bus
  const loops = Array.from({ length: callers }, async (_, c) => {
    for (let i = 0; on; i++) {
      const body = `${c}:${i}`
      tally.sent++
      try {
        const r = await bus.request({ method: "POST", path, body }, { timeoutMs: 30_000 })
        if (r.text() === body) tally.answered++
        else tally.wrong++
      } catch (e) {
        tally.failed.push(`${(e as Error).name}: ${(e as Error).message}`)
      }
    }
  })
  return {
    tally,
    async stop() {
      on = false
      await Promise.all(loops)
      return tally
    },
  }
}

const pids = (sup: Supervisor) => sup.instances.map((i) => i.pid)

describe("a pool under load", () => {
  test("two reloads within 10 s replace every worker surge-first: 0 failed requests, each answered once, no crash counted", async () => {
    const bus = await listen()
    const sup = pool(bus, { instances: 4 })
    await bus.waitForWorkers(4)
    const l = load(bus)
    await until(() => l.tally.answered > 500, "the load running")
    const first = pids(sup)
    await sup.reload()
    const second = pids(sup)
    await sup.reload()
    const third = pids(sup)
    const t = await l.stop()
    console.log(`reloads under load: ${t.answered} answered, ${t.failed.length} failed, ${t.wrong} wrong`)
    expect(t.failed).toEqual([])
    expect(t.wrong).toBe(0)
    expect(t.answered).toBe(t.sent)
    for (const [a, b] of [
      [first, second],
      [second, third],
    ]) {
      expect(b.every((pid) => pid > 0 && !a.includes(pid))).toBe(true)
      for (const pid of a) await until(() => !alive(pid), `old worker ${pid} gone`)
    }
    expect(sup.restarts).toBe(0)
    expect(sup.replacements.reload).toBe(8)
    expect(sup.state).toBe("running")
    expect(bus.workerCount).toBe(4)
  }, 60_000)

  test("a reload whose new code does not start stops, rejects saying why, and the old workers keep serving", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pool-deploy-"))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const entry = join(dir, "worker.ts")
    writeFileSync(entry, `await import(${JSON.stringify(ECHO_WORKER)})\n`)
    const bus = await listen()
    const sup = pool(bus, { instances: 2, command: [bun, entry, bus.name], readyTimeoutMs: 5000 })
    await bus.waitForWorkers(2)
    const before = pids(sup)
    writeFileSync(entry, 'throw new Error("the new code is broken")\n') // the deploy
    const l = load(bus)
    const err = (await sup.reload().catch((e) => e)) as Error
    const t = await l.stop()
    expect(err.message).toMatch(
      /reload: instance 0's successor \(pid \d+\) exited \(code 1\) before it was ready; the old process \(pid \d+\) keeps serving/,
    )
    expect(pids(sup)).toEqual(before)
    expect(t.failed).toEqual([])
    expect(t.answered).toBe(t.sent)
    expect(sup.restarts).toBe(0)
    expect(sup.state).toBe("running")
  }, 60_000)

  test("a reload whose new code exits a second after it joined rejects, and the old workers serve on: 0 failed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pool-deploy-"))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const entry = join(dir, "worker.ts")
    const code = (flags: string[]) =>
      `process.argv.push(...${JSON.stringify(flags)})\nawait import(${JSON.stringify(join(FIXTURES, "core/buggy-worker.ts"))})\n`
    writeFileSync(entry, code([]))
    const bus = await listen()
    const sup = pool(bus, { instances: 2, command: [bun, entry, bus.name] })
    await bus.waitForWorkers(2)
    const before = pids(sup)
    writeFileSync(entry, code(["--exit-after-ms=1000"])) // the deploy: it joins, then breaks a second later
    const l = load(bus)
    // A dwell of its own, not the default 1.5 s: a second's margin is eaten on a loaded machine (the successor's
    // timer, or its exit, late by over 0.5 s), and the break should still come well within the dwell.
    const err = await sup.reload({ minReadyMs: 10_000 }).then(
      () => new Error("the reload resolved"),
      (e: Error) => e,
    )
    const answered = l.tally.answered
    await until(() => l.tally.answered > answered + 500, "the old workers serving on")
    const t = await l.stop()
    // before: the reload resolved, the successors crash-looped and the pool gave up
    expect(err.message).toMatch(
      /^reload: instance 0's successor \(pid \d+\) exited \(code 1\) \d+ ms after it was ready, within minReadyMs \(10000 ms\); the old process \(pid \d+\) keeps serving$/,
    )
    expect(err.name).toBe("ReplaceError")
    expect(pids(sup)).toEqual(before)
    expect(t.failed).toEqual([])
    expect(t.answered).toBe(t.sent)
    expect(sup.restarts).toBe(0)
    expect(sup.state).toBe("running")
    expect(supervisorSettings({ command: [bun] }).restart.minReadyMs).toBe(1500) // the default dwell docs/api.md promises
  }, 60_000)

  test("recycle: a worker is replaced after its requests, surge-first: 0 failed, 0 crashes", async () => {
    const bus = await listen()
    const sup = pool(bus, { instances: 2, recycle: { maxRequests: 300 } })
    await bus.waitForWorkers(2)
    const l = load(bus)
    await until(() => sup.replacements.recycle >= 4, "four recycles", 40_000)
    const t = await l.stop()
    console.log(`recycling under load: ${t.answered} answered, ${sup.replacements.recycle} recycled`)
    expect(t.failed).toEqual([])
    expect(t.answered).toBe(t.sent)
    expect(sup.restarts).toBe(0)
  }, 60_000)

  test("recycle.maxRequests: a worker past its limit gets no request while another serves, and the instances take turns", async () => {
    const bus = await listen()
    const max = 100
    const sup = pool(bus, { instances: 2, recycle: { maxRequests: max } })
    await bus.waitForWorkers(2)
    const recycled = [0, 0] // by instance
    sup.on("replaced", (i) => recycled[i.index]!++)
    const beyond: string[] = [] // requests past `max` a worker took while another served
    let requests = 0
    // One caller, so each request is picked from the workers as this loop last saw them.
    while (sup.replacements.recycle < 6 && requests < 100_000) {
      const serving = bus.workers.filter((w) => w.state === "serving").map((w) => w.pid)
      const r = await bus.request({ method: "GET", path: "/stats" }, { timeoutMs: 30_000 })
      const { served, pid } = r.json() as { served: number; pid: number }
      requests++
      if (served > max && serving.some((p) => p !== pid))
        beyond.push(`pid ${pid} took its request ${served} while pid ${serving.filter((p) => p !== pid)} served`)
    }
    expect(beyond.slice(0, 3)).toEqual([])
    expect(sup.replacements.recycle).toBeGreaterThanOrEqual(6)
    expect(Math.min(...recycled)).toBeGreaterThanOrEqual(2)
    expect(sup.restarts).toBe(0)
  }, 90_000)

  test("recycle: a worker leaking 1 MB per 100 requests stays under maxRssBytes, with 0 failed requests", async () => {
    const bus = await listen()
    const limit = 120 * 1024 * 1024
    const sup = pool(bus, { instances: 2, recycle: { maxRssBytes: limit } })
    await bus.waitForWorkers(2)
    const l = load(bus, "/leak", 8) // at most 8 requests per 2 ms: a leak of up to 40 MB a second
    let peak = 0
    const rss = (pid: number) => {
      try {
        return Number(/VmRSS:\s+(\d+)/.exec(require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) * 1024
      } catch {
        return 0
      }
    }
    await until(
      () => {
        for (const pid of pids(sup)) peak = Math.max(peak, rss(pid))
        return sup.replacements.recycle >= 4
      },
      "four recycles",
      60_000,
    )
    const t = await l.stop()
    console.log(
      `leaking workers: peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB, ${sup.replacements.recycle} recycled, ${t.answered} answered`,
    )
    expect(t.failed).toEqual([])
    expect(t.answered).toBe(t.sent)
    expect(sup.restarts).toBe(0)
    // bounded: the limit, plus what leaks between two looks (200 ms) and while a successor starts (without
    // recycling it grows by up to 40 MB a second, for as long as the load runs)
    expect(peak).toBeLessThan(2 * limit)
  }, 90_000)

  test("instances { min: 2, max: 8 }: a spike grows the pool to 8, idle brings it back to 2, with 0 failed requests", async () => {
    const bus = await listen({ slots: 2 })
    const sup = pool(bus, { instances: { min: 2, max: 8 }, idleTimeoutMs: 500 })
    await bus.waitForWorkers(2)
    const l = load(bus, "/slow", 32) // 32 callers, 2 slots per worker: requests wait until 16 workers would serve them
    await until(() => sup.instances.length === 8 && bus.workerCount === 8, "the pool to grow to 8")
    const t = await l.stop()
    await until(() => sup.instances.length === 2 && bus.workerCount === 2, "the pool to shrink back to 2")
    expect(t.failed).toEqual([])
    expect(t.answered).toBe(t.sent)
    expect(sup.restarts).toBe(0)
    expect(sup.replacements.scale).toBe(6)
  }, 60_000)
})

describe("a pool stopped under load", () => {
  test("stop() sends its workers nothing more, lets what they hold finish, and ends before drainTimeoutMs; the callers wait for the next pool", async () => {
    const bus = await listen()
    const sup = pool(bus, { instances: 2, drainTimeoutMs: 30_000 })
    await bus.waitForWorkers(2)
    const l = load(bus, "/slow") // each answered after 20 ms: the workers always hold some
    await until(() => l.tally.answered > 100, "the load running")
    const left = new Map<number, number>() // by pid: the requests it had taken when it left
    const off = bus.onWorker((e) => void (e.type === "leave" && left.set(e.worker.pid, e.worker.requests)))
    cleanup.push(off)
    const atStop = new Map(bus.workers.map((w) => [w.pid, w.requests]))
    const started = performance.now()
    await sup.stop()
    const stopMs = performance.now() - started
    for (const pid of atStop.keys()) await until(() => left.has(pid), `worker ${pid} to leave`)
    console.log(
      `stop() under load: ${stopMs.toFixed(0)} ms; taken at stop() ${[...atStop.values()]}, when left ${[...left.values()]}`,
    )
    // before: the bus kept sending them requests, so they never held none and stop() waited all of drainTimeoutMs
    for (const [pid, n] of atStop) expect(left.get(pid)).toBe(n)
    expect(stopMs).toBeLessThan(15_000) // ended by the drain, not by drainTimeoutMs (30 000)
    pool(bus, { instances: 1 }) // what came meanwhile waited for a worker: the next pool answers it
    const t = await l.stop()
    expect(t.failed).toEqual([])
    expect(t.wrong).toBe(0)
    expect(t.answered).toBe(t.sent)
  }, 90_000)
})

describe("a pool stopped while it reloads", () => {
  test("stop() once a reload's successor joined: what it and the old workers hold is answered; the callers wait for the next pool", async () => {
    const bus = await listen()
    const sup = pool(bus, { instances: 3 })
    await bus.waitForWorkers(3)
    const l = load(bus, "/slow")
    await until(() => l.tally.answered > 100, "the load running")
    const before = new Set(pids(sup))
    const reload = sup.reload().catch((e: Error) => e)
    // a successor on the bus and held, within its minReadyMs (1.5 s): it serves only while no other worker does
    await until(() => bus.workers.some((w) => !before.has(w.pid)), "a successor joined")
    await Bun.sleep(300)
    await sup.stop()
    // before: stop() SIGKILLed the successor first; the old workers drained, so the bus sent it the requests as the
    // one worker left serving, and they failed with WorkerGoneError (16 of 16)
    expect(String(await reload)).toContain("ReplaceError")
    pool(bus, { instances: 1 })
    const t = await l.stop()
    expect(t.failed).toEqual([])
    expect(t.wrong).toBe(0)
    expect(t.answered).toBe(t.sent)
  }, 90_000)
})

describe("a pool that gives up", () => {
  test("keeps its running workers serving, and once stopped takes its failure with it: a new pool on the bus serves", async () => {
    const bus = await listen()
    const lines: string[] = []
    const failing = pool(bus, {
      command: [bun, "-e", "process.exit(3)"],
      restart: {
        maxRestarts: 1,
        backoffInitialMs: 1,
      },
      log: (l) => lines.push(l),
    })
    await until(() => failing.state === "failed", "the pool to give up")
    expect((await bus.waitForWorkers(1, { timeoutMs: 1000 }).catch((e) => e)).name).toBe("PoolFailedError")
    await failing.stop()
    const good = pool(bus, { instances: 1 })
    await bus.waitForWorkers(1, { timeoutMs: 10_000 }) // before: PoolFailedError of the stopped pool, for good
    expect((await bus.request({ method: "POST", path: "/echo", body: "after" })).text()).toBe("after")
    expect(good.state).toBe("running")
    expect(lines.filter((l) => l.includes(" gave up: ")).length).toBe(1) // after its crash restart's line
  }, 30_000)
})
