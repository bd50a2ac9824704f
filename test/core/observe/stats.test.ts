// The latency summary behind bus.stats().latency, read from the duration histogram GET /metrics shows: each quantile
// the upper edge of the bucket holding its nearest rank, or the largest duration when that is less.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import { DURATION_BUCKETS, Histogram } from "../../../src/kit/index.ts"
import { latencySummary } from "../../../src/core/observe/stats.ts"

/** The exact nearest-rank quantile of `values`. */
function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!
}

describe("the latency summary", () => {
  test("every quantile is the upper edge of the exact one's bucket, or the largest duration when that is less", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.double({ min: 0, max: 2e10, noNaN: true }), fc.integer({ min: 0, max: 5e6 })), {
          minLength: 1,
          maxLength: 300,
        }),
        (values) => {
          const h = new Histogram()
          for (const v of values) h.observeNs(v)
          const s = latencySummary(h)
          const max = Math.max(...values)
          const us = (ns: number) => Math.round(ns / 10) / 100
          for (const [q, got] of [
            [0.5, s.p50Us],
            [0.9, s.p90Us],
            [0.99, s.p99Us],
          ] as const) {
            const edge = DURATION_BUCKETS.find((b) => exact(values, q) <= b * 1e9)
            expect({ q, got }).toEqual({ q, got: us(Math.min(edge === undefined ? Infinity : edge * 1e9, max)) })
          }
          expect(s).toMatchObject({ count: values.length, maxUs: us(max) })
        },
      ),
      { numRuns: 500 },
    )
  })

  test("nothing recorded reads 0 everywhere", () => {
    expect(latencySummary(new Histogram())).toEqual({ count: 0, p50Us: 0, p90Us: 0, p99Us: 0, maxUs: 0 })
  })
})
