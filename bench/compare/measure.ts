// One build's measures for `slotbus bench compare`: the library is imported from `--root` (a work tree, built), the
// harness is this file, so two builds are measured by the same code. Prints one JSON line per measure:
//   {"measure":"core 64 B, 1 in flight","perS":…,"p50us":…}
// Usage: bun bench/compare/measure.ts --root=<tree> --measure=core|buses|http|events|realwork|carry|node [--seconds=2]
//                                    [--client=wrk|fetch]
// Its children run this file too, in a role: echo (a SlotWorker), app (a hubWorker), pong (a topic responder).
// Only API every build since streams has is used: SlotBus.listen, bus.call, SlotWorker.connect, createHub,
// hubWorker, Topic.open, publish, subscribe. The real-work and carrying measures run this tree's `bench realwork` and
// `bench carry` (a process, not an import: bench rooms do not import each other) with the library from --root:
// superviseWorkers, expose, remote. The node measure runs node-pair.ts under Node with --root's src built for it.
import { join, resolve } from "node:path"
import { tmpdir } from "node:os"
import { rmSync } from "node:fs"
import { closedLoop } from "../lib/closed-loop.ts"
import { run, spawn, type Child } from "../lib/child.ts"
import { httpLoad } from "../lib/http-load.ts"
import { benchNode, buildForNode, nodeFlags } from "../lib/node.ts"
import { detectPlatform, libraryFile } from "../../src/native/lib-path.ts"

type Core = typeof import("../../src/index.ts")
type Http = typeof import("../../src/http/index.ts")
type Events = typeof import("../../src/events/index.ts")

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]))
const root = resolve(args.root ?? join(import.meta.dir, "../.."))
const core = (): Promise<Core> => import(join(root, "src/index.ts"))
const http = (): Promise<Http> => import(join(root, "src/http/index.ts"))
const events = (): Promise<Events> => import(join(root, "src/events/index.ts"))
const seconds = Number(args.seconds ?? 2)

export interface Measured {
  measure: string
  perS: number
  p50us: number
  /** CPU of every process involved per request (µs), where the measure reads it. */
  cpuUs?: number
}

function child(role: string, extra: string[]): Child {
  return spawn([process.execPath, import.meta.path, `--role=${role}`, `--root=${root}`, ...extra])
}

const print = (m: Measured) => console.log(JSON.stringify(m))

async function measureCore() {
  const { SlotBus } = await core()
  const bus = await SlotBus.listen(`cmp-${process.pid}`, { slots: 32 })
  const worker = child("echo", [`--bus=${bus.name}`])
  try {
    await worker.whileAlive(bus.waitForWorkers(1, 10_000), "the echo worker")
    for (const [label, size] of [
      ["64 B", 64],
      ["64 KiB", 65536],
    ] as const) {
      const body = new Uint8Array(size).fill(7)
      for (const inflight of [1, 32]) {
        const r = await closedLoop(() => bus.call(body), inflight, seconds * 1000, {})
        print({ measure: `core ${label}, ${inflight} in flight`, perS: r.perS, p50us: r.p50us })
      }
    }
  } finally {
    await worker.kill()
    await bus.close({ drain: false })
  }
}

/**
 * A front that opens more buses: bus A's 64 B round trip, 1 in flight, over the 200 ms after the buses beside it got
 * their fresh, idle workers (1, then 2, then 4 buses; 50 ms of it warm-up), when a worker's start was dearest to its
 * neighbours (docs/perf/round-nine-cliffs.md): as a front starts its pools, or a pool restarts a worker.
 */
async function measureBuses() {
  const { SlotBus } = await core()
  const open: { bus: Awaited<ReturnType<Core["SlotBus"]["listen"]>>; worker: Child }[] = []
  const add = async () => {
    const bus = await SlotBus.listen(`cmp-${process.pid}-${open.length}`, { slots: 32 })
    const worker = child("echo", [`--bus=${bus.name}`])
    open.push({ bus, worker })
    await worker.whileAlive(bus.waitForWorkers(1, 10_000), "an echo worker")
  }
  try {
    await add()
    const body = new Uint8Array(64).fill(7)
    const a = open[0]!.bus
    await closedLoop(() => a.call(body), 1, 300, {}) // bus A's own start
    for (const n of [1, 2, 4]) {
      while (open.length < n) await add()
      const r = await closedLoop(() => a.call(body), 1, 200, {})
      print({ measure: `buses: A of ${n}, 64 B, fresh idle others`, perS: r.perS, p50us: r.p50us })
    }
  } finally {
    for (const { bus, worker } of open) {
      await worker.kill()
      await bus.close({ drain: false })
    }
  }
}

async function measureHttp() {
  const { createHub } = await http()
  const tokenFile = join(tmpdir(), `slotbus-compare-${process.pid}.token`)
  const hub = await createHub({ port: 0, tokenFile, quiet: true })
  const app = child("app", [`--hub=${hub.port}`, `--token-file=${tokenFile}`])
  try {
    await app.waitLine(/^ready$/, 15_000)
    const load = httpLoad(args.client)
    const url = `http://127.0.0.1:${hub.port}/items/42`
    await load(url, 16, 1) // warm up
    for (const clients of [1, 16]) {
      const r = await load(url, clients, seconds)
      print({ measure: `http hub, ${clients} client${clients > 1 ? "s" : ""}`, perS: r.rps, p50us: r.p50 })
    }
  } finally {
    await app.kill()
    await hub.close()
    rmSync(tokenFile, { force: true })
  }
}

async function measureEvents() {
  const { Topic } = await events()
  const name = `cmp-${process.pid}`
  await using topic = await Topic.open(name)
  await using pongs = topic.subscribe({ type: "pong" })
  const peer = child("pong", [`--topic=${name}`])
  try {
    await peer.waitLine(/^ready$/, 10_000)
    const it = pongs[Symbol.asyncIterator]()
    const data = new Uint8Array(64).fill(7)
    const r = await closedLoop(
      async () => {
        topic.publish({ type: "ping", data })
        await it.next()
      },
      1,
      seconds * 1000,
      {},
    )
    print({ measure: "events round trip, 64 B", perS: r.perS, p50us: r.p50us })
  } finally {
    await peer.kill()
  }
}

/**
 * `bench realwork` on the page and cached routes (the work, and carrying alone), slotbus RPC and bus.fetch, one
 * round: req/s, p50 and CPU per request.
 */
async function measureRealwork() {
  const cmd = [process.execPath, join(import.meta.dir, "../realwork/cli.ts"), "--root", root, "--json"]
  cmd.push(
    "--only",
    "rpc,fetch",
    "--route",
    "page,cached",
    "--rounds",
    "1",
    "--seconds",
    String(Math.max(1, Math.round(seconds))),
  )
  if (args.client) cmd.push("--client", args.client)
  const r = await run(cmd)
  if (r.code !== 0) throw new Error(`bench realwork failed:\n${r.stderr.slice(-2000)}`)
  for (const line of r.stdout.split("\n").filter((l) => l.startsWith("{"))) {
    const x = JSON.parse(line) as {
      kind: string
      name: string
      route: string
      rps: number
      p50ms: number
      cpuMs: { total: number }
    }
    if (x.kind === "variant")
      print({
        measure: `real work ${x.name}, ${x.route}`,
        perS: x.rps,
        p50us: x.p50ms * 1000,
        cpuUs: x.cpuMs.total * 1000,
      })
  }
}

/**
 * `bench carry`'s small JSON answer through bus.fetch and RPC from 2 workers, one round: req/s, p50 and CPU per
 * request of the front and the workers. Its pages go through the same two paths as real work's cached route, and the
 * hub's small answer is the http measure's, so this adds the app path's small answer alone: a few seconds per side.
 * Direct is measured by the bench but not printed: it does not use the library, so two sides cannot differ there.
 */
async function measureCarry() {
  const cmd = [process.execPath, join(import.meta.dir, "../carry/cli.ts"), "--root", root, "--json", "--no-perf"]
  cmd.push("--variants", "fetch,rpc", "--answers", "small", "--workers", "2", "--rounds", "1")
  cmd.push("--seconds", String(Math.max(1, Math.round(seconds))))
  if (args.client) cmd.push("--client", args.client)
  const r = await run(cmd)
  if (r.code !== 0) throw new Error(`bench carry failed:\n${r.stderr.slice(-2000)}`)
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("{"))
  for (const x of lines.map((l) => JSON.parse(l))) {
    if (x.kind === "skipped") throw new Error(`bench carry could not run ${x.name}: ${x.reason}`)
    if (x.kind === "row" && x.variant !== "direct")
      print({
        measure: `carry ${x.name}, small JSON, ${x.workers} workers`,
        perS: x.figures.rps,
        p50us: x.figures.p50us,
        cpuUs: x.figures.cpuTotalUs,
      })
  }
}

/**
 * A Node hub and a Node echo worker (node-pair.ts) of --root's slotbus, a fresh pair: 64 B round trips, 1 in flight
 * from the pair's start, then 32 in flight.
 */
async function measureNode() {
  const found = benchNode()
  if ("skip" in found) throw new Error(`the node measure needs Node: ${found.skip}`)
  const b = buildForNode([join(import.meta.dir, "node-pair.ts"), join(root, "src", "index.ts")], true)
  const platform = detectPlatform()
  const cmd = [found.node, ...nodeFlags(found.node), b.entries[0]!, "hub", b.entries[1]!, String(seconds)]
  const env = {
    ...process.env,
    SLOTBUS_LIB: join(root, "prebuilds", platform, libraryFile(platform)),
    NODE_NO_WARNINGS: "1", // node:ffi's ExperimentalWarning
  }
  try {
    const r = await run(cmd, { env })
    if (r.code !== 0) throw new Error(`the Node pair failed:\n${r.stderr.slice(-2000)}`)
    for (const line of r.stdout.split("\n").filter((l) => l.startsWith("{"))) print(JSON.parse(line) as Measured)
  } finally {
    b.remove()
  }
}

switch (args.role) {
  case "echo": {
    const { SlotWorker } = await core()
    await SlotWorker.connect(args.bus!, (req) => req.body.slice())
    break
  }
  case "app": {
    const { hubWorker } = await http()
    const app = hubWorker(`http://127.0.0.1:${args.hub}`, "compare", { tokenFile: args["token-file"] })
    app.get("/items/:id", (req) => Response.json({ id: req.params.id }))
    await app.run()
    console.log("ready")
    break
  }
  case "pong": {
    const { Topic } = await events()
    const topic = await Topic.open(args.topic!)
    const sub = topic.subscribe({ type: "ping" })
    console.log("ready")
    for await (const ev of sub) topic.publish({ type: "pong", data: ev.data.slice() })
    break
  }
  default: {
    const measures: Record<string, () => Promise<void>> = {
      core: measureCore,
      buses: measureBuses,
      http: measureHttp,
      events: measureEvents,
      realwork: measureRealwork,
      carry: measureCarry,
      node: measureNode,
    }
    const run = measures[args.measure ?? ""]
    if (!run) throw new Error(`--measure must be one of ${Object.keys(measures).join(", ")}`)
    await run()
  }
}
