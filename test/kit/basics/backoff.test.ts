// kit/basics/backoff.ts: the one retry-delay rule of the worker's reconnect, the HTTP join loop and the supervisor.
import { expect, test } from "bun:test"
import { Backoff } from "../../../src/kit/index.ts"

test("without jitter, delays double from initialMs up to maxMs and reset() starts over", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000 })
  expect(Array.from({ length: 6 }, () => b.next())).toEqual([100, 200, 400, 800, 1000, 1000])
  expect(b.attempts).toBe(6)
  b.reset()
  expect(b.attempts).toBe(0)
  expect([b.next(), b.next()]).toEqual([100, 200])
})

test("delayFor(n) is the nth step without moving the counter; huge n stays at the cap, even from 0 ms", () => {
  const b = new Backoff({ initialMs: 20, maxMs: 5000 })
  expect([0, 1, 2, 8, 9, 5000].map((n) => b.delayFor(n))).toEqual([20, 40, 80, 5000, 5000, 5000])
  expect(b.attempts).toBe(0)
  expect(new Backoff({ initialMs: 0, maxMs: 10 }).delayFor(10_000)).toBe(0)
  expect(new Backoff({ initialMs: 500, maxMs: 50 }).delayFor(0)).toBe(50) // the cap holds from the first delay
})

test("jitter takes a random part off each delay, never more than that fraction", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 800, jitter: 0.5 })
  const seen = new Set<number>()
  for (let i = 0; i < 200; i++) {
    const n = i % 5
    const exp = Math.min(800, 100 * 2 ** n)
    const d = b.delayFor(n)
    expect(d).toBeGreaterThanOrEqual(exp / 2)
    expect(d).toBeLessThanOrEqual(exp)
    seen.add(d)
  }
  expect(seen.size).toBeGreaterThan(100) // random, not one fixed fraction
})

test.each([
  [{ initialMs: -1, maxMs: 10 }, "initialMs"],
  [{ initialMs: Number.NaN, maxMs: 10 }, "initialMs"],
  [{ initialMs: 1, maxMs: -5 }, "maxMs"],
  [{ initialMs: 1, maxMs: 10, jitter: 1.5 }, "jitter"],
])("bad options are a RangeError naming the option (%#)", (opts, what) => {
  expect(() => new Backoff(opts)).toThrow(RangeError)
  expect(() => new Backoff(opts)).toThrow(what)
})

test("a loop sleeping nextWithin(deadline - now) makes its last try at its deadline, never a delay after it (waitForHubMs)", () => {
  // SlotWorker.connect's schedule: waitForHubMs 200 gave up after up to 447 ms, its last sleep running on past the deadline.
  for (const deadline of [0, 1, 15, 200, 439, 1000, 5000]) {
    for (let run = 0; run < 50; run++) {
      const b = new Backoff({ initialMs: 20, maxMs: 500, jitter: 0.5 })
      const tries = [0]
      for (let now = 0; now < deadline; ) tries.push((now += b.nextWithin(deadline - now)))
      expect(Math.max(...tries)).toBe(deadline)
      expect(tries.length).toBeLessThan(40) // it still backs off: no busy loop near the deadline
    }
  }
  const b = new Backoff({ initialMs: 100, maxMs: 1000 })
  expect([b.nextWithin(Infinity), b.nextWithin(50), b.nextWithin(-5), b.next()]).toEqual([100, 50, 0, 800])
})
