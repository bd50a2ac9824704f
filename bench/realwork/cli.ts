// `slotbus bench realwork`: what an application developer sees with real work behind a front. A shop's render service
// (render.ts: a product page costing ~2 ms of CPU and answering 20–60 KB of HTML; the same page cached, no work, so
// each variant's carrying cost alone; a thumbnail streamed as 5 MiB) is
// served by a Bun.serve front (front.ts) with 4 workers, in four variants measured in one run, interleaved (and a
// fifth, direct, on the cached route only: the front answering itself, the floor of carrying):
//   slotbus RPC     bus.remote<Api>().renderPage(id) to 4 processes of superviseWorkers (thumbnails by bus.fetch)
//   bus.fetch       bus.fetch(req) to 4 processes of superviseWorkers answering a Response
//   Worker threads  4 Worker threads of the front, postMessage, the least busy one first
//   fetch proxy     fetch() to the least busy of 4 processes each with its own Bun.serve
//   reusePort       4 processes each with its own Bun.serve({ reusePort: true }) on one port, no front: Bun's cluster,
//                   the same work with no hop (what a transport is held against)
//   direct          the front's Bun.serve answering the cached page itself, no transport, no workers
// Load: wrk -t1 -c16 over /page/0 … /page/63 in turn (or /thumb/…), else an in-repo fetch client. Each round sets
// every variant up fresh (front and workers), in an order rotating from round to round, warms it up for a second per
// route, then measures: req/s, p50/p99, and the CPU each process used over the measured time per request. The work
// alone (render.ts in a loop in this process) is measured first, so each variant's overhead is read directly.
import { join, resolve } from "node:path"
import { killAllOnExit, spawn } from "../lib/child.ts"
import { processCpuSeconds, processMinorFaults, taskCpuSeconds, taskMinorFaults, threadCpuSeconds } from "../lib/cpu.ts"
import { type Front, startFront, stopFront } from "../lib/front.ts"
import { clientOption, hasWrk, httpLoad, type HttpCell, type HttpLoad } from "../lib/http-load.ts"
import { busyWarnings, describeMachine, type Machine } from "../lib/machine.ts"
import { median } from "../lib/samples.ts"
import { PAGE_IDS, renderPage, THUMB_BYTES, thumbChunks } from "./render.ts"

const USAGE = `usage: slotbus bench realwork [--seconds 2] [--rounds 2] [--only list] [--route list]
                               [--load n]
                               [--client wrk|fetch] [--json]

A product page (~2 ms of CPU, 20–60 KB of HTML), the same pages cached (no work: what carrying them costs alone)
and a 5 MiB streamed thumbnail, served by a Bun.serve front with
4 workers: slotbus RPC and bus.fetch (superviseWorkers, 16 slots each), Worker threads (postMessage) and a fetch
proxy to 4 processes' own Bun.serve; 4 processes sharing the port (reusePort: the same work with no hop, no
front); on the cached route also direct, the front answering itself (no transport: the
floor of carrying; not on page or thumb, where the front would do the work itself on one thread). 16 clients
(wrk -t1 -c16); req/s, p50/p99, CPU per request of the front and of each worker, and the work's own cost measured
alone; the page route's ceiling when the proxy ran on page and cached and direct on cached.

  --seconds <n>  measured whole seconds per variant, route and round, after 1 s of warm-up (default 2)
  --rounds <n>   rounds, every variant set up fresh in each, the order rotating; figures are medians (default 2)
  --only <list>  some of rpc,fetch,threads,proxy,cluster,direct (default all; direct runs on the cached route only)
  --route <list> some of page,cached,thumb (default all three)
  --load <n>     n CPU burner processes for the whole run: the machine busy on purpose (default 0)
  --client <c>   wrk (the default when installed: apt-get install wrk) or fetch (an in-repo client, in this process)
  --root <tree>  the slotbus tree whose library the fronts and workers load (default this one; bench compare's)
  --json         one JSON object per line (the machine, the work, each variant and route) instead of the tables`

export const VARIANTS = {
  rpc: "slotbus RPC",
  fetch: "bus.fetch",
  threads: "Worker threads",
  proxy: "fetch proxy",
  cluster: "reusePort",
  direct: "direct",
} as const
export type VariantKey = keyof typeof VARIANTS
export const ROUTES = ["page", "cached", "thumb"] as const
export type Route = (typeof ROUTES)[number]
/** Whether `key` runs on `route`: direct only carries the cached page (on the others its front would do the work). */
export const runsOn = (key: VariantKey, route: Route) => key !== "direct" || route === "cached"
export const CLIENTS = 16
const WARM_S = 1
const FRONT = join(import.meta.dir, "front.ts")

export interface Options {
  seconds: number
  rounds: number
  only: VariantKey[]
  routes: Route[]
  load: number
  client: "wrk" | "fetch"
  root: string | null
  json: boolean
}

export interface WorkRow {
  kind: "work"
  /** CPU and wall time of one page rendered in a loop (every id in turn), and how many were rendered. */
  pageCpuMs: number
  pageWallMs: number
  pages: number
  pageBytes: { min: number; mean: number; max: number }
  /** CPU of one thumbnail's pieces made, and its size. */
  thumbCpuMs: number
  thumbBytes: number
}

export interface VariantRow {
  kind: "variant"
  variant: VariantKey
  name: string
  route: Route
  rounds: number
  /** Requests answered in the measured time, all rounds. */
  requests: number
  /** Connection errors and timeouts the load generator saw, all rounds. */
  errors: number
  rps: number
  p50ms: number
  p99ms: number
  /** CPU per request (ms): the front process (its Worker threads not counted), each worker (process or thread), all. */
  cpuMs: { front: number; workers: number[]; total: number }
  /** Minor page faults per request: the front process (its Worker threads not counted), all workers together. */
  faults: { front: number; workers: number }
  /** cpuMs.total less the work alone (WorkRow's page or thumbnail CPU): what the variant costs on top of the work. */
  overheadMs: number
  /** This variant's req/s and CPU per request ÷ the fetch proxy's; null without it. */
  vsProxy: { rps: number; cpu: number } | null
  /** The same ÷ the reusePort processes' (the same work with no hop); null without them. */
  vsCluster: { rps: number; cpu: number } | null
}

/**
 * The most any transport could serve on the page route, as a multiple of the fetch proxy's req/s: one that did the
 * same work and carried each page for what direct does (its CPU per request on the cached route: the front's
 * Bun.serve answering in its callback, no transport). Not Worker threads': their answer comes a turn late and pays
 * Bun.serve's late write, as every transport's does (docs/perf/bun-late-write.md). With both cores busy, req/s go as
 * 1 ÷ CPU per request, so it is the proxy's page CPU over that CPU less what the proxy spends carrying above the
 * floor. Made when the run measured the proxy on the page and cached routes and direct on the cached one.
 */
export interface CeilingRow {
  kind: "ceiling"
  /** CPU per request (ms): the proxy's on the page route, and what the proxy and the floor spend carrying alone. */
  proxyPageMs: number
  proxyCarryMs: number
  /** The variant whose cached row is the floor of carrying. */
  floor: "direct"
  floorCarryMs: number
  /** proxyPageMs ÷ (proxyPageMs − (proxyCarryMs − floorCarryMs)) */
  vsProxy: number
}

/** The ceiling of this run's rows (see CeilingRow), or null when they lack one of the three figures it is made of. */
export function pageCeiling(rows: readonly VariantRow[]): CeilingRow | null {
  const total = (variant: VariantKey, route: Route) =>
    rows.find((x) => x.variant === variant && x.route === route)?.cpuMs.total
  const proxyPageMs = total("proxy", "page")
  const proxyCarryMs = total("proxy", "cached")
  const floorCarryMs = total("direct", "cached")
  if (proxyPageMs === undefined || proxyCarryMs === undefined || floorCarryMs === undefined) return null
  const vsProxy = proxyPageMs / (proxyPageMs - (proxyCarryMs - floorCarryMs))
  return { kind: "ceiling", proxyPageMs, proxyCarryMs, floor: "direct", floorCarryMs, vsProxy }
}

export interface MachineRow extends Machine {
  kind: "machine"
  client: string
  clients: number
  seconds: number
  rounds: number
  load: number
  warnings: string[]
}

/** The parsed options, or the exit code after printing help (0) or what was wrong with the usage (2). */
export function parseArgs(argv: string[]): Options | number {
  const o: Options = {
    seconds: 2,
    rounds: 2,
    only: Object.keys(VARIANTS) as VariantKey[],
    routes: [...ROUTES],
    load: 0,
    client: hasWrk() ? "wrk" : "fetch",
    root: null,
    json: false,
  }
  const bad = (why: string) => (console.error(`${why}\n\n${USAGE}`), 2)
  const whole = (v: string, lo: number, hi: number) => (/^\d+$/.test(v) && +v >= lo && +v <= hi ? +v : null)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "-h" || a === "--help") return (console.log(USAGE), 0)
    if (a === "--json") {
      o.json = true
      continue
    }
    if (!["--seconds", "--rounds", "--only", "--route", "--load", "--client", "--root"].includes(a))
      return bad(`unknown option ${a}`)
    const v = argv[++i]
    if (v === undefined) return bad(`${a} needs a value`)
    if (a === "--seconds" || a === "--rounds" || a === "--load") {
      const n = whole(v, a === "--load" ? 0 : 1, a === "--load" ? 64 : a === "--rounds" ? 99 : 600)
      if (n === null) return bad(`${a} takes a whole number (${a === "--load" ? "0–64" : "≥ 1"}), got ${v}`)
      o[a === "--seconds" ? "seconds" : a === "--rounds" ? "rounds" : "load"] = n
    } else if (a === "--only") {
      const keys = v.split(",")
      if (!v || keys.some((k) => !(k in VARIANTS)))
        return bad(`--only takes some of ${Object.keys(VARIANTS).join(",")}, got ${v}`)
      o.only = (Object.keys(VARIANTS) as VariantKey[]).filter((k) => keys.includes(k))
    } else if (a === "--route") {
      const routes = v.split(",")
      if (routes.some((r) => !(ROUTES as readonly string[]).includes(r)))
        return bad(`--route takes some of ${ROUTES.join(",")}, got ${v}`)
      o.routes = ROUTES.filter((r) => routes.includes(r))
    } else if (a === "--client") {
      const client = clientOption(v)
      if (typeof client !== "string") return bad(client.error)
      o.client = client
    } else o.root = resolve(v)
  }
  if (!o.only.some((k) => o.routes.some((r) => runsOn(k, r))))
    return bad("direct runs on the cached route only: add --route cached, or another variant to --only")
  return o
}

/** The work alone in this process: pages (every id in turn) until they used a second of CPU, and thumbnails. */
export function measureWork(): WorkRow {
  const sizes = Array.from({ length: PAGE_IDS }, (_, id) => Buffer.byteLength(renderPage(id))) // also the warm-up
  for (let id = 0; id < PAGE_IDS; id++) renderPage(id)
  let pages = 0
  const cpu0 = threadCpuSeconds()
  const t0 = performance.now()
  // a CPU budget, not a wall-clock one: on a busy machine the loop runs longer, not fewer times
  while (threadCpuSeconds() - cpu0 < 1) for (let id = 0; id < PAGE_IDS; id++, pages++) renderPage(id)
  const wall = performance.now() - t0
  const pageCpu = threadCpuSeconds() - cpu0
  const thumb = (id: number) => {
    let n = 0
    for (const c of thumbChunks(id)) n += c.length
    return n
  }
  for (let id = 0; id < 4; id++) thumb(id)
  const thumbs = 16
  const c1 = threadCpuSeconds()
  for (let id = 0; id < thumbs; id++) thumb(id)
  return {
    kind: "work",
    pageCpuMs: (pageCpu * 1000) / pages,
    pageWallMs: wall / pages,
    pages,
    pageBytes: {
      min: Math.min(...sizes),
      mean: sizes.reduce((a, b) => a + b, 0) / sizes.length,
      max: Math.max(...sizes),
    },
    thumbCpuMs: ((threadCpuSeconds() - c1) * 1000) / thumbs,
    thumbBytes: THUMB_BYTES,
  }
}

/** A variant's front and workers, started for one round. */
interface Target extends Front {
  key: VariantKey
}

async function start(key: VariantKey, root: string | null): Promise<Target> {
  const t = { key, ...(await startFront([process.execPath, FRONT, key, ...(root ? [root] : [])])) }
  try {
    await checkAnswers(t)
    return t
  } catch (e) {
    await stopFront(t)
    throw e
  }
}

let expectedThumb: Uint8Array | null = null

/** A page, its cached copy and a thumbnail through the target (those of its routes), byte for byte, before it is measured. */
async function checkAnswers(t: Target): Promise<void> {
  for (const path of runsOn(t.key, "page") ? ["/page/7", "/cached/7"] : ["/cached/7"]) {
    const page = await fetch(t.base + path)
    const html = await page.text()
    if (page.status !== 200 || html !== renderPage(7))
      throw new Error(`${VARIANTS[t.key]}: ${path} answered ${page.status}, ${html.length} characters, not the page`)
  }
  if (!runsOn(t.key, "thumb")) return
  if (!expectedThumb) {
    expectedThumb = new Uint8Array(THUMB_BYTES)
    let at = 0
    for (const c of thumbChunks(3)) {
      expectedThumb.set(c, at)
      at += c.length
    }
  }
  const thumb = await fetch(`${t.base}/thumb/3`)
  const bytes = new Uint8Array(await thumb.arrayBuffer())
  if (thumb.status !== 200 || Buffer.compare(bytes, expectedThumb) !== 0)
    throw new Error(`${VARIANTS[t.key]}: /thumb/3 answered ${thumb.status}, ${bytes.length} bytes, not the thumbnail`)
}

interface Cpu {
  front: number
  workers: number[]
  /** Minor page faults: the front (less its Worker threads), all workers. */
  faults: { front: number; workers: number }
}

function cpuNow(t: Target): Cpu {
  const threads = t.threads.map((tid) => taskCpuSeconds(t.front.pid, tid))
  return {
    front: processCpuSeconds(t.front.pid) - threads.reduce((a, b) => a + b, 0),
    workers: [...t.workers.map(processCpuSeconds), ...threads],
    faults: faultsNow(t),
  }
}

function faultsNow(t: Target): Cpu["faults"] {
  const threads = t.threads.reduce((n, tid) => n + taskMinorFaults(t.front.pid, tid), 0)
  return {
    front: processMinorFaults(t.front.pid) - threads,
    workers: t.workers.reduce((n, pid) => n + processMinorFaults(pid), 0) + threads,
  }
}

interface Sample {
  cell: HttpCell
  cpu: Cpu
}

async function measureRoute(t: Target, route: Route, o: Options, load: HttpLoad): Promise<Sample> {
  const url = `${t.base}/${route}`
  await load(url, CLIENTS, WARM_S, PAGE_IDS)
  const before = cpuNow(t)
  const cell = await t.front.whileAlive(load(url, CLIENTS, o.seconds, PAGE_IDS), `the ${VARIANTS[t.key]} front`)
  const after = cpuNow(t)
  if ([after.front, ...after.workers].some(Number.isNaN))
    throw new Error(`${VARIANTS[t.key]}: a worker ended during the measurement (its CPU can no longer be read)`)
  const perReq = (s: number) => (s * 1000) / Math.max(1, cell.count)
  return {
    cell,
    cpu: {
      front: perReq(after.front - before.front),
      workers: after.workers.map((w, i) => perReq(w - before.workers[i]!)),
      faults: {
        front: (after.faults.front - before.faults.front) / Math.max(1, cell.count),
        workers: (after.faults.workers - before.faults.workers) / Math.max(1, cell.count),
      },
    },
  }
}

/** The order of round `r`: each round starts one variant further along, so none is always first or last. */
const rotation = <T>(xs: T[], r: number): T[] => xs.map((_, i) => xs[(i + r) % xs.length]!)

export async function runRealwork(o: Options, log: (line: string) => void = () => {}) {
  const machine = describeMachine()
  const load = httpLoad(o.client)
  const burners = Array.from({ length: o.load }, () => spawn([process.execPath, "-e", "for (;;) {}"]))
  try {
    if (burners.length) await Bun.sleep(200) // running before the first measurement
    log("the work alone …")
    const work = measureWork()
    const samples = new Map<string, Sample[]>()
    for (let r = 0; r < o.rounds; r++)
      for (const key of rotation(o.only, r)) {
        log(`round ${r + 1}/${o.rounds}: ${VARIANTS[key]}`)
        const t = await start(key, o.root)
        try {
          for (const route of o.routes.filter((r) => runsOn(key, r))) {
            const s = await measureRoute(t, route, o, load)
            samples.set(`${key} ${route}`, [...(samples.get(`${key} ${route}`) ?? []), s])
          }
        } finally {
          await stopFront(t)
        }
      }
    for (const b of burners) if (!b.running) throw new Error(`a --load burner exited early:\n${b.output}`)
    const rows = o.routes.flatMap((route) =>
      o.only.filter((key) => runsOn(key, route)).map((key) => row(key, route, samples.get(`${key} ${route}`)!, work)),
    )
    const against = (x: VariantRow, base: VariantKey) => {
      const b = rows.find((y) => y.route === x.route && y.variant === base)
      return b ? { rps: x.rps / b.rps, cpu: x.cpuMs.total / b.cpuMs.total } : null
    }
    for (const x of rows) {
      x.vsProxy = against(x, "proxy")
      x.vsCluster = against(x, "cluster")
    }
    const warnings = busyWarnings(machine, null, 0)
    if (rows.some((x) => x.errors > 0)) warnings.push("the load generator saw connection errors or timeouts (errors)")
    const head: MachineRow = {
      kind: "machine",
      ...machine,
      client: o.client,
      clients: CLIENTS,
      seconds: o.seconds,
      rounds: o.rounds,
      load: o.load,
      warnings,
    }
    return { head, work, rows, ceiling: pageCeiling(rows) }
  } finally {
    await Promise.all(burners.map((b) => b.kill()))
  }
}

function row(key: VariantKey, route: Route, ss: Sample[], work: WorkRow): VariantRow {
  const med = (f: (s: Sample) => number) => median(ss.map(f))
  const workers = ss[0]!.cpu.workers.map((_, i) => med((s) => s.cpu.workers[i]!))
  const total = med((s) => s.cpu.front + s.cpu.workers.reduce((a, b) => a + b, 0))
  return {
    kind: "variant",
    variant: key,
    name: VARIANTS[key],
    route,
    rounds: ss.length,
    requests: ss.reduce((n, s) => n + s.cell.count, 0),
    errors: ss.reduce((n, s) => n + s.cell.errors, 0),
    rps: med((s) => s.cell.rps),
    p50ms: med((s) => s.cell.p50) / 1000,
    p99ms: med((s) => s.cell.p99) / 1000,
    cpuMs: { front: med((s) => s.cpu.front), workers, total },
    faults: { front: med((s) => s.cpu.faults.front), workers: med((s) => s.cpu.faults.workers) },
    overheadMs: total - workCpuMs(route, work),
    vsProxy: null,
    vsCluster: null,
  }
}

/** The work of one request of `route` alone: a cached page's is a lookup, counted as none. */
export const workCpuMs = (route: Route, work: WorkRow) =>
  route === "page" ? work.pageCpuMs : route === "thumb" ? work.thumbCpuMs : 0

const f2 = (n: number) => (Number.isFinite(n) ? (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2)) : "—")
const kb = (n: number) => `${(n / 1000).toFixed(1)} KB`

function print(head: MachineRow, work: WorkRow, rows: VariantRow[], ceiling: CeilingRow | null) {
  const m = head
  console.log("# slotbus bench realwork")
  console.log(
    `machine: ${m.cpu} × ${m.cores}, ${m.kernel}, bun ${m.bun}, slotbus ${m.slotbus}, load ${m.loadBefore.toFixed(2)} before${m.load ? `, ${m.load} CPU burners (--load)` : ""}; ${m.date}`,
  )
  console.log(
    `load: ${m.client === "wrk" ? "wrk -t1" : "in-repo fetch client"} with ${m.clients} connections over ids 0–${PAGE_IDS - 1}; ${m.rounds} round${m.rounds > 1 ? "s" : ""} of ${m.seconds} s per variant and route after 1 s of warm-up, variants interleaved and set up fresh each round; medians`,
  )
  for (const w of m.warnings) console.log(`warning: ${w}`)
  console.log(
    `\nthe work alone: a page costs ${work.pageCpuMs.toFixed(2)} ms of CPU (${work.pageWallMs.toFixed(2)} ms wall; ${work.pages} rendered in a loop), ${kb(work.pageBytes.min)}–${kb(work.pageBytes.max)} (mean ${kb(work.pageBytes.mean)}), a cached one nothing; a thumbnail's ${work.thumbBytes / 1024 / 1024} MiB cost ${work.thumbCpuMs.toFixed(2)} ms to make`,
  )
  console.log(
    "\n| route | variant | req/s | p50 ms | p99 ms | CPU ms/req: front | workers (each) | total | over the work | req/s ÷ proxy | CPU ÷ proxy | req/s ÷ reusePort | CPU ÷ reusePort | faults/req: front, workers |",
  )
  console.log("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
  const ratios = (r: VariantRow["vsProxy"]) => (r ? `${r.rps.toFixed(2)}× | ${r.cpu.toFixed(2)}×` : "— | —")
  for (const x of rows) {
    const sum = x.cpuMs.workers.reduce((a, b) => a + b, 0)
    const workers = x.cpuMs.workers.length ? `${f2(sum)} (${x.cpuMs.workers.map(f2).join(" ")})` : "—"
    console.log(
      `| ${x.route} | ${x.name} | ${f2(x.rps)} | ${f2(x.p50ms)} | ${f2(x.p99ms)} | ${f2(x.cpuMs.front)} | ${workers} | ${f2(x.cpuMs.total)} | ${f2(x.overheadMs)} | ${ratios(x.vsProxy)} | ${ratios(x.vsCluster)} | ${x.faults.front.toFixed(1)}, ${x.faults.workers.toFixed(1)} |`,
    )
  }
  console.log(
    "\nCPU per request: what each process used over the measured time (/proc) ÷ the requests wrk counted; Worker threads' CPU is theirs, not the front's; over the work: total less the work alone.",
  )
  if (ceiling)
    console.log(
      `ceiling on the page route: a transport that carried a page for what direct does (the front answering itself: ${f2(ceiling.floorCarryMs)} ms per request on the cached route, the proxy ${f2(ceiling.proxyCarryMs)}) would serve at most ${ceiling.vsProxy.toFixed(2)}× the proxy's req/s (its page costs ${f2(ceiling.proxyPageMs)} ms of CPU in all; with both cores busy, req/s go as 1 ÷ CPU per request).`,
    )
}

export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv)
  if (typeof o === "number") return o
  killAllOnExit() // Ctrl-C: the fronts (whose workers end with them) and the burners go too
  try {
    const { head, work, rows, ceiling } = await runRealwork(o, o.json ? undefined : (l) => console.error(l))
    if (o.json) for (const x of [head, work, ...rows, ...(ceiling ? [ceiling] : [])]) console.log(JSON.stringify(x))
    else print(head, work, rows, ceiling)
    return 0
  } catch (e) {
    console.error(`slotbus bench realwork: ${(e as Error).message}`)
    return 1
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)))
