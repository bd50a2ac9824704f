// How `slotbus bench` turns round trips into msg/s: the median of the rates of equal sub-windows, so one stall
// inside a short --quick round spoils one sub-window, not the figure (issue 78).
import { describe, expect, test } from "bun:test"
import { NoCompilerError } from "../../bench/slots/cc.ts"
import { measureTransport, payload, steadyRate, SUB_WINDOWS, subWindows } from "../../bench/slots/measure.ts"
import * as bunFloor from "../../bench/slots/methods/bun-floor.ts"
import * as floor from "../../bench/slots/methods/floor.ts"
import * as threadWorker from "../../bench/slots/methods/worker.ts"
import { parseArgs, QUICK_WARM_MS } from "../../bench/slots/options.ts"
import { SkipMethod } from "../../bench/slots/transport.ts"

describe("msg/s from sub-windows", () => {
  test("a measurement with one stalled sub-window is rated by the median, not the mean", () => {
    // 50 ms cut in 5 parts of 10 ms: 1,000 round trips in each but one, where a 9 ms stall left 100
    const windows = [1000, 1000, 100, 1000, 1000]
    const rate = steadyRate(windows, 50)
    expect(rate).toBe(100_000)
    const mean = windows.reduce((a, b) => a + b, 0) / 0.05
    expect(mean).toBe(82_000)
  })

  test("round trips are counted in the sub-window in which they ended; those after the end are not", () => {
    const start = 5e9
    const w = subWindows(start, 50)
    // one round trip ending every 10 µs for 53 ms, but none in a 20 ms stall from 12 to 32 ms
    let n = 0
    for (let i = 0; i < 5300; i++) {
      const at = i * 10e3 + 5e3
      if (at >= 12e6 && at < 32e6) continue
      w.record(start + at)
      n++
    }
    expect(w.windows.length).toBe(SUB_WINDOWS)
    expect(w.windows[0]).toBe(1000)
    expect(w.windows[1]).toBe(200)
    expect(w.windows[2]).toBe(0)
    expect(w.windows[3]).toBe(800)
    expect(w.windows[4]).toBe(1000)
    expect(n - w.windows.reduce((a, b) => a + b, 0)).toBe(300)
    expect(steadyRate(w.windows, 50)).toBe(80_000)
  })
})

describe("every way the bench measures reports its sub-windows", () => {
  const expectWindows = (s: { count: number; windows: number[] }) => {
    expect(s.windows.length).toBe(SUB_WINDOWS)
    expect(s.windows.every((c) => Number.isInteger(c) && c >= 0)).toBe(true)
    expect(s.windows.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(s.count)
    expect(s.count).toBeGreaterThan(0)
  }

  test("a transport measured by measureTransport (a Worker thread)", async () => {
    const t = await threadWorker.open()
    try {
      expectWindows(await measureTransport(t, payload(64), 4, 20, 5))
    } finally {
      await t.close()
    }
  })

  test("the bare Bun floor", async () => {
    expectWindows(await bunFloor.measure(64, 2, 20, 5))
  })

  test("the C floor (floor.c)", async () => {
    try {
      await floor.prepare()
    } catch (e) {
      if (e instanceof SkipMethod || e instanceof NoCompilerError) return console.warn(`skipped: ${e.message}`)
      throw e
    }
    const r = await floor.measure("spin", 64, 2, 20)
    expectWindows({ count: r.samples.length, windows: r.windows })
  }, 120_000)
})

describe("--quick warms each fresh pair up", () => {
  test("with its own --warm unless one is given; a full run stays cold unless asked", () => {
    expect(QUICK_WARM_MS).toBeGreaterThan(0)
    expect(parseArgs(["--quick"]).jitWarmupMs).toBe(QUICK_WARM_MS)
    expect(parseArgs(["--quick", "--warm", "0"]).jitWarmupMs).toBe(0)
    expect(parseArgs([]).jitWarmupMs).toBe(0)
  })
})
