// The hub's GET /metrics beyond its own counters (health.ts): the slotbus_* families of every worker name's buses,
// under the names serveStatus uses (docs/api.md). Each process of a name registers its own bus (named per
// registration), so the series are summed per name: bus="<worker name>", and worker="<index>", a small number a
// process takes when it registers and gives back when it leaves (never its pid or instance id, which churn). A
// process that leaves adds its last counts to its name's, so counters never go back. Names that left keep their
// label for a while, then fold into one (docs/api.md), so a hub whose names churn has bounded labels and memory.
import { METRICS, type MetricFamily, type MetricSample } from "../../kit/index.ts"
import type { WorkerInstance } from "./registry.ts"

/** Names with no process left that keep their own `bus` label; the ones that left before fold into GONE_BUS. */
export const KEEP_GONE_NAMES = 8
/** The `bus` label of the folded totals: not a worker name (no parentheses in those). */
export const GONE_BUS = "(gone)"

type Keyed = Map<string, { family: MetricFamily; samples: Map<string, MetricSample> }>

/** Adds `f`'s samples into `into`, by name and labels: values and histogram buckets summed. */
function addInto(into: Keyed, f: MetricFamily) {
  let e = into.get(f.name)
  if (!e) into.set(f.name, (e = { family: { ...f, samples: [] }, samples: new Map() }))
  for (const s of f.samples) {
    const key = JSON.stringify(s.labels)
    const had = e.samples.get(key)
    if (!had) {
      e.samples.set(
        key,
        "histogram" in s
          ? { labels: s.labels, histogram: { ...s.histogram, cumulative: [...s.histogram.cumulative] } }
          : { ...s },
      )
    } else if ("histogram" in had && "histogram" in s) {
      const h = had.histogram
      s.histogram.cumulative.forEach((c, i) => (h.cumulative[i]! += c))
      h.sum += s.histogram.sum
      h.count += s.histogram.count
    } else if ("value" in had && "value" in s) had.value += s.value
  }
}

function families(k: Keyed): MetricFamily[] {
  return [...k.values()].map((e) => ({ ...e.family, samples: [...e.samples.values()] }))
}

/** `f`'s samples relabelled for GONE_BUS: no worker index or route, whose values belong to the name that left. */
function folded(f: MetricFamily): MetricFamily {
  return {
    ...f,
    samples: f.samples.map((s) => {
      const { worker: _w, route: _r, ...labels } = s.labels
      return { ...s, labels: { ...labels, bus: GONE_BUS } }
    }),
  }
}

export class HubMetrics {
  /** Per worker name, which process holds each worker index (null: free); a name with none held has no entry. */
  private readonly indexes = new Map<string, (WorkerInstance | null)[]>()
  /** Per worker name, the counters and histograms of its processes that left, summed; the latest to leave last. */
  private readonly gone = new Map<string, Keyed>()
  /** What the names folded out of `gone` counted, under bus=GONE_BUS. */
  private readonly foldedTotals: Keyed = new Map()

  /** `isLive(name)`: whether a process of that name is registered now. */
  constructor(private readonly isLive: (name: string) => boolean) {}

  private workerIndexOf(inst: WorkerInstance): number {
    const held = this.indexes.get(inst.name) ?? []
    this.indexes.set(inst.name, held)
    let i = held.indexOf(inst)
    if (i >= 0) return i
    i = held.indexOf(null)
    if (i < 0) i = held.push(null) - 1
    held[i] = inst
    return i
  }

  /** `inst`'s families relabelled: bus is its name, worker its index. */
  private of(inst: WorkerInstance): MetricFamily[] {
    const index = String(this.workerIndexOf(inst))
    return inst.bus[METRICS]().map((f) => ({
      ...f,
      samples: f.samples.map((s) => ({
        ...s,
        labels: { ...s.labels, bus: inst.name, ...(s.labels.worker === undefined ? {} : { worker: index }) },
      })),
    }))
  }

  /** `inst` left: its counters and histograms stay in its name's totals, its index is free for the next process. */
  left(inst: WorkerInstance) {
    const kept = this.gone.get(inst.name) ?? new Map()
    this.gone.delete(inst.name) // re-inserted last: names fold in the order they left
    this.gone.set(inst.name, kept)
    try {
      // a process's own series (process_*) end with it: the next process at its index starts them again
      for (const f of this.of(inst)) if (f.type !== "gauge" && !f.name.startsWith("process_")) addInto(kept, f)
    } catch {} // its bus already closed: nothing more to keep
    const held = this.indexes.get(inst.name)
    const i = held?.indexOf(inst) ?? -1
    if (i >= 0) held![i] = null
    if (held?.every((s) => s === null)) this.indexes.delete(inst.name)
    this.fold()
  }

  /**
   * Past KEEP_GONE_NAMES names without a live process, the oldest to leave adds its totals to GONE_BUS's, so the
   * label values stay bounded and the sum over them never goes back. A name that comes again counts from 0.
   */
  private fold() {
    let over = -KEEP_GONE_NAMES
    for (const name of this.gone.keys()) if (!this.isLive(name)) over++
    for (const [name, kept] of this.gone) {
      if (over <= 0) return
      if (this.isLive(name)) continue
      for (const f of families(kept)) addInto(this.foldedTotals, folded(f))
      this.gone.delete(name)
      over--
    }
  }

  /** Every name's families now: its live processes' and those that left, summed; then GONE_BUS's. */
  families(instances: Iterable<WorkerInstance>): MetricFamily[] {
    const all: Keyed = new Map()
    for (const kept of this.gone.values()) for (const f of families(kept)) addInto(all, f)
    for (const inst of instances) {
      try {
        for (const f of this.of(inst)) addInto(all, f)
      } catch {} // a bus closing as it is read
    }
    for (const f of families(this.foldedTotals)) addInto(all, f)
    return families(all)
  }
}
