// `slotbus bench`: round trips between two processes through slotbus and the alternatives, in one run.
import { appendFileSync, writeFileSync } from "node:fs"
import * as cWorker from "./methods/c-worker.ts"
import * as floor from "./methods/floor.ts"
import * as http from "./methods/http.ts"
import * as processSend from "./methods/process-send.ts"
import * as slotbus from "./methods/slotbus.ts"
import * as tcp from "./methods/tcp.ts"
import * as unix from "./methods/unix.ts"
import * as threadWorker from "./methods/worker.ts"
import { busyWarnings, describeMachine, machineBusySeconds } from "./lib/machine.ts"
import { checkEcho, histogramOf, measureTransport, payload, type Sample } from "./lib/measure.ts"
import { killAll, reapedChildrenCpuSeconds, selfCpuSeconds } from "./lib/proc.ts"
import { SkipMethod, type Transport } from "./lib/transport.ts"
import {
  CDF_PERCENTILES, formatSize, jsonIdleLine, jsonLine, renderHtml, renderTable,
  type BenchReport, type IdleResult, type MethodInfo, type Row,
} from "./report.ts"

export const USAGE = `usage: slotbus bench [options]

Measures request/response round trips between two processes through slotbus (each idle strategy,
Bun↔Bun and Bun↔C), process.send, a unix socket, TCP loopback, HTTP, a Worker thread, and a C floor.

  --sizes <list>   payload sizes, e.g. 64,4k,64k,1m (default 64,4k,64k,1m; with --quick 64,64k)
  --quick          shorter measurements and fewer sizes (under 20 s)
  --time <ms>      time with 1 request in flight per method and size (default 600, --quick 150);
                   32 in flight gets 2/3 of it, warm-up 1/6
  --only <list>    only these methods: a name (slotbus, slotbus-c, floor, process.send, unix, tcp,
                   http, worker) or name:mode (slotbus:spin, floor:futex, …); "idle" for the idle test
  --idle <ms>      how long to measure the CPU of an idle parked hub+worker (default 2000; 0: skip)
  --json [file]    one JSON object per measurement per line, to file or stdout (the table then goes to stderr)
  --html <file>    a self-contained HTML report with latency CDFs and throughput bars
  --c-worker <p>   the C worker to use: a binary, or a .c file (default: build examples/c-worker/worker.c)
  -h, --help       this text`

export class UsageError extends Error {}

export interface BenchOptions {
  sizes: number[]
  quick: boolean
  warmupMs: number
  latencyMs: number
  throughputMs: number
  idleMs: number
  only: string[] | null
  /** "-" for stdout. */
  json: string | null
  html: string | null
  cWorker: string | undefined
  help: boolean
}

const KiB = 1024
const MAX_SIZE = 16 * KiB * KiB
export const INFLIGHT = [1, 32] as const

/** "64", "4k", "64KiB", "1m", "1MB" → bytes (powers of 1024). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib)?$/i.exec(text.trim())
  if (!m) throw new UsageError(`bad size "${text}": use a number of bytes with an optional k or m suffix, like 64, 4k, 1m`)
  const unit = (m[2] ?? "b").toLowerCase()[0]
  const n = Math.round(Number(m[1]) * (unit === "m" ? KiB * KiB : unit === "k" ? KiB : 1))
  if (n < 1 || n > MAX_SIZE) throw new UsageError(`size "${text}" is out of range: 1 byte to 16m`)
  return n
}

function positiveMs(text: string | undefined, flag: string, allowZero = false): number {
  const n = Number(text)
  if (text === undefined || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 600_000)
    throw new UsageError(`${flag} takes a whole number of milliseconds${allowZero ? " (0 to skip)" : ""}, got ${text ?? "nothing"}`)
  return n
}

export function parseArgs(argv: string[]): BenchOptions {
  let sizes: number[] | null = null
  let quick = false
  let time: number | null = null
  let idle: number | null = null
  let only: string[] | null = null
  let json: string | null = null
  let html: string | null = null
  let cWorkerPath: string | undefined
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!
    const eq = raw.startsWith("--") ? raw.indexOf("=") : -1
    const flag = eq > 0 ? raw.slice(0, eq) : raw
    const inline = eq > 0 ? raw.slice(eq + 1) : undefined
    const value = () => {
      if (inline !== undefined) return inline
      const v = argv[i + 1]
      if (v === undefined || v.startsWith("-")) throw new UsageError(`${flag} needs a value`)
      i++
      return v
    }
    switch (flag) {
      case "-h":
      case "--help":
        help = true
        break
      case "--quick":
        quick = true
        break
      case "--sizes": {
        const list = value().split(",").filter((s) => s.trim() !== "")
        if (list.length === 0) throw new UsageError("--sizes needs at least one size")
        sizes = [...new Set(list.map(parseSize))]
        break
      }
      case "--time":
        time = positiveMs(value(), "--time")
        break
      case "--idle":
        idle = positiveMs(value(), "--idle", true)
        break
      case "--only": {
        only = value().split(",").map((s) => s.trim()).filter(Boolean)
        const known = new Set(["idle", ...METHODS.flatMap((m) => [m.name, m.id])])
        const bad = only.filter((o) => !known.has(o))
        if (bad.length > 0) throw new UsageError(`--only: unknown ${bad.join(", ")}; known: ${[...known].join(", ")}`)
        break
      }
      case "--json":
        // The file is optional: a following argument that is not a flag names it.
        if (inline !== undefined) json = inline || "-"
        else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith("-")) json = argv[++i]!
        else json = "-"
        break
      case "--html":
        html = value()
        break
      case "--c-worker":
        cWorkerPath = value()
        break
      default:
        throw new UsageError(`unknown option ${raw}`)
    }
  }
  const latencyMs = time ?? (quick ? 150 : 600)
  return {
    sizes: sizes ?? (quick ? [64, 64 * KiB] : [64, 4 * KiB, 64 * KiB, KiB * KiB]),
    quick,
    latencyMs,
    throughputMs: Math.max(1, Math.round((latencyMs * 2) / 3)),
    warmupMs: Math.max(1, Math.round(latencyMs / 6)),
    idleMs: idle ?? (quick ? 1000 : 2000),
    only,
    json,
    html,
    cWorker: cWorkerPath,
    help,
  }
}

// ---- methods ----

interface MethodDef extends MethodInfo {
  open?: (o: BenchOptions) => Promise<Transport>
  floor?: "spin" | "futex"
}

function def(name: string, mode: string, label: string, peers: string, rest: Partial<MethodDef>): MethodDef {
  return { id: `${name}:${mode}`, name, mode, label, peers, ...rest }
}

export const METHODS: MethodDef[] = [
  def("floor", "spin", "floor spin", "C↔C", { floor: "spin" }),
  def("floor", "futex", "floor futex", "C↔C", { floor: "futex" }),
  def("slotbus", "spin", "slotbus spin", "Bun↔Bun", { open: () => slotbus.open("spin") }),
  def("slotbus", "adaptive", "slotbus adaptive", "Bun↔Bun", { open: () => slotbus.open("adaptive") }),
  def("slotbus", "park", "slotbus park", "Bun↔Bun", { open: () => slotbus.open("park") }),
  def("slotbus-c", "spin", "slotbus spin", "Bun↔C --spin", { open: (o) => cWorker.open("spin", o.cWorker) }),
  def("slotbus-c", "adaptive", "slotbus adaptive", "Bun↔C", { open: (o) => cWorker.open("adaptive", o.cWorker) }),
  def("slotbus-c", "park", "slotbus park", "Bun↔C --futex", { open: (o) => cWorker.open("park", o.cWorker) }),
  def("process.send", "advanced", "process.send", "Bun↔Bun", { open: processSend.open }),
  def("unix", "stream", "unix socket", "Bun↔Bun", { open: unix.open }),
  def("tcp", "loopback", "TCP loopback", "Bun↔Bun", { open: tcp.open }),
  def("http", "keep-alive", "HTTP keep-alive", "Bun↔Bun", { open: http.open }),
  def("worker", "postMessage", "Worker postMessage", "same process", { open: threadWorker.open }),
]

const selected = (o: BenchOptions, m: { name: string; id: string }) => !o.only || o.only.includes(m.name) || o.only.includes(m.id)

// ---- progress ----

class Progress {
  private readonly started = performance.now()
  private done = 0
  private readonly tty = Boolean(process.stderr.isTTY)

  constructor(private readonly total: number, private readonly estimateS: number) {}

  /** A new step (a method at one size) begins. */
  step(what: string) {
    this.done++
    this.show(what, !this.tty)
  }

  detail(what: string) {
    if (this.tty) this.show(what, false)
  }

  skip(n: number) {
    this.done += n
  }

  private show(what: string, newline: boolean) {
    const s = ((performance.now() - this.started) / 1000).toFixed(0)
    const text = `[${String(this.done).padStart(String(this.total).length)}/${this.total}] ${s}/~${Math.ceil(this.estimateS)} s  ${what}`
    process.stderr.write(newline ? `${text}\n` : `\r\x1b[2K${text.slice(0, (process.stderr.columns ?? 120) - 1)}`)
  }

  end() {
    if (this.tty) process.stderr.write("\r\x1b[2K")
  }
}

// ---- measuring ----

function rowOf(m: MethodInfo, size: number, inflight: number, s: Sample): Row {
  // hdr-histogram reports a bucket's highest equivalent value, which can sit just above the true maximum
  const at = (p: number) => Math.min(s.hist.getValueAtPercentile(p), s.hist.maxValue) / 1000
  return {
    name: m.name,
    mode: m.mode,
    size,
    inflight,
    count: s.count,
    elapsed_s: s.elapsedS,
    p50_us: at(50),
    p90_us: at(90),
    p99_us: at(99),
    p999_us: at(99.9),
    max_us: s.hist.maxValue / 1000,
    msgs_per_s: s.count / s.elapsedS,
    hub_cpu_s: s.hubCpuS,
    worker_cpu_s: s.workerCpuS,
    cdf: CDF_PERCENTILES.map((p) => [p, p === 100 ? s.hist.maxValue / 1000 : at(p)]),
  }
}

/** Rejects if `work` takes longer than `ms`: a stuck transport must not hang the whole run. */
function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const stall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms)
  })
  return Promise.race([work, stall]).finally(() => clearTimeout(timer))
}

const describe = (m: MethodInfo) => `${m.label} (${m.peers})`
const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0]!

export async function runBench(o: BenchOptions, emit: (row: Row, m: MethodInfo) => void, onIdle: (idle: IdleResult) => void): Promise<BenchReport> {
  const machine = describeMachine()
  const methods = METHODS.filter((m) => selected(o, m))
  const wantIdle = o.idleMs > 0 && (!o.only || o.only.includes("idle"))
  const stepS = (o.warmupMs * 2 + o.latencyMs + o.throughputMs) / 1000 + 0.05
  const progress = new Progress(methods.length * o.sizes.length + (wantIdle ? 1 : 0), methods.length * (o.sizes.length * stepS + 0.2) + (wantIdle ? o.idleMs / 1000 + 0.3 : 0) + 1)
  const rows: Row[] = []
  const notes: string[] = []
  let idle: IdleResult | null = null
  const t0 = performance.now()
  const busy0 = machineBusySeconds()
  const self0 = selfCpuSeconds()
  const reaped0 = reapedChildrenCpuSeconds()
  const limit = Math.max(30_000, 20 * (o.latencyMs + o.warmupMs))
  const record = (m: MethodInfo, row: Row) => {
    rows.push(row)
    emit(row, m)
  }

  const measureIdle = async () => {
    progress.step(`slotbus park · idle CPU for ${(o.idleMs / 1000).toFixed(1)} s`)
    try {
      Bun.gc(true) // the bench's own garbage is not the bus's idle cost
      const r = await bounded(slotbus.measureIdle(o.idleMs), o.idleMs + limit, "the idle measurement")
      idle = { hub_cpu_s: r.hubCpuS, worker_cpu_s: r.workerCpuS, elapsed_s: r.elapsedS }
      onIdle(idle)
    } catch (e) {
      notes.push(`idle CPU of slotbus park: failed: ${message(e)}`)
    }
  }

  try {
    for (const m of methods) {
      // Idle goes first among the Bun methods: the process is at its quietest there.
      if (wantIdle && !idle && !m.floor && !notes.some((n) => n.startsWith("idle"))) await measureIdle()
      let t: Transport | null = null
      let step = 0
      try {
        if (m.floor) {
          await floor.prepare()
          for (const size of o.sizes) {
            step++
            progress.step(`${describe(m)} · ${formatSize(size)}`)
            for (const inflight of INFLIGHT) {
              const ms = inflight === 1 ? o.latencyMs : o.throughputMs
              const r = await bounded(floor.measure(m.floor, size, inflight, ms), limit, describe(m))
              record(m, rowOf(m, size, inflight, { count: r.samples.length, elapsedS: r.elapsedS, hubCpuS: r.hubCpuS, workerCpuS: r.workerCpuS, hist: histogramOf(r.samples) }))
            }
          }
          continue
        }
        progress.detail(`${describe(m)} · starting`)
        t = await bounded(m.open!(o), limit, `starting ${describe(m)}`)
        for (const size of o.sizes) {
          step++
          progress.step(`${describe(m)} · ${formatSize(size)}`)
          const body = payload(size)
          await bounded(checkEcho(t, body), limit, describe(m))
          for (const inflight of INFLIGHT) {
            progress.detail(`${describe(m)} · ${formatSize(size)} · ${inflight} in flight`)
            const ms = inflight === 1 ? o.latencyMs : o.throughputMs
            const s = await bounded(measureTransport(t, body, inflight, ms, o.warmupMs), limit, describe(m))
            record(m, rowOf(m, size, inflight, s))
          }
        }
      } catch (e) {
        notes.push(`${describe(m)}: ${e instanceof SkipMethod ? "skipped" : "failed"}: ${message(e)}`)
        progress.skip(o.sizes.length - step)
      } finally {
        await t?.close().catch(() => {})
      }
    }
    if (wantIdle && !idle && !notes.some((n) => n.startsWith("idle"))) await measureIdle()
  } finally {
    killAll()
    progress.end()
  }

  const wallS = (performance.now() - t0) / 1000
  const busy1 = machineBusySeconds()
  const ours = selfCpuSeconds() - self0 + (reapedChildrenCpuSeconds() - reaped0)
  const others = busy0 !== null && busy1 !== null ? Math.max(0, busy1 - busy0 - ours) : null
  return {
    machine,
    warnings: busyWarnings(machine, others, wallS),
    settings: { sizes: o.sizes, warmupMs: o.warmupMs, latencyMs: o.latencyMs, throughputMs: o.throughputMs, quick: o.quick },
    methods: methods.map(({ id, name, mode, label, peers }) => ({ id, name, mode, label, peers })),
    rows,
    idle,
    notes,
    wallS,
  }
}

/** Runs `slotbus bench` with the given arguments; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "soak") return (await import("./soak.ts")).main(argv.slice(1))
  let o: BenchOptions
  try {
    o = parseArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`slotbus bench: ${e.message}\n\n${USAGE}\n`)
    return 2
  }
  if (o.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }

  const onSignal = () => {
    killAll()
    process.exit(130)
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  process.on("exit", killAll)

  const jsonOut = o.json
  if (jsonOut && jsonOut !== "-") writeFileSync(jsonOut, "")
  const writeJson = (line: string) => {
    if (jsonOut === "-") process.stdout.write(`${line}\n`)
    else if (jsonOut) appendFileSync(jsonOut, `${line}\n`)
  }
  try {
    const report = await runBench(o, (row, m) => writeJson(jsonLine(row, m)), (idle) => writeJson(jsonIdleLine(idle)))
    const table = renderTable(report)
    if (jsonOut === "-") process.stderr.write(table)
    else process.stdout.write(table)
    if (o.html) {
      writeFileSync(o.html, renderHtml(report))
      process.stderr.write(`wrote ${o.html}\n`)
    }
    return report.rows.length > 0 ? 0 : 1
  } finally {
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
}
