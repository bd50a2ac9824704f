// The hub's GET /metrics beyond its own counters (health.ts): the slotbus_* families of every worker name's buses,
// under the names serveStatus uses (docs/api.md). Each process of a name registers its own bus (named per
// registration), so the series are summed per name: bus="<worker name>", and worker="<seat>", a small number a
// process takes when it registers and gives back when it leaves (never its pid or instance id, which churn). A
// process that leaves adds its last counts to its name's, so counters never go back.
import { METRICS, type MetricFamily, type MetricSample } from "../../kit/index.ts"
import type { WorkerInstance } from "./registry.ts"

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

export class HubMetrics {
  /** Per worker name, which process holds each seat (null: free). */
  private readonly seats = new Map<string, (WorkerInstance | null)[]>()
  /** Per worker name, the counters and histograms of its processes that left, summed. */
  private readonly gone = new Map<string, Keyed>()

  private seatOf(inst: WorkerInstance): number {
    const seats = this.seats.get(inst.name) ?? []
    this.seats.set(inst.name, seats)
    let i = seats.indexOf(inst)
    if (i >= 0) return i
    i = seats.indexOf(null)
    if (i < 0) i = seats.push(null) - 1
    seats[i] = inst
    return i
  }

  /** `inst`'s families relabelled: bus is its name, worker its seat. */
  private of(inst: WorkerInstance): MetricFamily[] {
    const seat = String(this.seatOf(inst))
    return inst.bus[METRICS]().map((f) => ({
      ...f,
      samples: f.samples.map((s) => ({
        ...s,
        labels: { ...s.labels, bus: inst.name, ...(s.labels.worker === undefined ? {} : { worker: seat }) },
      })),
    }))
  }

  /** `inst` left: its counters and histograms stay in its name's totals, its seat is free for the next process. */
  left(inst: WorkerInstance) {
    let kept = this.gone.get(inst.name)
    if (!kept) this.gone.set(inst.name, (kept = new Map()))
    try {
      for (const f of this.of(inst)) if (f.type !== "gauge") addInto(kept, f)
    } catch {} // its bus already closed: nothing more to keep
    const seats = this.seats.get(inst.name)
    const i = seats?.indexOf(inst) ?? -1
    if (i >= 0) seats![i] = null
  }

  /** Every name's families now: its live processes' and those that left, summed. */
  families(instances: Iterable<WorkerInstance>): MetricFamily[] {
    const all: Keyed = new Map()
    for (const kept of this.gone.values()) for (const f of families(kept)) addInto(all, f)
    for (const inst of instances) {
      try {
        for (const f of this.of(inst)) addInto(all, f)
      } catch {} // a bus closing as it is read
    }
    return families(all)
  }
}
