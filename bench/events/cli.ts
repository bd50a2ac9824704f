// `slotbus bench events`: publish→receive latency (64 B, p50/p99) and delivered events/s with 1 and 4
// subscriber processes, for slotbus topics and the usual alternatives, in one run.
import { cpus } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { spawn, type Child } from "../lib/child.ts"
import { monoNs as now } from "../lib/clock.ts"
import { findTool } from "../lib/tools.ts"

const PEER = join(import.meta.dir, "peer.ts")
const BC_WORKER = join(import.meta.dir, "bc-worker.ts")
const SIZE = 64

interface PhaseResult {
  count: number
  accounted: number
  elapsedNs: number
  lat: [number, number] | null
}
interface Row {
  method: string
  subs: number
  p50: number
  p99: number
  delivered: number // events/s summed over subscribers
  lost: number // fraction of events a subscriber did not receive (slotbus: counted as lagged)
}

const USAGE = `usage: slotbus bench events [--quick] [--json]
       slotbus bench events --remote [--quick] [--json]   (across two hosts over NATS: --remote --help)
       slotbus bench events soak [options]   (SIGKILL/SIGSTOP soak: slotbus bench events soak --help)

Publishes 64 B events to 1 and 4 subscriber processes and reports publish→receive latency (p50/p99) and
delivered events/s for slotbus topics (spin/adaptive/park, iterator and batch reader), nats-server, Redis
pub/sub, process.send fan-out and BroadcastChannel between Workers. Missing servers are skipped with a note.`

function has(cmd: string) {
  return findTool(cmd) !== null
}

/** The subscriber's JSON lines, one after the other. */
function lines(child: Child) {
  let read = 0
  return async (): Promise<Record<string, unknown>> => JSON.parse(await child.line(read++, 60_000))
}

const textEvent = (i: number) => {
  const s = `${now()}|${i}|`
  return s + "x".repeat(Math.max(0, SIZE - s.length))
}

interface Driver {
  name: string
  start(subs: number): Promise<void>
  send(i: number): void | Promise<void>
  end(): Promise<void>
  results(): Promise<PhaseResult[]>
  stop(): Promise<void>
}

async function spawnPeers(n: number, args: string[], ipc = false) {
  const procs = Array.from({ length: n }, () =>
    spawn([process.execPath, PEER, ...args], ipc ? { ipc() {}, serialization: "json" } : {}),
  )
  const readers = procs.map((p) => lines(p))
  for (const r of readers) await r()
  return { procs, readers }
}

function topicDriver(idle: "spin" | "adaptive" | "park", reader: "iter" | "batch"): Driver {
  let topic: Topic, ctl: Topic
  let peers: Awaited<ReturnType<typeof spawnPeers>>
  const data = new Uint8Array(SIZE)
  const f64 = new Float64Array(data.buffer, 0, 1)
  const name = `bench-${process.pid}-${idle}-${reader}`
  return {
    name: `slotbus ${idle} ${reader}`,
    async start(subs) {
      topic = await Topic.open(name, { capacity: 1 << 24 })
      ctl = await Topic.open(`${name}-ctl`, { capacity: 1 << 16 })
      peers = await spawnPeers(subs, ["topic", name, idle, reader])
    },
    send() {
      f64[0] = now()
      topic.publish({ type: "bench", data })
    },
    async end() {
      ctl.publish({ type: "end" })
    },
    results: () => Promise.all(peers.readers.map((r) => r() as Promise<unknown> as Promise<PhaseResult>)),
    async stop() {
      await Promise.all(peers.procs.map((p) => p.kill()))
      topic.close()
      ctl.close()
    },
  }
}

function textDriver(
  name: string,
  setup: (subs: number) => Promise<{ send(s: string): void; flush(): Promise<void>; stop(): Promise<void> }>,
  peerArgs: (subs: number) => string[],
  ipc = false,
): Driver {
  let peers: Awaited<ReturnType<typeof spawnPeers>>
  let io: Awaited<ReturnType<typeof setup>>
  return {
    name,
    async start(subs) {
      io = await setup(subs)
      peers = await spawnPeers(subs, peerArgs(subs), ipc)
      if (ipc) io = { ...io, send: (s: string) => peers.procs.forEach((p) => p.send(s)) }
    },
    send(i) {
      io.send(textEvent(i))
    },
    async end() {
      await io.flush()
      io.send("END")
      await io.flush()
    },
    results: () => Promise.all(peers.readers.map((r) => r() as Promise<unknown> as Promise<PhaseResult>)),
    async stop() {
      await Promise.all(peers.procs.map((p) => p.kill()))
      await io.stop()
    },
  }
}

async function startServer(cmd: string[], port: number) {
  const proc = spawn(cmd)
  for (let i = 0; i < 200; i++) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })
      s.end()
      return proc
    } catch {
      await Bun.sleep(20)
    }
  }
  await proc.kill()
  throw new Error(`${cmd[0]} did not start:\n${proc.output}`)
}

function natsDriver(): Driver {
  const port = 14222 + (process.pid % 1000)
  let server: Child
  return textDriver(
    "nats-server",
    async () => {
      server = await startServer([findTool("nats-server")!, "-a", "127.0.0.1", "-p", String(port)], port)
      const { connect } = await import("@nats-io/transport-node")
      const nc = await connect({ servers: `127.0.0.1:${port}` })
      const enc = new TextEncoder()
      return {
        send: (s) => nc.publish("bench", enc.encode(s)),
        flush: () => nc.flush(),
        stop: async () => {
          await nc.close()
          await server.kill()
        },
      }
    },
    () => ["nats", String(port)],
  )
}

function redisDriver(): Driver {
  const port = 16379 + (process.pid % 1000)
  let server: Child
  return textDriver(
    "redis pub/sub",
    async () => {
      server = await startServer(
        [findTool("redis-server")!, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        port,
      )
      const { RedisClient } = await import("bun")
      const client = new RedisClient(`redis://127.0.0.1:${port}`)
      await client.connect()
      let pending: Promise<unknown>[] = []
      return {
        send: (s) => {
          pending.push(client.publish("bench", s))
        },
        flush: async () => {
          await Promise.all(pending)
          pending = []
        },
        stop: async () => {
          client.close()
          await server.kill()
        },
      }
    },
    () => ["redis", String(port)],
  )
}

function ipcDriver(): Driver {
  return textDriver(
    "process.send",
    async () => ({ send() {}, flush: () => Bun.sleep(0), stop: async () => {} }),
    () => ["ipc"],
    true,
  )
}

function broadcastDriver(): Driver {
  let workers: Worker[] = []
  let chan: BroadcastChannel
  let inbox: PhaseResult[][] = []
  const waiters: (() => void)[] = []
  return {
    name: "BroadcastChannel",
    async start(subs) {
      chan = new BroadcastChannel("slotbus-bench")
      inbox = []
      workers = Array.from({ length: subs }, () => new Worker(BC_WORKER))
      await Promise.all(
        workers.map(
          (w, i) =>
            new Promise<void>((ready) => {
              inbox[i] = []
              w.onmessage = (m) => {
                if (m.data === "ready") return ready()
                inbox[i]!.push(m.data as PhaseResult)
                waiters.splice(0).forEach((f) => f())
              }
            }),
        ),
      )
    },
    send(i) {
      chan.postMessage(textEvent(i))
    },
    async end() {
      await Bun.sleep(0)
      chan.postMessage("END")
    },
    async results() {
      const want = Math.max(...inbox.map((b) => b.length)) + 1
      while (inbox.some((b) => b.length < want)) await new Promise<void>((r) => waiters.push(r))
      return inbox.map((b) => b[want - 1]!)
    },
    async stop() {
      workers.forEach((w) => w.terminate())
      chan.close()
    },
  }
}

async function measure(d: Driver, subs: number, latN: number, tputN: number): Promise<Row> {
  await d.start(subs)
  try {
    // latency: one event per timer turn (~1 ms here), so no event queues behind another and the publisher
    // leaves the CPUs to the subscribers in between
    for (let i = 0; i < latN; i++) {
      await d.send(i)
      await new Promise<void>((r) => setTimeout(r, 0))
    }
    await d.end()
    const lat = await d.results()
    // throughput: as fast as the publisher can
    for (let i = 0; i < tputN; i++) {
      await d.send(i)
      if (i % 1024 === 1023) await new Promise<void>((r) => setImmediate(r))
    }
    await d.end()
    const tput = await d.results()
    const all = lat.flatMap((r) => (r.lat ? [r.lat] : []))
    const delivered = tput.reduce((n, r) => n + r.count / (Math.max(r.elapsedNs, 1) / 1e9), 0)
    const lost = tput.reduce((n, r) => n + (tputN - r.count) / tputN, 0) / tput.length
    return {
      method: d.name,
      subs,
      p50: median(all.map((l) => l[0])) / 1000,
      p99: Math.max(...all.map((l) => l[1])) / 1000,
      delivered,
      lost,
    }
  } finally {
    await d.stop()
  }
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

async function publishNs(): Promise<number> {
  const t = await Topic.open(`bench-pub-${process.pid}`, { capacity: 1 << 24 })
  const data = new Uint8Array(SIZE)
  const N = 1_000_000
  for (let i = 0; i < 100_000; i++) t.publish({ type: "bench", data })
  const t0 = now()
  for (let i = 0; i < N; i++) t.publish({ type: "bench", data })
  const ns = (now() - t0) / N
  t.close()
  return ns
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)
const us = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)) : "-")

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "soak") return (await import("./soak.ts")).main(argv.slice(1))
  if (argv.includes("--remote")) return (await import("./remote.ts")).main(argv.filter((a) => a !== "--remote"))
  if (argv.includes("-h") || argv.includes("--help")) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const quick = argv.includes("--quick")
  const latN = quick ? 300 : 1000
  const tputN = quick ? 100_000 : 500_000
  const drivers: Driver[] = [
    topicDriver("spin", "iter"),
    topicDriver("adaptive", "iter"),
    topicDriver("park", "iter"),
    topicDriver("spin", "batch"),
    topicDriver("adaptive", "batch"),
  ]
  const skipped: string[] = []
  if (has("nats-server")) drivers.push(natsDriver())
  else skipped.push("nats-server (not installed: apt-get install -y nats-server)")
  if (has("redis-server")) drivers.push(redisDriver())
  else skipped.push("redis pub/sub (redis-server not installed: apt-get install -y redis-server)")
  drivers.push(ipcDriver(), broadcastDriver())

  const machine = `${cpus()[0]?.model ?? "?"} · ${cpus().length} cores · Bun ${Bun.version} · ${new Date().toISOString()}`
  const pubNs = await publishNs()
  const rows: Row[] = []
  for (const subs of [1, 4])
    for (const d of drivers) {
      try {
        rows.push(await measure(d, subs, latN, d.name.startsWith("slotbus") ? tputN * 4 : tputN))
      } catch (e) {
        skipped.push(`${d.name} with ${subs}: ${(e as Error).message}`)
      }
    }
  if (argv.includes("--json")) {
    process.stdout.write(JSON.stringify({ machine, publishNs: pubNs, rows, skipped }, null, 2) + "\n")
    return 0
  }
  const ref = (subs: number) =>
    rows.find((r) => r.subs === subs && r.method === "slotbus adaptive batch")?.delivered ?? NaN
  const out = [
    `slotbus bench events · ${machine}`,
    `publish from JS, 64 B, no subscriber: ${pubNs.toFixed(0)} ns/event`,
    "",
  ]
  out.push("method                   subs   p50 µs   p99 µs   delivered/s   lost    sb-batch ×")
  for (const r of rows)
    out.push(
      `${r.method.padEnd(24)} ${String(r.subs).padStart(4)} ${us(r.p50).padStart(8)} ${us(r.p99).padStart(8)} ${fmt(r.delivered).padStart(13)} ${(r.lost * 100).toFixed(1).padStart(5)}%  ${(ref(r.subs) / r.delivered).toFixed(1).padStart(8)}×`,
    )
  if (skipped.length) out.push("", "skipped:", ...skipped.map((s) => `  ${s}`))
  out.push(
    "",
    "latency: one event per timer turn (~1 ms), publish call to the subscriber's handler (CLOCK_MONOTONIC), p50 of the",
  )
  out.push(
    "subscribers' medians and the worst p99; delivered/s: the publisher as fast as it can, summed over subscribers;",
  )
  out.push(
    "lost: events a subscriber did not receive (slotbus counts them in sub.lagged; the others buffer or drop silently)",
  )
  process.stdout.write(out.join("\n") + "\n")
  return 0
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)))
