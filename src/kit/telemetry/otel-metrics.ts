// The same metrics as GET /metrics, through OpenTelemetry's metrics API (`@opentelemetry/api`, an optional peer:
// loaded here, lazily, only when an app asks; nothing imports it otherwise, so without it nothing is loaded and
// nothing costs). Counters and gauges are observed at each collection from the sources' [METRICS](); durations
// are recorded as they happen through [METRICS_TAP] into OpenTelemetry histograms with the same bucket edges, so
// the app's own exporters (OTLP, Prometheus, …) see what /metrics shows. A loader for traces may share
// loadOtelApi() later (one place that knows the package's name and its absence).
import { MissingPackageError } from "../../errors.ts"
import { addPackage } from "../../runtime/index.ts"
import { DURATION_BUCKETS } from "./histogram.ts"
import { httpServer } from "./http-server.ts"
import { METRICS, type MetricFamily, type MetricLabels, type MetricsSource } from "./metrics.ts"

/** What slotbus uses of an OpenTelemetry `Meter` (`@opentelemetry/api`'s, by shape: the package is optional). */
export interface OtelMeter {
  createObservableCounter(name: string, options?: { description?: string; unit?: string }): OtelObservable
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): OtelObservable
  createHistogram(
    name: string,
    options?: { description?: string; unit?: string; advice?: { explicitBucketBoundaries?: number[] } },
  ): { record(value: number, attributes?: Record<string, string | number>): void }
  addBatchObservableCallback(
    callback: (result: { observe(o: OtelObservable, value: number, attributes?: MetricLabels): void }) => void,
    observables: OtelObservable[],
  ): void
  removeBatchObservableCallback(
    callback: (result: { observe(o: OtelObservable, value: number, attributes?: MetricLabels): void }) => void,
    observables: OtelObservable[],
  ): void
}
// biome-ignore lint/suspicious/noEmptyInterface: an OpenTelemetry observable instrument, passed back as it came
export interface OtelObservable {}

/** A source that reports each duration as it records it (a SlotBus): `record` is called with the family's name. */
export const METRICS_TAP: unique symbol = Symbol.for("slotbus.metrics.tap") as never
export interface MetricsTapSource {
  /** Calls `record` for every observation of its histogram families from now on; returns the function that stops it. */
  [METRICS_TAP](record: (family: string, labels: MetricLabels, seconds: number) => void): () => void
}
const hasTap = (x: object): x is MetricsTapSource =>
  typeof x === "object" && x !== null && typeof (x as Partial<MetricsTapSource>)[METRICS_TAP] === "function"

const PACKAGE = "@opentelemetry/api"

/** `@opentelemetry/api`, imported on first use; a MissingPackageError saying what to add when it is not installed. */
export async function loadOtelApi(
  feature: string,
): Promise<{ metrics: { getMeter(name: string, version?: string): OtelMeter } }> {
  try {
    return (await import(PACKAGE)) as never
  } catch (e) {
    if (!/cannot find (package|module)/i.test(String(e))) throw e
    throw MissingPackageError.of(feature, PACKAGE, addPackage, e)
  }
}

/** OpenTelemetry's name for a Prometheus name: no `_total` (its exporters add it back), no unit suffix (given as unit). */
function otelName(f: MetricFamily): { name: string; unit?: string } {
  if (f.name.endsWith("_seconds")) return { name: f.name.slice(0, -8), unit: "s" }
  if (f.name.endsWith("_bytes_total")) return { name: f.name.slice(0, -12), unit: "By" }
  if (f.name.endsWith("_bytes")) return { name: f.name.slice(0, -6), unit: "By" }
  if (f.name.endsWith("_total")) return { name: f.name.slice(0, -6) }
  return { name: f.name }
}

export interface OtelReport {
  /** Stops reporting: observations end, durations are no longer recorded. */
  stop(): void
}

/** Reports `sources`' families through `meter` until stop(): the instruments are made from what they measure now. */
export function reportToMeter(meter: OtelMeter, sources: readonly MetricsSource[]): OtelReport {
  const families = sources.flatMap((s) => s[METRICS]())
  const observables = new Map<string, OtelObservable>()
  const histograms = new Map<string, { record(value: number, attributes?: MetricLabels): void }>()
  for (const f of families) {
    if (observables.has(f.name) || histograms.has(f.name)) continue
    const { name, unit } = otelName(f)
    const options = { description: f.help, ...(unit ? { unit } : {}) }
    if (f.type === "histogram")
      histograms.set(
        f.name,
        meter.createHistogram(name, { ...options, advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] } }),
      )
    else if (f.type === "counter") observables.set(f.name, meter.createObservableCounter(name, options))
    else observables.set(f.name, meter.createObservableGauge(name, options))
  }
  const observe = (result: { observe(o: OtelObservable, value: number, attributes?: MetricLabels): void }) => {
    for (const s of sources) {
      let fams: MetricFamily[]
      try {
        fams = s[METRICS]()
      } catch {
        continue // closed
      }
      for (const f of fams) {
        const o = observables.get(f.name)
        if (o) for (const x of f.samples) if ("value" in x) result.observe(o, x.value, x.labels)
      }
    }
  }
  const list = [...observables.values()]
  meter.addBatchObservableCallback(observe, list)
  const histogram = (family: string) => {
    let h = histograms.get(family)
    if (!h) {
      const { name, unit } = otelName({ name: family, type: "histogram", help: "", samples: [] })
      const advice = { explicitBucketBoundaries: [...DURATION_BUCKETS] }
      histograms.set(family, (h = meter.createHistogram(name, { ...(unit ? { unit } : {}), advice })))
    }
    return h
  }
  const untaps: (() => void)[] = []
  // the front's own HTTP requests (instrument()), under OpenTelemetry's name, unit and attributes
  const server = meter.createHistogram("http.server.request.duration", {
    description: "Duration of HTTP server requests.",
    unit: "s",
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
  })
  untaps.push(httpServer.tap((attributes, seconds) => server.record(seconds, attributes)))
  for (const s of sources)
    if (hasTap(s)) untaps.push(s[METRICS_TAP]((family, labels, seconds) => histogram(family).record(seconds, labels)))
  return {
    stop() {
      meter.removeBatchObservableCallback(observe, list)
      for (const u of untaps) u()
    },
  }
}
