// `slotbus bench leases`: slotbus lease contests against flock(2), a SharedArrayBuffer + Atomics lock between
// Workers, and Redis SET NX PX, in one run: uncontended claim + release, contended claims among 2 and 8
// parties, and handover latency (release → a waiting party holds it).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawn, type Child } from "../lib/child.ts"
import { startRedis } from "../lib/servers.ts"
import { busyWarningsSince, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import {
  atomicsLock,
  flockLock,
  latencies,
  releaseAfterSleep,
  redisLock,
  slotbusLock,
  type Handover,
  type Hold,
  type Lock,
  type ProcessMethod,
} from "./locks.ts"

export const USAGE = `usage: slotbus bench leases [options]
       slotbus bench leases soak [options]   (SIGKILL/SIGSTOP soak with fencing: slotbus bench leases soak --help)

Uncontended claim + release, contended claims among 2 and 8 parties, and handover latency, for slotbus
leases, flock(2) on a file, a SharedArrayBuffer + Atomics lock between Workers, and Redis SET NX PX
(a redis-server is started on a free port if the binary is installed; skipped with a note otherwise).

  --remote       only this: a cluster contest (JetStream KV) against raw KV and Redis SET NX PX
                 (slotbus bench leases --remote --help)
  --waiters N[,N…]  only this: N claims waiting on one held subject, idle CPU-s/s of this process, threads
                 it added, and release → next waiter latency over 100 hand-overs (e.g. --waiters 10,2000,10000)
  --quick        shorter runs
  --only <test>  one test: uncontended, contended or handover
  --json         one JSON object per result on stdout (the table goes to stderr)
  -h, --help     this text`

const CHILD = join(import.meta.dir, "child.ts")
const WORKER = join(import.meta.dir, "atomics-worker.ts")

interface Result {
  test: string
  method: string
  value: number
  unit: string
  p99?: number
  /** uncontended: CPU time of this process per operation, ns */
  cpu?: number
  note?: string
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "soak") return (await import("./soak.ts")).main(argv.slice(1))
  if (argv.includes("--remote")) return (await import("./remote.ts")).remoteMain(argv)
  if (argv.includes("-h") || argv.includes("--help")) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  if (argv.includes("--waiters")) {
    const ns = (argv[argv.indexOf("--waiters") + 1] ?? "").split(",").map(Number)
    if (!ns.length || ns.some((n) => !Number.isInteger(n) || n < 1 || n > 100_000)) {
      process.stderr.write("--waiters takes a comma-separated list of counts from 1 to 100000\n")
      return 2
    }
    const { waitersBench, renderWaiters } = await import("./waiters.ts")
    const machine = describeMachine()
    const rs = []
    for (const n of ns) rs.push(await waitersBench(n, argv.includes("--quick") ? 500 : 2000))
    process.stdout.write(
      `slotbus bench leases --waiters — ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, bun ${machine.bun}, ${machine.date}\n${renderWaiters(rs)}\n`,
    )
    return 0
  }
  const quick = argv.includes("--quick")
  const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : undefined
  if (only !== undefined && !["uncontended", "contended", "handover"].includes(only)) {
    process.stderr.write(`--only takes uncontended, contended or handover, got ${only}\n`)
    return 2
  }
  const runs = (test: string) => only === undefined || only === test
  const json = argv.includes("--json")
  const out = (s: string) => (json ? process.stderr : process.stdout).write(`${s}\n`)
  const machine = describeMachine()
  const busyBefore = machineBusySeconds()
  const started = performance.now()
  const dir = mkdtempSync(join(tmpdir(), "slotbus-bench-leases-"))
  const lockFile = join(dir, "flock")
  writeFileSync(lockFile, "")
  const redis = await startRedis()
  const results: Result[] = []
  const add = (r: Result) => {
    results.push(r)
    if (json) process.stdout.write(`${JSON.stringify(r)}\n`)
  }
  const targets: Record<ProcessMethod, string | null> = {
    slotbus: `bench-leases-${process.pid}`,
    flock: lockFile,
    redis: redis?.url ?? null,
  }
  try {
    // 1. uncontended claim + release from JS
    const n = quick ? 200_000 : 1_000_000
    if (runs("uncontended")) {
      add(uncontendedResult("slotbus", await uncontended(await slotbusLock(`${targets.slotbus}-u`), n)))
      add(uncontendedResult("flock", await uncontended(flockLock(lockFile), n)))
      add(
        uncontendedResult(
          "atomics",
          await uncontended(atomicsLock(new Int32Array(new SharedArrayBuffer(4))), n),
          "same process",
        ),
      )
      if (redis)
        add(
          uncontendedResult(
            "redis",
            await uncontended(await redisLock(redis.url, "slotbus-bench-u"), quick ? 2000 : 10_000),
          ),
        )
    }

    // 2. contended: parties taking the lock in a loop for a while
    const ms = quick ? 500 : 1500
    for (const parties of runs("contended") ? [2, 8] : []) {
      for (const method of ["slotbus", "flock", "redis"] as const) {
        const target = targets[method]
        if (!target) continue
        const count = await contendedProcesses(method, target, parties, ms)
        add({ test: `contended-${parties}`, method, value: count / (ms / 1000), unit: "claims/s" })
      }
      add({
        test: `contended-${parties}`,
        method: "atomics",
        value: (await contendedWorkers(parties, ms)) / (ms / 1000),
        unit: "claims/s",
        note: "Workers, same process",
      })
    }

    // 3. handover latency, the holder working until it releases, then the holder asleep until it releases
    const h = quick ? 60 : 200
    for (const hold of runs("handover") ? (["work", "sleep"] as const) : []) {
      const test = hold === "work" ? "handover" : "handover-asleep"
      for (const [method, spin] of [
        ["slotbus", true],
        ["slotbus", false],
        ["flock", true],
        ["flock", false],
        ["redis", true],
      ] as const) {
        const target = targets[method]
        if (!target) continue
        add(
          handoverResult(
            test,
            `${method}:${spin ? "spin" : "wait"}`,
            await handoverProcesses(method, target, h, spin, hold),
          ),
        )
      }
      for (const spin of [true, false])
        add(
          handoverResult(
            test,
            `atomics:${spin ? "spin" : "wait"}`,
            await handoverWorkers(h, spin, hold),
            "Workers, same process",
          ),
        )
    }
    for (const method of runs("handover") ? (["slotbus", "flock"] as const) : []) {
      const lock = method === "slotbus" ? await slotbusLock(`${targets.slotbus}-r`) : flockLock(`${lockFile}.r`)
      const r = await releaseAfterSleep(lock, quick ? 50 : 200)
      await lock.close()
      add({
        test: "release-after-sleep",
        method,
        value: r.cold,
        unit: "ns",
        note: `in a loop: ${Math.round(r.hot)} ns`,
      })
    }
  } finally {
    await redis?.child.kill()
    rmSync(dir, { recursive: true, force: true })
  }

  out(
    `slotbus bench leases — ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, bun ${machine.bun}, ${machine.date}`,
  )
  for (const w of busyWarningsSince(machine, busyBefore, started)) out(`! ${w}`)
  if (!redis) out("! Redis skipped: redis-server is not installed (apt-get install -y redis-server)")
  out(render(results))
  return 0
}

const cpuNs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) * 1000
}

/** Median ns per claim + release over 5 batches, wall clock and this process's CPU time (steadier when busy). */
async function uncontended(lock: Lock, n: number): Promise<{ wall: number; cpu: number }> {
  const batches: number[] = []
  const cpus: number[] = []
  const isAsync = lock.tryAcquire() instanceof Promise
  await lock.release()
  for (let b = 0; b < 5; b++) {
    const t = performance.now()
    const c = cpuNs()
    if (isAsync) {
      for (let i = 0; i < n / 5; i++) {
        await lock.tryAcquire()
        await lock.release()
      }
    } else {
      for (let i = 0; i < n / 5; i++) {
        lock.tryAcquire()
        lock.release()
      }
    }
    batches.push(((performance.now() - t) * 1e6) / (n / 5))
    cpus.push((cpuNs() - c) / (n / 5))
  }
  await lock.close()
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[2]!
  return { wall: median(batches), cpu: median(cpus) }
}

function uncontendedResult(method: string, r: { wall: number; cpu: number }, note?: string): Result {
  return { test: "uncontended", method, value: r.wall, unit: "ns", cpu: r.cpu, note }
}

/** A bench party (bench/leases/child.ts): it prints "ready", waits for "go" on stdin, then prints its result. */
function spawnParty(args: string[]): Child {
  return spawn([process.execPath, CHILD, ...args], { stdin: "pipe" })
}

async function contendedProcesses(method: ProcessMethod, target: string, parties: number, ms: number): Promise<number> {
  const ps = Array.from({ length: parties }, () => spawnParty(["contend", method, String(ms), target]))
  try {
    await Promise.all(ps.map((p) => p.waitLine(/^ready$/, Infinity)))
    for (const p of ps) p.write("go\n")
    const counts = await Promise.all(ps.map((p) => p.waitLine(/^count (\d+)$/, Infinity)))
    return counts.reduce((n, m) => n + Number(m[1]), 0)
  } finally {
    for (const p of ps) p.signal("SIGKILL")
  }
}

async function handoverProcesses(method: ProcessMethod, target: string, n: number, spin: boolean, hold: Hold) {
  const args = (role: "a" | "b") => ["handover", method, role, String(n), spin ? "1" : "0", hold, target]
  const a = spawnParty(args("a"))
  try {
    await a.waitLine(/^ready$/, Infinity) // a holds the lock now
    const b = spawnParty(args("b"))
    try {
      await b.waitLine(/^ready$/, Infinity)
      a.write("go\n")
      b.write("go\n")
      const [ra, rb] = await Promise.all([a.waitLine(/^result (.*)$/, Infinity), b.waitLine(/^result (.*)$/, Infinity)])
      const [ha, hb] = [JSON.parse(ra[1]!) as Handover, JSON.parse(rb[1]!) as Handover]
      return { ...latencies(ha, hb), pinned: !!ha.pinned && !!hb.pinned }
    } finally {
      b.signal("SIGKILL")
    }
  } finally {
    a.signal("SIGKILL")
  }
}

function workers(k: number) {
  return Array.from({ length: k }, () => new Worker(WORKER))
}
const reply = <T>(w: Worker) => new Promise<T>((resolve) => (w.onmessage = (e) => resolve(e.data as T)))

async function contendedWorkers(parties: number, ms: number): Promise<number> {
  const sab = new SharedArrayBuffer(4)
  const ws = workers(parties)
  try {
    const done = ws.map((w) => reply<{ count: number }>(w))
    for (const w of ws) w.postMessage({ job: "contend", sab, ms })
    return (await Promise.all(done)).reduce((n, r) => n + r.count, 0)
  } finally {
    for (const w of ws) w.terminate()
  }
}

async function handoverWorkers(n: number, spin: boolean, hold: Hold) {
  const sab = new SharedArrayBuffer(4)
  Atomics.store(new Int32Array(sab), 0, 1) // held by party a
  const [a, b] = workers(2) as [Worker, Worker]
  try {
    const done = [reply<{ result: Handover }>(a), reply<{ result: Handover }>(b)]
    b.postMessage({ job: "handover", sab, role: "b", n, spin, hold })
    a.postMessage({ job: "handover", sab, role: "a", n, spin, hold })
    const [ra, rb] = await Promise.all(done)
    return { ...latencies(ra.result, rb.result), pinned: !!ra.result.pinned && !!rb.result.pinned }
  } finally {
    a.terminate()
    b.terminate()
  }
}

function handoverResult(
  test: string,
  method: string,
  l: { ns: number[]; starved: number; pinned: boolean },
  note?: string,
): Result {
  const pct = (p: number) => l.ns[Math.min(l.ns.length - 1, Math.floor((p / 100) * l.ns.length))] ?? NaN
  const starved = l.starved
    ? `${l.starved} of ${l.ns.length + l.starved} acquisitions were not handovers (waiter starved), left out`
    : undefined
  const unpinned =
    l.pinned || !method.endsWith(":spin")
      ? undefined
      : "parties not pinned to CPUs of their own: the releaser may preempt the spinning waiter"
  return {
    test,
    method,
    value: pct(50),
    p99: pct(99),
    unit: "ns",
    note: [note, starved, unpinned].filter(Boolean).join("; ") || undefined,
  }
}

function fmt(r: Result): string {
  if (r.unit === "claims/s")
    return r.value >= 1e6 ? `${(r.value / 1e6).toFixed(2)} M/s` : `${(r.value / 1e3).toFixed(1)} k/s`
  const ns = (v: number) =>
    v >= 1e6 ? `${(v / 1e6).toFixed(2)} ms` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} µs` : `${v.toFixed(0)} ns`
  if (r.cpu !== undefined) return `${ns(r.value)} (CPU ${ns(r.cpu)})`
  return r.p99 === undefined ? ns(r.value) : `p50 ${ns(r.value)}  p99 ${ns(r.p99)}`
}

const HEADINGS: Record<string, string> = {
  uncontended: " (claim + release from JS)",
  handover:
    " (release → waiting party holds it; JS clock before release() → after the claim returns; the holder computes until it releases; parties warmed up; spinning parties pinned to CPUs 0 and 1)",
  "handover-asleep":
    " (the same, but the holder sleeps until it releases: on a VM its CPU then comes back with cold caches, and the release pays for them)",
  "release-after-sleep":
    " (release() right after a 4 ms sleep, nobody waiting: what a sleeping holder pays inside the handover)",
}

function render(results: Result[]): string {
  const lines: string[] = []
  for (const test of [...new Set(results.map((r) => r.test))]) {
    const rows = results.filter((r) => r.test === test)
    // compare with slotbus in the same mode (":spin", ":wait"), else with the first slotbus row
    const mode = (m: string) => (m.includes(":") ? m.slice(m.indexOf(":")) : "")
    const slotbusRow = (m: string) => rows.find((r) => r.method === `slotbus${mode(m)}`)
    lines.push(`\n${test}${HEADINGS[test] ?? " (claims/s, all parties)"}`)
    for (const r of rows) {
      const base = slotbusRow(r.method) ?? rows.find((x) => x.method.startsWith("slotbus"))
      let ratio = ""
      if (base && r !== base && !r.method.startsWith("slotbus")) {
        const x = r.unit === "claims/s" ? base.value / r.value : r.value / base.value
        ratio = `  slotbus ${x >= 1 ? `${x.toFixed(1)}× better` : `${(1 / x).toFixed(1)}× worse`}`
      }
      lines.push(`  ${r.method.padEnd(16)} ${fmt(r).padEnd(28)}${ratio}${r.note ? `  (${r.note})` : ""}`)
    }
  }
  lines.push("\ntargets: uncontended ≤ 300 ns; handover p50 ≤ 2 µs with a spinning waiter; ≥ 100× Redis SET NX PX")
  return lines.join("\n")
}
