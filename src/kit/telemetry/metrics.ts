// What a thing measures, in the shape Prometheus's text format and OpenTelemetry's instruments both take: metric
// families by name, each with its samples by labels. Every room fills it for what it owns (a bus, a topic, a
// contest, a stdio bus) and serveStatus (src/status) serves it at GET /metrics without knowing which room it came
// from. Names follow Prometheus's conventions: `slotbus_` first, base units (`_seconds`, `_bytes`), `_total` on
// counters, labels with bounded values only (a worker's index, never its pid; a route's pattern, never its path).
import type { HistogramSnapshot } from "./histogram.ts"

export type MetricType = "counter" | "gauge" | "histogram"

export type MetricLabels = Record<string, string>

export type MetricSample =
  | { labels: MetricLabels; value: number }
  | { labels: MetricLabels; histogram: HistogramSnapshot }

export interface MetricFamily {
  /** `slotbus_…`; a counter's ends in `_total`. */
  name: string
  type: MetricType
  /** One line: what it counts, in what unit. */
  help: string
  samples: MetricSample[]
}

/** The method a thing serveStatus can measure has: `[METRICS]()`, its families now. */
export const METRICS: unique symbol = Symbol.for("slotbus.metrics") as never

export interface MetricsSource {
  [METRICS](): MetricFamily[]
}

/** A family of one type, to fill with `add`. */
export function family(
  name: string,
  type: MetricType,
  help: string,
): MetricFamily & {
  add(labels: MetricLabels, value: number): void
} {
  const f: MetricFamily = { name, type, help, samples: [] }
  return Object.assign(f, { add: (labels: MetricLabels, value: number) => void f.samples.push({ labels, value }) })
}

/** Whether `x` can be measured: it has a `[METRICS]()` method. */
export const hasMetrics = (x: unknown): x is MetricsSource =>
  typeof x === "object" && x !== null && typeof (x as Partial<MetricsSource>)[METRICS] === "function"
