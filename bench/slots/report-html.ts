// The self-contained HTML page of a bench run: its tables, latency CDFs and throughput bars.
import {
  COLUMNS,
  figureRange,
  formatSize,
  header,
  idleSummary,
  idOf,
  legend,
  lines,
  NODE_IDLE,
  nodeVerdict,
  rate,
  span,
  us,
  verdict,
  type BenchReport,
  type MethodInfo,
  type Row,
} from "./report.ts"

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
// Distinct hues for up to 16 methods; floors are drawn dashed and methods with a Node end dotted, so they stand apart
// whatever their colour.
const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
  "#393b79",
  "#ad494a",
  "#637939",
  "#843c39",
  "#3182bd",
  "#e6550d",
]
const colorOf = (report: BenchReport, id: string) =>
  COLORS[
    Math.max(
      0,
      report.methods.findIndex((m) => m.id === id),
    ) % COLORS.length
  ]!
const isFloor = (id: string) => id.startsWith("floor")
const hasNode = (id: string) => /^(node|bun-node)[-:]/.test(id)

function latencyLabel(v: number): string {
  if (v >= 1e6) return `${v / 1e6} s`
  if (v >= 1e3) return `${v / 1e3} ms`
  return `${v} µs`
}

// The percentile axis stretches the tail: a step is ten times closer to 100% (50, 90, 99, 99.9), the maximum on top.
const TAIL_TOP = 3.5
const tailPosition = (p: number) => (p >= 100 ? TAIL_TOP : Math.min(3, -Math.log10(1 - p / 100)))

/** One log-x CDF for one size with every method on it (1 in flight). */
function cdfPlot(report: BenchReport, size: number): string {
  const rows = report.methods
    .map((m) => ({ m, row: report.rows.find((r) => idOf(r) === m.id && r.size === size && r.inflight === 1) }))
    .filter((x): x is { m: MethodInfo; row: Row } => !!x.row)
  if (rows.length === 0) return ""
  const values = rows.flatMap(({ row }) => row.cdf.map(([, v]) => v)).filter((v) => v > 0 && Number.isFinite(v))
  if (values.length === 0) return ""
  const lo = Math.floor(Math.log10(Math.min(...values)))
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values))))
  const W = 900,
    H = 400,
    L = 70,
    R = 20,
    T = 12,
    B = 50
  const x = (v: number) => L + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * (W - L - R)
  const y = (p: number) => T + (1 - tailPosition(p) / TAIL_TOP) * (H - T - B)
  const parts: string[] = []
  for (let d = lo; d <= hi; d++) {
    const px = x(10 ** d).toFixed(1)
    parts.push(`<line x1="${px}" y1="${T}" x2="${px}" y2="${H - B}" class="grid"/>`)
    parts.push(
      `<text x="${px}" y="${H - B + 15}" text-anchor="middle">${latencyLabel(Number((10 ** d).toPrecision(1)))}</text>`,
    )
  }
  for (const [p, label] of [
    [0, "0%"],
    [50, "50%"],
    [90, "90%"],
    [99, "99%"],
    [99.9, "99.9%"],
    [100, "max"],
  ] as const) {
    const py = y(p).toFixed(1)
    parts.push(`<line x1="${L}" y1="${py}" x2="${W - R}" y2="${py}" class="grid"/>`)
    parts.push(`<text x="${L - 5}" y="${(Number(py) + 4).toFixed(1)}" text-anchor="end">${label}</text>`)
  }
  parts.push(
    `<text class="axis" x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">round-trip time, 1 request in flight (log scale)</text>`,
  )
  parts.push(
    `<text class="axis" transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">share of round trips at or below (percentile)</text>`,
  )
  const legend: string[] = []
  for (const { m, row } of rows) {
    const color = colorOf(report, m.id)
    const dash = isFloor(m.id) ? ` stroke-dasharray="6 3"` : hasNode(m.id) ? ` stroke-dasharray="2 2"` : ""
    const pts = row.cdf
      .filter(([, v]) => Number.isFinite(v))
      .map(([p, v]) => `${x(v).toFixed(1)},${y(p).toFixed(1)}`)
      .join(" ")
    parts.push(
      `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.7"${dash}><title>${esc(m.label)} (${esc(m.peers)}): p50 ${us(row.p50_us)} µs, p99 ${us(row.p99_us)} µs, max ${us(row.max_us)} µs</title></polyline>`,
    )
    legend.push(
      `<span class="key"><svg width="22" height="10"><line x1="0" y1="5" x2="22" y2="5" stroke="${color}" stroke-width="2"${dash}/></svg> ${esc(m.label)} <span class="peers">${esc(m.peers)}</span> ${us(row.p50_us)} µs</span>`,
    )
  }
  return (
    `<figure class="cdf" data-size="${size}"><figcaption><b>${esc(formatSize(size))}</b>: round-trip time distribution, every method (dashed: floors; dotted: a Node end; p50 after each name)</figcaption>` +
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="latency CDF at ${esc(formatSize(size))}">${parts.join("")}</svg>` +
    `<div class="keys">${legend.join("")}</div></figure>`
  )
}

function niceStep(max: number): number {
  const raw = max / 5
  const p = 10 ** Math.floor(Math.log10(raw))
  return [1, 2, 2.5, 5, 10].map((k) => k * p).find((s) => s >= raw)!
}

/** Horizontal bars of msg/s at 1 and 32 in flight for every method at one size: linear axis from 0, range whiskers. */
function throughputPlot(report: BenchReport, size: number): string {
  const ls = lines(report, size)
  const top = Math.max(
    0,
    ...ls
      .flatMap((l) => [figureRange(l.lat, "msgs_per_s")[1], figureRange(l.thr, "msgs_per_s")[1]])
      .filter(Number.isFinite),
  )
  if (top <= 0) return ""
  const step = niceStep(top)
  const max = Math.ceil(top / step) * step
  const W = 900,
    L = 270,
    R = 70,
    BAR = 10,
    GAP = 9,
    T = 8
  const H = T + ls.length * (2 * BAR + GAP) + 44
  const x = (v: number) => L + (v / max) * (W - L - R)
  const parts: string[] = []
  for (let v = 0; v <= max + step / 2; v += step) {
    const px = x(v).toFixed(1)
    parts.push(`<line x1="${px}" y1="${T}" x2="${px}" y2="${H - 38}" class="grid"/>`)
    parts.push(`<text x="${px}" y="${H - 24}" text-anchor="middle">${v === 0 ? "0" : rate(v)}</text>`)
  }
  parts.push(
    `<text class="axis" x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">round trips per second (linear axis from 0; whiskers: min–max across rounds)</text>`,
  )
  ls.forEach((l, i) => {
    const y0 = T + i * (2 * BAR + GAP)
    parts.push(
      `<text x="${L - 6}" y="${y0 + BAR + 4}" text-anchor="end">${esc(l.method.label)} · ${esc(l.method.peers)}</text>`,
    )
    ;[l.lat, l.thr].forEach((r, k) => {
      if (!r || !(r.msgs_per_s > 0)) return
      const yy = y0 + k * BAR
      const [a, b] = figureRange(r, "msgs_per_s")
      parts.push(
        `<rect x="${L}" y="${yy}" width="${Math.max(1, x(r.msgs_per_s) - L).toFixed(1)}" height="${BAR - 1}" class="${k ? "b32" : "b1"}"><title>${esc(l.method.label)} ${esc(l.method.peers)}, ${r.inflight} in flight: ${rate(r.msgs_per_s)} msg/s (${span([a, b], rate)})</title></rect>`,
      )
      if (Number.isFinite(a) && b > a)
        parts.push(
          `<line x1="${x(a).toFixed(1)}" y1="${yy + (BAR - 1) / 2}" x2="${x(b).toFixed(1)}" y2="${yy + (BAR - 1) / 2}" class="whisker"/>`,
        )
      parts.push(
        `<text x="${(Math.max(x(r.msgs_per_s), Number.isFinite(b) ? x(b) : 0) + 4).toFixed(1)}" y="${yy + BAR - 1}">${rate(r.msgs_per_s)}</text>`,
      )
    })
  })
  return (
    `<figure class="bars" data-size="${size}"><figcaption><b>${esc(formatSize(size))}</b>: round trips per second, ` +
    `<span class="k1">■</span> 1 in flight, <span class="k32">■</span> 32 in flight</figcaption>` +
    `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="throughput at ${esc(formatSize(size))}">${parts.join("")}</svg></figure>`
  )
}

function htmlTable(report: BenchReport, size: number): string {
  const ls = lines(report, size)
  if (ls.length === 0) return ""
  const head = COLUMNS.map((c) => `<th${c.left ? ' class="l"' : ""}>${esc(c.title)}</th>`).join("")
  const body = ls
    .map((l) => `<tr>${COLUMNS.map((c) => `<td${c.left ? ' class="l"' : ""}>${esc(c.cell(l))}</td>`).join("")}</tr>`)
    .join("\n")
  return `<h3>${esc(formatSize(size))}</h3><div class="scroll"><table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>`
}

export function renderHtml(report: BenchReport): string {
  const [title, ...rest] = header(report)
  const warnings = rest.filter((h) => h.startsWith("WARNING") || h.startsWith("LOAD"))
  const machine = rest.filter((h) => !warnings.includes(h))
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>slotbus bench ${esc(report.machine.date)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:15px;margin:18px 0 6px}
.verdict{font-size:16px;font-weight:600;background:#eef6ee;border:1px solid #9c9;padding:8px 12px;margin:10px 0}
.warn{background:#fff4d6;border:1px solid #e0b84f;padding:8px 12px;margin:10px 0}
.legend{color:#555;font-size:13px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font:11px/1.3 ui-monospace,monospace}
th,td{padding:2px 5px;text-align:right;border-bottom:1px solid #eee;white-space:nowrap} td.l,th.l{text-align:left} th{border-bottom:1px solid #999}
.grid{stroke:#e3e3e3;stroke-width:1} .whisker{stroke:#222;stroke-width:1.2}
svg text{font:11px system-ui,sans-serif;fill:#444} svg text.axis{font-size:12px;fill:#222}
figure{margin:0 0 22px 0} figcaption{font-size:14px;margin-bottom:4px} .peers{color:#777}
.keys{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;max-width:900px} .key{white-space:nowrap}
.b1{fill:#9ecae1} .b32{fill:#3182bd} .k1{color:#9ecae1} .k32{color:#3182bd}
</style></head><body>
<h1>${esc(title!)}</h1>
<p>${machine.map(esc).join("<br>")}</p>
<p class="verdict">${esc(verdict(report))}</p>
${nodeVerdict(report) ? `<p class="verdict">${esc(nodeVerdict(report)!)}</p>` : ""}
${warnings.map((w) => `<div class="warn">${esc(w)}</div>`).join("\n")}
<p class="legend">${legend(report, true).map(esc).join("<br>")}</p>
<h2>Round trips</h2>
${report.settings.sizes.map((s) => htmlTable(report, s)).join("\n")}
${report.idle ? `<p>${esc(idleSummary(report.idle))}</p>` : ""}
${report.nodeIdle ? `<p>${esc(idleSummary(report.nodeIdle, NODE_IDLE))}</p>` : ""}
${report.notes.map((n) => `<p class="legend">note: ${esc(n)}</p>`).join("\n")}
<h2>Latency distribution</h2>
<p class="legend">Share of round trips (1 in flight) that took at most the time on the x axis, one plot per payload size with
every method on it. Time is on a log scale; the percentile axis puts 50, 90, 99 and 99.9% at even steps, so the tail is
as visible as the median. Each point is the median across rounds.</p>
${report.settings.sizes.map((s) => cdfPlot(report, s)).join("\n")}
<h2>Throughput</h2>
${report.settings.sizes.map((s) => throughputPlot(report, s)).join("\n")}
<p class="legend">total ${report.wallS.toFixed(1)} s</p>
</body></html>
`
}
