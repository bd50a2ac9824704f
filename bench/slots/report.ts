// The figures of a bench run and its terminal table; report-json.ts and report-html.ts give its other two outputs.
// Every figure is the median over the rounds, with its range (min–max across rounds); ratios are taken
// within each round (the two methods ran minutes apart at most) and then summarized the same way.
import type { Machine } from "../lib/machine.ts"
import { median, range } from "../lib/samples.ts"
import { MIN_RUN_TRIPS_PER_LOOP, PARTS } from "./measure.ts"

/** One method of moving a request and its reply between two parties. `id` is `name:mode`. */
export interface MethodInfo {
  id: string
  name: string
  mode: string
  label: string
  peers: string
  /** By round: how long its freshly started pair was warmed up, ms, all sizes together (settle.ts); absent for
   * floors, cold runs and older reports. */
  warm_ms?: (number | null)[]
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
  /** --warm: the least traffic each freshly started pair exchanged before its first measurement, ms (absent in older
   * reports, where it was all of it) */
  jitWarmupMs?: number
  /** --cold: pairs measured as started, without warming up (absent in older reports) */
  cold?: boolean
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
  /** The same idle pair with both ends in Node (absent in older reports, null without a Node). */
  nodeIdle?: IdleResult | null
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
/** slotbus with both ends in Node (issue 67), and what the Node verdict compares it with: Node's own ways. */
export const NODE_SLOTBUS = "node:slotbus"
export const NODE_RIVALS: [string, string][] = [
  ["node:process.send", "Node's process.send"],
  ["node:worker", "a worker_threads port"],
  ["node:unix", "Node's unix socket"],
]
export const NODE_IDLE = "slotbus park, Node↔Node"
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

export function us(v: number): string {
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

export function rate(v: number): string {
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

export const span = ([lo, hi]: [number, number], f: (v: number) => string) =>
  Number.isFinite(lo) ? `${f(lo)}–${f(hi)}` : "-"
const timesSpan = (s: Stat) => (Number.isFinite(s.lo) ? `${times(s.lo).slice(0, -1)}–${times(s.hi)}` : "-")

export const idOf = (r: { name: string; mode: string }) => `${r.name}:${r.mode}`

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

/**
 * The Node line (issue 67): slotbus Node↔Node's p50 at the smallest size as a multiple of Bun↔Bun's (slotbus
 * adaptive), against Node's own ways, and the mixed pairs' p50s; null when slotbus Node↔Node was not measured.
 */
export function nodeVerdict(report: BenchReport): string | null {
  const size = Math.min(...report.settings.sizes)
  const find = (id: string) => report.rows.find((r) => idOf(r) === id && r.size === size && r.inflight === 1)
  const nn = find(NODE_SLOTBUS)
  if (!nn) return null
  const p50 = (x: Figures, y: Figures) => x.p50_us / y.p50_us
  const parts = [`slotbus Node↔Node's p50 is ${us(nn.p50_us)} µs`]
  const vsBun = perRound(nn, find(REFERENCE), p50)
  if (Number.isFinite(vsBun.mid)) parts.push(`${times(vsBun.mid)} (${timesSpan(vsBun)}) Bun↔Bun's (slotbus adaptive)`)
  for (const [id, name] of NODE_RIVALS) {
    const s = perRound(find(id), nn, p50)
    if (Number.isFinite(s.mid)) parts.push(`${faster(s)} than ${name}`)
  }
  const mixed = [
    ["node-bun:slotbus", "Node front, Bun worker"],
    ["bun-node:slotbus", "Bun front, Node worker"],
  ].flatMap(([id, name]) => {
    const r = find(id!)
    return r ? [`${name} ${us(r.p50_us)} µs`] : []
  })
  return `node verdict at ${formatSize(size)} (medians of the rounds' ratios, with ranges): ${parts.join("; ")}${mixed.length ? `; p50 ${mixed.join(", ")}` : ""}`
}

// ---- header and legend ----

export function header(report: BenchReport): string[] {
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

/** How the pairs were warmed up, as a clause of the legend. */
function warmedUp(report: BenchReport): string {
  const s = report.settings
  if (s.cold) return "; each pair was measured as it started, its compilers still at work (--cold)"
  const ms = report.methods.flatMap((m) => m.warm_ms ?? []).filter((x): x is number => x !== null)
  if (ms.length === 0)
    return s.jitWarmupMs ? `; each freshly started pair first exchanged ${s.jitWarmupMs} ms of traffic (--warm)` : ""
  const least = s.jitWarmupMs ? `, at least ${s.jitWarmupMs} ms (--warm)` : ""
  return (
    `; each freshly started pair first exchanged traffic at each size until its compilers were done with it ` +
    `(${(median(ms) / 1000).toFixed(1)} s a pair, median; ${(Math.max(...ms) / 1000).toFixed(1)} s at most${least})`
  )
}

export function legend(report: BenchReport, wide: boolean): string[] {
  const s = report.settings
  const out = [
    `Each round measures every method once, in a rotating order: per size ${s.latencyMs} ms with 1 request in flight, then ` +
      `${s.throughputMs} ms with 32, each after ${s.warmupMs} ms of warm-up` +
      warmedUp(report) +
      `. msg/s: the measured round trips are cut into ${PARTS} runs of equal count and the figure is the median ` +
      `of their rates (a stall spoils the run it falls in, not the figure; one run when they are fewer than ` +
      `${MIN_RUN_TRIPS_PER_LOOP} a request loop a run). Figures are medians across rounds; ` +
      `"range" is the min–max across rounds.`,
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

export function idleSummary(idle: IdleResult, what = "slotbus park"): string {
  const pct = (s: number) => ((100 * s) / idle.elapsed_s).toFixed(2)
  return `${what}, idle: hub ${pct(idle.hub_cpu_s)}% + worker ${pct(idle.worker_cpu_s)}% of one core over ${idle.elapsed_s.toFixed(1)} s with nothing sent`
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
  const node = nodeVerdict(report)
  const out = [
    verdict(report),
    ...(node ? wrap(node, width) : []),
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
  if (report.nodeIdle) out.push(idleSummary(report.nodeIdle, NODE_IDLE))
  for (const n of report.notes) out.push(...wrap(`note: ${n}`, width))
  out.push(`total ${report.wallS.toFixed(1)} s`)
  return out.join("\n") + "\n"
}
