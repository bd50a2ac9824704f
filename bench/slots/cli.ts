// `slotbus bench`: round trips between two processes through slotbus and the alternatives, in one run.
import { writeFileSync } from "node:fs"
import { busyWarnings, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { type Driver, type Sample, transportDriver } from "./measure.ts"
import { killAll, reapedChildrenCpuSeconds, spawn, type Child } from "../lib/child.ts"
import { processCpuSeconds, selfCpuSeconds } from "../lib/cpu.ts"
import { median } from "../lib/samples.ts"
import { SkipMethod } from "./transport.ts"
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
import { type MethodDef, METHODS } from "./method-list.ts"
import { measureNodeIdle, removeNodeBuild } from "./methods/node.ts"
import * as slotbus from "./methods/slotbus.ts"
import { type BenchOptions, parseArgs, UsageError, USAGE } from "./options.ts"
import { pairProcesses, SETTLE_INFLIGHT, SETTLE_MAX_MS, type Settled, settle } from "./settle.ts"

export const INFLIGHT = [1, 32] as const
/** What a pair's warm-up took here (settle.ts), for the run's time estimate. */
const TYPICAL_SETTLE_S = 0.5

const selected = (o: BenchOptions, m: { name: string; id: string; notQuick?: boolean }) =>
  o.only ? o.only.includes(m.name) || o.only.includes(m.id) : !(o.quick && m.notQuick)

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
      msgs_per_s: median(s.parts),
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
  const settleS = o.cold ? 0 : o.sizes.length * TYPICAL_SETTLE_S + o.jitWarmupMs / 1000
  const progress = new Progress(
    o.rounds * methods.length * o.sizes.length + (wantIdle ? 1 : 0),
    o.rounds * methods.length * (o.sizes.length * stepS + settleS + 0.2) +
      (wantIdle ? (2 * o.idleMs) / 1000 + 1 : 0) +
      1,
  )
  const measured = new Map<string, Rounds>()
  const notes: string[] = []
  const given = new Set<string>()
  let idle: IdleResult | null = null
  let nodeIdle: IdleResult | null = null
  /** Methods skipped, by reason: one note per reason (every Node method gives the same one). */
  const skipped = new Map<string, string[]>()
  const skip = (what: string, why: string) => skipped.set(why, [...(skipped.get(why) ?? []), what])
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

  /** How long each method's pairs were warmed, by round (all sizes), and the sizes at which its compilers did not
   * settle. */
  const warmMs = new Map<string, (number | null)[]>()
  const unsettled = new Map<MethodDef, number>()
  const warmed = (m: MethodDef, round: number, s: Settled) => {
    const byRound = warmMs.get(m.id) ?? []
    while (byRound.length <= round) byRound.push(null)
    byRound[round] = Math.round((byRound[round] ?? 0) + s.ms)
    warmMs.set(m.id, byRound)
    if (!s.settled) unsettled.set(m, (unsettled.get(m) ?? 0) + 1)
  }

  const burners = startLoad(o.load)
  const burnerPids = new Set(burners.map((b) => b.pid))
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
      // the same pair with both ends in Node, when there is a Node (issue 67: no more CPU than a Bun pair)
      try {
        const r = await bounded(measureNodeIdle(o.idleMs), o.idleMs + limit, "the Node idle measurement")
        nodeIdle = { hub_cpu_s: r.hubCpuS, worker_cpu_s: r.workerCpuS, elapsed_s: r.elapsedS }
      } catch (e) {
        if (e instanceof SkipMethod) skip("idle CPU of slotbus Node↔Node park", message(e))
        else notes.push(`idle CPU of slotbus Node↔Node park: failed: ${message(e)}`)
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
        let t: Driver | null = null
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
                  await bounded(m.floor(size, inflight, ms, o.warmupMs, !o.cold), limit + SETTLE_MAX_MS, describe(m)),
                )
              }
            }
            continue
          }
          progress.detail(`${at} · starting`)
          const starting = m.driver ? m.driver() : m.open!(o).then(transportDriver)
          const d = (t = await bounded(starting, limit, `starting ${describe(m)}`))
          for (const size of o.sizes) {
            step++
            progress.step(`${at} · ${formatSize(size)}`)
            await bounded(d.check(size), limit, describe(m))
            // at every size: code compiled for 64 B answers is compiled again for 64 KiB ones (200 µs p50s until then)
            if (!o.cold) {
              progress.detail(`${at} · ${formatSize(size)} · warming up`)
              const least = size === o.sizes[0] ? o.jitWarmupMs : 0
              const s = await bounded(
                settle((ms) => d.warm(size, SETTLE_INFLIGHT, ms), least, pairProcesses(burnerPids)),
                limit + Math.max(SETTLE_MAX_MS, least),
                describe(m),
              )
              warmed(m, round, s)
            }
            for (const inflight of INFLIGHT) {
              progress.detail(`${at} · ${formatSize(size)} · ${inflight} in flight`)
              const ms = inflight === 1 ? o.latencyMs : o.throughputMs
              record(
                m,
                size,
                inflight,
                round,
                await bounded(d.measure(size, inflight, ms, o.warmupMs), limit, describe(m)),
              )
            }
          }
        } catch (e) {
          given.add(m.id)
          if (e instanceof SkipMethod) skip(m.label, message(e))
          else notes.push(`${describe(m)}: failed in round ${round + 1}: ${message(e)}`)
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
    await removeNodeBuild()
    progress.end()
  }
  for (const [why, what] of skipped) notes.push(`${what.join("; ")}: skipped: ${why}`)
  for (const [m, n] of unsettled)
    notes.push(
      `${describe(m)}: its runtimes' compiler threads (V8's also collect garbage) were still busy after ` +
        `${SETTLE_MAX_MS / 1000} s of warm-up ${n} of ${o.rounds * o.sizes.length} times (rounds × sizes); measured then`,
    )

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
      cold: o.cold,
      latencyMs: o.latencyMs,
      throughputMs: o.throughputMs,
      quick: o.quick,
      load: o.load,
    },
    methods: methods.map(({ id, name, mode, label, peers }) => {
      const warm = warmMs.get(id)
      return { id, name, mode, label, peers, ...(warm ? { warm_ms: warm } : {}) }
    }),
    rows,
    idle,
    nodeIdle,
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
