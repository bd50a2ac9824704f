// The front of one variant of `slotbus bench realwork`: a Bun.serve on 127.0.0.1 answering /page/<id>,
// /cached/<id> and /thumb/<id> through WORKERS workers of that variant:
//   rpc      SlotBus + superviseWorkers; pages by respond(bus.remote<RenderApi>().renderPage(id)) (cached ones
//            by .cachedPage(id)), thumbs by bus.fetch (respond(): how docs/api.md has a late page answered; a tree
//            from before it answers `new Response(await …)`, which Bun.serve writes in ~15 sends)
//   fetch    SlotBus + superviseWorkers; every route by bus.fetch(req)
//   threads  WORKERS Worker threads of this process, postMessage; the least busy one takes the next request
//   proxy    WORKERS processes each with its own Bun.serve; fetch() to the least busy one, its body passed on
//   cluster  WORKERS processes each with its own Bun.serve({ reusePort: true }) on one port, answering the clients
//            themselves (Bun's cluster: no front in the path; this process only starts them and names the port)
//   direct   no workers: the Bun.serve answers /cached/<id> itself, in its callback (other routes 404: the bench
//            runs it on the cached route only)
// Usage: bun bench/realwork/front.ts <variant> [root]   (root: the slotbus tree whose library is loaded)
// Prints "ready port=<port> workers=<pid,…> threads=<tid,…>" once every worker serves; ends with its stdin (the
// bench ended or was killed) or on SIGTERM, with its workers.
import { join, resolve } from "node:path"
import { direct } from "../lib/direct.ts"
import { idleFromEnv } from "../lib/idle-env.ts"
import { leastBusy, threadPool } from "../lib/thread-pool.ts"
import { answer, HTML, JPEG } from "./render.ts"
import type { RenderApi } from "./worker.ts"

type Core = typeof import("../../src/index.ts")

type Variant = "rpc" | "fetch" | "threads" | "proxy" | "cluster" | "direct"
const WORKERS = 4
/** Slots per worker on the slotbus variants: requests each takes at once. */
const SLOTS = 16

const [variant, rootArg] = process.argv.slice(2) as [Variant, string | undefined]
const root = resolve(rootArg ?? join(import.meta.dir, "../.."))
const WORKER = join(import.meta.dir, "worker.ts")

interface Setup {
  /** What the front's Bun.serve answers with; none where the workers take the clients' connections themselves. */
  fetch: ((req: Request) => Response | Promise<Response>) | null
  /** The port the clients connect to where the workers listen on it themselves. */
  port?: number
  workers: number[]
  threads: number[]
  close: () => Promise<void>
}

// SLOTBUS_REALWORK_IDLE: the slotbus variants' idle strategy (bench/lib/idle-env.ts), for docs/perf/real-work.md.
const idle = () => idleFromEnv("SLOTBUS_REALWORK_IDLE")

const pageRoute = (path: string) => /^\/(page|cached)\/(\d+)$/.exec(path)

async function slotbus(mode: "rpc" | "fetch"): Promise<Setup> {
  const core = (await import(join(root, "src/index.ts"))) as Core
  const { SlotBus, superviseWorkers } = core
  const respond = (core as Partial<Core>).respond ?? lateResponse
  const bus = await SlotBus.listen(`realwork-${process.pid}`, { slots: SLOTS, idle: idle() })
  const pool = superviseWorkers(bus, {
    command: [process.execPath, WORKER, mode, bus.name, root],
    instances: WORKERS,
    stdout: "ignore",
    stderr: "inherit",
  })
  await bus.waitForWorkers(WORKERS, { timeoutMs: 30_000 })
  const remote = bus.remote<RenderApi>()
  const fetch =
    mode === "fetch"
      ? (req: Request) => bus.fetch(req)
      : async (req: Request) => {
          const m = pageRoute(new URL(req.url).pathname)
          if (!m) return bus.fetch(req)
          const id = Number(m[2])
          return respond(m[1] === "page" ? remote.renderPage(id) : remote.cachedPage(id), { headers: HTML })
        }
  return {
    fetch,
    workers: pool.instances.map((i) => i.pid),
    threads: [],
    close: async () => {
      await pool.stop({ drainTimeoutMs: 2000, killGraceMs: 1000 })
      await bus.close({ drain: false })
    },
  }
}

/** A tree without respond(): the page as `new Response(await …)`. */
const lateResponse = async (answer: Promise<string>, init: ResponseInit) => new Response(await answer, init)

type Reply = { id: number; html?: string; chunk?: Uint8Array; end?: boolean }

async function threads(): Promise<Setup> {
  const pool = await threadPool<Reply>(join(import.meta.dir, "thread.ts"), WORKERS)
  const fetch = (req: Request): Response | Promise<Response> => {
    const m = /^\/(page|cached|thumb)\/(\d+)$/.exec(new URL(req.url).pathname)
    if (!m) return new Response("not found", { status: 404 })
    if (m[1] !== "thumb")
      return new Promise<Response>((resolve) =>
        pool.send({ [m[1]!]: Number(m[2]) }, (r) => (resolve(new Response(r.html, { headers: HTML })), true)),
      )
    // every piece is posted at once (no back-pressure): at most one thumbnail per request in flight is held here
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        pool.send({ thumb: Number(m[2]) }, (r) => (r.end ? (c.close(), true) : (c.enqueue(r.chunk!), false)))
      },
    })
    return new Response(body, { headers: JPEG })
  }
  return { fetch, workers: [], threads: pool.tids, close: async () => pool.close() }
}

async function proxy(): Promise<Setup> {
  const procs = Array.from({ length: WORKERS }, () =>
    Bun.spawn([process.execPath, WORKER, "serve"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" }),
  )
  const ports = await Promise.all(procs.map((p) => firstLine(p.stdout)))
  const bases = ports.map((l) => {
    const m = /^port (\d+)$/.exec(l)
    if (!m) throw new Error(`a serve worker printed ${JSON.stringify(l)} instead of its port`)
    return `http://127.0.0.1:${m[1]}`
  })
  const busy = bases.map(() => 0)
  const fetch = async (req: Request) => {
    const url = new URL(req.url)
    const at = leastBusy(busy)
    busy[at]!++
    // counted until the headers: a page's work is done by then, a thumbnail's stream goes on (round robin for those)
    const res = await globalThis.fetch(bases[at]! + url.pathname).finally(() => busy[at]!--)
    return new Response(res.body, { status: res.status, headers: res.headers })
  }
  return { fetch, ...processes(procs) }
}

/** What a setup of worker processes reports and how it ends them. */
const processes = (procs: Bun.Subprocess[]) => ({
  workers: procs.map((p) => p.pid),
  threads: [],
  close: async () => {
    for (const p of procs) p.kill()
    await Promise.all(procs.map((p) => p.exited))
  },
})

/** Bun's cluster: the first process takes a new port with reusePort, the others join it there. */
async function cluster(): Promise<Setup> {
  const serve = (port: number) =>
    Bun.spawn([process.execPath, WORKER, "cluster", String(port)], { stdin: "pipe", stdout: "pipe", stderr: "inherit" })
  const procs = [serve(0)]
  const first = await firstLine(procs[0]!.stdout)
  const port = Number(/^port (\d+)$/.exec(first)?.[1])
  if (!port) throw new Error(`a cluster worker printed ${JSON.stringify(first)} instead of its port`)
  for (let i = 1; i < WORKERS; i++) procs.push(serve(port))
  for (const line of await Promise.all(procs.slice(1).map((p) => firstLine(p.stdout))))
    if (line !== `port ${port}`) throw new Error(`a cluster worker printed ${JSON.stringify(line)}, not port ${port}`)
  return { fetch: null, port, ...processes(procs) }
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = ""
  const reader = stream.getReader()
  while (!text.includes("\n")) {
    const { done, value } = await reader.read()
    if (done) break
    text += new TextDecoder().decode(value)
  }
  reader.releaseLock()
  return text.split("\n")[0]!
}

const setups: Record<Variant, () => Promise<Setup>> = {
  rpc: () => slotbus("rpc"),
  fetch: () => slotbus("fetch"),
  threads,
  proxy,
  cluster,
  direct: async () =>
    direct((path) => (path.startsWith("/cached/") ? answer(path) : new Response("not found", { status: 404 }))),
}
if (!setups[variant]) {
  console.error(`usage: bun bench/realwork/front.ts ${Object.keys(setups).join("|")} [root]`)
  process.exit(2)
}
const setup = await setups[variant]()
const server = setup.fetch ? Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: setup.fetch }) : null
let ending: Promise<void> | null = null
const end = () =>
  (ending ??= (async () => {
    server?.stop(true)
    await setup.close()
    process.exit(0)
  })())
process.on("SIGTERM", end)
console.log(
  `ready port=${server?.port ?? setup.port} workers=${setup.workers.join(",")} threads=${setup.threads.join(",")}`,
)
for await (const _ of Bun.stdin.stream());
await end()
