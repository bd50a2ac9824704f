// `slotbus bench events --remote`: publish→receive across two hosts for a slotbus topic bridged over NATS
// (docs/PROTOCOL.md §11), a durable one's stream subscriber (§11.6), raw NATS pub/sub and Redis pub/sub, in one run. Host B is a network namespace joined to
// this one by a veth pair (as test/support/hosts.ts makes, smaller), each host with its own nats-server, the two
// clustered; Redis runs on host A. The publisher is this process on host A, the subscriber a process on host B, so
// every event crosses the veth. Needs root, iproute2 and nats-server (redis-server is skipped when missing).
import { spawnSync } from "node:child_process"
import { mkdirSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { reapedChildrenCpuSeconds, spawn, type Child } from "../lib/child.ts"
import { monoNs as now } from "../lib/clock.ts"
import { selfCpuSeconds } from "../lib/cpu.ts"
import { busyWarnings, describeMachine, machineBusySeconds } from "../lib/machine.ts"
import { findTool } from "../lib/tools.ts"
import { nats } from "../../src/nats/index.ts"

const SIZE = 64
const USAGE = `usage: slotbus bench events --remote [--quick] [--json]

Across two hosts (host B a network namespace joined by a veth pair, a clustered nats-server on each): 64 B events
from a publisher on host A to one subscriber process on host B, p50/p99 publish→receive (one event per timer
turn) and received events/s (the publisher as fast as it can), for a slotbus topic bridged over NATS (a ring
subscriber on host B), a durable topic (a stream subscriber on host B, JetStream on both servers), raw NATS
pub/sub and Redis pub/sub. Needs root, iproute2 and nats-server; redis-server is skipped when missing.`

interface PeerResult {
  count: number
  lagged: number
  elapsedNs: number
  p50: number
  p99: number
}

// ---- the subscriber process on host B: bun remote.ts peer <kind> <url> [topic] -------------------------------

async function peer(kind: string, url: string, name: string) {
  const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`)
  let lat: number[] = []
  let count = 0
  let first = 0
  let last = 0
  let heard = false
  let sampling = true
  const take = (sentNs: number) => {
    const t = now()
    if (first === 0) first = t
    last = t
    count++
    if (sampling) lat.push(t - sentNs)
  }
  const ended = (lagged: number) => {
    lat.sort((a, b) => a - b)
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? Number.NaN
    say({ count, lagged, elapsedNs: last - first, p50: q(0.5), p99: q(0.99) } satisfies PeerResult)
    lat = []
    count = first = last = 0
    sampling = false
  }
  const probe = () => {
    if (!heard) say({ heard: (heard = true) })
  }
  const dec = new TextDecoder()
  const text = (s: string) => {
    if (s === "PROBE") probe()
    else if (s === "END") ended(0)
    else take(Number(s.slice(0, s.indexOf("|"))))
  }
  if (kind === "slotbus" || kind === "slotbus-durable") {
    const durable = kind === "slotbus-durable"
    const topic = await Topic.open(name, { remote: nats(url), capacity: 1 << 24, durable })
    const sub = durable
      ? await topic.subscribeDurable({ type: "bench.*" }, { queue: 4096 })
      : topic.subscribe({ type: "bench.*" }, { queue: 1 << 16, idle: "adaptive" })
    say({ ready: true })
    let base = 0
    for await (const batch of sub.batches()) {
      for (const ev of batch) {
        if (ev.type === "bench.ev") take(new DataView(ev.data.buffer, ev.data.byteOffset, 8).getFloat64(0, true))
        else if (ev.type === "bench.probe") probe()
        else if (ev.type === "bench.end") {
          ended(sub.lagged - base)
          base = sub.lagged
        }
      }
    }
  } else if (kind === "nats") {
    const { connect } = await import("@nats-io/transport-node")
    const nc = await connect({ servers: url })
    nc.subscribe("bench", { callback: (_e, m) => text(dec.decode(m.data)) })
    await nc.flush()
    say({ ready: true })
  } else if (kind === "redis") {
    const { RedisClient } = await import("bun")
    const client = new RedisClient(url)
    await client.subscribe("bench", (m: string) => text(m))
    say({ ready: true })
  }
}

// ---- host B ---------------------------------------------------------------------------------------------------

const IP = () => findTool("ip") ?? "ip"

function sh(cmd: string[]) {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.trim()}`)
}

class TwoHosts {
  readonly ns = `sbbench-${process.pid}`
  readonly veth = `sbb${process.pid % 100000}a`
  readonly store = join(tmpdir(), `sbbench-js-${process.pid}`)
  /** Host B's socket directory (docs/PROTOCOL.md §1.1): a host is a directory of names as much as a netns. */
  readonly sockB = join(this.store, "sock-b")
  readonly a: string
  readonly b: string
  private readonly children: Child[] = []
  private made = false

  constructor() {
    const block = 4 * (process.pid % 60)
    this.a = `10.214.${Math.floor(process.pid / 60) % 250}.${block + 1}`
    this.b = `10.214.${Math.floor(process.pid / 60) % 250}.${block + 2}`
  }

  async open() {
    const vb = this.veth.replace(/a$/, "b")
    this.made = true
    mkdirSync(this.sockB, { recursive: true, mode: 0o700 })
    sh([IP(), "netns", "add", this.ns])
    sh([IP(), "link", "add", this.veth, "type", "veth", "peer", "name", vb])
    sh([IP(), "link", "set", vb, "netns", this.ns])
    sh([IP(), "addr", "add", `${this.a}/30`, "dev", this.veth])
    sh([IP(), "link", "set", this.veth, "up"])
    sh([IP(), "-n", this.ns, "addr", "add", `${this.b}/30`, "dev", vb])
    sh([IP(), "-n", this.ns, "link", "set", vb, "up"])
    sh([IP(), "-n", this.ns, "link", "set", "lo", "up"])
    // JetStream on both (for the durable topic), each with a store of its own, removed by close()
    const server = (addr: string, peer: string, onB: boolean, tag: string) =>
      this.start(
        [
          ...(onB ? [IP(), "netns", "exec", this.ns] : []),
          findTool("nats-server")!,
          ...["--addr", addr, "--port", "4222", "--cluster_name", this.ns, "--server_name", `${this.ns}-${tag}`],
          ...["--cluster", `nats://${addr}:6222`, "--routes", `nats://${peer}:6222`, "--http_port", "8222"],
          ...["-js", "--store_dir", join(this.store, tag)],
        ],
        false,
      )
    server(this.a, this.b, false, "a")
    server(this.b, this.a, true, "b")
    const healthy = (addr: string) =>
      fetch(`http://${addr}:8222/healthz`)
        .then((r) => r.json() as Promise<{ status?: string }>)
        .then(
          (h) => h.status === "ok",
          () => false,
        )
    for (let i = 0; ; i++) {
      const routes = await fetch(`http://${this.a}:8222/routez`)
        .then((r) => r.json() as Promise<{ num_routes: number }>)
        .catch(() => ({ num_routes: 0 }))
      // routed, and JetStream's meta leader elected (both healthy)
      if (routes.num_routes > 0 && (await healthy(this.a)) && (await healthy(this.b))) break
      if (i > 1000) throw new Error("the two nats-servers did not form a cluster with JetStream in 20 s")
      await Bun.sleep(20)
    }
  }

  start(cmd: string[], onB: boolean): Child {
    const c = spawn(onB ? [IP(), "netns", "exec", this.ns, "env", `SLOTBUS_SOCKET_DIR=${this.sockB}`, ...cmd] : cmd)
    this.children.push(c)
    return c
  }

  async close() {
    for (const c of this.children.splice(0)) await c.kill()
    if (!this.made) return
    spawnSync(IP(), ["netns", "pids", this.ns], { encoding: "utf8" })
      .stdout.split("\n")
      .filter(Boolean)
      .forEach((pid) => spawnSync("kill", ["-9", pid]))
    spawnSync(IP(), ["link", "del", this.veth])
    spawnSync(IP(), ["netns", "del", this.ns])
    rmSync(this.store, { recursive: true, force: true })
    this.made = false
  }
}

// ---- the publisher on host A ----------------------------------------------------------------------------------

interface Method {
  name: string
  /** The subscriber's arguments (kind, url, topic). */
  peer: string[]
  open(): Promise<{ send(t: number): void; probe(): void; end(): void; flush(): Promise<void>; close(): Promise<void> }>
}

interface Row {
  method: string
  p50us: number
  p99us: number
  perS: number
  received: number
  lagged: number
  sent: number
}

const textOf = (t: number) => {
  const s = `${t}|`
  return s + "x".repeat(SIZE - s.length)
}

/** A slotbus topic from host A to a subscriber on host B: a ring subscriber, or (durable) a stream subscriber. */
function slotbusMethod(name: string, kind: string, h: TwoHosts, topicName: string, durable: boolean): Method {
  return {
    name,
    peer: [kind, `nats://${h.b}:4222`, topicName],
    async open() {
      const topic = await Topic.open(topicName, { remote: nats(`nats://${h.a}:4222`), capacity: 1 << 24, durable })
      const data = new Uint8Array(SIZE)
      const f64 = new Float64Array(data.buffer, 0, 1)
      return {
        send(t) {
          f64[0] = t
          topic.publish({ type: "bench.ev", data })
        },
        probe: () => topic.publish({ type: "bench.probe" }),
        end: () => topic.publish({ type: "bench.end" }),
        flush: () => Bun.sleep(0),
        close: () => topic[Symbol.asyncDispose](),
      }
    },
  }
}

function methods(h: TwoHosts, skipped: string[]): Method[] {
  const name = `bench-remote-${process.pid}`
  const out: Method[] = [
    slotbusMethod("slotbus topic over NATS", "slotbus", h, name, false),
    slotbusMethod("slotbus durable stream", "slotbus-durable", h, `${name}-durable`, true),
    {
      name: "raw NATS pub/sub",
      peer: ["nats", `nats://${h.b}:4222`],
      async open() {
        const { connect } = await import("@nats-io/transport-node")
        const nc = await connect({ servers: `nats://${h.a}:4222` })
        return {
          send: (t) => nc.publish("bench", textOf(t)),
          probe: () => nc.publish("bench", "PROBE"),
          end: () => nc.publish("bench", "END"),
          flush: () => nc.flush(),
          close: () => nc.close(),
        }
      },
    },
  ]
  if (findTool("redis-server")) {
    out.push({
      name: "Redis pub/sub",
      peer: ["redis", `redis://${h.a}:6379`],
      async open() {
        const { RedisClient } = await import("bun")
        const client = new RedisClient(`redis://${h.a}:6379`)
        await client.connect()
        let pending: Promise<unknown>[] = []
        return {
          send: (t) => void pending.push(client.publish("bench", textOf(t))),
          probe: () => void pending.push(client.publish("bench", "PROBE")),
          end: () => void pending.push(client.publish("bench", "END")),
          flush: async () => {
            await Promise.all(pending)
            pending = []
          },
          close: async () => client.close(),
        }
      },
    })
  } else skipped.push("Redis pub/sub: redis-server is not installed (apt-get install -y redis-server)")
  return out
}

async function measure(h: TwoHosts, m: Method, latN: number, tputN: number): Promise<Row> {
  const p = h.start([process.execPath, import.meta.path, "peer", ...m.peer], true)
  let read = 0
  const next = async () => JSON.parse(await p.line(read++, 120_000)) as Record<string, number>
  await next() // ready
  const io = await m.open()
  try {
    // the subscriber's interest has to reach host A's server over the route: probe until it is heard
    let heard = false
    const heardLine = next().then(() => (heard = true))
    for (let i = 0; !heard; i++) {
      if (i > 10_000) throw new Error(`${m.name}: the subscriber on host B heard no probe in 10 s`)
      io.probe()
      await io.flush()
      await Bun.sleep(1)
    }
    await heardLine
    await Bun.sleep(200) // probes still on the way land before the measured events
    for (let i = 0; i < latN; i++) {
      io.send(now())
      await new Promise<void>((r) => setTimeout(r, 0))
    }
    await io.flush()
    io.end()
    await io.flush()
    const lat = (await next()) as unknown as PeerResult
    for (let i = 0; i < tputN; i++) {
      io.send(now())
      if (i % 1024 === 1023) {
        await io.flush()
        await new Promise<void>((r) => setImmediate(r))
      }
    }
    await io.flush()
    io.end()
    await io.flush()
    const tput = (await next()) as unknown as PeerResult
    return {
      method: m.name,
      p50us: lat.p50 / 1000,
      p99us: lat.p99 / 1000,
      perS: tput.count / (Math.max(tput.elapsedNs, 1) / 1e9),
      received: tput.count,
      lagged: tput.lagged,
      sent: tputN,
    }
  } finally {
    await io.close()
    await p.kill()
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "peer") {
    await peer(argv[1]!, argv[2]!, argv[3] ?? "")
    return -1 // keeps running: the publisher kills it
  }
  if (argv.includes("-h") || argv.includes("--help")) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  if (process.getuid?.() !== 0 || !findTool("ip") || !findTool("nats-server")) {
    process.stderr.write(`slotbus bench events --remote needs root, ip (iproute2) and nats-server\n\n${USAGE}\n`)
    return 2
  }
  const quick = argv.includes("--quick")
  const latN = quick ? 300 : 1000
  const tputN = quick ? 20_000 : 100_000
  const machine = describeMachine()
  const busy0 = machineBusySeconds()
  const own0 = selfCpuSeconds() + reapedChildrenCpuSeconds()
  const t0 = performance.now()
  const h = new TwoHosts()
  const skipped: string[] = []
  const rows: Row[] = []
  const onExit = () => void h.close()
  process.on("SIGINT", onExit)
  try {
    await h.open()
    const list = methods(h, skipped)
    if (list.some((m) => m.name.startsWith("Redis")))
      h.start(
        [
          findTool("redis-server")!,
          "--port",
          "6379",
          "--bind",
          h.a,
          "--save",
          "",
          "--appendonly",
          "no",
          "--protected-mode",
          "no",
        ],
        false,
      )
    await Bun.sleep(300)
    for (const m of list) {
      try {
        rows.push(await measure(h, m, latN, tputN))
      } catch (e) {
        skipped.push(`${m.name}: ${(e as Error).message}`)
      }
    }
  } finally {
    await h.close()
    process.off("SIGINT", onExit)
  }
  const wallS = (performance.now() - t0) / 1000
  const busy1 = machineBusySeconds()
  // the bench's own CPU (this process, its servers and subscribers, reaped by now) is not "other processes"
  const own = selfCpuSeconds() + reapedChildrenCpuSeconds() - own0
  const warnings = busyWarnings(machine, busy0 !== null && busy1 !== null ? busy1 - busy0 - own : null, wallS)
  if (argv.includes("--json")) {
    process.stdout.write(`${JSON.stringify({ machine, rows, skipped, loadAfter: loadavg()[0] })}\n`)
    return 0
  }
  const ref = (name: string) => rows.find((r) => r.method === name)
  const sb = ref("slotbus topic over NATS")
  const out = [
    `slotbus bench events --remote · ${machine.cpu} · ${machine.cores} cores · Bun ${machine.bun} · ${machine.date}`,
    `load average ${machine.loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; other processes used ${busy0 !== null && busy1 !== null ? Math.max(0, busy1 - busy0 - own).toFixed(1) : "?"} CPU-s in ${wallS.toFixed(0)} s`,
    ...warnings.map((w) => `warning: ${w}`),
    "",
    "method                     p50 µs   p99 µs   received/s   received   lagged (of sent)",
  ]
  for (const r of rows)
    out.push(
      `${r.method.padEnd(24)} ${r.p50us.toFixed(0).padStart(8)} ${r.p99us.toFixed(0).padStart(8)} ${Math.round(r.perS).toLocaleString("en").padStart(12)} ${String(r.received).padStart(10)}   ${r.lagged} (${r.sent})`,
    )
  if (sb)
    for (const r of rows)
      if (r !== sb)
        out.push(
          `slotbus against ${r.method}: p50 ${(sb.p50us / r.p50us).toFixed(2)}×, received/s ${(sb.perS / r.perS).toFixed(2)}×`,
        )
  if (skipped.length) out.push("", "skipped:", ...skipped.map((s) => `  ${s}`))
  out.push(
    "",
    "p50/p99: one event per timer turn, publish call on host A to the handler on host B (CLOCK_MONOTONIC, one machine);",
    "received/s: the publisher as fast as it can (a flush every 1024), first to last event received on host B.",
    "slotbus: publisher → host A's ring → its bridge (the same process) → NATS A → route → NATS B → host B's bridge",
    "(the subscriber's process) → host B's ring → the subscriber; raw NATS: publisher → NATS A → route → NATS B → subscriber.",
  )
  process.stdout.write(`${out.join("\n")}\n`)
  return 0
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2))
  if (code >= 0) process.exit(code)
}
