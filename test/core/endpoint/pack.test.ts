// Which worker gets a request (dispatcher.ts's pick, slot-endpoint.ts's packCap): a worker that answers in
// microseconds takes a burst whole instead of another being woken for half of it; one whose answers take longer
// than the wait gets one request at a time, as the least busy one always did.
import { describe, expect, test } from "bun:test"
import { packCap } from "../../../src/core/endpoint/slot-endpoint.ts"
import { withHub } from "../../support/helpers.ts"

type Bus = Parameters<Parameters<typeof withHub>[2]>[0]

/** `n` bursts of `size` requests (echoed by test/support/echo-worker.ts), all of a burst in flight at once: how many each worker pid took. */
async function bursts(bus: Bus, size: number, n: number, headers: Record<string, string> = {}) {
  const byPid = new Map<string, number>()
  for (let b = 0; b < n; b++) {
    const answers = await Promise.all(Array.from({ length: size }, () => bus.request({ path: "/echo", headers })))
    for (const a of answers) {
      expect(a.status).toBe(200)
      const pid = a.headers.get("x-pid")!
      byPid.set(pid, (byPid.get(pid) ?? 0) + 1)
    }
  }
  return [...byPid.values()].sort((a, b) => b - a)
}

describe("packCap", () => {
  test("is 1 until the worker answered, then what it answers within the budget at its rate, within 1..slots", () => {
    expect(packCap(100_000, 0, 0, 16)).toBe(1)
    expect(packCap(100_000, 10, 100_000, 16)).toBe(10) // 10 µs an answer: 10 in 100 µs
    expect(packCap(100_000, 10, 10_000, 16)).toBe(16) // 1 µs an answer: as many as it has slots
    expect(packCap(100_000, 1, 3_000_000, 16)).toBe(1) // 3 ms an answer: one at a time
    expect(packCap(100_000, 4, 0, 16)).toBe(16) // answers with no time between them
  })
})

describe("two workers on one bus", () => {
  test("bursts of 8 quick requests go mostly to one worker, not half to each", async () => {
    await withHub({ slots: 16 }, [{}, {}], async (bus) => {
      await bursts(bus, 8, 50) // both workers answered: each has a rate
      // A worker's rate is measured in wall time: on a loaded machine a descheduled worker looks slow for a while and
      // bursts spread, as they should. So up to five rounds, one of which must pack; spread by fewest in flight,
      // every burst is 4 and 4 (800 each), in every round.
      const rounds: number[][] = []
      for (let r = 0; r < 5 && !((rounds.at(-1)?.[0] ?? 0) > 1600 * 0.7); r++) rounds.push(await bursts(bus, 8, 200))
      for (const counts of rounds) expect(counts.reduce((a, b) => a + b, 0)).toBe(1600)
      expect(Math.max(...rounds.map((c) => c[0]!))).toBeGreaterThan(1600 * 0.7)
    })
  }, 120_000)

  test("a worker whose handler blocks its event loop gets no more requests meanwhile, however quick it was", async () => {
    await withHub({ slots: 16 }, [{}, {}], async (bus) => {
      await bursts(bus, 8, 50) // both answered quickly: each has a rate that packs
      const blocker = bus.request({ path: "/block?ms=3000" })
      await Bun.sleep(100) // a few of the dispatcher's ticks
      const holding = bus.stats().workers.filter((w) => w.inFlight > 0)
      expect(holding.length).toBe(1)
      const blocked = String(holding[0]!.pid)
      const pids: string[] = []
      for (let i = 0; i < 40; i++) pids.push((await bus.request({ path: "/echo" })).headers.get("x-pid")!)
      expect((await blocker).text()).toBe("unblocked")
      // before: the blocked one, first in join order and under its packCap, took each of them after its 3 s
      expect(pids.filter((p) => p === blocked)).toEqual([])
    })
  }, 60_000)

  test("bursts of requests answered 3 ms later each are split between the workers", async () => {
    await withHub({ slots: 16 }, [{}, {}], async (bus) => {
      const slow = { "x-delay-ms": "3" }
      await bursts(bus, 4, 5, slow)
      const counts = await bursts(bus, 4, 20, slow)
      expect(counts).toEqual([40, 40])
    })
  }, 60_000)
})
