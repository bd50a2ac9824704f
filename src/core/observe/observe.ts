// One observer on the hot path: the Dispatcher tells a BusObserver the moments it already knows (a request queued,
// sent, answered, failed; a worker joined or left) and the observer tells the bus's counters, its metrics (GET
// /metrics, the status view's latency), its flight recorder and the request's trace. Made once when the bus listens;
// each call is one method call on it, and what is off (no recorder, no trace) costs one null test. It is also what
// the bus shows of itself: its stats, its metric families, its status section and the OpenTelemetry tap, read from
// what it gathered; the bus adds only what the hub knows (its workers, queue, pools, fronts and remote link).
import type { MetricFamily, MetricLabels, StatusSection } from "../../kit/index.ts"
import { BusMetrics, isCancel } from "./bus-metrics.ts"
import { busFamilies, FAMILY } from "./bus-families.ts"
import { busSection, type BusSectionExtra, type PoolRow } from "./bus-status.ts"
import { latencySummary, type BusStats } from "./stats.ts"
import { BusCounters } from "../probe/counters.ts"
import type { Endpoint, Pending, WorkerInfo } from "../endpoint/endpoint.ts"
import type { FlightRecorder } from "../probe/recorder.ts"
import { nanoseconds } from "../../runtime/index.ts"

export class BusObserver {
  readonly counters = new BusCounters()
  readonly metrics: BusMetrics

  constructor(
    /** The bus's name: every series' `bus` label. */
    readonly name: string,
    metricsRoutes: number,
    /** The bus's flight recorder (docs/PROTOCOL.md §16), told the queue's length; null without one. */
    readonly recorder: FlightRecorder | null,
  ) {
    this.metrics = new BusMetrics(metricsRoutes)
  }

  /** The queue holds `n` requests now. */
  queued(n: number) {
    if (this.recorder !== null) this.recorder.queued(n)
  }

  /** p went to a worker: at once, or after waiting in the queue since it went in (its start, or its requeue). */
  sent(p: Pending) {
    this.counters.sentBytes(p.bodyLength)
    const waited = p.waited ? nanoseconds() - p.queuedAt : 0
    this.metrics.waited(waited)
    if (p.trace !== null) p.trace.sent(waited)
  }

  /** p's caller has its answer (`status`: the answer's, 0 for bus.call), `ns` after its start. */
  answered(p: Pending, ns: number, status: number) {
    this.counters.response()
    this.metrics.answered(p, ns, status)
    if (p.trace !== null) p.trace.end(status)
  }

  /**
   * A request refused before it was queued (a full queue, a closed bus, a body or head over the limit, options that
   * fail their checks): made, and failed by its class; or, when `cancelled` (its signal was aborted already), a cancel.
   */
  refused(err: unknown, cancelled = false) {
    this.counters.request()
    if (cancelled) return this.counters.cancel()
    this.counters.failure(err)
    this.metrics.countError(err)
  }

  /** p failed with `err`, `ns` after its start (p.endpoint is still its worker, if it had one). */
  failed(p: Pending, err: unknown, ns: number) {
    if (p.trace !== null) p.trace.failed(err)
    if (isCancel(p, err)) {
      this.metrics.cancelled(p, ns)
      this.counters.cancel()
    } else {
      this.metrics.failed(p, err, ns)
      this.counters.failure(err)
    }
    if (p.trace !== null) p.trace.end()
  }

  /** The bus closed: its flight recorder's file goes (its memory once the last channel has closed). */
  close() {
    if (this.recorder !== null) this.recorder.close()
  }

  /** A worker joined: the index its metrics go under (its `worker` label). */
  joined(e: Endpoint): number {
    return this.metrics.takeWorkerIndex(e)
  }

  /** The worker of index `workerIndex` left: the index is free for the next. */
  left(workerIndex: number) {
    this.metrics.freeWorkerIndex(workerIndex)
  }

  /** bus.stats(): what it counted and its latency, beside the hub's `workers`, `queued` requests and bodies held now. */
  stats(workers: WorkerInfo[], queued: number, heldBodyBytes: number): BusStats {
    return {
      name: this.name,
      workers,
      inFlight: workers.reduce((n, w) => n + w.inFlight, 0),
      queued,
      heldBodyBytes,
      ...this.counters,
      latency: latencySummary(this.metrics.duration),
    }
  }

  /** The slotbus_* families of GET /metrics (docs/api.md); the workers' own series only if this front `leads`. */
  families(st: BusStats, pools: PoolRow[], leads: boolean): MetricFamily[] {
    return busFamilies(st, this.metrics.snapshot(), pools, leads)
  }

  /** The bus's section of the status view (serveStatus): `extra` is what the hub knows besides `st`. */
  section(st: BusStats, extra: BusSectionExtra): StatusSection {
    return busSection(st, this.metrics.snapshot(), extra)
  }

  /**
   * OpenTelemetry (reportToMeter, kit/telemetry/otel-metrics.ts): each duration and queue wait is recorded as it happens, under
   * its GET /metrics family's name and labels. Returns what stops it.
   */
  tap(record: (family: string, labels: MetricLabels, seconds: number) => void): () => void {
    const m = this.metrics
    const bus = { bus: this.name }
    const perWorker: MetricLabels[] = [] // made once per worker index, not per request
    m.tap = (what, ns, w) => {
      if (what === "wait") return record(FAMILY.QUEUE_WAIT, bus, ns / 1e9)
      record(FAMILY.DURATION, bus, ns / 1e9)
      if (w >= 0) record(FAMILY.WORKER_DURATION, (perWorker[w] ??= { ...bus, worker: String(w) }), ns / 1e9)
    }
    return () => void (m.tap = null)
  }
}
