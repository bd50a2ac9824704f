// How `slotbus bench` turns round trips into msg/s: the median of the rates of runs of equal count, so one stall
// inside a short --quick round spoils one run, not the figure (issue 78).
import { describe, expect, test } from "bun:test"
import { NoCompilerError } from "../../bench/slots/cc.ts"
import { MIN_RUN_TRIPS_PER_LOOP, measureTransport, PARTS, partRates, payload } from "../../bench/slots/measure.ts"
import * as bunFloor from "../../bench/slots/methods/bun-floor.ts"
import * as floor from "../../bench/slots/methods/floor.ts"
import * as threadWorker from "../../bench/slots/methods/worker.ts"
import { median } from "../../bench/lib/samples.ts"
import { SkipMethod } from "../../bench/slots/transport.ts"

/** Round trips ending every 10 µs from `startNs`, none from `stallAt` for `stallNs` (all in ns); `n` of them. */
function endsWithStall(startNs: number, n: number, stallAt: number, stallNs: number): number[] {
  const ends: number[] = []
  for (let i = 1; ends.length < n; i++) {
    const at = i * 10_000
    ends.push(startNs + (at > stallAt ? at + stallNs : at))
  }
  return ends
}

describe("msg/s from runs of equal count", () => {
  test("a measurement with one stall is rated by the median of its runs, not the count over the time", () => {
    // 3,000 round trips at 100,000 a second, and a 30 ms stall after the first 1,200: 60 ms in all
    const start = 7e9
    const ends = endsWithStall(start, 3000, 12e6, 30e6)
    const rates = partRates(ends, start)
    expect(rates.length).toBe(PARTS)
    expect(rates.filter((r) => r === 100_000).length).toBe(PARTS - 1)
    expect(median(rates)).toBe(100_000)
    // what count / elapsed said before: the stall ruled the figure
    expect((ends.length * 1e9) / (ends.at(-1)! - start)).toBe(50_000)
  })

  test("two stalls, each longer than a run, still leave the figure to the runs between them", () => {
    const start = 0
    const once = endsWithStall(start, 3000, 5e6, 40e6)
    const twice = once.map((t) => (t - start > 50e6 ? t + 25e6 : t))
    expect(median(partRates(twice, start))).toBe(100_000)
  })

  test("answers in bursts, too few for runs of several bursts, give one rate over the time they took", () => {
    // 32 in flight: 2 bursts of 32 answers, each within 1 µs, one every 2 ms (16,000 a second), as a 1 MiB echo
    const burst = (i: number) => (Math.floor(i / 32) + 1) * 2e6 + (i % 32) * 30
    const ends = Array.from({ length: 2 * 32 }, (_, i) => burst(i))
    expect(partRates(ends, 0, 32)).toEqual([(ends.length * 1e9) / ends.at(-1)!])
    // cut into runs of equal count, a run inside one burst would be rated millions a second
    expect(Math.max(...partRates(ends, 0, 1))).toBeGreaterThan(1e6)
    // 40 bursts: runs of 8 bursts each, every one rated near 16,000 a second
    const many = Array.from({ length: 40 * 32 }, (_, i) => burst(i))
    const rates = partRates(many, 0, 32)
    expect(rates.length).toBe(PARTS)
    for (const r of rates) expect(Math.abs(r - 16_000)).toBeLessThan(16_000 * 0.01)
  })

  test("fewer round trips than runs give one rate over the time they took, and none gives 0", () => {
    expect(partRates([2e6, 4e6], 0)).toEqual([500])
    expect(partRates([], 0)).toEqual([0])
  })
})

describe("every way the bench measures reports the rates of its runs", () => {
  // not how fast (the machine is shared), only that the rates are there and read as partRates says
  const expectParts = (s: { count: number; parts: number[] }, inflight: number) => {
    expect(s.parts.length).toBe(s.count >= PARTS * MIN_RUN_TRIPS_PER_LOOP * inflight ? PARTS : 1)
    expect(s.parts.every((r) => Number.isFinite(r) && (s.count === 0 ? r === 0 : r > 0))).toBe(true)
  }

  test("a transport measured by measureTransport (a Worker thread)", async () => {
    const t = await threadWorker.open()
    try {
      expectParts(await measureTransport(t, payload(64), 4, 20, 5), 4)
    } finally {
      await t.close()
    }
  })

  test("the bare Bun floor", async () => {
    expectParts(await bunFloor.measure(64, 2, 20, 5), 2)
  })

  test("the C floor (floor.c)", async () => {
    try {
      await floor.prepare()
    } catch (e) {
      if (e instanceof SkipMethod || e instanceof NoCompilerError) return console.warn(`skipped: ${e.message}`)
      throw e
    }
    const r = await floor.measure("spin", 64, 2, 20)
    expectParts({ count: r.samples.length, parts: r.parts }, 2)
  }, 120_000)
})
