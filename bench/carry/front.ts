// The front of one variant of `slotbus bench carry`: an HTTP server on 127.0.0.1 answering /small/<id> and
// /page/<id> (lib/answers.ts), itself or through <workers> workers:
//   direct   Bun.serve answering itself (the yardstick; no workers)
//   hub      createHub() of slotbus/http in this process, hubWorker() processes
//   fetch    Bun.serve + bus.fetch(req); SlotWorker.connect(…, { fetch: true }) processes
//   rpc      Bun.serve + respond(bus.remote().small(id) / .page(id)); SlotWorker.expose processes
//   request  Bun.serve + bus.request({ method, path }) → toResponse(); plain-handler processes
//   call     Bun.serve + respond(bus.call(path)); plain-handler processes
// (respond(): the Response a late page is cheapest as; a tree from before it answers `new Response(await …)`.)
//   threads  Bun.serve + postMessage to the least busy of <workers> Worker threads of this process
//   proxy    Bun.serve + fetch() to the least busy of <workers> processes each with its own Bun.serve
//   reuse    no hop: the front and <workers> processes each answering on one port (Bun.serve reusePort), the
//            kernel spreading connections over them
// The slotbus variants run the library's defaults (SlotBus.listen(name), superviseWorkers), as a new user would.
// Usage: bun bench/carry/front.ts <variant> <workers> [root]   (root: the slotbus tree whose library is loaded)
// Prints "ready port=<port> workers=<pid,…> threads=<tid,…>" once every worker serves; ends with its stdin (the
// bench ended or was killed) or on SIGTERM, with its workers.
import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { direct } from "../lib/direct.ts"
import { idleFromEnv } from "../lib/idle-env.ts"
import { leastBusy, threadPool } from "../lib/thread-pool.ts"
import { answer, HTML_TYPE, JSON_TYPE, route } from "../lib/answers.ts"

type Core = typeof import("../../src/index.ts")
type Http = typeof import("../../src/http/index.ts")
type Bus = Awaited<ReturnType<Core["SlotBus"]["listen"]>>
type Api = { small: (id: number) => object; page: (id: number) => string }
type Variant = "direct" | "hub" | "fetch" | "rpc" | "request" | "call" | "threads" | "proxy" | "reuse"

interface Setup {
  /** The server's port: a Bun.serve this file starts around `fetch`, or the hub's own. */
  fetch?: (req: Request) => Response | Promise<Response>
  port?: number
  workers: number[]
  threads: number[]
  close: () => Promise<void>
}

const [variant, count, rootArg] = process.argv.slice(2) as [Variant, string, string | undefined]
const workers = Number(count)
const root = resolve(rootArg ?? join(import.meta.dir, "../.."))
const WORKER = join(import.meta.dir, "worker.ts")
const lib = <T>(entry: string): Promise<T> => import(join(root, entry))
const notFound = () => new Response("not found", { status: 404 })
const typeOf = (answer: "small" | "page") => (answer === "small" ? JSON_TYPE : HTML_TYPE)

/** Worker processes in `role` (hub, serve), each resolved with the first line it prints. */
async function spawnWorkers(role: string, extra: string[]) {
  const procs = Array.from({ length: workers }, () =>
    Bun.spawn([process.execPath, WORKER, role, ...extra], { stdin: "pipe", stdout: "pipe", stderr: "inherit" }),
  )
  const lines = await Promise.all(
    procs.map(async (p) => {
      const reader = p.stdout.getReader()
      let text = ""
      while (!text.includes("\n")) {
        const { done, value } = await reader.read()
        if (done) throw new Error(`a ${role} worker ended before it was ready (exit ${await p.exited})`)
        text += new TextDecoder().decode(value)
      }
      reader.releaseLock()
      return text.split("\n")[0]!
    }),
  )
  const close = async () => {
    for (const p of procs) p.kill()
    await Promise.all(procs.map((p) => p.exited))
  }
  return { pids: procs.map((p) => p.pid), lines, close }
}

type Respond = (answer: Promise<unknown>, init?: ResponseInit) => Promise<Response>
const answerOf = (answer: Promise<unknown>, init?: ResponseInit) =>
  answer.then((v) =>
    typeof v === "string" || v instanceof Uint8Array ? new Response(v, init) : Response.json(v, init),
  )
let respond: Respond = answerOf

async function slotbus(role: "fetch" | "rpc" | "plain", serve: (bus: Bus) => Setup["fetch"]) {
  const core = await lib<Core>("src/index.ts")
  const { SlotBus, superviseWorkers } = core
  respond = (core as { respond?: Respond }).respond ?? answerOf
  const bus = await SlotBus.listen(`carry-${process.pid}`, { idle: idleFromEnv("SLOTBUS_CARRY_IDLE") })
  const pool = superviseWorkers(bus, {
    command: [process.execPath, WORKER, role, bus.name, root],
    instances: workers,
    stdout: "ignore",
    stderr: "inherit",
  })
  await bus.waitForWorkers(workers, { timeoutMs: 30_000 })
  return {
    fetch: serve(bus),
    workers: pool.instances.map((i) => i.pid),
    threads: [],
    close: async () => {
      await pool.stop({ drainTimeoutMs: 2000, killGraceMs: 1000 })
      await bus.close({ drain: false })
    },
  }
}

async function hub(): Promise<Setup> {
  const { createHub } = await lib<Http>("src/http/index.ts")
  const tokenFile = join(tmpdir(), `slotbus-carry-${process.pid}.token`)
  const idle = idleFromEnv("SLOTBUS_CARRY_IDLE")
  const h = await createHub({ port: 0, tokenFile, quiet: true, ...(idle && { idle }) })
  const ws = await spawnWorkers("hub", [`http://127.0.0.1:${h.port}`, tokenFile, root])
  return {
    port: h.port,
    workers: ws.pids,
    threads: [],
    close: async () => {
      await ws.close()
      await h.close()
      rmSync(tokenFile, { force: true })
    },
  }
}

async function threads(): Promise<Setup> {
  const pool = await threadPool<{ id: number; value: unknown }>(join(import.meta.dir, "thread.ts"), workers)
  const fetch = (req: Request): Response | Promise<Response> => {
    const path = new URL(req.url).pathname
    const r = route(path)
    if (!r) return notFound()
    return new Promise<Response>((resolve) =>
      pool.send({ path }, ({ value }) => {
        resolve(r.answer === "small" ? Response.json(value) : new Response(value as string, { headers: HTML_TYPE }))
        return true
      }),
    )
  }
  return { fetch, workers: [], threads: pool.tids, close: async () => pool.close() }
}

async function proxy(): Promise<Setup> {
  const ws = await spawnWorkers("serve", [])
  const bases = ws.lines.map((l) => {
    const m = /^port (\d+)$/.exec(l)
    if (!m) throw new Error(`a serve worker printed ${JSON.stringify(l)} instead of its port`)
    return `http://127.0.0.1:${m[1]}`
  })
  const busy = bases.map(() => 0)
  const fetch = async (req: Request) => {
    const at = leastBusy(busy)
    busy[at]!++
    const res = await globalThis.fetch(bases[at]! + new URL(req.url).pathname).finally(() => busy[at]!--)
    return new Response(res.body, { status: res.status, headers: res.headers })
  }
  return { fetch, workers: ws.pids, threads: [], close: ws.close }
}

async function reuse(): Promise<Setup> {
  const fetch = (req: Request) => answer(new URL(req.url).pathname)
  const own = Bun.serve({ hostname: "127.0.0.1", port: 0, reusePort: true, fetch })
  const ws = await spawnWorkers("serve", [String(own.port)])
  return {
    port: own.port,
    workers: ws.pids,
    threads: [],
    close: async () => {
      own.stop(true)
      await ws.close()
    },
  }
}

const setups: Record<Variant, () => Promise<Setup>> = {
  direct: async () => direct(answer),
  hub,
  fetch: () => slotbus("fetch", (bus) => (req) => bus.fetch(req)),
  rpc: () =>
    slotbus("rpc", (bus) => {
      const remote = bus.remote<Api>()
      return async (req) => {
        const r = route(new URL(req.url).pathname)
        if (!r) return notFound()
        if (r.answer === "small") return respond(remote.small(r.id))
        return respond(remote.page(r.id), { headers: HTML_TYPE })
      }
    }),
  request: () =>
    slotbus(
      "plain",
      (bus) => async (req) => (await bus.request({ method: req.method, path: new URL(req.url).pathname })).toResponse(),
    ),
  call: () =>
    slotbus("plain", (bus) => async (req) => {
      const path = new URL(req.url).pathname
      const r = route(path)
      return r ? respond(bus.call(path), { headers: typeOf(r.answer) }) : notFound()
    }),
  threads,
  proxy,
  reuse,
}

if (!setups[variant] || !(workers >= 1 && workers <= 64)) {
  console.error(`usage: bun bench/carry/front.ts ${Object.keys(setups).join("|")} <workers 1–64> [root]`)
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
