// The three outputs of a bench run: a terminal table, JSON lines, and a self-contained HTML page.
import type { Machine } from "./lib/machine.ts"

/** One method of moving a request and its reply between two parties. `id` is `name:mode`. */
export interface MethodInfo {
  id: string
  name: string
  mode: string
  label: string
  peers: string
}

/** One measurement: a method, a payload size and a number of requests in flight. */
export interface Row {
  name: string
  mode: string
  size: number
  inflight: number
  count: number
  elapsed_s: number
  p50_us: number
  p90_us: number
  p99_us: number
  p999_us: number
  max_us: number
  msgs_per_s: number
  hub_cpu_s: number
  worker_cpu_s: number
  /** [percentile, µs] points of the round-trip distribution. */
  cdf: [number, number][]
}

export interface IdleResult {
  hub_cpu_s: number
  worker_cpu_s: number
  elapsed_s: number
}

export interface BenchReport {
  machine: Machine
  warnings: string[]
  settings: { sizes: number[]; warmupMs: number; latencyMs: number; throughputMs: number; quick: boolean }
  methods: MethodInfo[]
  rows: Row[]
  idle: IdleResult | null
  notes: string[]
  wallS: number
}

export const REFERENCE = "slotbus:adaptive"
export const FLOOR = "floor:spin"
export const CDF_PERCENTILES = [
  0, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92, 94, 95, 96, 97, 98, 98.5, 99, 99.2, 99.4, 99.5, 99.6, 99.7, 99.8, 99.9, 100,
]
const LARGE = 64 * 1024

// ---- formatting ----

export function formatSize(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} B`
}

function us(v: number): string {
  if (!Number.isFinite(v)) return "-"
  if (v < 10) return v.toFixed(2)
  if (v < 100) return v.toFixed(1)
  return Math.round(v).toString()
}

function times(x: number): string {
  if (!Number.isFinite(x) || x <= 0) return "-"
  if (x < 1) return `${x.toFixed(2)}×`
  if (x < 10) return `${x.toFixed(1)}×`
  return `${Math.round(x)}×`
}

function rate(v: number): string {
  if (!Number.isFinite(v)) return "-"
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`
  if (v >= 1e4) return `${Math.round(v / 1e3)}k`
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`
  return Math.round(v).toString()
}

const idOf = (r: { name: string; mode: string }) => `${r.name}:${r.mode}`

/** The figures of one table line: a method at one size, both in-flight levels, and its ratios. */
export interface Line {
  method: MethodInfo
  size: number
  lat: Row | undefined
  thr: Row | undefined
  vsRefLatency: number
  vsFloorLatency: number
  vsRefThroughput: number
  gbPerS: number
  hubCpuS: number
  workerCpuS: number
}

export function lines(report: BenchReport, size: number): Line[] {
  const find = (id: string, inflight: number) => report.rows.find((r) => idOf(r) === id && r.size === size && r.inflight === inflight)
  const refLat = find(REFERENCE, 1)
  const refThr = find(REFERENCE, 32)
  const floorLat = find(FLOOR, 1)
  const out: Line[] = []
  for (const method of report.methods) {
    const lat = find(method.id, 1)
    const thr = find(method.id, 32)
    if (!lat && !thr) continue
    const best = Math.max(lat?.msgs_per_s ?? 0, thr?.msgs_per_s ?? 0)
    out.push({
      method,
      size,
      lat,
      thr,
      vsRefLatency: lat && refLat ? lat.p50_us / refLat.p50_us : NaN,
      vsFloorLatency: lat && floorLat ? lat.p50_us / floorLat.p50_us : NaN,
      vsRefThroughput: thr && refThr ? refThr.msgs_per_s / thr.msgs_per_s : NaN,
      gbPerS: (best * size) / 1e9,
      hubCpuS: (lat?.hub_cpu_s ?? 0) + (thr?.hub_cpu_s ?? 0),
      workerCpuS: (lat?.worker_cpu_s ?? 0) + (thr?.worker_cpu_s ?? 0),
    })
  }
  return out
}

function header(report: BenchReport): string[] {
  const m = report.machine
  return [
    `slotbus bench · ${m.cpu} · ${m.cores} cores · ${m.kernel} · Bun ${m.bun} · ${m.date}`,
    ...report.warnings.map((w) => `WARNING: ${w}`),
  ]
}

function legend(report: BenchReport): string[] {
  const s = report.settings
  const ref = report.methods.find((x) => x.id === REFERENCE)
  return [
    `Each method × size: ${s.latencyMs} ms with 1 request in flight (the latencies, in µs), then ${s.throughputMs} ms with 32 in flight; ` +
      `each after ${s.warmupMs} ms of warm-up. Echo of the payload; round trips timed in the hub.`,
    ref
      ? `×sb: how many times slotbus ${ref.mode} (${ref.peers}) beats the line, on p50 latency and on msg/s at 32 in flight (< 1: the line is faster). ` +
        `×floor: p50 as a multiple of the C spin floor.`
      : `(slotbus adaptive was not measured: no ×sb ratios.)`,
    `GB/s (sizes ≥ 64 KiB): payload bytes one way × round trips per second, the better of 1 and 32 in flight. ` +
      `cpu: CPU seconds each side used during the line's measured time.`,
  ]
}

export function idleSummary(idle: IdleResult): string {
  const pct = (s: number) => ((100 * s) / idle.elapsed_s).toFixed(2)
  return `slotbus park, idle: hub ${pct(idle.hub_cpu_s)}% + worker ${pct(idle.worker_cpu_s)}% of one core over ${idle.elapsed_s.toFixed(1)} s with nothing sent`
}

// ---- terminal table ----

const COLUMNS: { title: string; width: number; left?: boolean }[] = [
  { title: "method", width: 20, left: true },
  { title: "peers", width: 16, left: true },
  { title: "p50", width: 8 },
  { title: "p90", width: 8 },
  { title: "p99", width: 8 },
  { title: "p99.9", width: 8 },
  { title: "max", width: 8 },
  { title: "×sb", width: 6 },
  { title: "×floor", width: 7 },
  { title: "msg/s@1", width: 9 },
  { title: "msg/s@32", width: 9 },
  { title: "×sb", width: 6 },
  { title: "GB/s", width: 6 },
  { title: "cpu hub", width: 8 },
  { title: "cpu wkr", width: 8 },
]

export function cells(l: Line): string[] {
  return [
    l.method.label,
    l.method.peers,
    us(l.lat?.p50_us ?? NaN),
    us(l.lat?.p90_us ?? NaN),
    us(l.lat?.p99_us ?? NaN),
    us(l.lat?.p999_us ?? NaN),
    us(l.lat?.max_us ?? NaN),
    times(l.vsRefLatency),
    times(l.vsFloorLatency),
    rate(l.lat?.msgs_per_s ?? NaN),
    rate(l.thr?.msgs_per_s ?? NaN),
    times(l.vsRefThroughput),
    l.size >= LARGE ? l.gbPerS.toFixed(2) : "",
    l.hubCpuS.toFixed(2),
    l.workerCpuS.toFixed(2),
  ]
}

function pad(s: string, width: number, left?: boolean) {
  return left ? s.padEnd(width) : s.padStart(width)
}

export function renderTable(report: BenchReport): string {
  const out = [...header(report), ...legend(report), ""]
  const titleLine = COLUMNS.map((c) => pad(c.title, c.width, c.left)).join(" ")
  for (const size of report.settings.sizes) {
    const ls = lines(report, size)
    if (ls.length === 0) continue
    out.push(`── ${formatSize(size)} ${"─".repeat(Math.max(0, titleLine.length - formatSize(size).length - 4))}`)
    out.push(titleLine)
    for (const l of ls) out.push(cells(l).map((c, i) => pad(c, COLUMNS[i]!.width, COLUMNS[i]!.left)).join(" "))
    out.push("")
  }
  if (report.idle) out.push(idleSummary(report.idle))
  for (const n of report.notes) out.push(`note: ${n}`)
  out.push(`total ${report.wallS.toFixed(1)} s`)
  return out.join("\n") + "\n"
}

// ---- JSON lines ----

/** One measurement as one JSON line. */
export function jsonLine(r: Row, method: MethodInfo): string {
  return JSON.stringify({
    name: r.name,
    mode: r.mode,
    size: r.size,
    inflight: r.inflight,
    p50_us: round(r.p50_us),
    p99_us: round(r.p99_us),
    msgs_per_s: Math.round(r.msgs_per_s),
    cpu_s: round(r.hub_cpu_s + r.worker_cpu_s),
    p90_us: round(r.p90_us),
    p999_us: round(r.p999_us),
    max_us: round(r.max_us),
    gb_s: round((r.msgs_per_s * r.size) / 1e9),
    hub_cpu_s: round(r.hub_cpu_s),
    worker_cpu_s: round(r.worker_cpu_s),
    count: r.count,
    elapsed_s: round(r.elapsed_s),
    peers: method.peers,
  })
}

/** The idle measurement as a JSON line of the same shape (no latencies, no messages). */
export function jsonIdleLine(idle: IdleResult): string {
  return JSON.stringify({
    name: "slotbus",
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

function round(v: number): number {
  if (!Number.isFinite(v)) return v
  return Number(v.toPrecision(6))
}

// ---- HTML ----

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const SIZE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

function latencyLabel(v: number): string {
  if (v >= 1e6) return `${v / 1e6}s`
  if (v >= 1e3) return `${v / 1e3}ms`
  return `${v}µs`
}

// The percentile axis stretches the tail: a step is ten times closer to 100% (50, 90, 99, 99.9), the maximum on top.
const TAIL_TOP = 3.5
const tailPosition = (p: number) => (p >= 100 ? TAIL_TOP : Math.min(3, -Math.log10(1 - p / 100)))

/** Log-x CDF of the 1-in-flight round trips of one method, one line per size, on a shared axis. */
function cdfPlot(report: BenchReport, method: MethodInfo, lo: number, hi: number): string {
  const W = 360, H = 220, L = 44, R = 22, T = 10, B = 34
  const x = (v: number) => L + ((Math.log10(Math.max(v, 1e-3)) - lo) / (hi - lo)) * (W - L - R)
  const y = (p: number) => T + (1 - tailPosition(p) / TAIL_TOP) * (H - T - B)
  const parts: string[] = []
  for (let d = lo; d <= hi; d++) {
    const px = x(10 ** d).toFixed(1)
    parts.push(`<line x1="${px}" y1="${T}" x2="${px}" y2="${H - B}" class="grid"/>`)
    parts.push(`<text x="${px}" y="${H - B + 14}" text-anchor="middle">${latencyLabel(Number((10 ** d).toPrecision(1)))}</text>`)
  }
  for (const [p, label] of [[0, "0%"], [50, "50%"], [90, "90%"], [99, "99%"], [99.9, "99.9%"], [100, "max"]] as const) {
    const py = y(p).toFixed(1)
    parts.push(`<line x1="${L}" y1="${py}" x2="${W - R}" y2="${py}" class="grid"/>`)
    parts.push(`<text x="${L - 4}" y="${(Number(py) + 4).toFixed(1)}" text-anchor="end">${label}</text>`)
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">round trip (log scale), 1 in flight</text>`)
  const legend: string[] = []
  report.settings.sizes.forEach((size, i) => {
    const row = report.rows.find((r) => idOf(r) === method.id && r.size === size && r.inflight === 1)
    if (!row) return
    const color = SIZE_COLORS[i % SIZE_COLORS.length]!
    const pts = row.cdf.map(([p, v]) => `${x(v).toFixed(1)},${y(p).toFixed(1)}`).join(" ")
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.6"><title>${esc(formatSize(size))}: p50 ${us(row.p50_us)} µs, p99 ${us(row.p99_us)} µs, max ${us(row.max_us)} µs</title></polyline>`)
    legend.push(`<span style="color:${color}">■</span> ${esc(formatSize(size))}`)
  })
  return `<figure class="cdf" data-method="${esc(method.id)}"><figcaption><b>${esc(method.label)}</b> <span class="peers">${esc(method.peers)}</span><br>${legend.join(" &nbsp;")}</figcaption>` +
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="latency CDF of ${esc(method.label)} ${esc(method.peers)}">${parts.join("")}</svg></figure>`
}

/** Horizontal bars of msg/s at 1 and 32 in flight for every method at one size, log scale. */
function throughputPlot(report: BenchReport, size: number): string {
  const ls = lines(report, size)
  const values = ls.flatMap((l) => [l.lat?.msgs_per_s, l.thr?.msgs_per_s]).filter((v): v is number => !!v && v > 0)
  if (values.length === 0) return ""
  const lo = Math.floor(Math.log10(Math.min(...values))) - 0
  const hi = Math.ceil(Math.log10(Math.max(...values)))
  const W = 760, L = 250, R = 70, BAR = 9, GAP = 8, T = 8
  const H = T + ls.length * (2 * BAR + GAP) + 26
  const x = (v: number) => L + ((Math.log10(v) - lo) / Math.max(1, hi - lo)) * (W - L - R)
  const parts: string[] = []
  for (let d = lo; d <= hi; d++) {
    const px = x(10 ** d).toFixed(1)
    parts.push(`<line x1="${px}" y1="${T}" x2="${px}" y2="${H - 22}" class="grid"/>`)
    parts.push(`<text x="${px}" y="${H - 8}" text-anchor="middle">${rate(10 ** d).replace(/\.00(?=M)/, "")}/s</text>`)
  }
  ls.forEach((l, i) => {
    const top = T + i * (2 * BAR + GAP)
    parts.push(`<text x="${L - 6}" y="${top + BAR + 4}" text-anchor="end">${esc(l.method.label)} · ${esc(l.method.peers)}</text>`)
    ;[l.lat, l.thr].forEach((r, k) => {
      if (!r || r.msgs_per_s <= 0) return
      const w = Math.max(1, x(r.msgs_per_s) - x(10 ** lo))
      const yy = top + k * BAR
      parts.push(`<rect x="${x(10 ** lo).toFixed(1)}" y="${yy}" width="${w.toFixed(1)}" height="${BAR - 1}" class="${k ? "b32" : "b1"}"><title>${esc(l.method.label)} ${esc(l.method.peers)}, ${r.inflight} in flight: ${rate(r.msgs_per_s)} msg/s</title></rect>`)
      parts.push(`<text x="${(x(10 ** lo) + w + 3).toFixed(1)}" y="${yy + BAR - 1}">${rate(r.msgs_per_s)}</text>`)
    })
  })
  return `<figure class="bars" data-size="${size}"><figcaption><b>${esc(formatSize(size))}</b>: round trips per second, ` +
    `<span class="k1">■</span> 1 in flight, <span class="k32">■</span> 32 in flight (log scale)</figcaption>` +
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="throughput at ${esc(formatSize(size))}">${parts.join("")}</svg></figure>`
}

function htmlTable(report: BenchReport, size: number): string {
  const ls = lines(report, size)
  if (ls.length === 0) return ""
  const head = COLUMNS.map((c) => `<th>${esc(c.title)}</th>`).join("")
  const body = ls.map((l) => `<tr>${cells(l).map((c, i) => `<td${COLUMNS[i]!.left ? ' class="l"' : ""}>${esc(c)}</td>`).join("")}</tr>`).join("\n")
  return `<h3>${esc(formatSize(size))}</h3><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`
}

export function renderHtml(report: BenchReport): string {
  const plotted = report.methods.filter((m) => report.rows.some((r) => idOf(r) === m.id && r.inflight === 1))
  const all = report.rows.filter((r) => r.inflight === 1).flatMap((r) => r.cdf.map(([, v]) => v)).filter((v) => v > 0)
  const lo = all.length ? Math.floor(Math.log10(Math.min(...all))) : -1
  const hi = all.length ? Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...all)))) : 3
  const [title, ...warnings] = header(report)
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>slotbus bench ${esc(report.machine.date)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:15px;margin:18px 0 6px}
.warn{background:#fff4d6;border:1px solid #e0b84f;padding:8px 12px;margin:10px 0}
.legend{color:#555;font-size:13px}
table{border-collapse:collapse;font:12px/1.3 ui-monospace,monospace}
th,td{padding:2px 7px;text-align:right;border-bottom:1px solid #eee;white-space:nowrap} td.l{text-align:left} th{border-bottom:1px solid #999}
.grid{stroke:#e3e3e3;stroke-width:1}
svg text{font:10px system-ui,sans-serif;fill:#444}
figure{margin:0;display:inline-block;vertical-align:top} .cdfs figure{margin:0 12px 16px 0}
figcaption{font-size:13px} .peers{color:#777}
.b1{fill:#9ecae1} .b32{fill:#3182bd} .k1{color:#9ecae1} .k32{color:#3182bd}
</style></head><body>
<h1>${esc(title!)}</h1>
${warnings.map((w) => `<div class="warn">${esc(w)}</div>`).join("\n")}
<p class="legend">${legend(report).map(esc).join("<br>")}</p>
<h2>Round trips</h2>
${report.settings.sizes.map((s) => htmlTable(report, s)).join("\n")}
${report.idle ? `<p>${esc(idleSummary(report.idle))}</p>` : ""}
${report.notes.map((n) => `<p class="legend">note: ${esc(n)}</p>`).join("\n")}
<h2>Latency distribution</h2>
<p class="legend">Share of round trips (1 in flight) that took at most the time on the x axis. Both axes stretch the
interesting part: time is on a log scale shared by every plot, and the percentile axis puts 50, 90, 99 and 99.9% at even
steps, so the tail is as visible as the median.</p>
<div class="cdfs">
${plotted.map((m) => cdfPlot(report, m, lo, hi)).join("\n")}
</div>
<h2>Throughput</h2>
${report.settings.sizes.map((s) => throughputPlot(report, s)).join("\n")}
<p class="legend">total ${report.wallS.toFixed(1)} s</p>
</body></html>
`
}
