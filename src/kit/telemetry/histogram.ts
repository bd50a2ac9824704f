// A Prometheus histogram with fixed buckets: a count per bucket, a sum and a count. Recording a value is a walk
// over the bucket edges by comparison and three additions on numbers already there (no allocation, no logarithm),
// cheap enough for every request a bus answers. Cumulative counts (Prometheus's `le`) are made only when read.

/** Bucket edges in seconds for request durations and waits: 25 µs to 10 s, about ×2.5 apart. */
export const DURATION_BUCKETS: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]

/** What a histogram holds at one moment, in seconds: counts per `le` edge (cumulative), the last one +Inf. */
export interface HistogramSnapshot {
  /** Upper edges in seconds, ascending; +Inf is implied after the last. */
  bounds: readonly number[]
  /** Observations ≤ each edge, then the total (the +Inf bucket): bounds.length + 1 numbers. */
  cumulative: number[]
  sum: number
  count: number
}

/** The rank (1-based) of quantile q among n ordered values, by nearest rank: ⌈q·n⌉, at least 1. */
export function quantileRank(q: number, n: number): number {
  return Math.max(1, Math.ceil(q * n))
}

export class Histogram {
  private readonly edgesNs: Float64Array
  /** Observations per bucket (not cumulative); the last is above every edge. */
  private readonly counts: Float64Array
  private sumNs = 0
  private total = 0
  /** The largest observation, in ns. */
  maxNs = 0

  constructor(readonly bounds: readonly number[] = DURATION_BUCKETS) {
    this.edgesNs = Float64Array.from(bounds, (s) => s * 1e9)
    this.counts = new Float64Array(bounds.length + 1)
  }

  /** One observation of `ns` nanoseconds. */
  observeNs(ns: number): void {
    const edges = this.edgesNs
    const n = edges.length
    let i = 0
    while (i < n && ns > edges[i]!) i++
    this.counts[i]!++
    this.sumNs += ns
    this.total++
    if (ns > this.maxNs) this.maxNs = ns
  }

  get count(): number {
    return this.total
  }

  snapshot(): HistogramSnapshot {
    const cumulative: number[] = []
    let seen = 0
    for (const c of this.counts) cumulative.push((seen += c))
    return { bounds: this.bounds, cumulative, sum: this.sumNs / 1e9, count: this.total }
  }

  /** Upper edge in seconds of the bucket holding quantile q (0 with nothing observed, +Inf past the last edge). */
  quantile(q: number): number {
    if (this.total === 0) return 0
    const rank = quantileRank(q, this.total)
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return this.bounds[i] ?? Infinity
    }
    return Infinity
  }
}

/**
 * Label values kept as they come up to `max` distinct ones; after that every new one is "other" (a label with
 * unbounded values, a path with ids in it, would otherwise make a series per value).
 */
export class BoundedLabels {
  private readonly seen = new Map<string, number>()
  constructor(readonly max: number) {}

  /** The index of `value`'s series: its own while there is room, else the index of "other". */
  indexOf(value: string): number {
    const i = this.seen.get(value)
    if (i !== undefined) return i
    const key = this.seen.size < this.max ? value : "other"
    let j = this.seen.get(key)
    if (j === undefined) this.seen.set(key, (j = this.seen.size))
    return j
  }

  /** Each label value with its index. */
  entries(): IterableIterator<[string, number]> {
    return this.seen.entries()
  }
}
