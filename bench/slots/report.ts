// The three outputs of a bench run: a terminal table, JSON lines, and a self-contained HTML page.
// Every figure is the median over the rounds, with its range (min–max across rounds); ratios are taken
// within each round (the two methods ran minutes apart at most) and then summarized the same way.
import type { Machine } from "../lib/machine.ts"
import { median, range } from "../lib/samples.ts"

/** One method of moving a request and its reply between two parties. `id` is `name:mode`. */
export interface MethodInfo {
  id: string
  name: string
  mode: string
  label: string
  peers: string
}

/** The figures of one measurement (a method, a size, a number in flight) in one round. */
export interface Figures {
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
}

/** A measurement over every round: each figure is the median across rounds; `rounds` keeps each round's. */
export interface Row extends Figures {
  name: string
  mode: string
  size: number
  inflight: number
  /** By round number; null where the method was not measured in that round. */
  rounds: (Figures | null)[]
  /** [percentile, µs] points of the round-trip distribution, each the median across rounds. */
  cdf: [number, number][]
}

export interface IdleResult {
  hub_cpu_s: number
  worker_cpu_s: number
  elapsed_s: number
}

export interface Settings {
  sizes: number[]
  rounds: number
  warmupMs: number
  /** --warm: traffic each freshly started pair exchanged before its first measurement (absent in older reports) */
  jitWarmupMs?: number
  latencyMs: number
  throughputMs: number
  quick: boolean
  /** CPU burner processes that ran for the duration (--load). */
  load: number
}

export interface BenchReport {
  machine: Machine
  warnings: string[]
  settings: Settings
  methods: MethodInfo[]
  rows: Row[]
  idle: IdleResult | null
  notes: string[]
  wallS: number
}

export const REFERENCE = "slotbus:adaptive"
export const FLOOR_C = "floor:spin"
export const FLOOR_BUN = "floor-bun:spin"
/** What the verdict compares slotbus with. */
export const RIVALS: [string, string][] = [
  ["process.send:advanced", "process.send"],
  ["unix:stream", "the unix socket"],
]
export const CDF_PERCENTILES = [
  0, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92, 94, 95, 96, 97, 98, 98.5, 99, 99.2, 99.4, 99.5, 99.6, 99.7,
  99.8, 99.9, 100,
]
const LARGE = 64 * 1024
export const TABLE_WIDTH = 100

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
  if (x < 0.1) return `${x.toPrecision(1)}×`
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

/** Like `rate`, to 3 significant digits, the unit once when both ends share it: "12.3–20.0M", "615k–1.00M". */
function rateSpan([lo, hi]: [number, number]): string {
  if (!Number.isFinite(lo)) return "-"
  const unit = (v: number) => (v >= 1e6 ? "M" : v >= 1e3 ? "k" : "")
  const num = (v: number) => {
    const u = unit(v)
    const x = u === "M" ? v / 1e6 : u === "k" ? v / 1e3 : v
    return x >= 100 ? Math.round(x).toString() : x.toPrecision(3)
  }
  return unit(lo) === unit(hi) ? `${num(lo)}–${num(hi)}${unit(hi)}` : `${num(lo)}${unit(lo)}–${num(hi)}${unit(hi)}`
}

const span = ([lo, hi]: [number, number], f: (v: number) => string) => (Number.isFinite(lo) ? `${f(lo)}–${f(hi)}` : "-")
const timesSpan = (s: Stat) => (Number.isFinite(s.lo) ? `${times(s.lo).slice(0, -1)}–${times(s.hi)}` : "-")

const idOf = (r: { name: string; mode: string }) => `${r.name}:${r.mode}`

// ---- figures across rounds ----

/** A median with its range across rounds. */
export interface Stat {
  mid: number
  lo: number
  hi: number
}

const NONE: Stat = { mid: NaN, lo: NaN, hi: NaN }

function statOf(values: number[]): Stat {
  const [lo, hi] = range(values)
  return { mid: median(values), lo, hi }
}

/** A figure of one row across its rounds. */
export function figureRange(row: Row | undefined, key: keyof Figures): [number, number] {
  return row ? range(row.rounds.map((f) => f?.[key] ?? NaN)) : [NaN, NaN]
}

/** `f(a, b)` in each round where both rows were measured, summarized. */
function perRound(a: Row | undefined, b: Row | undefined, f: (a: Figures, b: Figures) => number): Stat {
  if (!a || !b) return NONE
  const values: number[] = []
  for (let r = 0; r < Math.max(a.rounds.length, b.rounds.length); r++) {
    const x = a.rounds[r],
      y = b.rounds[r]
    if (x && y) values.push(f(x, y))
  }
  return statOf(values)
}

/** The figures of one table line: a method at one size, both in-flight levels, and its ratios. */
export interface Line {
  method: MethodInfo
  size: number
  lat: Row | undefined
  thr: Row | undefined
  /** The line's p50 over slotbus adaptive's: how many times slotbus is faster (< 1: the line is). */
  latVsSb: Stat
  /** slotbus adaptive's msg/s at 32 in flight over the line's. */
  thrVsSb: Stat
  /** The line's p50 as a multiple of the C spin floor's, and of the bare Bun floor's. */
  vsFloorC: Stat
  vsFloorBun: Stat
  gbPerS: number
  hubCpuS: number
  workerCpuS: number
}

export function lines(report: BenchReport, size: number): Line[] {
  const find = (id: string, inflight: number) =>
    report.rows.find((r) => idOf(r) === id && r.size === size && r.inflight === inflight)
  const refLat = find(REFERENCE, 1)
  const refThr = find(REFERENCE, 32)
  const out: Line[] = []
  for (const method of report.methods) {
    const lat = find(method.id, 1)
    const thr = find(method.id, 32)
    if (!lat && !thr) continue
    const best = Math.max(lat?.msgs_per_s ?? 0, thr?.msgs_per_s ?? 0)
    const p50 = (x: Figures, y: Figures) => x.p50_us / y.p50_us
    out.push({
      method,
      size,
      lat,
      thr,
      latVsSb: perRound(lat, refLat, p50),
      thrVsSb: perRound(refThr, thr, (x, y) => x.msgs_per_s / y.msgs_per_s),
      vsFloorC: perRound(lat, find(FLOOR_C, 1), p50),
      vsFloorBun: perRound(lat, find(FLOOR_BUN, 1), p50),
      gbPerS: (best * size) / 1e9,
      hubCpuS: (lat?.hub_cpu_s ?? 0) + (thr?.hub_cpu_s ?? 0),
      workerCpuS: (lat?.worker_cpu_s ?? 0) + (thr?.worker_cpu_s ?? 0),
    })
  }
  return out
}

// ---- the verdict ----

const faster = (s: Stat) =>
  s.mid >= 1
    ? `${times(s.mid)} (${timesSpan(s)}) faster`
    : `${times(1 / s.mid)} (${timesSpan({ mid: 0, lo: 1 / s.hi, hi: 1 / s.lo })}) slower`

/**
 * One line: slotbus adaptive against process.send and the unix socket at the smallest size, p50 and msg/s at
 * 32 in flight, each as the median ratio across rounds with its range.
 */
export function verdict(report: BenchReport): string {
  const size = Math.min(...report.settings.sizes)
  const ls = lines(report, size)
  const sb = report.methods.find((m) => m.id === REFERENCE)
  if (!sb || !ls.some((l) => l.method.id === REFERENCE && l.lat))
    return "verdict: slotbus adaptive was not measured, so there is nothing to compare"
  const parts: string[] = []
  const missing: string[] = []
  for (const [id, name] of RIVALS) {
    const l = ls.find((x) => x.method.id === id)
    if (!l || !Number.isFinite(l.latVsSb.mid)) {
      missing.push(name)
      continue
    }
    const thr = Number.isFinite(l.thrVsSb.mid)
      ? `, ${times(l.thrVsSb.mid)} (${timesSpan(l.thrVsSb)}) its msg/s at 32 in flight`
      : ""
    parts.push(`${faster(l.latVsSb)} than ${name} at p50${thr}`)
  }
  const rounds = report.settings.rounds
  const head = `verdict at ${formatSize(size)} (median and range of ${rounds} round${rounds === 1 ? "" : "s"}${report.settings.load ? `, ${report.settings.load} CPU burners` : ""}): slotbus adaptive is`
  if (parts.length === 0)
    return `verdict: ${missing.join(" and ")} were not measured, so there is nothing to compare slotbus with`
  return `${head} ${parts.join("; ")}${missing.length ? ` (${missing.join(", ")}: not measured)` : ""}`
}

// ---- header and legend ----

function header(report: BenchReport): string[] {
  const m = report.machine
  const s = report.settings
  return [
    `slotbus bench · ${m.date} · ${s.rounds} round${s.rounds === 1 ? "" : "s"}, methods interleaved`,
    `${m.cpu} · ${m.cores} cores · ${m.kernel} · Bun ${m.bun} · slotbus ${m.slotbus}`,
    ...(s.load
      ? [
          `LOAD: ${s.load} CPU burner process${s.load === 1 ? "" : "es"} (busy loops) ran for the whole run (--load ${s.load})`,
        ]
      : []),
    ...report.warnings.map((w) => `WARNING: ${w}`),
  ]
}

function legend(report: BenchReport, wide: boolean): string[] {
  const s = report.settings
  const out = [
    `Each round measures every method once, in a rotating order: per size ${s.latencyMs} ms with 1 request in flight, then ` +
      `${s.throughputMs} ms with 32, each after ${s.warmupMs} ms of warm-up` +
      (s.jitWarmupMs ? `; each freshly started pair first exchanged ${s.jitWarmupMs} ms of traffic (--warm)` : "") +
      `. Figures are medians across rounds; "range" is the min–max across rounds.`,
    report.methods.some((x) => x.id === REFERENCE)
      ? `×sb p50: the line's p50 over slotbus adaptive's (how many times slotbus is faster; < 1: the line is). ` +
        `×sb @32: slotbus adaptive's msg/s at 32 in flight over the line's. Ratios are taken within each round.`
      : `(slotbus adaptive was not measured: no ×sb ratios.)`,
    `×floor C, ×floor Bun: the line's p50 as a multiple of the C spin floor's (two C processes) and of the bare ` +
      `Bun floor's (two Bun processes, Atomics over a shared mmap'd file).`,
  ]
  if (wide)
    out.push(
      `GB/s (sizes ≥ 64 KiB): payload bytes one way × round trips per second, the better of 1 and 32 in flight. ` +
        `cpu s: CPU seconds each side used in the line's measured time (median round).`,
    )
  else out.push(`--wide adds peers, p90, p99, p99.9, max, msg/s at 1 in flight, the ratios' ranges, GB/s and CPU.`)
  return out
}

/** Greedy word wrap at `width` columns. */
export function wrap(text: string, width = TABLE_WIDTH): string[] {
  const out: string[] = []
  let line = ""
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) out.push(line)
  return out
}

export function idleSummary(idle: IdleResult): string {
  const pct = (s: number) => ((100 * s) / idle.elapsed_s).toFixed(2)
  return `slotbus park, idle: hub ${pct(idle.hub_cpu_s)}% + worker ${pct(idle.worker_cpu_s)}% of one core over ${idle.elapsed_s.toFixed(1)} s with nothing sent`
}

// ---- terminal table ----

interface Column {
  title: string
  width: number
  left?: boolean
  /** Only in --wide. */
  wide?: boolean
  cell: (l: Line) => string
}

export const COLUMNS: Column[] = [
  { title: "method", width: 18, left: true, cell: (l) => l.method.label },
  { title: "peers", width: 13, left: true, wide: true, cell: (l) => l.method.peers },
  { title: "p50 µs", width: 7, cell: (l) => us(l.lat?.p50_us ?? NaN) },
  { title: "range µs", width: 11, cell: (l) => span(figureRange(l.lat, "p50_us"), us) },
  { title: "p90 µs", width: 7, wide: true, cell: (l) => us(l.lat?.p90_us ?? NaN) },
  { title: "p99 µs", width: 7, wide: true, cell: (l) => us(l.lat?.p99_us ?? NaN) },
  { title: "p99.9 µs", width: 8, wide: true, cell: (l) => us(l.lat?.p999_us ?? NaN) },
  { title: "max µs", width: 7, wide: true, cell: (l) => us(l.lat?.max_us ?? NaN) },
  { title: "×sb p50", width: 7, cell: (l) => times(l.latVsSb.mid) },
  { title: "×p50 range", width: 11, wide: true, cell: (l) => timesSpan(l.latVsSb) },
  { title: "×floor C", width: 8, cell: (l) => times(l.vsFloorC.mid) },
  { title: "×floor Bun", width: 10, cell: (l) => times(l.vsFloorBun.mid) },
  { title: "msg/s @1", width: 8, wide: true, cell: (l) => rate(l.lat?.msgs_per_s ?? NaN) },
  { title: "msg/s @32", width: 9, cell: (l) => rate(l.thr?.msgs_per_s ?? NaN) },
  { title: "range msg/s", width: 11, cell: (l) => rateSpan(figureRange(l.thr, "msgs_per_s")) },
  { title: "×sb @32", width: 7, cell: (l) => times(l.thrVsSb.mid) },
  { title: "×@32 range", width: 11, wide: true, cell: (l) => timesSpan(l.thrVsSb) },
  { title: "GB/s", width: 6, wide: true, cell: (l) => (l.size >= LARGE ? l.gbPerS.toFixed(2) : "") },
  { title: "cpu hub s", width: 9, wide: true, cell: (l) => l.hubCpuS.toFixed(2) },
  { title: "cpu wkr s", width: 9, wide: true, cell: (l) => l.workerCpuS.toFixed(2) },
]

export const columnsFor = (wide: boolean) => COLUMNS.filter((c) => wide || !c.wide)

/** The cells of one line, in the order of `columnsFor(wide)`. */
export function cells(l: Line, wide = true): string[] {
  return columnsFor(wide).map((c) => c.cell(l))
}

const fit = (s: string, width: number) => (s.length > width ? `${s.slice(0, width - 1)}…` : s)

function pad(s: string, width: number, left?: boolean) {
  return left ? s.padEnd(width) : s.padStart(width)
}

export function renderTable(report: BenchReport, wide = false): string {
  const cols = columnsFor(wide)
  const width = wide ? Infinity : TABLE_WIDTH
  const out = [
    verdict(report),
    ...header(report).flatMap((h) => wrap(h, width)),
    ...legend(report, wide).flatMap((t) => wrap(t, width)),
    "",
  ]
  const titleLine = cols.map((c) => pad(c.title, c.width, c.left)).join(" ")
  for (const size of report.settings.sizes) {
    const ls = lines(report, size)
    if (ls.length === 0) continue
    out.push(`── ${formatSize(size)} ${"─".repeat(Math.max(0, titleLine.length - formatSize(size).length - 4))}`)
    out.push(titleLine)
    for (const l of ls)
      out.push(cols.map((c) => pad(fit(c.cell(l), wide ? Infinity : c.width), c.width, c.left)).join(" "))
    out.push("")
  }
  if (report.idle) out.push(idleSummary(report.idle))
  for (const n of report.notes) out.push(...wrap(`note: ${n}`, width))
  out.push(`total ${report.wallS.toFixed(1)} s`)
  return out.join("\n") + "\n"
}

// ---- JSON lines ----

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
export function jsonIdleLine(idle: IdleResult): string {
  return JSON.stringify({
    type: "idle",
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

/** The whole run as JSON lines: the header record first, then every measurement, then the idle one. */
export function renderJson(report: BenchReport): string {
  const byId = new Map(report.methods.map((m) => [m.id, m]))
  const out = [jsonHeader(report), ...report.rows.map((r) => jsonLine(r, byId.get(idOf(r))!))]
  if (report.idle) out.push(jsonIdleLine(report.idle))
  return out.join("\n") + "\n"
}

// ---- HTML ----

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
// Distinct hues for up to 16 methods; floors are drawn dashed, so they stand apart whatever their colour.
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
    const dash = isFloor(m.id) ? ` stroke-dasharray="6 3"` : ""
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
    `<figure class="cdf" data-size="${size}"><figcaption><b>${esc(formatSize(size))}</b>: round-trip time distribution, every method (dashed: floors; p50 after each name)</figcaption>` +
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
${warnings.map((w) => `<div class="warn">${esc(w)}</div>`).join("\n")}
<p class="legend">${legend(report, true).map(esc).join("<br>")}</p>
<h2>Round trips</h2>
${report.settings.sizes.map((s) => htmlTable(report, s)).join("\n")}
${report.idle ? `<p>${esc(idleSummary(report.idle))}</p>` : ""}
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
