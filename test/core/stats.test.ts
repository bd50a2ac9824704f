// The latency histogram behind bus.stats().latency: each quantile within its bucket's width (1/8 of a power of
// two) of the exact one, over the whole range it is fed, including durations past 2^32 ns (4.3 s) and below 1 ns.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import { LatencyHistogram } from "../../src/core/stats.ts"

/** The exact nearest-rank quantile of `values`. */
function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!
}

describe("the latency histogram", () => {
  test("every quantile is the upper edge of the exact one's bucket: at or above it, by at most 1/8 of its power of two", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.double({ min: 1, max: 2 ** 32, noNaN: true }),
            fc.double({ min: 2 ** 31, max: 2 ** 33, noNaN: true }), // around the 2^32 edge
            fc.double({ min: 2 ** 32, max: 2 ** 50, noNaN: true }),
            fc.integer({ min: 1, max: 5000 }),
          ),
          { minLength: 1, maxLength: 300 },
        ),
        fc.constantFrom(0.5, 0.9, 0.99, 1),
        (values, q) => {
          const h = new LatencyHistogram()
          for (const v of values) h.record(v)
          const want = exact(values, q)
          const got = h.quantile(q)
          expect(got).toBeGreaterThanOrEqual(want)
          expect(got).toBeLessThanOrEqual(want + 2 ** Math.floor(Math.log2(want)) / 8 + 1e-6 * want)
        },
      ),
      { numRuns: 500 },
    )
  })

  test("powers of two and their neighbours land in the right buckets; under 1 ns counts as 1", () => {
    for (const exp of [0, 1, 10, 31, 32, 33, 45]) {
      for (const v of [2 ** exp, 2 ** exp * 1.124, 2 ** exp * 1.126, 2 ** (exp + 1) - 2 ** exp / 1024]) {
        const h = new LatencyHistogram()
        h.record(v)
        h.record(v)
        expect({ v, p50: h.quantile(0.5) }).toEqual({ v, p50: v }) // one bucket: capped at the max, which is v
        const mixed = new LatencyHistogram()
        mixed.record(v)
        mixed.record(2 ** 60)
        const edge = 2 ** exp * (1 + (Math.floor((v / 2 ** exp - 1) * 8) + 1) / 8)
        expect({ v, p50: mixed.quantile(0.5) }).toEqual({ v, p50: edge })
      }
    }
    const tiny = new LatencyHistogram()
    tiny.record(0)
    tiny.record(0.25)
    expect(tiny.summary()).toEqual({ count: 2, p50Us: 0, p90Us: 0, p99Us: 0, maxUs: 0 })
    expect(tiny.quantile(1)).toBe(1)
  })
})
