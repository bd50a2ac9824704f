// `slotbus bench stdio http`: MCP over Streamable HTTP in front of @modelcontextprotocol/server-everything, through
// slotbus's HTTP listener (`slotbus stdio --listen http:`), mcp-proxy and supergateway --stateful, each its own
// process tree, measured in one run with the gateways interleaved in every phase: connect (initialize), tools/call
// echo p50/p99 on one session, calls/s and p99 over 16 sessions, the process tree's RSS with 100 idle sessions, and
// how a session fares when its server process is killed with SIGKILL. The client is the MCP SDK's, in this process.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { describeMachine } from "../lib/machine.ts"
import { median } from "../lib/samples.ts"
import { devPackage } from "../lib/dev-packages.ts"
import { findTool } from "../lib/tools.ts"

const USAGE = `usage: slotbus bench stdio http [--time ms] [--idle n] [--instances n] [--gateways dir] [--json]

  --time <ms>      measured time of the one-session and the 16-session phases (default 2000)
  --idle <n>       idle sessions for the memory phase (default 100)
  --instances <n>  server-everything instances in slotbus's pool (default 1, as the others' one server)
  --gateways <dir> a node_modules holding mcp-proxy and supergateway (default: the repository's, else
                   $SLOTBUS_BENCH_GATEWAYS); without them slotbus is measured alone. To get them without touching
                   the repository: cd $(mktemp -d) && npm install --no-save mcp-proxy supergateway
  --json           the rows as JSON lines`

const REPO = join(import.meta.dir, "..", "..")
const ECHO = { name: "echo", arguments: { message: "hello" } }

interface Gateway {
  name: string
  url: string
  proc: Bun.Subprocess
}

interface Row {
  gateway: string
  connectMs: number
  p50Ms: number
  p99Ms: number
  callsPerS16: number
  p99Ms16: number
  idleRssMiB: number
  idleProcs: number
  perIdleSessionMiB: number
  killed: string
  killedBackMs: number | null
}

/** Every process under `pid`, itself included. */
function tree(pid: number): number[] {
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = []
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`)
    } catch {}
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${out[i]}/task/${t}/children`, "utf8").trim()
        if (kids) out.push(...kids.split(" ").map(Number))
      } catch {}
    }
  }
  return out
}

function rssMiB(pids: number[]): number {
  let kib = 0
  for (const p of pids) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0)
    } catch {}
  }
  return kib / 1024
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
  } catch {
    return ""
  }
}

async function connect(url: string): Promise<{ client: Client; close: () => Promise<void> }> {
  const { Client } = await import("@modelcontextprotocol/sdk/client/index.js")
  const { StreamableHTTPClientTransport } = await import("@modelcontextprotocol/sdk/client/streamableHttp.js")
  const client = new Client({ name: "slotbus-bench", version: "1" })
  const transport = new StreamableHTTPClientTransport(new URL(url))
  await client.connect(transport)
  return {
    client,
    close: async () => {
      await transport.terminateSession().catch(() => {})
      await client.close()
    },
  }
}

async function ready(g: Gateway): Promise<void> {
  const until = performance.now() + 60_000
  for (;;) {
    try {
      const c = await connect(g.url)
      await c.close()
      return
    } catch (e) {
      if (performance.now() > until || g.proc.exitCode !== null) throw new Error(`${g.name} did not come up: ${e}`)
      await Bun.sleep(200)
    }
  }
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

async function callsFor(client: Client, until: number, lat: number[]): Promise<void> {
  while (performance.now() < until) {
    const t = performance.now()
    await client.callTool(ECHO)
    lat.push(performance.now() - t)
  }
}

/** The phases, each over every gateway in turn: what the table shows. */
async function run(gateways: Gateway[], ms: number, idle: number): Promise<Row[]> {
  const rows = new Map<string, Row>(gateways.map((g) => [g.name, { gateway: g.name } as Row]))
  const row = (g: Gateway) => rows.get(g.name)!
  for (const g of gateways) {
    const times: number[] = []
    for (let i = 0; i < 10; i++) {
      const t = performance.now()
      const c = await connect(g.url)
      times.push(performance.now() - t)
      await c.close()
    }
    row(g).connectMs = median(times)
  }
  for (const g of gateways) {
    const c = await connect(g.url)
    for (let i = 0; i < 100; i++) await c.client.callTool(ECHO) // warm-up
    const lat: number[] = []
    await callsFor(c.client, performance.now() + ms, lat)
    Object.assign(row(g), { p50Ms: pct(lat, 0.5), p99Ms: pct(lat, 0.99) })
    await c.close()
  }
  for (const g of gateways) {
    const cs = await Promise.all(Array.from({ length: 16 }, () => connect(g.url)))
    await Promise.all(
      cs.map(async (c) => {
        for (let i = 0; i < 10; i++) await c.client.callTool(ECHO)
      }),
    )
    const lat: number[] = []
    const t0 = performance.now()
    await Promise.all(cs.map((c) => callsFor(c.client, t0 + ms, lat)))
    Object.assign(row(g), { callsPerS16: lat.length / ((performance.now() - t0) / 1000), p99Ms16: pct(lat, 0.99) })
    await Promise.all(cs.map((c) => c.close()))
  }
  for (const g of gateways) {
    await Bun.sleep(500)
    const before = rssMiB(tree(g.proc.pid))
    const cs = []
    for (let i = 0; i < idle; i++) cs.push(await connect(g.url))
    await Bun.sleep(1000)
    const pids = tree(g.proc.pid)
    const after = rssMiB(pids)
    Object.assign(row(g), { idleRssMiB: after, idleProcs: pids.length, perIdleSessionMiB: (after - before) / idle })
    await Promise.all(cs.map((c) => c.close()))
  }
  for (const g of gateways) {
    const c = await connect(g.url)
    await c.client.callTool(ECHO)
    const servers = tree(g.proc.pid).filter((p) => p !== g.proc.pid && cmdline(p).includes("server-everything"))
    for (const p of servers) process.kill(p, "SIGKILL")
    const t0 = performance.now()
    let last = ""
    let back: number | null = null
    while (performance.now() - t0 < 10_000) {
      try {
        await c.client.callTool(ECHO, undefined, { timeout: 2000 })
        back = performance.now() - t0
        break
      } catch (e) {
        last = (e as Error).message.slice(0, 60)
        await Bun.sleep(50)
      }
    }
    Object.assign(row(g), {
      killedBackMs: back,
      killed: back === null ? `not back in 10 s (${last})` : "the same session answers",
    })
    await c.close()
  }
  return [...rows.values()]
}

function start(name: string, argv: string[], url: string): Gateway {
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "ignore", stdin: "ignore" })
  return { name, url, proc }
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } })
  const p = s.port
  s.stop(true)
  return p
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      time: { type: "string" },
      idle: { type: "string" },
      instances: { type: "string" },
      gateways: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean" },
    },
  })
  if (values.help) return (void console.log(USAGE), 0)
  const ms = Number(values.time ?? 2000)
  const idle = Number(values.idle ?? 100)
  const instances = Number(values.instances ?? 1)
  const everything = devPackage("@modelcontextprotocol/server-everything/dist/index.js")
  const node = process.env.SLOTBUS_NODE ?? findTool("node")
  if (!everything || !devPackage("@modelcontextprotocol/sdk/client/index.js") || !node)
    return (void console.error(`slotbus bench stdio http needs the MCP SDK, server-everything and node\n${USAGE}`), 2)
  const modules = values.gateways ?? process.env.SLOTBUS_BENCH_GATEWAYS ?? join(REPO, "node_modules")
  const proxy = join(modules, "mcp-proxy", "dist", "bin", "mcp-proxy.mjs")
  const superg = join(modules, "supergateway", "dist", "index.js")
  const dir = mkdtempSync(join(tmpdir(), "slotbus-bench-http-"))
  const config = join(dir, "bus.json")
  const server = [node, everything, "stdio"]
  writeFileSync(
    config,
    JSON.stringify({
      pools: [{ id: "everything", command: node, args: server.slice(1), instances, initialize: "replay" }],
    }),
  )
  const gateways: Gateway[] = []
  const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
  try {
    let port = await freePort()
    gateways.push(
      start(
        `slotbus (${instances} inst.)`,
        [
          process.execPath,
          join(REPO, "bin", "slotbus.ts"),
          "stdio",
          "--config",
          config,
          "--listen",
          `http:127.0.0.1:${port}`,
        ],
        `http://127.0.0.1:${port}/mcp`,
      ),
    )
    if (Bun.file(proxy).size > 0) {
      port = await freePort()
      gateways.push(
        start(
          "mcp-proxy",
          [node, proxy, "--port", String(port), "--host", "127.0.0.1", "--server", "stream", "--", ...server],
          `http://127.0.0.1:${port}/mcp`,
        ),
      )
    } else console.error(`mcp-proxy not found under ${modules}: measuring without it (--gateways)`)
    if (Bun.file(superg).size > 0) {
      port = await freePort()
      gateways.push(
        start(
          "supergateway --stateful",
          [
            node,
            superg,
            "--stdio",
            server.join(" "),
            "--outputTransport",
            "streamableHttp",
            "--stateful",
            "--port",
            String(port),
            "--streamableHttpPath",
            "/mcp",
            "--logLevel",
            "none",
          ],
          `http://127.0.0.1:${port}/mcp`,
        ),
      )
    } else console.error(`supergateway not found under ${modules}: measuring without it (--gateways)`)
    for (const g of gateways) await ready(g)
    const rows = await run(gateways, ms, idle)
    const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
    if (values.json) return (void rows.forEach((r) => console.log(JSON.stringify(r))), 0)
    const m = describeMachine()
    console.log(`slotbus bench stdio http · ${m.cpu} · ${m.cores} cores · Bun ${m.bun} · node ${node} · ${m.date}`)
    console.log(`load average before ${load0}, after ${load1}; the client (MCP SDK) runs in this process\n`)
    const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-")
    const cols = [
      "gateway",
      "connect ms",
      "p50 ms",
      "p99 ms",
      "16 s: calls/s",
      "p99 ms",
      `RSS ${idle} idle MiB (procs)`,
      "MiB/session",
      "SIGKILL of the server",
    ]
    console.log(cols.join(" | "))
    for (const r of rows)
      console.log(
        [
          r.gateway,
          f(r.connectMs),
          f(r.p50Ms, 2),
          f(r.p99Ms, 2),
          f(r.callsPerS16, 0),
          f(r.p99Ms16),
          `${f(r.idleRssMiB, 0)} (${r.idleProcs})`,
          f(r.perIdleSessionMiB, 2),
          r.killedBackMs === null ? r.killed : `${r.killed} after ${f(r.killedBackMs, 0)} ms`,
        ].join(" | "),
      )
    const s = rows[0]!
    const mark = (ok: boolean) => (ok ? "met" : "MISSED")
    console.log(
      `\nslotbus against the targets: connect ${f(s.connectMs)} ms ≤ 10: ${mark(s.connectMs <= 10)}; p50 ${f(s.p50Ms, 2)} ms ≤ 2: ${mark(s.p50Ms <= 2)}; 16 sessions ${f(s.callsPerS16, 0)} calls/s ≥ 1100 with p99 ${f(s.p99Ms16)} ≤ 40 ms: ${mark(s.callsPerS16 >= 1100 && s.p99Ms16 <= 40)}; ${f(s.perIdleSessionMiB, 2)} MiB an idle session ≤ 0.5: ${mark(s.perIdleSessionMiB <= 0.5)}; killed server back in ${s.killedBackMs === null ? "-" : f(s.killedBackMs, 0)} ms (~1 s) with its session: ${mark(s.killedBackMs !== null && s.killedBackMs <= 1500)}`,
    )
    return 0
  } finally {
    for (const g of gateways)
      for (const p of tree(g.proc.pid).reverse())
        try {
          process.kill(p, "SIGKILL")
        } catch {}
    rmSync(dir, { recursive: true, force: true })
  }
}
