// The front of `slotbus bench node`, run under Node 26 (built to JavaScript by node.ts): an Express 5 app on
// 127.0.0.1 with a heavy route, GET /report/:id (render.ts, ~2.5 ms of CPU, ~50 KB of HTML), bench carry's
// answers, GET /small/:id and /page/:id (lib/answers.ts: a small JSON object, a cached 20–60 KB page), and GET
// /cheap (a small JSON object the front answers itself), all but /cheap served one of seven ways:
//   inline       Express answers in the front
//   piscina      Express + piscina.run(id or path) on 2 threads of the front (thread.ts)
//   cluster      node:cluster: this process forks 2 workers, each the inline Express app on the shared port
//   slotbus      Express + app.get(route, nodeHandler(bus)): bus.fetch to 2 Node workers (worker.ts, started by
//                superviseWorkers), answering a Response
//   slotbus-reply  the same, the workers answering { headers, body } (a reply object, no Response made)
//   slotbus-rpc  Express + bus.remote().report(id) / .small(id) / .page(id) to the same workers
//                (SlotWorker.expose), sent with res.send or res.json
//   slotbus-call Express + bus.call(path) to the same workers (their handler answers the body alone), res.send
// Usage: node front.js <variant> <root>, where <root> is the checkout whose node_modules has express and piscina.
// Prints "ready port=<port> workers=<pid,…> threads=" once it serves. A stdin line "rtt <n>" (piscina, slotbus,
// slotbus-call) times n small calls one at a time (piscina.run, bus.remote().small(id) or bus.call) and prints
// "rtt <µs,…>". Ends with its stdin or on SIGTERM, with its workers.
import cluster from "node:cluster"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { page, route, small } from "../lib/answers.ts"
import { renderReport } from "./render.ts"
import { VARIANTS } from "./variants.ts"

type Core = typeof import("../../src/index.ts")
interface Api {
  report(id: number): string
  small(id: number): ReturnType<typeof small>
  page(id: number): string
}
type Handler = (req: { params: { id: string }; path: string }, res: Res) => unknown
interface Res {
  type(t: string): Res
  send(body: string | Uint8Array): Res
  json(body: unknown): Res
}
interface Setup {
  heavy: Handler
  /** /small/:id and /page/:id */
  answer: Handler
  smallCall?: (id: number) => Promise<unknown>
  workers: number[]
  close(): Promise<void>
}

const WORKERS = 2

const [variant, root] = process.argv.slice(2)
// the packages from the checkout, at run time: the bundler leaves a require of a computed path alone
const load = createRequire(`${root}/package.json`)
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const inline: Handler = (req, res) => res.type("html").send(renderReport(Number(req.params.id)))
/** A small answer as res.json sends it, a page as HTML. */
const send = (res: Res, v: unknown) => (typeof v === "string" ? res.type("html").send(v) : res.json(v))
const isSmall = (path: string) => route(path)?.answer === "small"
const inlineAnswer: Handler = (req, res) =>
  send(res, isSmall(req.path) ? small(Number(req.params.id)) : page(Number(req.params.id)))

function app(heavy: Handler, answer: Handler) {
  const express = load("express")
  const a = express()
  a.get("/cheap", (_req: unknown, res: Res) => res.json(small(1)))
  a.get("/report/:id", heavy)
  a.get("/small/:id", answer)
  a.get("/page/:id", answer)
  return a
}

async function piscina(): Promise<Setup> {
  const { Piscina } = load("piscina")
  const pool = new Piscina({ filename: here("./thread.js"), minThreads: WORKERS, maxThreads: WORKERS })
  return {
    heavy: async (req, res) => res.type("html").send(await pool.run(Number(req.params.id))),
    answer: async (req, res) => send(res, await pool.run(req.path)),
    smallCall: (id) => pool.run(`/small/${id}`),
    workers: [],
    close: () => pool.destroy(),
  }
}

async function slotbus(way: "fetch" | "reply" | "rpc" | "call"): Promise<Setup> {
  const { nodeHandler, SlotBus, superviseWorkers } = (await import("../../src/index.ts")) as Core
  const bus = await SlotBus.listen(`node-bench-${process.pid}`)
  const pool = superviseWorkers(bus, {
    command: [
      process.execPath,
      ...process.execArgv,
      here("./worker.js"),
      bus.name,
      ...(way === "reply" ? ["--reply"] : []),
    ],
    instances: WORKERS,
    stdout: "ignore",
    stderr: "inherit",
  })
  await bus.waitForWorkers(WORKERS, { timeoutMs: 30_000 })
  const api = bus.remote<Api>()
  const viaFetch = nodeHandler(bus) as unknown as Handler
  const call = async (path: string) => {
    const u8 = await bus.call(path)
    return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength) // a view for res.send, not a copy
  }
  const viaCall: Handler = async (req, res) => res.type(isSmall(req.path) ? "json" : "html").send(await call(req.path))
  const ways: Record<typeof way, Pick<Setup, "heavy" | "answer">> = {
    fetch: { heavy: viaFetch, answer: viaFetch },
    reply: { heavy: viaFetch, answer: viaFetch },
    rpc: {
      heavy: async (req, res) => res.type("html").send(await api.report(Number(req.params.id))),
      answer: async (req, res) => {
        const id = Number(req.params.id)
        send(res, isSmall(req.path) ? await api.small(id) : await api.page(id))
      },
    },
    call: { heavy: viaCall, answer: viaCall },
  }
  return {
    ...ways[way],
    smallCall:
      way === "call" ? async (id) => JSON.parse((await call(`/small/${id}`)).toString()) : (id) => api.small(id),
    workers: pool.instances.map((i) => i.pid),
    close: async () => {
      await pool.stop({ drainTimeoutMs: 2000, killGraceMs: 1000 })
      await bus.close({ drain: false })
    },
  }
}

/** The primary of the cluster variant: forks the workers, each running this file as `cluster-worker`. */
async function primary(): Promise<{ port: number; setup: Setup }> {
  cluster.setupPrimary({ exec: here("./front.js"), args: ["cluster-worker", root!] })
  const forked = Array.from({ length: WORKERS }, () => cluster.fork())
  const ports = await Promise.all(
    forked.map((w) => new Promise<number>((r) => w.once("listening", (addr) => r(addr.port)))),
  )
  const close = async () => {
    await Promise.all(
      forked.map((w) => (w.isDead() ? null : new Promise((r) => (w.once("exit", r), w.process.kill())))),
    )
  }
  const setup = { heavy: inline, answer: inlineAnswer, workers: forked.map((w) => w.process.pid!), close }
  return { port: ports[0]!, setup }
}

const WAYS: Record<string, "reply" | "rpc" | "call"> = {
  "slotbus-reply": "reply",
  "slotbus-rpc": "rpc",
  "slotbus-call": "call",
}

async function serve(): Promise<{ port: number; setup: Setup; close(): void }> {
  if (variant === "cluster") return { ...(await primary()), close: () => {} }
  const setup =
    variant === "inline"
      ? { heavy: inline, answer: inlineAnswer, workers: [], close: async () => {} }
      : variant === "piscina"
        ? await piscina()
        : await slotbus(WAYS[variant!] ?? "fetch")
  const server = app(setup.heavy, setup.answer).listen(0, "127.0.0.1")
  await new Promise((r) => server.once("listening", r))
  const close = () => (server.close(), server.closeAllConnections())
  return { port: (server.address() as AddressInfo).port, setup, close }
}

async function roundTrips(call: (id: number) => Promise<unknown>, n: number): Promise<number[]> {
  const us: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const got = (await call(i % 64)) as { id?: number }
    us.push((performance.now() - t) * 1000)
    if (got?.id !== i % 64) throw new Error(`the small call for ${i % 64} answered ${JSON.stringify(got)}`)
  }
  return us
}

if (variant === "cluster-worker") {
  const server = app(inline, inlineAnswer).listen(0, "127.0.0.1")
  process.on("SIGTERM", () => process.exit(0))
  server.once("error", (e: Error) => (console.error(e), process.exit(1)))
} else if (!(VARIANTS as readonly string[]).includes(variant!) || !root) {
  console.error(`usage: node front.js ${VARIANTS.join("|")} <root>`)
  process.exit(2)
} else {
  const { port, setup, close } = await serve()
  let ending: Promise<void> | null = null
  const end = () =>
    (ending ??= (async () => {
      close()
      await setup.close()
      process.exit(0)
    })())
  process.on("SIGTERM", end)
  process.stdin.on("end", end)
  createInterface({ input: process.stdin }).on("line", async (line) => {
    const m = /^rtt (\d+)$/.exec(line)
    if (!m || !setup.smallCall) return console.log(`error: ${variant} takes no ${JSON.stringify(line)}`)
    try {
      console.log(`rtt ${(await roundTrips(setup.smallCall, Number(m[1]))).map((v) => v.toFixed(1)).join(",")}`)
    } catch (e) {
      console.log(`error: ${(e as Error).message}`)
    }
  })
  console.log(`ready port=${port} workers=${setup.workers.join(",")} threads=`)
}
