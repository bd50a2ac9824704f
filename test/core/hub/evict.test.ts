// A slot is stuck by its request's own deadline, and an eviction is not a crash (issue 64, "A client's hang-up
// evicts workers"): clients that hang up on slow requests whose handlers do not watch req.signal leave their slots
// legitimately busy until the handlers return; a worker whose handlers truly hang past their deadline is evicted and
// replaced at once, counted as an eviction, never as a crash.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { SlotBus, superviseWorkers, type SuperviseWorkersOptions } from "../../../src/index.ts"
import { busName, FIXTURES, until } from "../../support/helpers.ts"

const bun = process.execPath
const BUGGY = join(FIXTURES, "core/buggy-worker.ts")
const cleanup: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

async function listen(opts: Parameters<typeof SlotBus.listen>[1] = {}) {
  const bus = await SlotBus.listen(busName("evict"), opts)
  cleanup.push(() => bus.close({ drain: false }))
  return bus
}

function pool(bus: SlotBus, options: Omit<SuperviseWorkersOptions, "command">) {
  const sup = superviseWorkers(bus, { command: [bun, BUGGY, bus.name], stdout: "ignore", ...options })
  cleanup.push(() => sup.stop({ killGraceMs: 500 }))
  return sup
}

describe("a client's hang-up", () => {
  test("40 slow requests abandoned 150 ms after sending, 4 rounds 2.5 s apart, evict no worker and restart none", async () => {
    const bus = await listen() // 32 slots a worker, stuckAfterMs 1000, maxStuckSlots 16
    const lines: string[] = []
    const sup = pool(bus, { instances: 2, log: (l) => lines.push(l) })
    await bus.waitForWorkers(2, { timeoutMs: 30_000 })
    const pids = sup.instances.map((i) => i.pid)
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => bus.fetch(req, { timeoutMs: 10_000 }).catch((e: Error) => new Response(e.name, { status: 502 })),
    })
    cleanup.push(() => server.stop(true))
    const hangUps: Promise<unknown>[] = []
    for (let round = 0; round < 4; round++) {
      if (round > 0) await Bun.sleep(2500)
      for (let i = 0; i < 40; i++)
        hangUps.push(
          fetch(`http://127.0.0.1:${server.port}/slow?ms=4000`, { signal: AbortSignal.timeout(150) }).catch((e) => e),
        )
    }
    await Promise.all(hangUps)
    // every handler ran its 4 s and handed its slot back (or a worker was evicted meanwhile)
    await until(() => bus.workers.every((w) => w.inFlight === 0), "every slot handed back", 30_000)
    const ok = await fetch(`http://127.0.0.1:${server.port}/echo`, { method: "POST", body: "after" })
    expect(await ok.text()).toBe("after")
    // before: 8 evictions and 8 crash restarts (each round's cancelled slots counted as stuck 1 s after the hang-up)
    expect({ evicted: bus.stats().evictedWorkers, crashes: sup.restarts, evictions: sup.replacements.evict }).toEqual({
      evicted: 0,
      crashes: 0,
      evictions: 0,
    })
    expect(sup.instances.map((i) => i.pid)).toEqual(pids)
    expect(lines).toEqual([])
  }, 60_000)
})

describe("a worker whose handlers hang past their deadline", () => {
  test("is evicted, ended and replaced at once: counted as an eviction with its own log line, never as a crash", async () => {
    const bus = await listen({ slots: 4, stuckAfterMs: 200, maxStuckSlots: 2 })
    const lines: string[] = []
    const sup = pool(bus, { instances: 1, log: (l) => lines.push(l) })
    await bus.waitForWorkers(1, { timeoutMs: 30_000 })
    const hung = sup.instances[0]!.pid
    const outcomes = await Promise.all(
      [1, 2].map(() =>
        bus.fetch(new Request("http://shop/slow?ms=600000"), { timeoutMs: 300 }).catch((e: Error) => e.name),
      ),
    )
    expect(outcomes).toEqual(["TimeoutError", "TimeoutError"])
    await until(() => bus.stats().evictedWorkers === 1, "the hung worker evicted", 20_000)
    await until(() => ![0, hung].includes(sup.instances[0]!.pid), "its replacement started", 20_000)
    await bus.waitForWorkers(1, { timeoutMs: 30_000 })
    expect(bus.workers.map((w) => w.pid)).toEqual([sup.instances[0]!.pid])
    // before: { crashes: 1, evictions: undefined } (the evicted worker's exit was a crash, which a pool may give up on)
    expect({ crashes: sup.restarts, evictions: sup.replacements.evict }).toEqual({ crashes: 0, evictions: 1 })
    expect(sup.lastExit).toMatchObject({ pid: hung, cause: "evict", expected: true })
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^the worker pool of "${bus.name}" \\(.*, 1 instance\\): worker pid ${hung} was evicted \\(2 of its slots stuck past their deadline: its handlers hang\\); it is ended and replaced$`,
        ),
      ),
    ])
    const res = await bus.fetch(new Request("http://shop/echo", { method: "POST", body: "after" }))
    expect(await res.text()).toBe("after")
  }, 60_000)

  test("still awaited when it is found hung: it goes once that last caller gave up too, and is replaced", async () => {
    const bus = await listen({ slots: 4, stuckAfterMs: 200, maxStuckSlots: 2 })
    const sup = pool(bus, { instances: 1, log: () => {} })
    await bus.waitForWorkers(1, { timeoutMs: 30_000 })
    const hung = sup.instances[0]!.pid
    const slow = (timeoutMs: number) =>
      bus.fetch(new Request("http://shop/slow?ms=600000"), { timeoutMs }).catch((e: Error) => e.name)
    // two stuck 200 ms after their 300 ms deadline, while a third caller still waits (until its 1500 ms)
    const outcomes = await Promise.all([slow(300), slow(300), slow(1500)])
    expect(outcomes).toEqual(["TimeoutError", "TimeoutError", "TimeoutError"])
    expect(bus.stats().evictedWorkers).toBe(1)
    // before: it stayed listed as "evicting" until its handlers returned (10 minutes here), and was never replaced
    await until(() => !bus.workers.some((w) => w.pid === hung), "the hung worker gone from the bus", 20_000)
    await until(() => ![0, hung].includes(sup.instances[0]!.pid), "its replacement started", 20_000)
    await bus.waitForWorkers(1, { timeoutMs: 30_000 })
    expect({ crashes: sup.restarts, evictions: sup.replacements.evict }).toEqual({ crashes: 0, evictions: 1 })
  }, 60_000)
})
