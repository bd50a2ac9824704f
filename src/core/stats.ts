// What a bus counts (BusStats), and its log-linear latency histogram: 8 buckets per power of two of
// nanoseconds (≤ 9% error), fixed memory.
import type { WorkerInfo } from "./endpoint.ts"

const SUB = 8
const BUCKETS = 64 * SUB
const POW2 = Float64Array.from({ length: 64 }, (_, i) => 2 ** i)

export interface LatencySummary {
  count: number
  p50Us: number
  p90Us: number
  p99Us: number
  maxUs: number
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS)
  private count = 0
  private max = 0

  record(ns: number) {
    if (ns < 1) ns = 1
    // (a count of leading zeros instead of a logarithm: Math.log2 was a visible share of the hub's time at 32 in flight)
    const exp = ns < 2 ** 32 ? 31 - Math.clz32(ns) : Math.floor(Math.log2(ns))
    const sub = Math.floor((ns / POW2[exp]! - 1) * SUB)
    this.counts[Math.min(exp * SUB + sub, BUCKETS - 1)]!++
    this.count++
    if (ns > this.max) this.max = ns
  }

  /** Upper edge of the bucket holding quantile q, in ns. */
  quantile(q: number): number {
    if (this.count === 0) return 0
    let seen = 0
    const rank = q * this.count
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank && seen > 0) {
        const exp = Math.floor(i / SUB)
        return Math.min(2 ** exp * (1 + ((i % SUB) + 1) / SUB), this.max)
      }
    }
    return this.max
  }

  summary(): LatencySummary {
    const us = (ns: number) => Math.round(ns / 10) / 100
    return {
      count: this.count,
      p50Us: us(this.quantile(0.5)),
      p90Us: us(this.quantile(0.9)),
      p99Us: us(this.quantile(0.99)),
      maxUs: us(this.max),
    }
  }
}

export interface BusStats {
  name: string
  workers: WorkerInfo[]
  inFlight: number
  queued: number
  requests: number
  responses: number
  errors: number
  timeouts: number
  /** Peers refused for their uid. */
  refusedPeers: number
  /** Peers refused because maxWorkers or maxWorkersPerUid was reached. */
  overCapPeers: number
  /** Workers disconnected for breaking the protocol (bad region state, control bytes, doorbell floods). */
  protocolErrors: number
  /** Workers disconnected for holding maxStuckSlots stuck slots. */
  evictedWorkers: number
  /** Exceptions inside the hub's own machinery, caught so it keeps serving; should stay 0. */
  internalErrors: number
  /** Times reading the accept thread's doorbell failed and was restarted (each is logged); should stay 0. */
  acceptErrors: number
  /** Messages from the remote transport refused as not slotbus protocol (docs/PROTOCOL.md §10.1): malformed answers, frames, presences. */
  rejectedMessages: number
  bytesOut: number
  bytesIn: number
  latency: LatencySummary
}
