// The fixed-bucket histogram behind GET /metrics and its bounded label values.
import { describe, expect, test } from "bun:test"
import { BoundedLabels, DURATION_BUCKETS, Histogram } from "../../../src/kit/index.ts"

describe("Histogram", () => {
  test.each([
    ["at an edge, in that edge's bucket (le is inclusive)", 0.001e9, 0.001],
    ["just above an edge, in the next", 0.001e9 + 1, 0.0025],
    ["below the first edge, in the first", 1, 0.000025],
    ["zero, in the first", 0, 0.000025],
  ])("a value %s", (_, ns, edge) => {
    const h = new Histogram()
    h.observeNs(ns)
    const s = h.snapshot()
    const i = DURATION_BUCKETS.indexOf(edge)
    expect(s.cumulative.slice(0, i)).toEqual(Array(i).fill(0))
    expect(s.cumulative.slice(i)).toEqual(Array(s.cumulative.length - i).fill(1))
  })

  test("a value above the last edge counts only in +Inf; sum and count are in seconds and observations", () => {
    const h = new Histogram()
    h.observeNs(11e9)
    h.observeNs(0.5e9)
    const s = h.snapshot()
    expect(s.cumulative.at(-1)).toBe(2)
    expect(s.cumulative.at(-2)).toBe(1) // le=10
    expect(s.sum).toBe(11.5)
    expect(s.count).toBe(2)
    expect(h.quantile(1)).toBe(Infinity)
    expect(h.quantile(0.5)).toBe(0.5)
  })

  test("cumulative counts never decrease and end at the count", () => {
    const h = new Histogram()
    for (let i = 0; i < 1000; i++) h.observeNs((i * 7919) % 3e9)
    const { cumulative, count } = h.snapshot()
    for (let i = 1; i < cumulative.length; i++) expect(cumulative[i]!).toBeGreaterThanOrEqual(cumulative[i - 1]!)
    expect(cumulative.at(-1)).toBe(count)
    expect(count).toBe(1000)
  })
})

describe("BoundedLabels", () => {
  test("keeps the first max values apart, then every new one is other; known values keep their index", () => {
    const l = new BoundedLabels(2)
    expect([l.indexOf("a"), l.indexOf("b"), l.indexOf("c"), l.indexOf("d"), l.indexOf("a")]).toEqual([0, 1, 2, 2, 0])
    expect([...l.entries()]).toEqual([
      ["a", 0],
      ["b", 1],
      ["other", 2],
    ])
  })
})
