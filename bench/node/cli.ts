// `slotbus bench node`: what a Node team weighs (issues 77, 78). An Express 5 front in Node 26 (front.ts) with a
// ~2.5 ms, ~50 KB report route (render.ts) served inline, by piscina (2 threads), by node:cluster (2 workers) and by
// slotbus (nodeHandler, the workers answering a Response or a reply object, or RPC, to 2 Node workers); wrk loads
// it. Rounds interleave the variants, each set up fresh.
import { loadavg } from "node:os"
import { join } from "node:path"
import { detectPlatform, libraryFile } from "../../src/native/lib-path.ts"
import { killAll } from "../lib/child.ts"
import { processCpuSeconds } from "../lib/cpu.ts"
import { devPackage, devPackagesHint } from "../lib/dev-packages.ts"
import { type Front, startFront, stopFront } from "../lib/front.ts"
import { hasWrk, httpLoad, type HttpCell } from "../lib/http-load.ts"
import { busyWarnings, describeMachine } from "../lib/machine.ts"
import { benchNode, buildForNode, nodeFlags } from "../lib/node.ts"
import { median, Samples } from "../lib/samples.ts"
import { REPORT_IDS, renderReport } from "./render.ts"
import { VARIANTS } from "./variants.ts"

const USAGE = `usage: slotbus bench node [--route heavy|cheap] [--rounds 3] [--seconds 3] [--connections 16] [--only list]

An Express 5 front in Node 26 with a report route (GET /report/:id: a hand-written template loop, ~2.5 ms of CPU,
~50 KB of HTML) and a cheap route (GET /cheap: a small JSON object the front answers itself), the report served
  inline       by Express in the front
  piscina      by piscina.run(id) on 2 threads of the front
  cluster      by node:cluster: 2 workers, each the inline Express app on the shared port
  slotbus      by app.get("/report/:id", nodeHandler(bus)) to 2 Node workers started by superviseWorkers
  slotbus-reply  the same, the workers answering { headers, body } instead of a Response
  slotbus-rpc  by bus.remote().report(id) to the same workers, sent with res.send
--route heavy (the default): wrk -t1 over /report/0…63: req/s, p50, p99, CPU ms per request of the front and the
workers (/proc), and ratios to node:cluster in the same round.
--route cheap: /cheap's latency (wrk -c1) while wrk saturates /report (inline, piscina, slotbus by default), then
one small call at a time, piscina.run against slotbus RPC (bus.remote().small(id)), the front otherwise idle.

  --route <r>        heavy or cheap (default heavy)
  --rounds <n>       rounds, the variants interleaved, each set up fresh; figures are medians (default 3)
  --seconds <n>      measured seconds per variant and round, after 1 s of warm-up (default 3)
  --connections <n>  wrk's connections on the report route (default 16)
  --only <list>      the variants, comma-separated (default all; with --route cheap: inline,piscina,slotbus)

Needs a Node >= 26.1 ($SLOTBUS_NODE), wrk, and express and piscina (the repository's node_modules).`

type Variant = (typeof VARIANTS)[number]
const CHEAP_DEFAULT: Variant[] = ["inline", "piscina", "slotbus"]
const RTT_CALLS_PER_SECOND = 1000

export interface Options {
  route: "heavy" | "cheap"
  rounds: number
  seconds: number
  connections: number
  only: Variant[] | null
}

/** The options checked, or the exit code after printing help (0) or what was wrong (2). */
export function parseOptions(argv: string[]): Options | number {
  const o: Options = { route: "heavy", rounds: 3, seconds: 3, connections: 16, only: null }
  const fail = (why: string) => (console.error(`${why}\n${USAGE}`), 2)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "-h" || a === "--help") return (console.log(USAGE), 0)
    if (!["--route", "--rounds", "--seconds", "--connections", "--only"].includes(a)) return fail(`unknown option ${a}`)
    const v = argv[++i]
    if (v === undefined) return fail(`${a} needs a value`)
    if (a === "--route") {
      if (v !== "heavy" && v !== "cheap") return fail(`--route takes heavy or cheap, got ${v}`)
      o.route = v
    } else if (a === "--only") {
      const names = v.split(",")
      const bad = names.filter((n) => !(VARIANTS as readonly string[]).includes(n))
      if (bad.length || !v) return fail(`--only takes some of ${VARIANTS.join(",")}, got ${v}`)
      o.only = [...new Set(names)] as Variant[]
    } else {
      const n = Number(v)
      const max = a === "--rounds" ? 99 : a === "--seconds" ? 600 : 1024
      if (!Number.isInteger(n) || n < 1 || n > max) return fail(`${a} takes a whole number from 1 to ${max}, got ${v}`)
      if (a === "--rounds") o.rounds = n
      else if (a === "--seconds") o.seconds = n
      else o.connections = n
    }
  }
  return o
}

interface Built {
  cmd(variant: Variant): string[]
  env: Record<string, string | undefined>
  remove(): void
}

function build(node: string): Built {
  const b = buildForNode(["front.ts", "worker.ts", "thread.ts"].map((f) => join(import.meta.dir, f)))
  const root = join(import.meta.dir, "..", "..")
  const platform = detectPlatform()
  return {
    cmd: (variant) => [node, ...nodeFlags(node), b.entries[0]!, variant, root],
    env: {
      ...process.env,
      SLOTBUS_LIB: process.env.SLOTBUS_LIB ?? join(root, "prebuilds", platform, libraryFile(platform)),
      NODE_NO_WARNINGS: "1", // node:ffi's ExperimentalWarning
    },
    remove: b.remove,
  }
}

/** The report of id 3 checked byte for byte, and /cheap answered: a variant that serves wrong is not measured. */
async function check(f: Front, variant: string) {
  const got = await fetch(`${f.base}/report/3`).then((r) => r.text())
  if (got !== renderReport(3)) throw new Error(`${variant} answered /report/3 with ${got.length} wrong bytes`)
  const cheap = await fetch(`${f.base}/cheap`).then((r) => r.json())
  if ((cheap as { ok?: boolean }).ok !== true) throw new Error(`${variant} answered /cheap ${JSON.stringify(cheap)}`)
}

const cpuOf = (f: Front) => ({ front: processCpuSeconds(f.front.pid), workers: f.workers.map(processCpuSeconds) })

interface HeavyRun {
  variant: Variant
  cell: HttpCell
  frontMs: number
  workersMs: number
}

async function heavy(f: Front, variant: Variant, o: Options): Promise<HeavyRun> {
  const load = httpLoad("wrk")
  await load(`${f.base}/report`, o.connections, 1, REPORT_IDS)
  const before = cpuOf(f)
  const cell = await load(`${f.base}/report`, o.connections, o.seconds, REPORT_IDS)
  const after = cpuOf(f)
  const perReq = (s: number) => (s * 1000) / cell.count
  const workers = after.workers.reduce((sum, v, i) => sum + v - before.workers[i]!, 0)
  return { variant, cell, frontMs: perReq(after.front - before.front), workersMs: perReq(workers) }
}

interface CheapRun {
  variant: Variant
  heavy: HttpCell
  cheap: HttpCell
}

async function cheap(f: Front, variant: Variant, o: Options): Promise<CheapRun> {
  const load = httpLoad("wrk")
  const saturated = load(`${f.base}/report`, o.connections, o.seconds + 2, REPORT_IDS)
  await Bun.sleep(1000)
  const c = await load(`${f.base}/cheap`, 1, o.seconds)
  return { variant, heavy: await saturated, cheap: c }
}

async function roundTrips(f: Front, n: number): Promise<number[]> {
  const ask = async (calls: number) => {
    const at = f.front.lines.length
    f.front.write(`rtt ${calls}\n`)
    const line = await f.front.whileAlive(f.front.line(at, 120_000), "the front")
    if (!line.startsWith("rtt ")) throw new Error(`the front answered ${line}`)
    return line.slice(4).split(",").map(Number)
  }
  await ask(Math.max(50, n >> 2)) // warm-up
  return ask(n)
}

const fmt = (v: number, digits = 0) =>
  Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "—"
const ratio = (v: number) => (Number.isFinite(v) ? ` (${v.toFixed(2)}×)` : "")

function heavyTable(runs: HeavyRun[][], variants: Variant[]): string[] {
  const out = [
    "| variant | req/s | p50 ms | p99 ms | CPU ms/req: front | workers | front + workers | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for (const v of variants) {
    const mine = runs.map((round) => ({
      r: round.find((x) => x.variant === v),
      c: round.find((x) => x.variant === "cluster"),
    }))
    const of = (get: (x: HeavyRun) => number) => median(mine.map(({ r }) => (r ? get(r) : NaN)))
    const vs = (get: (x: HeavyRun) => number) =>
      v === "cluster" ? NaN : median(mine.map(({ r, c }) => (r && c ? get(r) / get(c) : NaN)))
    const total = (x: HeavyRun) => x.frontMs + x.workersMs
    const noWorkers = v === "inline" || v === "piscina"
    out.push(
      `| ${v} | ${fmt(of((x) => x.cell.rps))}${ratio(vs((x) => x.cell.rps))} | ${fmt(
        of((x) => x.cell.p50 / 1000),
        2,
      )}` +
        ` | ${fmt(
          of((x) => x.cell.p99 / 1000),
          2,
        )} | ${fmt(
          of((x) => x.frontMs),
          2,
        )} | ${
          noWorkers
            ? "—"
            : fmt(
                of((x) => x.workersMs),
                2,
              )
        }` +
        ` | ${fmt(of(total), 2)}${ratio(vs(total))} | ${runs.reduce((n, round) => n + (round.find((x) => x.variant === v)?.cell.errors ?? 0), 0)} |`,
    )
  }
  return out
}

function cheapTable(runs: CheapRun[][], variants: Variant[]): string[] {
  const out = [
    "| variant | /report req/s (saturated) | /cheap p50 ms | /cheap p99 ms | /cheap req/s (1 connection) |",
    "|---|---:|---:|---:|---:|",
  ]
  for (const v of variants) {
    const of = (get: (x: CheapRun) => number) =>
      median(runs.map((round) => round.find((x) => x.variant === v)).map((r) => (r ? get(r) : NaN)))
    out.push(
      `| ${v} | ${fmt(of((x) => x.heavy.rps))} | ${fmt(
        of((x) => x.cheap.p50 / 1000),
        2,
      )} | ${fmt(
        of((x) => x.cheap.p99 / 1000),
        2,
      )} | ${fmt(of((x) => x.cheap.rps))} |`,
    )
  }
  return out
}

/** Runs `slotbus bench node`; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const o = parseOptions(argv)
  if (typeof o === "number") return o
  const found = benchNode()
  if ("skip" in found) return (console.log(`slotbus bench node: skipped, ${found.skip}`), 0)
  if (!hasWrk()) return (console.error("slotbus bench node needs wrk: apt-get install -y wrk"), 1)
  const missing = ["express", "piscina"].filter((p) => devPackage(p) === null)
  if (missing.length) return (console.error(devPackagesHint("node", "the Express front", missing)), 1)
  const variants = o.only ?? (o.route === "cheap" ? CHEAP_DEFAULT : [...VARIANTS])
  const machine = describeMachine()
  process.on("exit", killAll)
  const built = build(found.node)
  const heavyRuns: HeavyRun[][] = []
  const cheapRuns: CheapRun[][] = []
  const rtt = new Map<string, Samples>()
  const failed: string[] = []
  try {
    for (let r = 0; r < o.rounds; r++) {
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!)
      const heavyRound: HeavyRun[] = []
      const cheapRound: CheapRun[] = []
      for (const v of order) {
        let f: Front | null = null
        try {
          f = await startFront(built.cmd(v), built.env)
          await check(f, v)
          if (o.route === "heavy") heavyRound.push(await heavy(f, v, o))
          else {
            cheapRound.push(await cheap(f, v, o))
            if (v === "piscina" || v === "slotbus") {
              const name = v === "piscina" ? "piscina.run" : "slotbus bus.remote().small"
              const s = rtt.get(name) ?? new Samples()
              for (const us of await roundTrips(f, o.seconds * RTT_CALLS_PER_SECOND)) s.record(us)
              rtt.set(name, s)
            }
          }
        } catch (e) {
          failed.push(`could not run: ${v}, round ${r + 1}: ${(e as Error).message.split("\n")[0]}`)
        } finally {
          if (f) await stopFront(f)
        }
      }
      heavyRuns.push(heavyRound)
      cheapRuns.push(cheapRound)
    }
  } finally {
    built.remove()
  }
  const node = Bun.spawnSync([found.node, "--version"]).stdout.toString().trim()
  console.log("# slotbus bench node")
  console.log(
    `machine: ${machine.cpu} × ${machine.cores}, ${machine.kernel}, node ${node}, bun ${machine.bun}, slotbus ${machine.slotbus}; load average ${machine.loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; ${machine.date}`,
  )
  console.log(
    `load: wrk -t1 -c${o.connections} over /report/0…${REPORT_IDS - 1}; ${o.rounds} rounds of ${o.seconds} s per variant after 1 s of warm-up, variants set up fresh and interleaved; medians`,
  )
  for (const w of busyWarnings(machine, null, 0)) console.log(`warning: ${w}`)
  console.log("")
  if (o.route === "heavy") {
    console.log(
      "## the report route (~2.5 ms of CPU, ~50 KB), in brackets the median ratio to cluster in the same round\n",
    )
    for (const l of heavyTable(heavyRuns, variants)) console.log(l)
    console.log(
      "\nCPU per request: each process's CPU over the measured window (/proc/<pid>/task/*/sched) ÷ the requests wrk counted; piscina's threads are in the front's figure, cluster's front is its primary.",
    )
  } else {
    console.log(`## /cheap while wrk -c${o.connections} saturates /report\n`)
    for (const l of cheapTable(cheapRuns, variants)) console.log(l)
    console.log("\n## one small call at a time (a small JSON object), the front idle\n")
    console.log("| way | p50 µs | p99 µs | calls |")
    console.log("|---|---:|---:|---:|")
    for (const [name, s] of rtt)
      console.log(`| ${name} | ${fmt(s.percentile(50))} | ${fmt(s.percentile(99))} | ${fmt(s.count)} |`)
  }
  for (const l of failed) console.log(l)
  return failed.length ? 1 : 0
}
