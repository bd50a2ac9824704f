// A hub worker process for the http tests. Usage:
//   bun test/support/http/http-worker.ts <hub-url> <name> [--routes=shop|rival] [--instance=ID] [--token-file=PATH] [--token=T]
//   [--otel]
//     [--nats=URL] (serve over NATS, as from another host) [--host=LABEL] (the host it says it runs on)
// Prints "ready <pid>" once registered and connected, "hang <n>" when GET /hang starts, "sse-open <conn> <path>",
// "sse-close <conn> <reason>", "closed <reason>" when the app stops; a failed run() prints
// "error <ErrorClass> <message>" and exits 2. SIGTERM closes the app gracefully.
//
// shop routes: GET /items/:id, POST /items, PUT|DELETE /items/:id, GET /files/*, * /any, POST /echo (x-sha256),
// GET /large?bytes=N&seed=S[&stream=1], GET /hang, GET /wait-abort (prints "waiting", then "aborted <reason>" when
// req.signal aborts), GET /fail, GET /cookies, GET /whoami, GET /headers, GET /empty,
// POST /emit/:type (body JSON → app.emit), POST /push (body {to, data, event} → app.push),
// SSE /sessions/:id/events (sends a "welcome" event to each new connection), POST /sessions/:id/end (closes them).
// GET /static/* serves files under test/support the way src/http/README.md says (resolve against a root, check the
// prefix, refuse NUL).
// SIGUSR2 emits --burst=N (default 10000) "burst" events {seq} from the process itself (no request through the
// hub) and prints "burst <N> <lastId>" once every emit resolved.
// rival routes: GET /items/:key (contested with shop), GET /rival.
// hostile routes: HOSTILE_ROUTES, patterns that are markup, script or terminal escapes (for the status views).
import { resolve, sep } from "node:path"
import { hubWorker, type SseConnection } from "../../../src/http/index.ts"
import { HOSTILE_ROUTES } from "./http.ts"

const [hubUrl, name, ...flags] = process.argv.slice(2)
if (!hubUrl || !name) throw new Error("usage: http-worker.ts <hub-url> <name> [flags]")
const flag = (key: string) => flags.find((f) => f.startsWith(`--${key}=`))?.slice(key.length + 3)
if (flags.includes("--otel")) {
  // the real OpenTelemetry SDK, each finished span printed as `span <json>`
  const { registerOtel, stdoutExporter } = await import("../otel-setup.ts")
  registerOtel(stdoutExporter)
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255
  return out
}

const app = hubWorker(hubUrl, name, {
  instance: flag("instance"),
  tokenFile: flag("token-file"),
  token: flag("token"),
  nats: flag("nats"),
  host: flag("host"),
  maxBackoffMs: 500,
})
let hanging = 0
const conns = new Set<SseConnection>()

const routes = flag("routes") ?? "shop"
if (routes === "rival") {
  app.get("/items/:key", (req) => Response.json({ rival: req.params.key }))
  app.get("/rival", () => new Response("rival"))
} else if (routes === "hostile") {
  for (const pattern of HOSTILE_ROUTES) app.get(pattern, () => new Response("hostile"))
} else {
  app
    .get("/items/:id", (req) =>
      Response.json({ id: req.params.id, query: Object.fromEntries(req.query), method: req.method }),
    )
    .post("/items", async (req) => Response.json({ created: await req.json() }, { status: 201 }))
    .put("/items/:id", async (req) => Response.json({ replaced: req.params.id, with: await req.text() }))
    .delete("/items/:id", (req) => ({ status: 204, headers: { "x-deleted": req.params.id! } }))
    .get("/files/*", (req) => Response.json({ rest: req.params["*"] }))
    .get("/static/*", (req) => {
      const root = resolve(import.meta.dir)
      const rel = req.params["*"]!
      if (rel.includes("\0")) return new Response("bad path", { status: 400 })
      const file = resolve(root, rel)
      if (!file.startsWith(root + sep)) return new Response("not found", { status: 404 })
      return new Response(Bun.file(file))
    })
    .all("/any", (req) => Response.json({ method: req.method, url: req.url }))
    .post("/echo", async (req) => {
      const body = await req.bytes()
      const sha = new Bun.CryptoHasher("sha256").update(body).digest("hex")
      return new Response(body, {
        headers: { "x-sha256": sha, "content-type": req.headers.get("content-type") ?? "application/octet-stream" },
      })
    })
    .get("/large", (req) => {
      const bytes = Number(req.query.get("bytes") ?? 0)
      const seed = Number(req.query.get("seed") ?? 0)
      const data = pattern(bytes, seed)
      if (!req.query.has("stream")) return new Response(data)
      let at = 0
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (at >= data.length) return c.close()
            c.enqueue(data.subarray(at, at + 100_000))
            at += 100_000
          },
        }),
      )
    })
    .get("/wait-abort", (req) => {
      console.log("waiting")
      return new Promise<Response>((resolve) => {
        req.signal.addEventListener("abort", () => {
          console.log(`aborted ${(req.signal.reason as Error)?.name}`)
          resolve(new Response("too late"))
        })
      })
    })
    .get("/sleep/:ms", async (req) => {
      await Bun.sleep(Number(req.params.ms))
      return new Response(`slept ${req.params.ms}`)
    })
    .get("/hang", () => {
      console.log(`hang ${++hanging}`)
      return new Promise<Response>(() => {})
    })
    .get("/fail", () => {
      throw new Error("secret internals: db password is hunter2")
    })
    .get("/cookies", () => {
      const h = new Headers()
      h.append("set-cookie", "a=1; Path=/")
      h.append("set-cookie", "b=2; Path=/")
      return new Response("cookies", { headers: h })
    })
    .get("/whoami", () => Response.json({ name, pid: process.pid }))
    .get("/headers", (req) => Response.json(Object.fromEntries(req.headers)))
    .get("/empty", () => new Response(null, { status: 204 }))
    .post("/emit/:type", async (req) => {
      // ?count=N emits {seq, data} N times; ?via=http takes the old HTTP POST path; ?routing.<key>=v adds routing
      // (as a Map with ?map=1). A refused emit answers 400 { error: "<ErrorClass>: <message>" }.
      const data = await req.json()
      const count = Number(req.query.get("count") ?? 1)
      const entries = [...req.query].filter(([k]) => k.startsWith("routing.")).map(([k, v]) => [k.slice(8), v])
      const routing = (
        req.query.get("map") === "1" ? new Map(entries as [string, string][]) : Object.fromEntries(entries)
      ) as Record<string, string>
      const ids: Promise<number>[] = []
      for (let seq = 0; seq < count; seq++) {
        const d = count === 1 ? data : { seq, data }
        ids.push(
          req.query.get("via") === "http"
            ? app.send("emit", { type: req.params.type!, data: JSON.stringify(d), routing })
            : app.emit(req.params.type!, d, routing),
        )
      }
      try {
        return Response.json({ ids: await Promise.all(ids) })
      } catch (e) {
        return Response.json({ error: `${(e as Error).name}: ${(e as Error).message}` }, { status: 400 })
      }
    })
    .post("/emit-timed", async (req) => {
      // n events spaced by `gap` ms, each carrying the monotonic clock (ns) at its emit, for latency figures.
      const n = Number(req.query.get("n") ?? 100)
      const gap = Number(req.query.get("gap") ?? 2)
      for (let i = 0; i < n; i++) {
        const d = String(process.hrtime.bigint())
        if (req.query.get("via") === "http") void app.send("emit", { type: "timed", data: d })
        else void app.emit("timed", d)
        await Bun.sleep(gap)
      }
      return Response.json({ sent: n })
    })
    .post("/push", async (req) => {
      const { to, data, event } = await req.json<{
        to: string | { pattern: string; params?: Record<string, string> }
        data: unknown
        event?: string
      }>()
      return Response.json({ delivered: await app.push(to, data, { event }) })
    })
    .post("/sessions/:id/end", async (req) => {
      const ending = [...conns].filter((c) => c.params.id === req.params.id)
      await Promise.all(ending.map((c) => c.close()))
      return Response.json({ ended: ending.length })
    })
    .sse("/sessions/:id/events", (conn) => {
      console.log(`sse-open ${conn.id} ${conn.path}`)
      conns.add(conn)
      void conn.send({ session: conn.params.id, pid: process.pid }, { event: "welcome" })
      return () => {
        conns.delete(conn)
        console.log(`sse-close ${conn.id} ${conn.signal.reason}`)
      }
    })
}

try {
  await app.run()
} catch (e) {
  const err = e as Error
  console.log(`error ${err.constructor.name} ${err.message}`)
  process.exit(2)
}
process.on("SIGTERM", () => void app.close())
process.on("SIGUSR2", async () => {
  const n = Number(flag("burst") ?? 10_000)
  const ids: Promise<number>[] = []
  for (let seq = 0; seq < n; seq++) ids.push(app.emit("burst", { seq }))
  const done = await Promise.all(ids)
  console.log(`burst ${n} ${done.at(-1)}`)
})
console.log(`ready ${process.pid}`)
const closed = await app.closed
console.log(`closed ${closed.reason}`)
process.exit(0)
