// What a bus counts (BusStats), and its latency summary, read from the duration histogram GET /metrics shows.
import type { Histogram } from "../../kit/index.ts"
import type { WorkerInfo } from "../endpoint/endpoint.ts"

export interface LatencySummary {
  count: number
  p50Us: number
  p90Us: number
  p99Us: number
  maxUs: number
}

/**
 * The summary of the histogram GET /metrics shows (`slotbus_request_duration_seconds`), so the two agree: each
 * quantile the upper edge of its bucket, or the largest duration when that is less.
 */
export function latencySummary(h: Histogram): LatencySummary {
  const us = (ns: number) => Math.round(ns / 10) / 100
  const at = (q: number) => us(Math.min(h.quantile(q) * 1e9, h.maxNs))
  return { count: h.count, p50Us: at(0.5), p90Us: at(0.9), p99Us: at(0.99), maxUs: us(h.maxNs) }
}

export interface BusStats {
  name: string
  workers: WorkerInfo[]
  inFlight: number
  queued: number
  /** Bytes of request bodies bus.fetch read whole and holds now, waiting for a slot (at most maxHeldBodyBytes). */
  heldBodyBytes: number
  requests: number
  responses: number
  /** Requests that failed, except by their timeout (`timeouts`) or by their caller (`cancels`). */
  errors: number
  timeouts: number
  /** Requests their caller gave up (its signal; for bus.fetch, the client went away), as GET /metrics counts them. */
  cancels: number
  /** Peers refused for their uid. */
  refusedPeers: number
  /** Peers refused because maxWorkers or maxWorkersPerUid was reached. */
  overCapPeers: number
  /** Workers disconnected for breaking the protocol (bad region state, control bytes, doorbell floods). */
  protocolErrors: number
  /** Workers disconnected for holding maxStuckSlots stuck slots. */
  evictedWorkers: number
  /** Idempotent requests given up after the worker they were retried on, alone, died holding them too (PoisonRequestError): each once. */
  poisonRequests: number
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
