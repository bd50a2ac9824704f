// `slotbus bench`: round trips between two processes through slotbus and the alternatives, in one run.
import { writeFileSync } from "node:fs"
import * as bunFloor from "./methods/bun-floor.ts"
import * as cWorker from "./methods/c-worker.ts"
import * as floor from "./methods/floor.ts"
import * as http from "./methods/http.ts"
import * as portable from "./methods/portable.ts"
import * as processSend from "./methods/process-send.ts"
import * as pythonWorker from "./methods/python-worker.ts"
import * as slotbus from "./methods/slotbus.ts"
import * as tcp from "./methods/tcp.ts"
import * as unix from "./methods/unix.ts"
import * as threadWorker from "./methods/worker.ts"
import { busyWarnings, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { checkEcho, measureTransport, payload, type Sample } from "./measure.ts"
import { killAll, reapedChildrenCpuSeconds, spawn, type Child } from "../lib/child.ts"
import { processCpuSeconds, selfCpuSeconds } from "../lib/cpu.ts"
import { median, Samples } from "../lib/samples.ts"
import { SkipMethod, type Transport } from "./transport.ts"
import {
  CDF_PERCENTILES,
  formatSize,
  renderTable,
  type BenchReport,
  type Figures,
  type IdleResult,
  type MethodInfo,
  type Row,
} from "./report.ts"
import { renderHtml } from "./report-html.ts"
import { renderJson } from "./report-json.ts"

export const USAGE = `usage: slotbus bench [options]
       slotbus bench soak [options]   (the kill -9 soak test: slotbus bench soak --help)

Measures request/response round trips between two processes through slotbus (each idle strategy,
Bun↔Bun, Bun↔C and Bun↔Python), process.send, a unix socket, TCP loopback, HTTP, a Worker thread, and
two floors: C↔C and bare Bun↔Bun ping-pongs over shared memory. Methods are interleaved over several
rounds; every figure is the median across rounds with its range, and the first line is the verdict.

  --sizes <list>   payload sizes, e.g. 64,4k,64k,1m (default 64,4k,64k,1m; with --quick 64,64k)
  --rounds <n>     rounds; each measures every method once, in a rotating order (default 5, --quick 3)
  --quick          shorter measurements, fewer sizes and rounds (about 30 s)
  --time <ms>      per round, time with 1 request in flight per method and size (default 200, --quick 60);
                   32 in flight gets 2/3 of it, warm-up 1/6
  --only <list>    only these methods: a name (slotbus, backends, slotbus-c, slotbus-py, floor, floor-bun,
                   process.send, unix, tcp, http, worker) or name:mode (slotbus:spin, floor:futex, …); "idle" for
                   the idle test
  --warm <ms>      traffic (32 in flight) each freshly started pair exchanges before it is measured
                   (default 0). A fresh Bun worker is measured while JavaScriptCore still compiles
                   it; a long-running server is not: --warm 3000 measures what a server sees.
  --idle <ms>      how long to measure the CPU of an idle parked hub+worker (default 2000; 0: skip)
  --load <n>       start n CPU burner processes for the whole run (a busy machine on purpose)
  --wide           every column (the default table fits 100 columns)
  --json [file]    JSON lines, to file or stdout (the table then goes to stderr): a header record
                   (machine, versions, settings, load, warnings, verdict), then one line per measurement
  --html <file>    a self-contained HTML report with latency CDFs and throughput bars
  --c-worker <p>   the C worker to use: a binary, or a .c file (default: build examples/c-worker/worker.c)
  -h, --help       this text`

export class UsageError extends Error {}

export interface BenchOptions {
  sizes: number[]
  rounds: number
  quick: boolean
  warmupMs: number
  /** --warm: once per freshly started pair, before its first measurement */
  jitWarmupMs: number
  latencyMs: number
  throughputMs: number
  idleMs: number
  only: string[] | null
  /** CPU burner processes to run for the duration. */
  load: number
  wide: boolean
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
  if (!m)
    throw new UsageError(`bad size "${text}": use a number of bytes with an optional k or m suffix, like 64, 4k, 1m`)
  const unit = (m[2] ?? "b").toLowerCase()[0]
  const n = Math.round(Number(m[1]) * (unit === "m" ? KiB * KiB : unit === "k" ? KiB : 1))
  if (n < 1 || n > MAX_SIZE) throw new UsageError(`size "${text}" is out of range: 1 byte to 16m`)
  return n
}

function count(text: string | undefined, flag: string, min: number, max: number): number {
  const n = Number(text)
  if (text === undefined || !/^\d+$/.test(text) || n < min || n > max)
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, got ${text ?? "nothing"}`)
  return n
}

function positiveMs(text: string | undefined, flag: string, allowZero = false): number {
  const n = Number(text)
  if (text === undefined || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 600_000)
    throw new UsageError(
      `${flag} takes a whole number of milliseconds${allowZero ? " (0 to skip)" : ""}, got ${text ?? "nothing"}`,
    )
  return n
}

export function parseArgs(argv: string[]): BenchOptions {
  let sizes: number[] | null = null
  let quick = false
  let rounds: number | null = null
  let load = 0
  let wide = false
  let time: number | null = null
  let idle: number | null = null
  let warm = 0
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
        const list = value()
          .split(",")
          .filter((s) => s.trim() !== "")
        if (list.length === 0) throw new UsageError("--sizes needs at least one size")
        sizes = [...new Set(list.map(parseSize))]
        break
      }
      case "--rounds":
        rounds = count(value(), "--rounds", 1, 100)
        break
      case "--load":
        load = count(value(), "--load", 0, 64)
        break
      case "--wide":
        wide = true
        break
      case "--time":
        time = positiveMs(value(), "--time")
        break
      case "--idle":
        idle = positiveMs(value(), "--idle", true)
        break
      case "--warm":
        warm = positiveMs(value(), "--warm", true)
        break
      case "--only": {
        only = value()
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
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
  const latencyMs = time ?? (quick ? 60 : 200)
  return {
    sizes: sizes ?? (quick ? [64, 64 * KiB] : [64, 4 * KiB, 64 * KiB, KiB * KiB]),
    rounds: rounds ?? (quick ? 3 : 5),
    quick,
    latencyMs,
    throughputMs: Math.max(1, Math.round((latencyMs * 2) / 3)),
    warmupMs: Math.max(1, Math.round(latencyMs / 6)),
    jitWarmupMs: warm,
    idleMs: idle ?? (quick ? 1000 : 2000),
    only,
    load,
    wide,
    json,
    html,
    cWorker: cWorkerPath,
    help,
  }
}

// ---- methods ----

interface MethodDef extends MethodInfo {
  open?: (o: BenchOptions) => Promise<Transport>
  /** Measures itself, one size and in-flight level at a time. */
  floor?: (size: number, inflight: number, ms: number, warmMs: number) => Promise<Sample>
}

async function cFloor(mode: "spin" | "futex", size: number, inflight: number, ms: number): Promise<Sample> {
  await floor.prepare()
  const r = await floor.measure(mode, size, inflight, ms)
  return {
    count: r.samples.length,
    elapsedS: r.elapsedS,
    hubCpuS: r.hubCpuS,
    workerCpuS: r.workerCpuS,
    times: Samples.of(r.samples),
  }
}

function def(name: string, mode: string, label: string, peers: string, rest: Partial<MethodDef>): MethodDef {
  return { id: `${name}:${mode}`, name, mode, label, peers, ...rest }
}

export const METHODS: MethodDef[] = [
  def("floor", "spin", "C floor spin", "C↔C", { floor: (s, n, ms) => cFloor("spin", s, n, ms) }),
  def("floor", "futex", "C floor futex", "C↔C", { floor: (s, n, ms) => cFloor("futex", s, n, ms) }),
  def("floor-bun", "spin", "Bun floor spin", "Bun↔Bun", { floor: bunFloor.measure }),
  def("slotbus", "spin", "slotbus spin", "Bun↔Bun", { open: () => slotbus.open("spin") }),
  def("slotbus", "adaptive", "slotbus adaptive", "Bun↔Bun", { open: () => slotbus.open("adaptive") }),
  def("slotbus", "park", "slotbus park", "Bun↔Bun", { open: () => slotbus.open("park") }),
  def("slotbus", "into", "slotbus into", "Bun↔Bun (adaptive, answers copied into a buffer per loop)", {
    open: () => slotbus.open("adaptive", true),
  }),
  // the Linux backend against the portable one macOS runs (docs/PROTOCOL.md §13), each hub in a child process
  ...(["spin", "park"] as const).flatMap((idle) =>
    (["linux", "posix"] as const).map((b) =>
      def("backends", `${b}-${idle}`, `${b} ${idle} (child)`, "Bun↔Bun", {
        floor: (...a) => portable.measure(b, idle, ...a),
      }),
    ),
  ),
  def("slotbus-c", "spin", "slotbus-C spin", "Bun↔C --spin (C busy-polls)", {
    open: (o) => cWorker.open("spin", o.cWorker),
  }),
  def("slotbus-c", "adaptive", "slotbus-C adaptive", "Bun↔C (sb_idle adaptive, as the Bun worker)", {
    open: (o) => cWorker.open("adaptive", o.cWorker),
  }),
  def("slotbus-c", "park", "slotbus-C park", "Bun↔C --futex (C parks at once)", {
    open: (o) => cWorker.open("park", o.cWorker),
  }),
  // The Python worker's only idle mode: it parks on its eventfd whenever its ring is empty; the hub is adaptive.
  def("slotbus-py", "eventfd", "slotbus-Py eventfd", "Bun↔Python (parks on its eventfd at once)", {
    open: () => pythonWorker.open("adaptive"),
  }),
  def("process.send", "advanced", "process.send", "Bun↔Bun", { open: processSend.open }),
  def("unix", "stream", "unix socket", "Bun↔Bun", { open: unix.open }),
  def("tcp", "loopback", "TCP loopback", "Bun↔Bun", { open: tcp.open }),
  def("http", "keep-alive", "HTTP keep-alive", "Bun↔Bun", { open: http.open }),
  def("worker", "postMessage", "Worker postMessage", "same process", { open: threadWorker.open }),
]

const selected = (o: BenchOptions, m: { name: string; id: string }) =>
  !o.only || o.only.includes(m.name) || o.only.includes(m.id)

// ---- progress ----

class Progress {
  private readonly started = performance.now()
  private done = 0
  private readonly tty = Boolean(process.stderr.isTTY)

  constructor(
    private readonly total: number,
    private readonly estimateS: number,
  ) {}

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

/** One round's figures of one measurement, and its distribution at CDF_PERCENTILES (µs). */
function figuresOf(s: Sample): { figures: Figures; cdf: number[] } {
  const at = (p: number) => s.times.percentile(p) / 1000
  return {
    figures: {
      count: s.count,
      elapsed_s: s.elapsedS,
      p50_us: at(50),
      p90_us: at(90),
      p99_us: at(99),
      p999_us: at(99.9),
      max_us: at(100),
      msgs_per_s: s.count / s.elapsedS,
      hub_cpu_s: s.hubCpuS,
      worker_cpu_s: s.workerCpuS,
    },
    cdf: CDF_PERCENTILES.map(at),
  }
}

/** Every round of one measurement so far. */
interface Rounds {
  method: MethodInfo
  size: number
  inflight: number
  rounds: (Figures | null)[]
  cdfs: number[][]
}

/** The medians across rounds; counts and times are totals. */
export function rowOf(r: Rounds): Row {
  const present = r.rounds.filter((f): f is Figures => f !== null)
  const mid = (k: keyof Figures) => median(present.map((f) => f[k]))
  const sum = (k: keyof Figures) => present.reduce((n, f) => n + f[k], 0)
  return {
    name: r.method.name,
    mode: r.method.mode,
    size: r.size,
    inflight: r.inflight,
    count: sum("count"),
    elapsed_s: sum("elapsed_s"),
    p50_us: mid("p50_us"),
    p90_us: mid("p90_us"),
    p99_us: mid("p99_us"),
    p999_us: mid("p999_us"),
    max_us: mid("max_us"),
    msgs_per_s: mid("msgs_per_s"),
    hub_cpu_s: mid("hub_cpu_s"),
    worker_cpu_s: mid("worker_cpu_s"),
    rounds: r.rounds,
    cdf: CDF_PERCENTILES.map((p, i) => [p, median(r.cdfs.map((c) => c[i]!))]),
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

/** CPU burners for --load: busy-looping Bun processes, killed with the rest when the run ends. */
function startLoad(n: number): Child[] {
  return Array.from({ length: n }, () => spawn([process.execPath, "-e", "for (;;) {}"]))
}

/** The method order of round `round`: each round starts one method further along, so none is always first or last. */
export function rotation<T>(methods: T[], round: number): T[] {
  return methods.map((_, i) => methods[(i + round) % methods.length]!)
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const machine = describeMachine()
  const methods = METHODS.filter((m) => selected(o, m))
  const wantIdle = o.idleMs > 0 && (!o.only || o.only.includes("idle"))
  const stepS = (o.warmupMs * 2 + o.latencyMs + o.throughputMs) / 1000 + 0.05
  const progress = new Progress(
    o.rounds * methods.length * o.sizes.length + (wantIdle ? 1 : 0),
    o.rounds * methods.length * (o.sizes.length * stepS + o.jitWarmupMs / 1000 + 0.2) +
      (wantIdle ? o.idleMs / 1000 + 0.3 : 0) +
      1,
  )
  const measured = new Map<string, Rounds>()
  const notes: string[] = []
  const given = new Set<string>()
  let idle: IdleResult | null = null
  const limit = Math.max(30_000, 20 * (o.latencyMs + o.warmupMs))
  const record = (method: MethodInfo, size: number, inflight: number, round: number, s: Sample) => {
    const key = `${method.id} ${size} ${inflight}`
    const r = measured.get(key) ?? { method, size, inflight, rounds: [], cdfs: [] }
    measured.set(key, r)
    const { figures, cdf } = figuresOf(s)
    while (r.rounds.length < round) r.rounds.push(null)
    r.rounds[round] = figures
    r.cdfs.push(cdf)
  }

  const burners = startLoad(o.load)
  if (burners.length > 0) await Bun.sleep(200) // running before the first measurement starts
  const t0 = performance.now()
  const busy0 = machineBusySeconds()
  const self0 = selfCpuSeconds()
  const reaped0 = reapedChildrenCpuSeconds()
  let wallS = 0
  let others: number | null = null

  try {
    // Idle goes first: the process is at its quietest there.
    if (wantIdle) {
      progress.step(`slotbus park · idle CPU for ${(o.idleMs / 1000).toFixed(1)} s`)
      try {
        Bun.gc(true) // the bench's own garbage is not the bus's idle cost
        const r = await bounded(slotbus.measureIdle(o.idleMs), o.idleMs + limit, "the idle measurement")
        idle = { hub_cpu_s: r.hubCpuS, worker_cpu_s: r.workerCpuS, elapsed_s: r.elapsedS }
      } catch (e) {
        notes.push(`idle CPU of slotbus park: failed: ${message(e)}`)
      }
    }
    for (let round = 0; round < o.rounds; round++) {
      for (const m of rotation(methods, round)) {
        // A method that failed or was skipped once is not tried again: its note says why.
        if (given.has(m.id)) {
          progress.skip(o.sizes.length)
          continue
        }
        const at = `round ${round + 1}/${o.rounds} · ${describe(m)}`
        let t: Transport | null = null
        let step = 0
        try {
          if (m.floor) {
            for (const size of o.sizes) {
              step++
              progress.step(`${at} · ${formatSize(size)}`)
              for (const inflight of INFLIGHT) {
                const ms = inflight === 1 ? o.latencyMs : o.throughputMs
                record(
                  m,
                  size,
                  inflight,
                  round,
                  await bounded(m.floor(size, inflight, ms, o.warmupMs), limit, describe(m)),
                )
              }
            }
            continue
          }
          progress.detail(`${at} · starting`)
          t = await bounded(m.open!(o), limit, `starting ${describe(m)}`)
          if (o.jitWarmupMs > 0) {
            progress.detail(`${at} · warming up`)
            await bounded(
              measureTransport(t, payload(o.sizes[0]!), 32, o.jitWarmupMs, 0),
              limit + o.jitWarmupMs,
              describe(m),
            )
          }
          for (const size of o.sizes) {
            step++
            progress.step(`${at} · ${formatSize(size)}`)
            const body = payload(size)
            await bounded(checkEcho(t, body), limit, describe(m))
            for (const inflight of INFLIGHT) {
              progress.detail(`${at} · ${formatSize(size)} · ${inflight} in flight`)
              const ms = inflight === 1 ? o.latencyMs : o.throughputMs
              record(
                m,
                size,
                inflight,
                round,
                await bounded(measureTransport(t, body, inflight, ms, o.warmupMs), limit, describe(m)),
              )
            }
          }
        } catch (e) {
          given.add(m.id)
          notes.push(
            `${describe(m)}: ${e instanceof SkipMethod ? "skipped" : `failed in round ${round + 1}`}: ${message(e)}`,
          )
          progress.skip(o.sizes.length - step)
        } finally {
          await t?.close().catch(() => {})
        }
      }
    }
  } finally {
    // Read everything before the burners die: their CPU is ours on purpose, not the machine's other users'.
    wallS = (performance.now() - t0) / 1000
    const busy1 = machineBusySeconds()
    const burnt = burners.reduce((n, b) => n + (processCpuSeconds(b.pid) || 0), 0)
    const ours = selfCpuSeconds() - self0 + (reapedChildrenCpuSeconds() - reaped0) + burnt
    others = busy0 !== null && busy1 !== null ? Math.max(0, busy1 - busy0 - ours) : null
    killAll()
    progress.end()
  }

  const rows: Row[] = []
  for (const m of methods)
    for (const size of o.sizes)
      for (const inflight of INFLIGHT) {
        const r = measured.get(`${m.id} ${size} ${inflight}`)
        if (r) rows.push(rowOf(r))
      }
  return {
    machine,
    warnings: busyWarnings(machine, others, wallS),
    settings: {
      sizes: o.sizes,
      rounds: o.rounds,
      warmupMs: o.warmupMs,
      jitWarmupMs: o.jitWarmupMs,
      latencyMs: o.latencyMs,
      throughputMs: o.throughputMs,
      quick: o.quick,
      load: o.load,
    },
    methods: methods.map(({ id, name, mode, label, peers }) => ({ id, name, mode, label, peers })),
    rows,
    idle,
    notes,
    wallS,
  }
}

/** Runs `slotbus bench` with the given arguments; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let o: BenchOptions
  try {
    o = parseArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`slotbus bench: ${e.message} (slotbus bench --help lists the options)\n`)
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

  try {
    const report = await runBench(o)
    const table = renderTable(report, o.wide)
    if (o.json === "-") process.stderr.write(table)
    else process.stdout.write(table)
    if (o.json === "-") process.stdout.write(renderJson(report))
    else if (o.json) writeFileSync(o.json, renderJson(report))
    if (o.html) {
      writeFileSync(o.html, renderHtml(report))
      process.stderr.write(`wrote ${o.html}\n`)
    }
    return report.rows.length > 0 || report.idle ? 0 : 1
  } finally {
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
  }
}
