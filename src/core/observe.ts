// One observer on the hot path: the Dispatcher tells a BusObserver the moments it already knows (a request queued,
// sent, answered, failed) and the observer tells the bus's counters, its metrics (GET /metrics, the status view's
// latency), its flight recorder and the request's trace. Made once when the bus listens; each call is one method
// call on it, and what is off (no recorder, no trace) costs one null test. BusCounters is the only writer of a
// bus's counters: the classes that see an event call its method.
import { TimeoutError } from "../errors.ts"
import { BusMetrics } from "./bus-metrics.ts"
import type { Pending } from "./endpoint.ts"
import type { FlightRecorder } from "./recorder.ts"

/** What a bus counts (BusStats's counters), each written here only. */
export class BusCounters {
  requests = 0
  responses = 0
  errors = 0
  timeouts = 0
  refusedPeers = 0
  overCapPeers = 0
  protocolErrors = 0
  evictedWorkers = 0
  internalErrors = 0
  acceptErrors = 0
  rejectedMessages = 0
  bytesOut = 0
  bytesIn = 0

  request() {
    this.requests++
  }
  response() {
    this.responses++
  }
  /** A request failed: by timeout, or otherwise. */
  failure(err: unknown) {
    if (err instanceof TimeoutError) this.timeouts++
    else this.errors++
  }
  /** A peer was refused: for its uid (`overCap` false), or because maxWorkers or maxWorkersPerUid was reached. */
  refusedPeer(overCap: boolean) {
    if (overCap) this.overCapPeers++
    else this.refusedPeers++
  }
  protocolError() {
    this.protocolErrors++
  }
  evictedWorker() {
    this.evictedWorkers++
  }
  internalError() {
    this.internalErrors++
  }
  acceptError() {
    this.acceptErrors++
  }
  rejectedMessage() {
    this.rejectedMessages++
  }
  sentBytes(n: number) {
    this.bytesOut += n
  }
  receivedBytes(n: number) {
    this.bytesIn += n
  }
}

export class BusObserver {
  readonly counters = new BusCounters()
  readonly metrics: BusMetrics

  constructor(
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

  /** p went to a worker: at once, or after waiting in the queue since its start. */
  sent(p: Pending) {
    this.metrics.waited(p.waited ? Bun.nanoseconds() - p.started : 0)
    if (p.trace !== null) p.trace.sent()
  }

  /** p's caller has its answer (`status`: the answer's, 0 for bus.call), `ns` after its start. */
  answered(p: Pending, ns: number, status: number) {
    this.counters.response()
    this.metrics.answered(p, ns, status)
    if (p.trace !== null) p.trace.end()
  }

  /** p failed with `err`, `ns` after its start (p.endpoint is still its worker, if it had one). */
  failed(p: Pending, err: unknown, ns: number) {
    if (p.trace !== null) p.trace.failed(err)
    this.metrics.failed(p, err, ns)
    if (p.trace !== null) p.trace.end()
    this.counters.failure(err)
  }
}
