// `slotbus bench rpc`: the same two functions, add(1, 2) and an echo of a 1 KiB object, called through slotbus
// RPC (bus.remote() → SlotWorker.expose in a worker process), tinypool and piscina (worker_threads pools of one
// thread taking 32 tasks at once) and process.send to a child Bun process, 1 and 32 calls in flight, in one run.
// p50/p99 of each call, calls/s, and the CPU of every process and thread involved per call.
import { parseRunArgs } from "../lib/args.ts"
import { join } from "node:path"
import { loadavg } from "node:os"
import { SlotBus } from "../../src/index.ts"
import { spawn, type Child } from "../lib/child.ts"
import { closedLoop } from "../lib/closed-loop.ts"
import { processCpuSeconds, selfCpuSeconds } from "../lib/cpu.ts"
import { devPackagesHint, missingDevPackages } from "../lib/dev-packages.ts"
import { busyWarnings, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { median } from "../lib/samples.ts"
import { kibObject } from "./payload.ts"
import type { Api } from "./slotbus-worker.ts"

const USAGE = `usage: slotbus bench rpc [--time ms] [--rounds n] [--quick] [--only list] [--json]

  --time <ms>    measured time per line and round (default 1000; --quick 300); warm-up is a quarter of it
  --rounds <n>   rounds, the order of the methods rotating; figures are medians (default 3; --quick 1)
  --only <list>  some of ${"slotbus,tinypool,piscina,process.send"} (default all)
  --json         one JSON object per line instead of the table`

export const METHODS = ["slotbus RPC", "tinypool", "piscina", "process.send"] as const
const ONLY_NAMES: Record<string, (typeof METHODS)[number]> = {
  slotbus: "slotbus RPC",
  tinypool: "tinypool",
  piscina: "piscina",
  "process.send": "process.send",
}
export const CALLS = ["add(1, 2)", "echo(1 KiB object)"] as const
type CallName = (typeof CALLS)[number]
const INFLIGHT = [1, 32]

interface Row {
  method: string
  call: CallName
  inflight: number
  count: number
  callsPerS: number
  p50us: number
  p99us: number
  /** CPU of this process (its threads included) and the worker processes, per call. */
  cpuUsPerCall: number
}

/** One way of calling the two functions, set up for its turn in a round. */
interface Target {
  method: (typeof METHODS)[number]
  calls: Record<CallName, () => Promise<unknown>>
  /** Worker processes (threads of this process count in its own CPU). */
  pids: () => number[]
  close: () => Promise<void>
}

const WORKER_DIR = import.meta.dir
const OBJECT = kibObject()

async function measure(t: Target, call: CallName, inflight: number, ms: number): Promise<Row> {
  const cpu = () => selfCpuSeconds() + t.pids().reduce((sum, pid) => sum + processCpuSeconds(pid), 0)
  const r = await closedLoop(t.calls[call], inflight, ms, { cpu })
  return {
    method: t.method,
    call,
    inflight,
    count: r.count,
    callsPerS: r.perS,
    p50us: r.p50us,
    p99us: r.p99us,
    cpuUsPerCall: (r.used.cpu / r.count) * 1e6,
  }
}

type Method = (typeof METHODS)[number]

/**
 * Every method measured once per round, the order rotating between rounds, each set up fresh for its turn and
 * ended after it (new worker processes, new pools), as `slotbus bench` starts fresh pairs; each figure is the
 * median of the rounds.
 */
async function measureAll(
  methods: Method[],
  setup: (m: Method) => Promise<Target>,
  ms: number,
  rounds: number,
): Promise<Row[]> {
  const samples = new Map<string, Row[]>()
  const key = (m: string, c: string, n: number) => `${m}|${c}|${n}`
  for (let r = 0; r < rounds; r++)
    for (let k = 0; k < methods.length; k++) {
      const t = await setup(methods[(k + r) % methods.length]!)
      try {
        await checkAnswers(t)
        for (const call of CALLS)
          for (const n of INFLIGHT) {
            const row = await measure(t, call, n, ms)
            samples.set(key(t.method, call, n), [...(samples.get(key(t.method, call, n)) ?? []), row])
          }
      } finally {
        await t.close()
      }
    }
  return CALLS.flatMap((call) =>
    methods.flatMap((m) =>
      INFLIGHT.map((n) => {
        const rs = samples.get(key(m, call, n))!
        const pick = (f: (r: Row) => number) => median(rs.map(f))
        return {
          ...rs[0]!,
          count: pick((r) => r.count),
          callsPerS: pick((r) => r.callsPerS),
          p50us: pick((r) => r.p50us),
          p99us: pick((r) => r.p99us),
          cpuUsPerCall: pick((r) => r.cpuUsPerCall),
        }
      }),
    ),
  )
}

/** A child of the bench, ended if its setup fails. */
async function started<T>(child: Child, ready: Promise<unknown>, what: string, then: () => Promise<T>): Promise<T> {
  try {
    await child.whileAlive(ready, what)
    return await then()
  } catch (e) {
    await child.kill()
    throw e
  }
}

let buses = 0

async function slotbusTarget(): Promise<Target> {
  const bus = await SlotBus.listen(`bench-rpc-${process.pid}-${++buses}`)
  const child = spawn([process.execPath, join(WORKER_DIR, "slotbus-worker.ts"), bus.name])
  try {
    return await started(child, child.waitLine(/^ready$/), "slotbus RPC worker", async () => {
      await bus.waitForWorkers(1)
      const api = bus.remote<Api>()
      return {
        method: "slotbus RPC",
        calls: { "add(1, 2)": () => api.add(1, 2), "echo(1 KiB object)": () => api.echo(OBJECT) },
        pids: () => [child.pid],
        close: async () => {
          await child.kill()
          await bus.close({ drain: false })
        },
      }
    })
  } catch (e) {
    await bus.close({ drain: false })
    throw e
  }
}

interface Pool {
  run(task: unknown, options: { name: string }): Promise<unknown>
  destroy(): Promise<void>
}

async function poolTarget(method: "tinypool" | "piscina"): Promise<Target> {
  const filename = join(WORKER_DIR, "pool-worker.ts")
  // 32 tasks at once on the one thread, as slotbus's 32 slots: their default (1) keeps the other 31 calls of
  // 32 in flight waiting in this thread, ~11k calls/s here, which would measure the setting, not the transport.
  const options = { filename, minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 32 }
  const pool: Pool =
    method === "tinypool"
      ? new (await import("tinypool")).default(options)
      : new (await import("piscina")).default(options)
  const ab = { a: 1, b: 2 }
  return {
    method,
    calls: {
      "add(1, 2)": () => pool.run(ab, { name: "add" }),
      "echo(1 KiB object)": () => pool.run(OBJECT, { name: "echo" }),
    },
    pids: () => [],
    close: () => pool.destroy(),
  }
}

async function processSendTarget(): Promise<Target> {
  const pending = new Map<number, (v: unknown) => void>()
  const ready = Promise.withResolvers<void>()
  let next = 0
  const child = spawn([process.execPath, join(WORKER_DIR, "ipc-worker.ts")], {
    ipc: (m) => {
      if (m === "ready") return ready.resolve()
      const { id, result } = m as { id: number; result: unknown }
      pending.get(id)?.(result)
      pending.delete(id)
    },
  })
  const call = (method: string, args: unknown[]) =>
    new Promise((resolve) => {
      const id = ++next
      pending.set(id, resolve)
      child.send({ id, method, args })
    })
  return started(child, ready.promise, "process.send worker", async () => ({
    method: "process.send",
    calls: { "add(1, 2)": () => call("add", [1, 2]), "echo(1 KiB object)": () => call("echo", [OBJECT]) },
    pids: () => [child.pid],
    close: async () => void (await child.kill()),
  }))
}

/** Each target answers right before it is measured: a bench of wrong answers measures nothing. */
async function checkAnswers(t: Target) {
  const sum = await t.calls["add(1, 2)"]()
  const echo = await t.calls["echo(1 KiB object)"]()
  if (sum !== 3 || !Bun.deepEquals(echo, OBJECT, true))
    throw new Error(
      `${t.method} answered wrong: add(1, 2) = ${sum}, echo ${Bun.deepEquals(echo, OBJECT) ? "ok" : "differs"}`,
    )
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const rate = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)

export function table(rows: Row[]): string {
  const head = `${"call".padEnd(20)}${"method".padEnd(14)}${"in flight".padStart(10)}${"p50 µs".padStart(10)}${"p99 µs".padStart(10)}${"calls/s".padStart(10)}${"cpu µs/call".padStart(13)}`
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.call.padEnd(20)}${r.method.padEnd(14)}${String(r.inflight).padStart(10)}${fmt(r.p50us).padStart(10)}${fmt(r.p99us).padStart(10)}${rate(r.callsPerS).padStart(10)}${fmt(r.cpuUsPerCall).padStart(13)}`,
    ),
  ].join("\n")
}

/** One line per call: slotbus RPC against each other method, p50 at 1 in flight and calls/s at 32. */
export function verdicts(rows: Row[]): string[] {
  const out: string[] = []
  for (const call of CALLS) {
    const find = (m: string, n: number) => rows.find((r) => r.call === call && r.method === m && r.inflight === n)
    const s1 = find("slotbus RPC", 1)
    const s32 = find("slotbus RPC", 32)
    if (!s1 || !s32) continue
    const others = METHODS.filter((m) => m !== "slotbus RPC").flatMap((m) => {
      const o1 = find(m, 1)
      const o32 = find(m, 32)
      return o1 && o32
        ? [
            `${m} ${(o1.p50us / s1.p50us).toFixed(1)}× its p50, ${(s32.callsPerS / o32.callsPerS).toFixed(1)}× its calls/s`,
          ]
        : []
    })
    if (others.length > 0)
      out.push(
        `${call}: slotbus RPC p50 ${fmt(s1.p50us)} µs, ${rate(s32.callsPerS)} calls/s at 32 in flight; against ${others.join("; ")}`,
      )
  }
  return out
}

export async function main(argv: string[]): Promise<number> {
  const args = parseRunArgs(argv, USAGE)
  if (typeof args === "number") return args
  const { ms, rounds, json } = args
  let only: (typeof METHODS)[number][] = [...METHODS]
  if (args.only !== null) {
    const names = args.only.split(",")
    if (names.some((n) => !(n in ONLY_NAMES)))
      return (void console.error(`--only takes some of ${Object.keys(ONLY_NAMES).join(",")}\n${USAGE}`), 2)
    only = names.map((n) => ONLY_NAMES[n]!)
  }
  const missing = missingDevPackages(only.filter((m) => m === "tinypool" || m === "piscina"))
  if (missing.length > 0) {
    const hint = devPackagesHint("rpc", "the comparison with tinypool and piscina", missing)
    if (args.only !== null) return (void console.error(hint), 2)
    console.error(`${hint}; measuring the others without it`)
    only = only.filter((m) => !missing.includes(m))
  }
  const machine = describeMachine()
  const load = loadavg()
  const busy0 = machineBusySeconds()
  const self0 = selfCpuSeconds()
  const t0 = performance.now()
  const setups: Record<Method, () => Promise<Target>> = {
    "slotbus RPC": slotbusTarget,
    tinypool: () => poolTarget("tinypool"),
    piscina: () => poolTarget("piscina"),
    "process.send": processSendTarget,
  }
  const rows = await measureAll(
    METHODS.filter((m) => only.includes(m)),
    (m) => setups[m](),
    ms,
    rounds,
  )
  const wall = (performance.now() - t0) / 1000
  const busy1 = machineBusySeconds()
  const others = busy0 !== null && busy1 !== null ? busy1 - busy0 - (selfCpuSeconds() - self0) : null
  if (json) {
    for (const r of rows) console.log(JSON.stringify(r))
    return 0
  }
  console.log(
    `slotbus bench rpc · ${machine.cpu} · ${machine.cores} cores · ${machine.kernel} · Bun ${machine.bun} · ${machine.date} · load average ${load.map((l) => l.toFixed(2)).join(", ")}`,
  )
  for (const w of busyWarnings(machine, others, wall)) console.log(`warning: ${w}`)
  console.log(`\n${table(rows)}\n`)
  for (const v of verdicts(rows)) console.log(v)
  console.log(
    `(${rounds} round${rounds > 1 ? "s" : ""} of ${ms} ms per line, medians; one worker each: a process for slotbus and process.send, a thread taking 32 tasks at once for the pools; cpu µs/call counts this process, its threads and the worker processes. Compare lines within one run.)`,
  )
  return 0
}
