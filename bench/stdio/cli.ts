// `slotbus bench stdio`: the stdio bus against the direct alternatives, in one run.
//   echo:  bus.request() through a pool (1 and 2 instances) vs a client on a direct Bun.spawn stdio pipe to the same worker
//   MCP:   tools/call echo on @modelcontextprotocol/server-everything through the bus vs the MCP SDK client direct
//          (and vs the same minimal client on a direct pipe, the like-for-like line)
// 1 and 32 requests in flight; p50/p99 of each round trip, throughput, and this process's CPU per message.
import { parseRunArgs } from "../lib/args.ts"
import { join } from "node:path"
import { StdioBus } from "../../src/stdio/index.ts"
import { busyWarnings, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { median } from "../lib/samples.ts"
import { closedLoop } from "../lib/closed-loop.ts"
import { processCpuSeconds, selfCpuSeconds } from "../lib/cpu.ts"
import { devPackage, devPackagesHint, missingDevPackages } from "../lib/dev-packages.ts"

const USAGE = `usage: slotbus bench stdio [--time ms] [--rounds n] [--quick] [--only echo|mcp] [--json]
       slotbus bench stdio soak [options]   (SIGKILL/SIGSTOP soak: slotbus bench stdio soak --help)
       slotbus bench stdio http [options]   (MCP over HTTP: slotbus vs mcp-proxy, supergateway: --help)

  --time <ms>   measured time per line and round (default 1000; --quick 300); warm-up is a quarter of it
  --rounds <n>  rounds, the order of the lines rotating; figures are medians (default 3; --quick 1)
  --only <set>  echo or mcp (default both)
  --json        one JSON object per line instead of the table`

const ECHO_WORKER = join(import.meta.dir, "echo-worker.ts")
const MCP_PACKAGES = [
  "@modelcontextprotocol/sdk/client/index.js",
  "@modelcontextprotocol/server-everything/dist/index.js",
]
const PARAMS = { text: "x".repeat(48) } // ~64-byte request line body

interface Row {
  group: string
  method: string
  inflight: number
  count: number
  msgPerS: number
  p50us: number
  p99us: number
  /** This process's CPU per message (the client side; for the bus, including routing). */
  cpuUsPerMsg: number
  /** The worker processes' CPU per message. */
  workerCpuUsPerMsg: number
}

/** One way of making a request, set up once and measured in every round. */
interface Target {
  group: string
  method: string
  call: () => Promise<unknown>
  pids: () => number[]
  close: () => Promise<void>
}

type Call = () => Promise<unknown>

async function measure(t: Target, inflight: number, ms: number): Promise<Row> {
  const worker = () => t.pids().reduce((sum, pid) => sum + processCpuSeconds(pid), 0)
  const r = await closedLoop(t.call, inflight, ms, { self: selfCpuSeconds, worker })
  return {
    group: t.group,
    method: t.method,
    inflight,
    count: r.count,
    msgPerS: r.perS,
    p50us: r.p50us,
    p99us: r.p99us,
    cpuUsPerMsg: (r.used.self / r.count) * 1e6,
    workerCpuUsPerMsg: (r.used.worker / r.count) * 1e6,
  }
}

/** Every target measured once per round, the order rotating between rounds; each figure is the median of the rounds. */
async function measureAll(targets: Target[], ms: number, rounds: number): Promise<Row[]> {
  const samples = new Map<string, Row[]>()
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(k + r) % targets.length]!
      for (const n of [1, 32]) {
        const row = await measure(t, n, ms)
        const key = `${t.method}@${n}`
        samples.set(key, [...(samples.get(key) ?? []), row])
      }
    }
  }
  return targets.flatMap((t) =>
    [1, 32].map((n) => {
      const rs = samples.get(`${t.method}@${n}`)!
      const pick = (f: (r: Row) => number) => median(rs.map(f))
      return {
        ...rs[0]!,
        count: pick((r) => r.count),
        msgPerS: pick((r) => r.msgPerS),
        p50us: pick((r) => r.p50us),
        p99us: pick((r) => r.p99us),
        cpuUsPerMsg: pick((r) => r.cpuUsPerMsg),
        workerCpuUsPerMsg: pick((r) => r.workerCpuUsPerMsg),
      }
    }),
  )
}

/** A minimal JSON-RPC client on a direct stdio pipe: what one would write without the bus. */
class DirectPipe {
  readonly proc: Bun.Subprocess<"pipe", "pipe", "ignore">
  private readonly pending = new Map<number, (v: unknown) => void>()
  private nextId = 0
  private flushing = false
  constructor(argv: string[]) {
    this.proc = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "ignore" })
    void this.read()
  }
  request(method: string, params: unknown): Promise<unknown> {
    const id = ++this.nextId
    const p = new Promise((r) => this.pending.set(id, r))
    this.send({ jsonrpc: "2.0", id, method, params })
    return p
  }
  send(message: unknown) {
    this.proc.stdin.write(JSON.stringify(message) + "\n")
    if (!this.flushing) {
      this.flushing = true
      queueMicrotask(() => {
        this.flushing = false
        void this.proc.stdin.flush()
      })
    }
  }
  private async read() {
    const decoder = new TextDecoder()
    let rest = ""
    for await (const chunk of this.proc.stdout) {
      const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
      rest = lines.pop()!
      for (const line of lines) {
        const m = JSON.parse(line)
        if (m.method !== undefined) continue // the server's own notifications
        const r = this.pending.get(m.id)
        this.pending.delete(m.id)
        r?.(m.result)
      }
    }
  }
  async close() {
    this.proc.kill()
    await this.proc.exited
  }
}

const ECHO_CALL = { name: "echo", arguments: { message: "hello" } }
const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "slotbus-bench", version: "1" } }

function directTarget(group: string, argv: string[], method: string, params: unknown): Target & { pipe: DirectPipe } {
  const pipe = new DirectPipe(argv)
  return {
    group,
    method: "direct Bun.spawn pipe",
    pipe,
    call: () => pipe.request(method, params),
    pids: () => [pipe.proc.pid],
    close: () => pipe.close(),
  }
}

async function busTarget(
  group: string,
  argv: string[],
  instances: number,
  method: string,
  params: unknown,
  init: boolean,
): Promise<Target> {
  const bus = StdioBus.fromConfig({ pools: [{ id: group, command: argv[0]!, args: argv.slice(1), instances }] })
  await bus.start()
  // One session per instance initializes it; the measured calls carry no session, so they go to the least busy.
  if (init) {
    for (let i = 0; i < instances; i++) {
      await bus.request("initialize", INIT, { sessionId: `init-${i}`, timeoutMs: 30_000 })
      await bus.notify("notifications/initialized", undefined, { sessionId: `init-${i}` })
    }
  }
  return {
    group,
    method: `stdio bus, ${instances} instance${instances > 1 ? "s" : ""}`,
    call: () => bus.request(method, params),
    pids: () => bus.stats().pools[0]!.instances.map((i) => i.pid),
    close: () => bus.stop(),
  }
}

async function echoTargets(): Promise<Target[]> {
  const argv = [process.execPath, ECHO_WORKER]
  return [
    directTarget("echo", argv, "echo", PARAMS),
    await busTarget("echo", argv, 1, "echo", PARAMS, false),
    await busTarget("echo", argv, 2, "echo", PARAMS, false),
  ]
}

async function mcpTargets(): Promise<Target[]> {
  const { Client } = await import("@modelcontextprotocol/sdk/client/index.js")
  const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js")
  const argv = [process.execPath, devPackage(MCP_PACKAGES[1]!)!, "stdio"]
  const direct = directTarget("mcp", argv, "tools/call", ECHO_CALL)
  await direct.pipe.request("initialize", INIT)
  direct.pipe.send({ jsonrpc: "2.0", method: "notifications/initialized" })
  const client = new Client({ name: "slotbus-bench", version: "1" })
  const transport = new StdioClientTransport({ command: argv[0]!, args: argv.slice(1), stderr: "ignore" })
  await client.connect(transport)
  const sdk: Target = {
    group: "mcp",
    method: "MCP SDK client direct",
    call: () => client.callTool(ECHO_CALL),
    pids: () => [transport.pid ?? 0],
    close: () => client.close(),
  }
  return [
    direct,
    sdk,
    await busTarget("mcp", argv, 1, "tools/call", ECHO_CALL, true),
    await busTarget("mcp", argv, 2, "tools/call", ECHO_CALL, true),
  ]
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const rate = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)

function table(rows: Row[]): string {
  const head = `${"group".padEnd(6)}${"method".padEnd(26)}${"in flight".padStart(10)}${"p50 µs".padStart(10)}${"p99 µs".padStart(10)}${"msg/s".padStart(10)}${"cpu µs/msg".padStart(12)}${"worker µs/msg".padStart(15)}`
  return [
    head,
    ...rows.map(
      (r) =>
        `${r.group.padEnd(6)}${r.method.padEnd(26)}${String(r.inflight).padStart(10)}${fmt(r.p50us).padStart(10)}${fmt(r.p99us).padStart(10)}${rate(r.msgPerS).padStart(10)}${fmt(r.cpuUsPerMsg).padStart(12)}${fmt(r.workerCpuUsPerMsg).padStart(15)}`,
    ),
  ].join("\n")
}

function verdicts(rows: Row[], group: string, directName: string): string[] {
  const find = (m: string, n: number) => rows.find((r) => r.group === group && r.method === m && r.inflight === n)
  const d1 = find(directName, 1),
    d32 = find(directName, 32),
    b1 = find("stdio bus, 1 instance", 1),
    b32 = find("stdio bus, 1 instance", 32),
    t32 = find("stdio bus, 2 instances", 32)
  if (!d1 || !d32 || !b1 || !b32 || !t32) return []
  const p50 = b1.p50us / d1.p50us
  const cpu = b32.cpuUsPerMsg - d32.cpuUsPerMsg
  const tput = t32.msgPerS / d32.msgPerS
  const mark = (ok: boolean) => (ok ? "met" : "MISSED")
  return [
    `${group}: p50 through the bus ${fmt(b1.p50us)} µs vs direct ${fmt(d1.p50us)} µs = ${p50.toFixed(2)}× (target ≤ 1.1×: ${mark(p50 <= 1.1)})`,
    `${group}: routing CPU ${fmt(cpu)} µs per message (bus ${fmt(b32.cpuUsPerMsg)} − direct ${fmt(d32.cpuUsPerMsg)} at 32 in flight; target ≤ 5 µs: ${mark(cpu <= 5)})`,
    `${group}: 2 instances at 32 in flight ${rate(t32.msgPerS)}/s vs one direct pipe ${rate(d32.msgPerS)}/s = ${tput.toFixed(2)}× (target ≥ 1.5×: ${mark(tput >= 1.5)})`,
  ]
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "soak") return (await import("./soak.ts")).main(argv.slice(1))
  if (argv[0] === "http") return (await import("./http.ts")).main(argv.slice(1))
  const args = parseRunArgs(argv, USAGE)
  if (typeof args === "number") return args
  const { ms, rounds, only, json } = args
  if (only !== null && only !== "echo" && only !== "mcp")
    return (void console.error(`--only takes echo or mcp\n${USAGE}`), 2)
  const missing = only === "echo" ? [] : missingDevPackages(MCP_PACKAGES)
  const hint = devPackagesHint("stdio", "the MCP comparison", missing)
  if (missing.length > 0 && only === "mcp") return (void console.error(hint), 2)
  if (missing.length > 0) console.error(`${hint}; measuring echo alone`)
  const machine = describeMachine()
  const busy0 = machineBusySeconds()
  const self0 = selfCpuSeconds()
  const t0 = performance.now()
  const rows: Row[] = []
  for (const setup of [only !== "mcp" ? echoTargets : null, only !== "echo" && !missing.length ? mcpTargets : null]) {
    if (!setup) continue
    const targets = await setup()
    try {
      rows.push(...(await measureAll(targets, ms, rounds)))
    } finally {
      await Promise.all(targets.map((t) => t.close()))
    }
  }
  const wall = (performance.now() - t0) / 1000
  const busy1 = machineBusySeconds()
  const others = busy0 !== null && busy1 !== null ? busy1 - busy0 - (selfCpuSeconds() - self0) : null
  if (json) {
    for (const r of rows) console.log(JSON.stringify(r))
    return 0
  }
  console.log(
    `slotbus bench stdio · ${machine.cpu} · ${machine.cores} cores · ${machine.kernel} · Bun ${machine.bun} · ${machine.date}`,
  )
  for (const w of busyWarnings(machine, others, wall)) console.log(`warning: ${w}`)
  console.log(`\n${table(rows)}\n`)
  for (const v of [
    ...verdicts(rows, "echo", "direct Bun.spawn pipe"),
    ...verdicts(rows, "mcp", "direct Bun.spawn pipe"),
    ...verdicts(rows, "mcp", "MCP SDK client direct").map((v) => v.replace("mcp:", "mcp vs SDK client:")),
  ])
    console.log(v)
  console.log(
    `(${rounds} round${rounds > 1 ? "s" : ""} of ${ms} ms per line, medians; cpu µs/msg is this process's CPU (client + routing), worker µs/msg the worker processes'. Compare lines within one run.)`,
  )
  return 0
}
