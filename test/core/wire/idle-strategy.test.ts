// The idle strategies' decisions alone (core/wire/idle-strategy.ts): fed work and a made-up clock (ns), each says
// how long to spin and whether to park. The Pump that follows them is pump.test.ts's and idle.test.ts's.
import { describe, expect, test } from "bun:test"
import {
  AdaptiveIdler,
  type IdleStrategy,
  type Idler,
  idler,
  ParkIdler,
  SpinIdler,
} from "../../../src/core/wire/idle-strategy.ts"

const MS = 1_000_000

/** Feeds `steps` in order: [t, work] is a run at t that did `work` items; returns what each fruitless run chose. */
function choices(i: Idler, steps: [number, number][]): string[] {
  const out: string[] = []
  for (const [t, work] of steps) {
    if (work > 0) i.reset(t)
    else out.push(i.idle(t) ? "park" : "poll")
  }
  return out
}

describe("which idler each strategy names", () => {
  test.each<[string, IdleStrategy, new (...a: never[]) => Idler, number, boolean, boolean, boolean]>([
    // label, strategy, class, spinNs, parks, parksAtOnce, yieldsToCrowd
    ["spin", "spin", SpinIdler, 50_000, false, false, false],
    ["adaptive", "adaptive", AdaptiveIdler, 20_000, true, false, true],
    ["park", "park", ParkIdler, 0, true, true, false],
    ["{ spinMicros: 5, parkAfterMs: 2 }", { spinMicros: 5, parkAfterMs: 2 }, AdaptiveIdler, 5000, true, false, false],
    ["{ spinMicros: 5, parkAfterMs: 0 }", { spinMicros: 5, parkAfterMs: 0 }, ParkIdler, 5000, true, true, false],
    [
      "{ spinMicros: 7, parkAfterMs: Infinity }",
      { spinMicros: 7, parkAfterMs: Infinity },
      SpinIdler,
      7000,
      false,
      false,
      false,
    ],
  ])(
    "%s: its idler's kind, spin budget, and whether it parks, at once, or for a crowd",
    (_l, idle, kind, spinNs, parks, atOnce, crowd) => {
      const i = idler(idle)
      expect(i).toBeInstanceOf(kind)
      expect([i.spinNs, i.parks, i.parksAtOnce, i.yieldsToCrowd]).toEqual([spinNs, parks, atOnce, crowd])
    },
  )

  test("no strategy given is the default, adaptive, the one that yields to a crowded bus", () => {
    const i = idler(undefined)
    expect(i).toBeInstanceOf(AdaptiveIdler)
    expect(i.yieldsToCrowd).toBe(true)
  })
})

describe("what each idler decides after a fruitless run", () => {
  test("spin never parks, however long nothing came", () => {
    expect(
      choices(idler("spin"), [
        [0, 1],
        [1, 0],
        [10 * MS, 0],
        [1e15, 0],
      ]),
    ).toEqual(["poll", "poll", "poll"])
  })

  test("park parks after every fruitless run, work just done or not", () => {
    expect(
      choices(idler("park"), [
        [5, 3],
        [5, 0],
        [6, 0],
        [7, 2],
        [7, 0],
      ]),
    ).toEqual(["park", "park", "park"])
  })

  test("adaptive polls until parkAfterMs passed without work, and work starts the quiet time again", () => {
    const i = idler({ spinMicros: 20, parkAfterMs: 2 }, "idle", { startedAt: 0 })
    expect(
      choices(i, [
        [0.5 * MS, 0],
        [1.9 * MS, 0],
        [2 * MS, 0],
      ]),
    ).toEqual(["poll", "poll", "park"])
    expect(
      choices(i, [
        [3 * MS, 1],
        [4.9 * MS, 0],
        [5 * MS, 0],
      ]),
    ).toEqual(["poll", "park"])
  })

  test("adaptive polls through startupPollNs from its first work, then parks after parkAfterMs as usual", () => {
    const i = idler("adaptive", "idle", { startedAt: 100 * MS, startupPollNs: 250 * MS })
    // no work yet: an idle bus's fresh worker parks after parkAfterMs, as later (docs/perf/round-nine-cliffs.md)
    expect(choices(i, [[102 * MS, 0]])).toEqual(["park"])
    // a wake-up is no work: it does not open the window either
    i.reset(103 * MS, false)
    expect(choices(i, [[105 * MS, 0]])).toEqual(["park"])
    expect(
      choices(i, [
        [110 * MS, 1],
        [112 * MS, 0],
        [359 * MS, 0],
        [360 * MS, 0],
      ]),
    ).toEqual(["poll", "poll", "park"])
    expect(
      choices(i, [
        [400 * MS, 1],
        [400.5 * MS, 0],
        [401 * MS, 0],
      ]),
    ).toEqual(["poll", "park"])
  })

  test("with parkAfterGaps, adaptive polls for twice the recent gap between arrivals, up to 10 × parkAfterMs", () => {
    const gaps = idler("adaptive", "idle", { startedAt: 0, parkAfterGaps: true })
    const plain = idler("adaptive", "idle", { startedAt: 0 })
    // arrivals every 3 ms: the average gap becomes 3 ms, so it polls up to 6 ms after the last one
    const arrivals: [number, number][] = [1, 2, 3, 4, 5].map((k) => [k * 3 * MS, 1])
    const after: [number, number][] = [
      [15 * MS + 1.5 * MS, 0],
      [15 * MS + 5.9 * MS, 0],
      [15 * MS + 6 * MS, 0],
    ]
    expect(choices(gaps, [...arrivals, ...after])).toEqual(["poll", "poll", "park"])
    expect(choices(plain, [...arrivals, ...after])).toEqual(["park", "park", "park"])
    // arrivals 50 ms apart: capped at 10 ms; gaps of 100 ms or more are not arrivals' gaps and tune nothing
    const slow = idler("adaptive", "idle", { startedAt: 0, parkAfterGaps: true })
    expect(
      choices(slow, [
        [50 * MS, 1],
        [100 * MS, 1],
        [109.9 * MS, 0],
        [110 * MS, 0],
      ]),
    ).toEqual(["poll", "park"])
    const rare = idler("adaptive", "idle", { startedAt: 0, parkAfterGaps: true })
    expect(
      choices(rare, [
        [200 * MS, 1],
        [400 * MS, 1],
        [401 * MS, 0],
      ]),
    ).toEqual(["park"])
  })

  test("parkAfterGaps tunes nothing on the strategies that do not poll for a while before parking", () => {
    for (const idle of ["spin", "park"] as const) {
      const i = idler(idle, "idle", { startedAt: 0, parkAfterGaps: true, startupPollNs: 250 * MS })
      const want = idle === "spin" ? "poll" : "park"
      expect(
        choices(i, [
          [3 * MS, 1],
          [6 * MS, 1],
          [7 * MS, 0],
          [300 * MS, 0],
        ]),
      ).toEqual([want, want])
    }
  })
})
