// reportMetrics: what GET /metrics shows, through an app's OpenTelemetry metrics (kit/telemetry/otel-metrics.ts does the work;
// `@opentelemetry/api` is loaded there, and only when no meter is passed).
import {
  hasMetrics,
  loadOtelApi,
  reportToMeter,
  type MetricsSource,
  type OtelMeter,
  type OtelReport,
} from "../kit/index.ts"

export interface ReportMetricsOptions {
  /** The meter to report through; default `metrics.getMeter("slotbus")` of `@opentelemetry/api` (the app's global provider). */
  meter?: OtelMeter
}

/**
 * Reports the metrics of `sources` (SlotBus, Topic, Contest, StdioBus) through OpenTelemetry until `stop()`: counters
 * and gauges observed at each collection, durations recorded into histograms as they happen, with the names of
 * GET /metrics (no `_total`, the unit apart: `slotbus_request_duration` in `s`) and the same labels as attributes.
 */
export async function reportMetrics(sources: unknown[], options: ReportMetricsOptions = {}): Promise<OtelReport> {
  if (!Array.isArray(sources)) throw new TypeError("reportMetrics takes an array of sources, like [bus, topic]")
  sources.forEach((s, i) => {
    if (!hasMetrics(s))
      throw new TypeError(`reportMetrics: source ${i} has no metrics; pass a SlotBus, Topic, Contest or StdioBus`)
  })
  if (typeof options !== "object" || options === null) throw new TypeError("reportMetrics: options must be an object")
  const meter = options.meter ?? (await loadOtelApi("reportMetrics")).metrics.getMeter("slotbus")
  return reportToMeter(meter, sources as MetricsSource[])
}
