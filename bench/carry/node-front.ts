// The front of the Node variants of `slotbus bench carry` (issue 67), run under Node (built to JavaScript by
// node.ts): a node:http server on 127.0.0.1 answering /small/<id> and /page/<id> (lib/answers.ts), itself or through
// <workers> Bun worker processes (worker.ts, the Bun variants' own):
//   node-direct  node:http answering itself (the Node yardstick; no workers)
//   node-fetch   node:http + nodeHandler(bus): bus.fetch to { fetch: true } workers, as the Bun fetch variant
//   node-proxy   node:http + fetch() to the least busy of <workers> processes each with its own Bun.serve, as the
//                Bun proxy variant
// Usage: node node-front.js <variant> <workers> <library.js> <bun> <worker.ts> <root>, where library.js is the
// slotbus of <root> built for Node (its libslotbus in $SLOTBUS_LIB) and <bun> runs <worker.ts> with <root>.
// Prints "ready port=<port> workers=<pid,…> threads=" once every worker serves; ends with its stdin (the bench ended
// or was killed) or on SIGTERM, with its workers.
import { type ChildProcess, spawn } from "node:child_process"
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"
import { leastBusy } from "../lib/thread-pool.ts"
import { bodyOf, HTML_TYPE, JSON_TYPE, route } from "../lib/answers.ts"

type Core = typeof import("../../src/index.ts")
type Variant = "node-direct" | "node-fetch" | "node-proxy"

interface Setup {
  listener: RequestListener
  workers: number[]
  close: () => Promise<void>
}

const [variant, count, library, bun, worker, root] = process.argv.slice(2) as [Variant, string, ...string[]]
const workers = Number(count)

const notFound = (res: ServerResponse) => res.writeHead(404).end("not found")

/** The answer written by node:http itself, as a Node server answering in its callback does. */
function direct(req: IncomingMessage, res: ServerResponse) {
  const path = req.url ?? "/"
  const r = route(path)
  if (!r) return notFound(res)
  res.writeHead(200, r.answer === "small" ? JSON_TYPE : HTML_TYPE).end(bodyOf(path))
}

const ended = (p: ChildProcess) =>
  new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once("exit", () => r())))

/** <workers> Bun `serve` workers, each resolved with the port its Bun.serve took. */
async function serveWorkers() {
  const procs = Array.from({ length: workers }, () =>
    spawn(bun!, [worker!, "serve"], { stdio: ["pipe", "pipe", "inherit"] }),
  )
  const close = async () => {
    for (const p of procs) p.kill()
    await Promise.all(procs.map(ended))
  }
  try {
    const ports = await Promise.all(
      procs.map(
        (p) =>
          new Promise<number>((resolve, reject) => {
            p.once("exit", (code) => reject(new Error(`a serve worker ended before it was ready (exit ${code})`)))
            createInterface({ input: p.stdout! }).once("line", (l) => {
              const m = /^port (\d+)$/.exec(l)
              if (m) resolve(Number(m[1]))
              else reject(new Error(`a serve worker printed ${JSON.stringify(l)} instead of its port`))
            })
          }),
      ),
    )
    return { pids: procs.map((p) => p.pid!), ports, close }
  } catch (e) {
    await close()
    throw e
  }
}

async function proxy(): Promise<Setup> {
  const ws = await serveWorkers()
  const bases = ws.ports.map((port) => `http://127.0.0.1:${port}`)
  const busy = bases.map(() => 0)
  const listener = async (req: IncomingMessage, res: ServerResponse) => {
    const at = leastBusy(busy)
    busy[at]!++
    try {
      const got = await fetch(bases[at]! + req.url)
      const headers: Record<string, string> = {}
      for (const name of ["content-type", "content-length"]) {
        const v = got.headers.get(name)
        if (v !== null) headers[name] = v
      }
      res.writeHead(got.status, headers)
      // the body passed on as it arrives, as the Bun proxy's new Response(res.body)
      if (got.body)
        for await (const chunk of got.body) if (!res.write(chunk)) await new Promise((r) => res.once("drain", r))
      res.end()
    } catch (e) {
      res.destroy(e as Error)
    } finally {
      busy[at]!--
    }
  }
  return { listener, workers: ws.pids, close: ws.close }
}

async function busFetch(): Promise<Setup> {
  const { nodeHandler, SlotBus, superviseWorkers } = (await import(library!)) as Core
  const bus = await SlotBus.listen(`carry-${process.pid}`)
  const pool = superviseWorkers(bus, {
    command: [bun!, worker!, "fetch", bus.name, root!],
    instances: workers,
    stdout: "ignore",
    stderr: "inherit",
  })
  await bus.waitForWorkers(workers, { timeoutMs: 30_000 })
  return {
    listener: nodeHandler(bus),
    workers: pool.instances.map((i) => i.pid),
    close: async () => {
      await pool.stop({ drainTimeoutMs: 2000, killGraceMs: 1000 })
      await bus.close({ drain: false })
    },
  }
}

const setups: Record<Variant, () => Promise<Setup>> = {
  "node-direct": async () => ({ listener: direct, workers: [], close: async () => {} }),
  "node-fetch": busFetch,
  "node-proxy": proxy,
}

if (!setups[variant] || !(workers >= 1 && workers <= 64) || !library || !bun || !worker || !root) {
  console.error(
    `usage: node node-front.js ${Object.keys(setups).join("|")} <workers 1–64> <library.js> <bun> <worker.ts> <root>`,
  )
  process.exit(2)
}
const setup = await setups[variant]()
const server = createServer(setup.listener)
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
let ending: Promise<void> | null = null
const end = () =>
  (ending ??= (async () => {
    server.close()
    server.closeAllConnections()
    await setup.close()
    process.exit(0)
  })())
process.on("SIGTERM", end)
process.stdin.on("end", end).resume()
console.log(`ready port=${(server.address() as AddressInfo).port} workers=${setup.workers.join(",")} threads=`)
