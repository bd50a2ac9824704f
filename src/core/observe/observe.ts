// One observer on the hot path: the Dispatcher tells a BusObserver the moments it already knows (a request queued,
// sent, answered, failed) and the observer tells the bus's counters, its metrics (GET /metrics, the status view's
// latency), its flight recorder and the request's trace. Made once when the bus listens; each call is one method
// call on it, and what is off (no recorder, no trace) costs one null test.
import { BusMetrics } from "./bus-metrics.ts"
import { BusCounters } from "../endpoint/observe-counters.ts"
import type { Pending } from "../endpoint/endpoint.ts"
import type { FlightRecorder } from "../wire/recorder.ts"
import { nanoseconds } from "../../runtime/index.ts"

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
    this.metrics.waited(p.waited ? nanoseconds() - p.started : 0)
    if (p.trace !== null) p.trace.sent()
  }

  /** p's caller has its answer (`status`: the answer's, 0 for bus.call), `ns` after its start. */
  answered(p: Pending, ns: number, status: number) {
    this.counters.response()
    this.metrics.answered(p, ns, status)
    if (p.trace !== null) p.trace.end(status)
  }

  /** p failed with `err`, `ns` after its start (p.endpoint is still its worker, if it had one). */
  failed(p: Pending, err: unknown, ns: number) {
    if (p.trace !== null) p.trace.failed(err)
    this.metrics.failed(p, err, ns)
    if (p.trace !== null) p.trace.end()
    this.counters.failure(err)
  }
}
