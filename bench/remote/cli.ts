// `slotbus bench remote`: a 64-byte echo through slotbus over shared memory, slotbus over NATS (a worker on "another
// host": here another process through a local nats-server), raw nats.js request/reply, and HTTP keep-alive
// (Bun.serve and fetch), 1 and 32 in flight, in one run: p50/p99 and calls/s, and slotbus over NATS against raw
// nats.js (docs/PROTOCOL.md §10 adds headers, presence and routing to a plain request/reply).
import { spawnSync } from "node:child_process"
import { loadavg } from "node:os"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { parseRunArgs } from "../lib/args.ts"
import { spawn, type Child } from "../lib/child.ts"
import { closedLoop } from "../lib/closed-loop.ts"
import { processCpuSeconds, selfCpuSeconds } from "../lib/cpu.ts"
import { busyWarnings, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { median } from "../lib/samples.ts"
import { findTool } from "../lib/tools.ts"
import { nats } from "../../src/nats/index.ts"

const USAGE = `usage: slotbus bench remote [--time ms] [--rounds n] [--quick] [--only list] [--json]

  --time <ms>    measured time per line and round (default 1000; --quick 300); warm-up is a quarter of it
  --rounds <n>   rounds, the order of the methods rotating; figures are medians (default 3; --quick 1)
  --only <list>  some of shm,nats,nats.js,http (default all)
  --json         one JSON object per line instead of the table
Needs nats-server (apt-get install -y nats-server): the bench starts its own on 127.0.0.1.`

export const METHODS = ["slotbus shm", "slotbus NATS", "nats.js", "HTTP"] as const
type Method = (typeof METHODS)[number]
const ONLY: Record<string, Method> = { shm: "slotbus shm", nats: "slotbus NATS", "nats.js": "nats.js", http: "HTTP" }
const INFLIGHT = [1, 32]
const PAYLOAD = new Uint8Array(64).fill(42)
const WORKER = join(import.meta.dir, "worker.ts")

export interface Row {
  method: Method
  inflight: number
  count: number
  callsPerS: number
  p50us: number
  p99us: number
  cpuUsPerCall: number
}

interface Target {
  method: Method
  call: () => Promise<Uint8Array>
  pids: () => number[]
  close: () => Promise<void>
}

async function measure(t: Target, inflight: number, ms: number): Promise<Row> {
  const cpu = () => selfCpuSeconds() + t.pids().reduce((n, pid) => n + processCpuSeconds(pid), 0)
  const r = await closedLoop(t.call, inflight, ms, { cpu })
  return {
    method: t.method,
    inflight,
    count: r.count,
    callsPerS: r.perS,
    p50us: r.p50us,
    p99us: r.p99us,
    cpuUsPerCall: (r.used.cpu / r.count) * 1e6,
  }
}

let n = 0
async function worker(mode: string, name: string, url: string, ready: RegExp): Promise<[Child, RegExpMatchArray]> {
  const child = spawn([process.execPath, WORKER, mode, name, url])
  try {
    return [child, await child.whileAlive(child.waitLine(ready), `the ${mode} worker`)]
  } catch (e) {
    await child.kill()
    throw e
  }
}

async function setup(method: Method, url: string): Promise<Target> {
  const name = `bench-remote-${process.pid}-${++n}`
  if (method === "slotbus shm" || method === "slotbus NATS") {
    const remote = method === "slotbus NATS"
    const bus = await SlotBus.listen(name, remote ? { remote: nats(url) } : {})
    const [child] = await worker(remote ? "nats" : "shm", name, url, /^ready$/).catch(async (e) => {
      await bus.close({ drain: false })
      throw e
    })
    await bus.waitForWorkers(1)
    return {
      method,
      call: () => bus.call(PAYLOAD),
      pids: () => [child.pid],
      close: async () => {
        await child.kill()
        await bus.close({ drain: false })
      },
    }
  }
  if (method === "nats.js") {
    const { connect } = await import("@nats-io/transport-node")
    // noAsyncTraces: by default every request makes an Error for its stack (~0.75× the calls/s), which slotbus,
    // publishing rather than requesting, never pays: the baseline is nats.js at its fastest
    const nc = await connect({ servers: url, noAsyncTraces: true })
    const [child] = await worker("nats.js", name, url, /^ready$/)
    return {
      method,
      call: async () => (await nc.request(name, PAYLOAD, { timeout: 10_000 })).data,
      pids: () => [child.pid],
      close: async () => {
        await child.kill()
        await nc.close()
      },
    }
  }
  const [child, m] = await worker("http", name, url, /^ready (\d+)$/)
  const target = `http://127.0.0.1:${m[1]}/`
  return {
    method,
    call: async () => new Uint8Array(await (await fetch(target, { method: "POST", body: PAYLOAD })).arrayBuffer()),
    pids: () => [child.pid],
    close: async () => void (await child.kill()),
  }
}

async function natsServer(bin: string): Promise<{ url: string; server: Child }> {
  for (let attempt = 0; ; attempt++) {
    const port = 30000 + Math.floor(Math.random() * 20000)
    const server = spawn([bin, "-a", "127.0.0.1", "-p", String(port)])
    for (let i = 0; i < 200; i++) {
      const up = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
        (s) => (s.end(), true),
        () => false,
      )
      if (up) return { url: `nats://127.0.0.1:${port}`, server }
      if (!server.running) break
      await Bun.sleep(25)
    }
    await server.kill()
    if (attempt >= 3) throw new Error(`nats-server did not start: ${server.stderr.trim().split("\n").at(-1)}`)
  }
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2))
const rate = (v: number) =>
  v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0)

export function table(rows: Row[]): string {
  const head = `${"method".padEnd(16)}${"in flight".padStart(10)}${"p50 µs".padStart(10)}${"p99 µs".padStart(10)}${"calls/s".padStart(10)}${"cpu µs/call".padStart(13)}`
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.method.padEnd(16)}${String(r.inflight).padStart(10)}${fmt(r.p50us).padStart(10)}${fmt(r.p99us).padStart(10)}${rate(r.callsPerS).padStart(10)}${fmt(r.cpuUsPerCall).padStart(13)}`,
    ),
  ].join("\n")
}

/** slotbus over NATS against raw nats.js: its p50 overhead at 1 in flight and its calls/s ratio at 32. */
export function verdict(rows: Row[]): string | null {
  const find = (m: Method, k: number) => rows.find((r) => r.method === m && r.inflight === k)
  const s1 = find("slotbus NATS", 1)
  const s32 = find("slotbus NATS", 32)
  const n1 = find("nats.js", 1)
  const n32 = find("nats.js", 32)
  if (!s1 || !s32 || !n1 || !n32) return null
  const over = (s1.p50us / n1.p50us - 1) * 100
  const ratio = s32.callsPerS / n32.callsPerS
  return `slotbus over NATS against raw nats.js request/reply: p50 ${over >= 0 ? "+" : ""}${over.toFixed(1)}% at 1 in flight (target ≤ +10%: ${over <= 10 ? "met" : "missed"}), ${ratio.toFixed(2)}× its calls/s at 32 in flight (target ≥ 0.9×: ${ratio >= 0.9 ? "met" : "missed"})`
}

export async function main(argv: string[]): Promise<number> {
  const args = parseRunArgs(argv, USAGE)
  if (typeof args === "number") return args
  const { ms, rounds, json } = args
  let methods: Method[] = [...METHODS]
  if (args.only !== null) {
    const names = args.only.split(",")
    if (names.some((x) => !(x in ONLY)))
      return (void console.error(`--only takes some of ${Object.keys(ONLY).join(",")}\n${USAGE}`), 2)
    methods = names.map((x) => ONLY[x]!)
  }
  const bin = findTool("nats-server")
  if (!bin || spawnSync(bin, ["--version"]).status !== 0)
    return (void console.error("slotbus bench remote needs nats-server: apt-get install -y nats-server"), 1)
  const machine = describeMachine()
  const load = loadavg()
  const busy0 = machineBusySeconds()
  const self0 = selfCpuSeconds()
  const t0 = performance.now()
  const { url, server } = await natsServer(bin)
  const samples = new Map<string, Row[]>()
  try {
    for (let r = 0; r < rounds; r++)
      for (let k = 0; k < methods.length; k++) {
        const t = await setup(methods[(k + r) % methods.length]!, url)
        try {
          const back = await t.call()
          if (back.length !== PAYLOAD.length || back.some((b) => b !== 42))
            throw new Error(`${t.method} answered wrong`)
          for (const inflight of INFLIGHT) {
            const row = await measure(t, inflight, ms)
            const key = `${t.method}|${inflight}`
            samples.set(key, [...(samples.get(key) ?? []), row])
          }
        } finally {
          await t.close()
        }
      }
  } finally {
    await server.kill()
  }
  const rows = methods.flatMap((m) =>
    INFLIGHT.map((k): Row => {
      const rs = samples.get(`${m}|${k}`)!
      const pick = (f: (r: Row) => number) => median(rs.map(f))
      return {
        method: m,
        inflight: k,
        count: pick((r) => r.count),
        callsPerS: pick((r) => r.callsPerS),
        p50us: pick((r) => r.p50us),
        p99us: pick((r) => r.p99us),
        cpuUsPerCall: pick((r) => r.cpuUsPerCall),
      }
    }),
  )
  const wall = (performance.now() - t0) / 1000
  const busy1 = machineBusySeconds()
  const others = busy0 !== null && busy1 !== null ? busy1 - busy0 - (selfCpuSeconds() - self0) : null
  if (json) {
    for (const r of rows) console.log(JSON.stringify(r))
    return 0
  }
  console.log(
    `slotbus bench remote · ${machine.cpu} · ${machine.cores} cores · ${machine.kernel} · Bun ${machine.bun} · ${machine.date} · load average ${load.map((l) => l.toFixed(2)).join(", ")}`,
  )
  for (const w of busyWarnings(machine, others, wall)) console.log(`warning: ${w}`)
  console.log(`\n${table(rows)}\n`)
  const v = verdict(rows)
  if (v) console.log(v)
  console.log(
    `(64-byte echo; ${rounds} round${rounds > 1 ? "s" : ""} of ${ms} ms per line, medians; one worker process per method and round; a nats-server on 127.0.0.1; cpu µs/call counts this process and the worker, not nats-server. Compare lines within one run.)`,
  )
  return 0
}
