// The default crash policy of a pool of HTTP workers (issue 59, item 1): every crash is restarted (with backoff),
// the pool gives up only on workers that die during start, and says so in the counters' words; a request that
// killed the worker it was retried on is given up as poison; under wrk, a worker bug that crashes on 1 request in
// 300 costs the requests the dead workers held, not the service.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import {
  PoisonRequestError,
  SlotBus,
  Supervisor,
  superviseWorkers,
  WorkerGoneError,
  type SuperviseWorkersOptions,
} from "../../../src/index.ts"
import type { StatusSection } from "../../../src/status/index.ts"
import { busName, ECHO_WORKER, FIXTURES, run, until } from "../../support/helpers.ts"
import { sayWhySkipped, toolSkipReason } from "../../support/tools.ts"

const bun = process.execPath
const BUGGY = join(FIXTURES, "core/buggy-worker.ts")
const cleanup: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

async function listen() {
  const bus = await SlotBus.listen(busName("crash-policy"))
  cleanup.push(() => bus.close({ drain: false }))
  return bus
}

function pool(bus: SlotBus, options: SuperviseWorkersOptions) {
  const sup = superviseWorkers(bus, { stdout: "ignore", ...options })
  cleanup.push(() => sup.stop({ killGraceMs: 500 }))
  return sup
}

describe("every crash is restarted", () => {
  test("a pool of 8 whose workers are each killed once by SIGKILL restarts all 8 and does not give up", async () => {
    const bus = await listen()
    const sup = pool(bus, { command: [bun, ECHO_WORKER, bus.name], instances: 8 })
    await bus.waitForWorkers(8, { timeoutMs: 30_000 })
    const killed = sup.instances.map((i) => i.pid)
    for (const pid of killed) process.kill(pid, "SIGKILL") // an OOM kill of the pool's cgroup
    const back = () => sup.instances.every((i) => i.pid > 0 && !killed.includes(i.pid))
    await until(() => sup.state === "failed" || back(), "every instance back, or the pool to give up", 30_000)
    expect(sup.state).toBe("running") // before: "failed", with 0 restarts
    expect(sup.failureReason).toBeNull()
    expect(sup.restarts).toBe(8)
    expect(sup.instances.map((i) => i.restarts)).toEqual([1, 1, 1, 1, 1, 1, 1, 1])
    await bus.waitForWorkers(8, { timeoutMs: 30_000 })
    expect((await bus.request({ method: "POST", path: "/echo", body: "after" })).text()).toBe("after")
  }, 60_000)

  test("a worker that crashes after it has been up a while is restarted every time, and the pool never gives up", async () => {
    // up 1.1 s, past the default restart.minUptimeMs (1 s): no failed start, so the pool does not give up; within
    // restart.stableAfterMs (10 s): a crash loop, said, but the last worker running restarts after the first step
    const sup = new Supervisor({ command: [bun, "-e", "setTimeout(() => process.exit(1), 1100)"] })
    cleanup.push(() => sup.stop({ killGraceMs: 0 }))
    const delays: number[] = []
    sup.on("restart", (_i, r) => delays.push(r.delayMs))
    sup.start()
    await until(() => sup.state === "failed" || sup.restarts >= 7, "seven restarts, or the pool to give up", 40_000)
    expect(sup.state).toBe("running") // before: it gave up at the sixth crash within 60 s
    expect(sup.failureReason).toBeNull()
    expect(new Set(delays)).toEqual(new Set([100])) // the first step, each time: it is the only worker
    expect(sup.crashLoop).toBe(true)
  }, 60_000)
})

describe("the pool gives up only on workers that die during start", () => {
  test("a worker that dies as it starts is restarted restart.maxUnstableRestarts times, then the pool gives up in the counters' words", async () => {
    const bus = await listen()
    const lines: string[] = []
    const sup = pool(bus, {
      command: [bun, "-e", "process.exit(3)"],
      restart: { backoffInitialMs: 1 },
      log: (l) => lines.push(l),
    })
    await until(() => sup.state === "failed", "the pool to give up", 30_000)
    expect(sup.restarts).toBe(5) // worker_restarts_total{cause="crash"}
    expect(lines.filter((l) => l.includes(" gave up: ")).length).toBe(1) // after a line per crash restart
    expect(lines.filter((l) => l.includes("crashed: exited with code 3")).length).toBe(5)
    // before: "gave up: more than 5 restarts within 60000 ms", where it counted crashes
    expect(lines.at(-1)).toMatch(
      /gave up: instance 0 died during start 6 times in a row \(each within restart.minUptimeMs, 1000 ms, of its start, before it joined\) and was restarted 5 times: more than restart.maxUnstableRestarts \(5\); 5 crash restarts in all; the last exit: pid \d+ exited with code 3/,
    )
    expect(lines.at(-1)).toContain(`gave up: ${sup.failureReason}`) // the status view's words
  }, 60_000)
})

describe("a poison request", () => {
  test("an idempotent request that kills the worker it is retried on fails with PoisonRequestError, counted, after 2 workers", async () => {
    const bus = await listen()
    const sup = pool(bus, { command: [bun, BUGGY, bus.name], instances: 3, restart: { backoffInitialMs: 60_000 } })
    await bus.waitForWorkers(3, { timeoutMs: 30_000 })
    const err = (await bus.fetch(new Request("http://shop/poison"), { idempotent: true }).catch((e) => e)) as Error
    expect(err.name).toBe("PoisonRequestError") // before: WorkerGoneError, after it killed 2 workers
    expect(err).toBeInstanceOf(PoisonRequestError)
    expect(err).toBeInstanceOf(WorkerGoneError) // what a caller catching a dead worker's error already catches
    expect(err.message).toMatch(
      /^a request to "[^"]+" was retried once \(idempotent\) after its worker died holding it, and worker pid \d+ died holding it too: it is taken for a poison request and not sent again/,
    )
    await until(() => sup.runningCount === 1, "two workers gone")
    expect(bus.stats().poisonRequests).toBe(1)
    const status = (bus as unknown as Record<symbol, () => StatusSection>)[Symbol.for("slotbus.status")]!()
    expect(status.facts).toContainEqual([
      "poison requests",
      "1 (their retry killed a second worker: PoisonRequestError)",
    ])
    expect(bus.workerCount).toBe(1) // the third worker serves on: the request was not sent to it
    expect((await bus.request({ method: "POST", path: "/echo", body: "still" })).text()).toBe("still")
  }, 60_000)
})

const wrkSkip = toolSkipReason("wrk")
sayWhySkipped("the crash policy under wrk", wrkSkip)

describe("under wrk, with a worker bug that crashes on 1 request in 300", () => {
  test.skipIf(wrkSkip !== null).each([
    ["a fixed pool of 4", 4],
    ["instances { min: 2, max: 4 }", { min: 2, max: 4 }],
  ] as const)(
    "%s behind Bun.serve and bus.fetch answers at least 95%% of 15 s of requests, and is never empty past the backoff cap",
    async (_what, instances) => {
      const bus = await listen()
      const sup = pool(bus, { command: [bun, BUGGY, bus.name, "--crash-one-in=300"], instances })
      await bus.waitForWorkers(typeof instances === "number" ? instances : instances.min, { timeoutMs: 30_000 })
      const server = Bun.serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch: (req) => bus.fetch(req).catch((e: Error) => new Response(`${e.name}\n`, { status: 502 })),
      })
      cleanup.push(() => server.stop(true))
      // the pool's status over time: how long it had no worker, and whether it gave up
      let emptySince = 0
      let longestEmptyMs = 0
      const states = new Set<string>()
      const watch = setInterval(() => {
        states.add(sup.state)
        const now = performance.now()
        if (bus.workerCount > 0) emptySince = 0
        else if (emptySince === 0) emptySince = now
        else longestEmptyMs = Math.max(longestEmptyMs, now - emptySince)
      }, 20)
      cleanup.push(() => clearInterval(watch))
      const wrk = await run(
        ["wrk", "-t2", "-c8", "-d15s", "--timeout", "5s", `http://127.0.0.1:${server.port}/render`],
        {
          timeoutMs: 60_000,
        },
      )
      clearInterval(watch)
      const count = (re: RegExp) => Number(re.exec(wrk.stdout)?.[1] ?? 0)
      const total = count(/(\d+) requests in/)
      const non2xx = count(/Non-2xx or 3xx responses: (\d+)/)
      const timeouts = count(/timeout (\d+)/)
      const answered = total - non2xx
      console.log(
        `${_what}: ${answered} of ${total + timeouts} answered, ${sup.restarts} crashes restarted, longest with no worker ${longestEmptyMs.toFixed(0)} ms, states ${[...states].join(" ")}\n${wrk.stdout}`,
      )
      expect(wrk.code).toBe(0)
      expect(sup.restarts).toBeGreaterThan(0) // the bug did crash workers
      expect(answered / (total + timeouts)).toBeGreaterThanOrEqual(0.95) // before: a few percent
      expect([...states]).toEqual(["running"])
      expect(longestEmptyMs).toBeLessThanOrEqual(5_000) // restart.backoffMaxMs's default
    },
    90_000,
  )
})
