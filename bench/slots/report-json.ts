// The JSON lines of a bench run: a header record, then one line per measurement and the idle ones.
import {
  figureRange,
  idOf,
  nodeVerdict,
  verdict,
  type BenchReport,
  type IdleResult,
  type MethodInfo,
  type Row,
} from "./report.ts"

function round(v: number): number {
  if (!Number.isFinite(v)) return v
  return Number(v.toPrecision(6))
}
const roundPair = ([a, b]: [number, number]) => [round(a), round(b)]

/** The first JSON line of a run: the machine, the versions, the settings, the load, the warnings and the verdict. */
export function jsonHeader(report: BenchReport): string {
  const { bun, slotbus, ...machine } = report.machine
  return JSON.stringify({
    type: "header",
    versions: { slotbus, bun },
    machine,
    settings: report.settings,
    load: { burners: report.settings.load, load_average_before: round(report.machine.loadBefore) },
    warnings: report.warnings,
    notes: report.notes,
    verdict: verdict(report),
    node_verdict: nodeVerdict(report),
    methods: report.methods,
    wall_s: round(report.wallS),
  })
}

/** One measurement (medians over the rounds, with ranges and each round's figures) as one JSON line. */
export function jsonLine(r: Row, method: MethodInfo): string {
  return JSON.stringify({
    type: "measurement",
    name: r.name,
    mode: r.mode,
    size: r.size,
    inflight: r.inflight,
    p50_us: round(r.p50_us),
    p99_us: round(r.p99_us),
    msgs_per_s: Math.round(r.msgs_per_s),
    cpu_s: round(r.hub_cpu_s + r.worker_cpu_s),
    p50_us_range: roundPair(figureRange(r, "p50_us")),
    p99_us_range: roundPair(figureRange(r, "p99_us")),
    msgs_per_s_range: roundPair(figureRange(r, "msgs_per_s")),
    p90_us: round(r.p90_us),
    p999_us: round(r.p999_us),
    max_us: round(r.max_us),
    gb_s: round((r.msgs_per_s * r.size) / 1e9),
    hub_cpu_s: round(r.hub_cpu_s),
    worker_cpu_s: round(r.worker_cpu_s),
    count: r.count,
    elapsed_s: round(r.elapsed_s),
    rounds: r.rounds.map(
      (f) => f && { p50_us: round(f.p50_us), p99_us: round(f.p99_us), msgs_per_s: Math.round(f.msgs_per_s) },
    ),
    peers: method.peers,
  })
}

/** The idle measurement as a JSON line of the same shape (no latencies, no messages). */
export function jsonIdleLine(idle: IdleResult, name = "slotbus"): string {
  return JSON.stringify({
    type: "idle",
    name,
    mode: "park-idle",
    size: 0,
    inflight: 0,
    p50_us: null,
    p99_us: null,
    msgs_per_s: 0,
    cpu_s: round(idle.hub_cpu_s + idle.worker_cpu_s),
    hub_cpu_s: round(idle.hub_cpu_s),
    worker_cpu_s: round(idle.worker_cpu_s),
    elapsed_s: round(idle.elapsed_s),
    core_pct: round((100 * (idle.hub_cpu_s + idle.worker_cpu_s)) / idle.elapsed_s),
  })
}

/** The whole run as JSON lines: the header record first, then every measurement, then the idle one. */
export function renderJson(report: BenchReport): string {
  const byId = new Map(report.methods.map((m) => [m.id, m]))
  const out = [jsonHeader(report), ...report.rows.map((r) => jsonLine(r, byId.get(idOf(r))!))]
  if (report.idle) out.push(jsonIdleLine(report.idle))
  if (report.nodeIdle) out.push(jsonIdleLine(report.nodeIdle, "node"))
  return out.join("\n") + "\n"
}
