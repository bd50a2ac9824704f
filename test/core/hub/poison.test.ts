// Only a request that killed its workers is named poison (issue 64, "PoisonRequestError on bystanders"): an
// idempotent request that was merely in flight on a worker a poison request killed is retried where nothing else
// can kill it, and answered; bus.stats().poisonRequests counts the poison requests, each once.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"
import { bunChild, busName, FIXTURES, until } from "../../support/helpers.ts"

const bun = process.execPath
const BUGGY = join(FIXTURES, "core/buggy-worker.ts")
const cleanup: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

describe("idempotent crash-bug requests among ordinary ones", () => {
  test("no ordinary request fails as PoisonRequestError, and poisonRequests counts at most the poison requests sent", async () => {
    const bus = await SlotBus.listen(busName("poison"), { timeoutMs: 30_000 })
    cleanup.push(() => bus.close({ drain: false }))
    const sup = superviseWorkers(bus, {
      command: [bun, BUGGY, bus.name],
      instances: 3,
      stdout: "ignore",
      restart: {
        backoffInitialMs: 10,
        maxUnstableRestarts: 1000, // a fresh worker a poison request kills first is a failed start: not the point here
      },
      log: () => {},
    })
    cleanup.push(() => sup.stop({ killGraceMs: 500 }))
    await bus.waitForWorkers(3, { timeoutMs: 30_000 })
    const ordinary = new Map<string, number>() // outcome → how many
    const poison = new Map<string, number>()
    const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1)
    const send = (path: string) =>
      bus.fetch(new Request(`http://shop${path}`), { idempotent: true }).then(
        async (r) => `${r.status}`,
        (e: Error) => e.name,
      )
    let poisonSent = 0
    let done = false
    const attack = (async () => {
      for (let i = 0; i < 12; i++) {
        await bus.waitForWorkers(2, { timeoutMs: 30_000 })
        poisonSent++
        count(poison, await send("/poison"))
      }
      done = true
    })()
    // 12 callers of a 50 ms route, on the workers the poison requests kill
    const callers = Array.from({ length: 12 }, async () => {
      while (!done) count(ordinary, await send("/slow?ms=50"))
    })
    await Promise.all([attack, ...callers])
    const outcomes = { ordinary: Object.fromEntries(ordinary), poison: Object.fromEntries(poison) }
    // before: 42 and 50 ordinary requests failed as PoisonRequestError (their retry met a worker another poison
    // request killed), and poisonRequests counted 54 and 62 for 12 poison requests
    expect(outcomes.ordinary.PoisonRequestError ?? 0).toBe(0)
    expect(bus.stats().poisonRequests).toBeLessThanOrEqual(poisonSent)
    expect(bus.stats().poisonRequests).toBe(outcomes.poison.PoisonRequestError ?? 0)
    // every ordinary request answered (those a poison request's worker held, by another worker); every poison one named
    expect(outcomes.ordinary).toEqual({ "200": expect.any(Number) })
    expect(outcomes.poison).toEqual({ PoisonRequestError: 12 })
  }, 120_000)
})

describe("a retried request while every worker left is held", () => {
  // A held worker (a reload's successor within its minReadyMs, a crash restart on probation: pools.hold) takes a
  // request only while no other serves. Before, a retry never went to one: with the serving worker killed under it,
  // the retry waited out its timeoutMs while new requests were answered (the soak's TimeoutErrors, 8 of 13,832).
  test("goes to the held worker once no other serves, as a new request does", async () => {
    const bus = await SlotBus.listen(busName("held"), { timeoutMs: 8_000 })
    cleanup.push(() => bus.close({ drain: false }))
    const [a, b] = [bunChild("core/buggy-worker.ts", [bus.name]), bunChild("core/buggy-worker.ts", [bus.name])]
    cleanup.push(
      () => a.kill(),
      () => b.kill(),
    )
    await Promise.all([a.waitLine(/^ready/), b.waitLine(/^ready/)])
    await bus.waitForWorkers(2, { timeoutMs: 10_000 })
    bus.pools.hold(b.pid)
    const retried = bus.fetch(new Request("http://shop/slow?ms=400"), { idempotent: true })
    await until(() => bus.workers.some((w) => w.pid === a.pid && w.inFlight === 1), "a holds the request", 5_000)
    process.kill(a.pid, "SIGKILL")
    await until(() => !bus.workers.some((w) => w.pid === a.pid), "a left", 5_000)
    const fresh = await bus.fetch(new Request("http://shop/"), { idempotent: true })
    expect(fresh.headers.get("x-pid")).toBe(String(b.pid))
    const res = await retried.catch((e: Error) => e)
    expect(
      res instanceof Response ? res.headers.get("x-pid") : `${(res as Error).name}: ${(res as Error).message}`,
    ).toBe(String(b.pid))
  }, 30_000)
})
