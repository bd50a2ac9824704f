// The measuring of `slotbus bench carry`: each round, for each number of workers, every variant set up fresh
// (front.ts, node-front.ts) in an order rotating from block to block, checked on both answers, then per answer 1 s of warm-up and
// `seconds` measured with the HTTP load generator while /proc (and `perf stat`, where it can) counts what each
// process spent; every figure then also as a ratio to direct's in the same round and block (a Node front's to
// node-direct's: Node's node:http answering itself).
import { join } from "node:path"
import { processCpuSeconds, taskCpuSeconds } from "../lib/cpu.ts"
import { type Front, startFront, stopFront } from "../lib/front.ts"
import { httpLoad, type HttpCell } from "../lib/http-load.ts"
import { perfStat, type PerfCounts } from "../lib/perf-stat.ts"
import { type Answer, bodyOf, IDS } from "../lib/answers.ts"
import { nodeFront } from "./node.ts"

export const VARIANTS = {
  direct: "direct",
  hub: "HTTP hub",
  fetch: "bus.fetch",
  rpc: "RPC",
  request: "bus.request",
  call: "bus.call",
  threads: "Worker threads",
  proxy: "fetch proxy",
  reuse: "reusePort, no hop",
  "node-direct": "Node direct",
  "node-fetch": "Node bus.fetch",
  "node-proxy": "Node fetch proxy",
} as const
export type VariantKey = keyof typeof VARIANTS

/** What a variant is read against: Bun's direct, or for a Node front Node's (node:http answering itself). */
export const yardstickOf = (v: VariantKey): VariantKey => (v.startsWith("node-") ? "node-direct" : "direct")
export const isYardstick = (v: VariantKey) => yardstickOf(v) === v

export interface Options {
  /** Always with direct, first, and node-direct with any Node variant: every other figure is read against one. */
  variants: VariantKey[]
  answers: Answer[]
  workers: number[]
  rounds: number
  seconds: number
  connections: number
  client: "wrk" | "fetch"
  /** Whether `perf stat` counts syscalls and context switches (it can: perfUnavailable() said null). */
  perf: boolean
  root: string | null
  json: boolean
}

/** Per request, except req/s and the latencies; perf's figures null where it did not count. */
export const FIGURES = [
  "rps",
  "p50us",
  "p99us",
  "cpuFrontUs",
  "cpuWorkersUs",
  "cpuClientUs",
  "cpuTotalUs",
  "syscallsFront",
  "syscallsWorkers",
  "ctxSwitchesFront",
  "ctxSwitchesWorkers",
] as const
export type Figure = (typeof FIGURES)[number]
export type Figures = Record<Figure, number | null>

/** One variant, answer and number of workers measured once, in round `round`. */
export interface RunRow {
  kind: "run"
  round: number
  workers: number
  answer: Answer
  variant: VariantKey
  name: string
  requests: number
  errors: number
  figures: Figures
  /**
   * Each figure ÷ direct's (node-direct's for a Node front) in the same round and block; null where either is
   * missing or direct's is 0.
   */
  vsDirect: Figures
  /** cpuTotalUs less direct's (node-direct's): what carrying costs above the front answering itself. */
  overDirectUs: number | null
}

/** A variant that could not be set up or measured in a round, and why. */
export interface SkippedRow {
  kind: "skipped"
  round: number
  workers: number
  variant: VariantKey
  name: string
  reason: string
}

const FRONT = join(import.meta.dir, "front.ts")
const REPO = join(import.meta.dir, "..", "..")
const WARM_S = 1

interface Target extends Front {
  key: VariantKey
}

/** The variant's front with its workers, once both answers came back right through it. */
async function start(key: VariantKey, workers: number, root: string | null): Promise<Target> {
  let front: Front
  if (key.startsWith("node-")) {
    const { cmd, env } = nodeFront(key, workers, root ?? REPO)
    front = await startFront(cmd, env)
  } else front = await startFront([process.execPath, FRONT, key, String(workers), ...(root ? [root] : [])])
  const t = { key, ...front }
  try {
    for (const path of ["/small/7", "/page/7"]) {
      const res = await fetch(t.base + path)
      const text = await res.text()
      if (res.status !== 200 || text !== bodyOf(path))
        throw new Error(`${path} answered ${res.status}, ${text.length} characters, not the expected answer`)
    }
    return t
  } catch (e) {
    await stopFront(t)
    throw e
  }
}

/** CPU seconds so far of the front (less its Worker threads) and of its workers (processes or threads) together. */
function cpuNow(t: Target): { front: number; workers: number } {
  const threads = t.threads.reduce((n, tid) => n + taskCpuSeconds(t.front.pid, tid), 0)
  const procs = t.workers.reduce((n, pid) => n + processCpuSeconds(pid), 0)
  return { front: processCpuSeconds(t.front.pid) - threads, workers: procs + threads }
}

/** perf stat over the front and the workers for `seconds`; for Worker threads the front's count less theirs. */
async function perfNow(t: Target, seconds: number): Promise<{ front: PerfCounts; workers: PerfCounts }> {
  const [front, workers] = await Promise.all([
    perfStat(seconds, { pids: [t.front.pid] }),
    t.threads.length ? perfStat(seconds, { tids: t.threads }) : perfStat(seconds, { pids: t.workers }),
  ])
  if (!t.threads.length) return { front, workers }
  const less = (k: keyof PerfCounts) => front[k] - workers[k]
  return { front: { contextSwitches: less("contextSwitches"), syscalls: less("syscalls") }, workers }
}

async function measure(t: Target, answer: Answer, o: Options): Promise<{ cell: HttpCell; figures: Figures }> {
  const load = httpLoad(o.client)
  const url = `${t.base}/${answer}`
  await t.front.whileAlive(load(url, o.connections, WARM_S, IDS), `the ${VARIANTS[t.key]} front`)
  const before = cpuNow(t)
  const counting = o.perf ? perfNow(t, o.seconds) : null
  counting?.catch(() => {}) // awaited below; a failure there is the measurement's
  const cell = await t.front.whileAlive(load(url, o.connections, o.seconds, IDS), `the ${VARIANTS[t.key]} front`)
  const after = cpuNow(t)
  const counts = await counting
  if (Number.isNaN(after.front + after.workers))
    throw new Error("a worker ended during the measurement (its CPU can no longer be read)")
  const n = Math.max(1, cell.count)
  const us = (s: number) => (s * 1e6) / n
  const front = us(after.front - before.front)
  const none = t.workers.length + t.threads.length === 0 // direct: no workers' figures, rather than zeros
  const workers = none ? null : us(after.workers - before.workers)
  return {
    cell,
    figures: {
      rps: cell.rps,
      p50us: cell.p50,
      p99us: cell.p99,
      cpuFrontUs: front,
      cpuWorkersUs: workers,
      cpuClientUs: us(cell.clientCpuS),
      cpuTotalUs: front + (workers ?? 0),
      syscallsFront: counts ? counts.front.syscalls / n : null,
      syscallsWorkers: counts && !none ? counts.workers.syscalls / n : null,
      ctxSwitchesFront: counts ? counts.front.contextSwitches / n : null,
      ctxSwitchesWorkers: counts && !none ? counts.workers.contextSwitches / n : null,
    },
  }
}

/** Each figure ÷ the same figure of `direct`, null where either is missing or direct's is not above 0. */
export function ratios(f: Figures, direct: Figures | undefined): Figures {
  const out = {} as Figures
  for (const k of FIGURES) {
    const a = f[k]
    const b = direct?.[k]
    out[k] = a === null || b === null || b === undefined || !(b > 0) ? null : a / b
  }
  return out
}

/** The order of block `b`: each block starts one variant further along, so none is always first or last. */
const rotation = <T>(xs: T[], b: number): T[] => xs.map((_, i) => xs[(i + b) % xs.length]!)

/** The first lines of an error's message: what a skipped row says. */
const reasonOf = (e: unknown) =>
  String((e as Error)?.message ?? e)
    .trim()
    .split("\n")
    .slice(0, 3)
    .join(" | ")

/** Every round and block of `o`; `log` hears the progress. */
export async function runCarry(o: Options, log: (line: string) => void = () => {}) {
  const runs: RunRow[] = []
  const skipped: SkippedRow[] = []
  let block = 0
  for (let round = 1; round <= o.rounds; round++)
    for (const workers of o.workers) {
      const got: RunRow[] = []
      for (const key of rotation(o.variants, block++)) {
        log(`round ${round}/${o.rounds}, ${workers} worker${workers > 1 ? "s" : ""}: ${VARIANTS[key]}`)
        let t: Target | null = null
        try {
          t = await start(key, workers, o.root)
          for (const answer of o.answers) {
            const { cell, figures } = await measure(t, answer, o)
            const base = { round, workers, answer, variant: key, name: VARIANTS[key] }
            const n = { requests: cell.count, errors: cell.errors }
            got.push({ kind: "run", ...base, ...n, figures, vsDirect: figures, overDirectUs: null })
          }
        } catch (e) {
          skipped.push({ kind: "skipped", round, workers, variant: key, name: VARIANTS[key], reason: reasonOf(e) })
          for (let i = got.length - 1; i >= 0; i--) if (got[i]!.variant === key) got.splice(i, 1) // all or nothing
        } finally {
          if (t) await stopFront(t)
        }
      }
      for (const x of got) {
        const direct = got.find((d) => d.variant === yardstickOf(x.variant) && d.answer === x.answer)?.figures
        x.vsDirect = ratios(x.figures, direct)
        x.overDirectUs = direct && !isYardstick(x.variant) ? x.figures.cpuTotalUs! - direct.cpuTotalUs! : null
      }
      // in the order asked for, not the order run
      got.sort(
        (a, b) =>
          o.answers.indexOf(a.answer) - o.answers.indexOf(b.answer) ||
          o.variants.indexOf(a.variant) - o.variants.indexOf(b.variant),
      )
      runs.push(...got)
    }
  return { runs, skipped }
}
