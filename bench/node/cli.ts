// `slotbus bench node`: what a Node team weighs (issues 77, 78). An Express 5 front in Node 26 (front.ts) with a
// ~2.5 ms, ~50 KB report route (render.ts) and bench carry's small JSON and cached pages (lib/answers.ts), served
// inline, by piscina (2 threads), by node:cluster (2 workers) and by slotbus (nodeHandler, the workers answering a
// Response or a reply object, RPC, or bus.call, to 2 Node workers); wrk loads it at 1 and 16 connections. Rounds
// interleave the variants, each set up fresh.
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
import { bodyOf, IDS, small } from "../lib/answers.ts"
import { REPORT_IDS, renderReport } from "./render.ts"
import { VARIANTS } from "./variants.ts"

const USAGE = `usage: slotbus bench node [--route heavy|small|page|cheap] [--rounds 3] [--seconds 3]
                          [--connections 1,16] [--only list]

An Express 5 front in Node 26 with a report route (GET /report/:id: a hand-written template loop, ~2.5 ms of CPU,
~50 KB of HTML), bench carry's answers (GET /small/:id, a small JSON object; GET /page/:id, a cached 20–60 KB
page: no work per request) and a cheap route (GET /cheap: a small JSON object the front answers itself), all but
/cheap served
  inline       by Express in the front
  piscina      by piscina.run(id or path) on 2 threads of the front
  cluster      by node:cluster: 2 workers, each the inline Express app on the shared port
  slotbus      by app.get(route, nodeHandler(bus)) to 2 Node workers started by superviseWorkers
  slotbus-reply  the same, the workers answering { headers, body } instead of a Response
  slotbus-rpc  by bus.remote().report(id) / .small(id) / .page(id) to the same workers, sent with res.send or res.json
  slotbus-call by bus.call(path) to the same workers (the body alone), sent with res.send
--route heavy (the default), small or page: wrk -t1 over /report, /small or /page/0…63 at each --connections:
req/s, p50, p99, CPU per request of the front and the workers (/proc), and ratios to node:cluster in the same round.
--route cheap: /cheap's latency (wrk -c1) while wrk saturates /report at the largest --connections (inline,
piscina, slotbus, slotbus-call by default), then one small call at a time, piscina.run against slotbus RPC
(bus.remote().small(id)) and bus.call, the front otherwise idle.
Every variant's answers (a report, a small object, a page, /cheap) are checked byte for byte before it is measured.

  --route <r>        heavy, small, page or cheap (default heavy)
  --rounds <n>       rounds, the variants interleaved, each set up fresh; figures are medians (default 3)
  --seconds <n>      measured seconds per variant, connection count and round, after 1 s of warm-up (default 3)
  --connections <l>  wrk's connections, comma-separated, each 1–1024 (default 1,16)
  --only <list>      the variants, comma-separated (default all; --route cheap: inline,piscina,slotbus,slotbus-call)

Needs a Node >= 26.1 ($SLOTBUS_NODE), wrk, and express and piscina (the repository's node_modules).`

type Variant = (typeof VARIANTS)[number]
const CHEAP_DEFAULT: Variant[] = ["inline", "piscina", "slotbus", "slotbus-call"]
const RTT_CALLS_PER_SECOND = 1000
const RTT_NAMES: Partial<Record<Variant, string>> = {
  piscina: "piscina.run",
  slotbus: "slotbus bus.remote().small",
  "slotbus-call": "slotbus bus.call",
}

const ROUTES = ["heavy", "small", "page", "cheap"] as const
type Route = (typeof ROUTES)[number]
const PATH = { heavy: "/report", small: "/small", page: "/page" } as const

export interface Options {
  route: Route
  rounds: number
  seconds: number
  connections: number[]
  only: Variant[] | null
}

/** The options checked, or the exit code after printing help (0) or what was wrong (2). */
export function parseOptions(argv: string[]): Options | number {
  const o: Options = { route: "heavy", rounds: 3, seconds: 3, connections: [1, 16], only: null }
  const fail = (why: string) => (console.error(`${why}\n${USAGE}`), 2)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "-h" || a === "--help") return (console.log(USAGE), 0)
    if (!["--route", "--rounds", "--seconds", "--connections", "--only"].includes(a)) return fail(`unknown option ${a}`)
    const v = argv[++i]
    if (v === undefined) return fail(`${a} needs a value`)
    if (a === "--route") {
      if (!(ROUTES as readonly string[]).includes(v)) return fail(`--route takes ${ROUTES.join(", ")}, got ${v}`)
      o.route = v as Route
    } else if (a === "--only") {
      const names = v.split(",")
      const bad = names.filter((n) => !(VARIANTS as readonly string[]).includes(n))
      if (bad.length || !v) return fail(`--only takes some of ${VARIANTS.join(",")}, got ${v}`)
      o.only = [...new Set(names)] as Variant[]
    } else if (a === "--connections") {
      const ns = v.split(",").map((x) => (/^\d+$/.test(x) && +x >= 1 && +x <= 1024 ? +x : null))
      if (!v || ns.some((n) => n === null)) return fail(`--connections takes whole numbers from 1 to 1024, got ${v}`)
      o.connections = [...new Set(ns as number[])]
    } else {
      const n = Number(v)
      const max = a === "--rounds" ? 99 : 600
      if (!Number.isInteger(n) || n < 1 || n > max) return fail(`${a} takes a whole number from 1 to ${max}, got ${v}`)
      if (a === "--rounds") o.rounds = n
      else o.seconds = n
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

/** Every route's answer checked byte for byte: a variant that serves wrong is not measured. */
async function check(f: Front, variant: string) {
  const want: [string, string][] = [
    ["/report/3", renderReport(3)],
    ["/small/7", bodyOf("/small/7")!],
    ["/page/7", bodyOf("/page/7")!],
    ["/cheap", JSON.stringify(small(1))],
  ]
  for (const [path, body] of want) {
    const res = await fetch(f.base + path)
    const got = await res.text()
    if (res.status !== 200 || got !== body)
      throw new Error(
        `${variant} answered ${path} with ${res.status}, ${got.length} characters, not the expected answer`,
      )
  }
}

const cpuOf = (f: Front) => ({ front: processCpuSeconds(f.front.pid), workers: f.workers.map(processCpuSeconds) })

interface HeavyRun {
  variant: Variant
  connections: number
  cell: HttpCell
  frontMs: number
  workersMs: number
}

async function heavy(f: Front, variant: Variant, o: Options, connections: number): Promise<HeavyRun> {
  const load = httpLoad("wrk")
  const url = f.base + PATH[o.route as keyof typeof PATH]
  await load(url, connections, 1, IDS)
  const before = cpuOf(f)
  const cell = await load(url, connections, o.seconds, IDS)
  const after = cpuOf(f)
  const perReq = (s: number) => (s * 1000) / cell.count
  const workers = after.workers.reduce((sum, v, i) => sum + v - before.workers[i]!, 0)
  return { variant, connections, cell, frontMs: perReq(after.front - before.front), workersMs: perReq(workers) }
}

interface CheapRun {
  variant: Variant
  heavy: HttpCell
  cheap: HttpCell
}

async function cheap(f: Front, variant: Variant, o: Options): Promise<CheapRun> {
  const load = httpLoad("wrk")
  const saturated = load(`${f.base}/report`, Math.max(...o.connections), o.seconds + 2, REPORT_IDS)
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

/** Milliseconds for the report route, microseconds for the small answers. */
const unitOf = (route: Route) =>
  route === "heavy" ? { name: "ms", perMs: 1, digits: 2 } : { name: "µs", perMs: 1000, digits: 0 }

function heavyTable(runs: HeavyRun[][], variants: Variant[], connections: number, route: Route): string[] {
  const u = unitOf(route)
  const out = [
    `| variant | req/s | p50 ${u.name} | p99 ${u.name} | CPU ${u.name}/req: front | workers | front + workers | errors |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  const at = runs.map((round) => round.filter((x) => x.connections === connections))
  for (const v of variants) {
    const mine = at.map((round) => ({
      r: round.find((x) => x.variant === v),
      c: round.find((x) => x.variant === "cluster"),
    }))
    const of = (get: (x: HeavyRun) => number) => median(mine.map(({ r }) => (r ? get(r) : NaN)))
    const vs = (get: (x: HeavyRun) => number) =>
      v === "cluster" ? NaN : median(mine.map(({ r, c }) => (r && c ? get(r) / get(c) : NaN)))
    const ms = (get: (x: HeavyRun) => number) => fmt(of(get) * u.perMs, u.digits)
    const total = (x: HeavyRun) => x.frontMs + x.workersMs
    const noWorkers = v === "inline" || v === "piscina"
    const errors = mine.reduce((n, { r }) => n + (r?.cell.errors ?? 0), 0)
    const cells = [
      fmt(of((x) => x.cell.rps)) + ratio(vs((x) => x.cell.rps)),
      ms((x) => x.cell.p50 / 1000),
      ms((x) => x.cell.p99 / 1000),
      ms((x) => x.frontMs),
      noWorkers ? "—" : ms((x) => x.workersMs),
      ms(total) + ratio(vs(total)),
      String(errors),
    ]
    out.push(`| ${v} | ${cells.join(" | ")} |`)
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
          if (o.route !== "cheap") for (const c of o.connections) heavyRound.push(await heavy(f, v, o, c))
          else {
            cheapRound.push(await cheap(f, v, o))
            const name = RTT_NAMES[v]
            if (name) {
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
    `load: wrk -t1 -c${o.route === "cheap" ? Math.max(...o.connections) : o.connections.join(", -c")} over ${o.route === "cheap" ? "/report" : PATH[o.route]}/0…${IDS - 1}; ${o.rounds} round${o.rounds > 1 ? "s" : ""} of ${o.seconds} s per variant and connection count after 1 s of warm-up, variants set up fresh and interleaved; medians`,
  )
  for (const w of busyWarnings(machine, null, 0)) console.log(`warning: ${w}`)
  console.log("")
  if (o.route !== "cheap") {
    const what = {
      heavy: "the report route (~2.5 ms of CPU, ~50 KB)",
      small: "a small JSON object",
      page: "a cached 20–60 KB page",
    }
    for (const c of o.connections) {
      console.log(
        `## ${what[o.route]}, ${c} connection${c > 1 ? "s" : ""}; in brackets the median ratio to cluster in the same round\n`,
      )
      for (const l of heavyTable(heavyRuns, variants, c, o.route)) console.log(l)
      console.log("")
    }
    console.log(
      "CPU per request: each process's CPU over the measured window (/proc/<pid>/task/*/sched) ÷ the requests wrk counted; piscina's threads are in the front's figure, cluster's front is its primary.",
    )
  } else {
    console.log(`## /cheap while wrk -c${Math.max(...o.connections)} saturates /report\n`)
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
