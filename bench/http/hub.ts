// HTTP through the hub vs the alternatives, one load generator for all, in one run:
//   direct       a Bun.serve that answers itself
//   hub+slotbus  createHub() in one process, a hubWorker() in another, talking over shared memory
//   bus.fetch    a Bun.serve whose route is `(req) => bus.fetch(req)`, a SlotWorker({ fetch: true }) in another process
//   fetch-proxy  a Bun.serve that forwards each request with fetch() to the worker's own Bun.serve
// Usage: bun bench/http/hub.ts [--duration=3] [--rounds=3] [--concurrency=1,16] [--bytes=0,65536]
//                              [--client=wrk|fetch] [--idle=default,adaptive,park,2/1]   (a hub + worker pair per idle strategy;
//                              spinMicros/parkAfterMs for a custom one)
// The load generator is wrk when it is installed (apt-get install wrk), else an in-repo keep-alive fetch client.
import { cpus, release, tmpdir } from "node:os"
import { join } from "node:path"
import { rmSync } from "node:fs"
import { spawn, type Child } from "../lib/child.ts"
import { hasWrk, httpLoad, type HttpCell } from "../lib/http-load.ts"
import type { IdleStrategy } from "../../src/index.ts"
import { createHub, hubWorker } from "../../src/http/index.ts"
import { SlotBus, SlotWorker } from "../../src/index.ts"

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]))
const role = args.role

function idleOf(s: string | undefined): IdleStrategy | undefined {
  if (!s || s === "default") return undefined // the HTTP room's own default
  const custom = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(s)
  return custom ? { spinMicros: Number(custom[1]), parkAfterMs: Number(custom[2]) } : (s as IdleStrategy)
}

/** On SIGTERM (the orchestrator's stop): `close`, then exit. */
function closeOnTerm(close: () => Promise<unknown>) {
  process.on("SIGTERM", () => void close().finally(() => process.exit(0)))
}

function body(bytes: number, id: string): Response {
  return bytes === 0 ? Response.json({ id }) : new Response(new Uint8Array(bytes).fill(120))
}

// --- the processes under test ----------------------------------------------------------------------------

if (role === "direct" || role === "origin") {
  const server = Bun.serve({
    port: 0,
    routes: { "/items/:id": (req) => body(Number(new URL(req.url).searchParams.get("bytes") ?? 0), req.params.id) },
    fetch: () => new Response("not found", { status: 404 }),
  })
  console.log(`port ${server.port}`)
} else if (role === "proxy") {
  const origin = `http://127.0.0.1:${args.origin}`
  const server = Bun.serve({
    port: 0,
    fetch: async (req) => {
      const url = new URL(req.url)
      const res = await fetch(origin + url.pathname + url.search, {
        method: req.method,
        headers: req.headers,
        body: req.body,
      })
      return new Response(res.body, { status: res.status, headers: res.headers })
    },
  })
  console.log(`port ${server.port}`)
} else if (role === "bus-fetch") {
  const bus = await SlotBus.listen(`bench-http-${process.pid}`, { idle: idleOf(args.idle) })
  const server = Bun.serve({ port: 0, fetch: (req) => bus.fetch(req) })
  closeOnTerm(() => bus.close({ drain: false })) // its flight-recorder file goes with it
  console.log(`bus ${bus.name}`)
  await bus.waitForWorkers(1)
  console.log(`port ${server.port}`)
} else if (role === "fetch-worker") {
  await SlotWorker.connect(
    args.bus!,
    (req) => {
      const url = new URL(req.url)
      return body(Number(url.searchParams.get("bytes") ?? 0), url.pathname.split("/")[2]!)
    },
    { fetch: true, idle: idleOf(args.idle) },
  )
} else if (role === "hub") {
  const hub = await createHub({ port: Number(args.port ?? 0), tokenFile: args["token-file"], idle: idleOf(args.idle) })
  closeOnTerm(() => hub.close())
  console.log(`port ${hub.port}`)
} else if (role === "worker") {
  const app = hubWorker(`http://127.0.0.1:${args.hub}`, "bench", {
    tokenFile: args["token-file"],
    idle: idleOf(args.idle),
  })
  app.get("/items/:id", (req) => body(Number(req.query.get("bytes") ?? 0), req.params.id!))
  await app.run()
  console.log("ready")
} else {
  await main()
}

// --- the orchestrator ------------------------------------------------------------------------------------

type Cell = HttpCell

/** Starts this file in `--role=<name>` and waits until it says it listens ("port N") or joined ("ready"). */
async function spawnRole(name: string, extra: string[] = []) {
  const child = spawn([process.execPath, import.meta.path, `--role=${name}`, ...extra])
  const [, port] = await child.waitLine(/^(?:port (\d+)|ready)$/, 15_000)
  return { child, port: Number(port ?? 0) }
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
}

async function main() {
  const seconds = Number(args.duration ?? 3)
  const rounds = Number(args.rounds ?? 3)
  const concs = (args.concurrency ?? "1,16").split(",").map(Number)
  const sizes = (args.bytes ?? "0").split(",").map(Number)
  const idles = (args.idle ?? "default,adaptive,park").split(",")
  const client = args.client ?? (hasWrk() ? "wrk" : "fetch")
  const load = httpLoad(client)

  const procs: Child[] = []
  const tokenFiles: string[] = []
  try {
    const direct = await spawnRole("direct")
    procs.push(direct.child)
    const targets: [string, number][] = [["direct Bun.serve", direct.port]]
    for (const idle of idles) {
      const tokenFile = join(tmpdir(), `slotbus-bench-${process.pid}-${idle.replace(/\W/g, "_")}.token`)
      tokenFiles.push(tokenFile)
      const hub = await spawnRole("hub", [`--token-file=${tokenFile}`, `--idle=${idle}`])
      const worker = await spawnRole("worker", [`--hub=${hub.port}`, `--token-file=${tokenFile}`, `--idle=${idle}`])
      procs.push(hub.child, worker.child)
      targets.push([`hub + slotbus worker (idle ${idle})`, hub.port])
    }
    const busFetch = spawn([process.execPath, import.meta.path, "--role=bus-fetch", "--idle=adaptive"])
    procs.push(busFetch)
    const [, busName] = await busFetch.waitLine(/^bus (\S+)$/, 15_000)
    procs.push(
      spawn([process.execPath, import.meta.path, "--role=fetch-worker", `--bus=${busName}`, "--idle=adaptive"]),
    )
    const [, busPort] = await busFetch.waitLine(/^port (\d+)$/, 15_000)
    targets.push(["Bun.serve + bus.fetch, slotbus worker (idle adaptive)", Number(busPort)])
    const origin = await spawnRole("origin")
    const proxy = await spawnRole("proxy", [`--origin=${origin.port}`])
    procs.push(origin.child, proxy.child)
    targets.push(["hub fetch-proxy to worker Bun.serve", proxy.port])

    console.log(`# HTTP hub benchmark`)
    console.log(`machine: ${cpus()[0]?.model ?? "?"} × ${cpus().length}, linux ${release()}, bun ${Bun.version}`)
    console.log(
      `load: ${client === "wrk" ? "wrk -t1" : "in-repo keep-alive fetch client"}; GET /items/:id answered by a route handler;`,
    )
    console.log(
      `${rounds} rounds of ${seconds} s per cell, targets interleaved within a round; each figure is the median of the rounds\n`,
    )
    console.log("| target | body | clients | req/s | p50 µs | p99 µs | p50 ÷ direct | req/s ÷ direct |")
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (const bytes of sizes) {
      for (const conc of concs) {
        const cells: Cell[][] = targets.map(() => [])
        for (let r = 0; r < rounds; r++) {
          for (const [i, [, port]] of targets.entries()) {
            const url = `http://127.0.0.1:${port}/items/42${bytes ? `?bytes=${bytes}` : ""}`
            if (r === 0) await load(url, conc, 1) // warm up
            cells[i]!.push(await load(url, conc, seconds))
          }
        }
        const med = cells.map((cs) => ({
          rps: median(cs.map((c) => c.rps)),
          p50: median(cs.map((c) => c.p50)),
          p99: median(cs.map((c) => c.p99)),
        }))
        const base = med[0]!
        const size = bytes === 0 ? "json" : `${bytes / 1024} KiB`
        for (const [i, [name]] of targets.entries()) {
          const m = med[i]!
          console.log(
            `| ${name} | ${size} | ${conc} | ${Math.round(m.rps)} | ${m.p50.toFixed(0)} | ${m.p99.toFixed(0)} | ${(m.p50 / base.p50).toFixed(2)}× | ${(m.rps / base.rps).toFixed(2)}× |`,
          )
        }
      }
    }
    console.log(`\nOn a VM, a server that sleeps between requests pays for its idle vCPU's wake-up at 1 client; a`)
    console.log(`spinning worker ("adaptive") keeps the vCPUs awake, which can put the hub ahead of direct there.`)
  } finally {
    await Promise.all(procs.map((p) => p.stop())) // SIGTERM: the hubs and the bus close, removing their files
    for (const f of tokenFiles) rmSync(f, { force: true })
  }
}
