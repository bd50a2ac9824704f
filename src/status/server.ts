// serveStatus: a live view of the buses, topics, contests and stdio buses of one process, on a TCP port or a unix
// socket — GET / (the page), GET /status.json (the report), GET /stream (the report as server-sent events, at
// once and then every second, while anyone watches), GET /metrics (Prometheus's text format, src/status/metrics.ts:
// this process's process_* and nodejs_* series, then its sources').
// The sections come from each source's [STATUS]() (src/kit/telemetry/status.ts), the metrics from its [METRICS]() (kit/telemetry/metrics.ts).
import { chmodSync, existsSync, unlinkSync } from "node:fs"
import { hostname } from "node:os"
import {
  checkPort,
  checkOptions,
  claimSocketPath,
  optionNames,
  readSection,
  STATUS,
  type StatusSection,
  type StatusSource,
} from "../kit/index.ts"
import { PAGE_HEADERS, STATUS_PAGE_HTML } from "./page.ts"
import { exposition } from "./handler.ts"
import { metricsAnswer, metricsMaxAge, sharedScrape } from "./metrics.ts"
import { hostName, isLoopbackName, refuseServed, serveHttp, type HttpServer } from "../runtime/index.ts"

export interface StatusServerOptions {
  /** A TCP port to serve on (0 picks a free one). One of `port` and `unix`. */
  port?: number
  /** The address to bind with `port`: "127.0.0.1" unless told (the view names pids and hosts: keep it private). */
  hostname?: string
  /** A unix socket path to serve on instead, made readable and writable by this user only (mode 0600). */
  unix?: string
  /** What the page and `slotbus status` call this process; default its command line. */
  title?: string
  /** How long a computed GET /metrics text answers scrapes, in ms (0: only scrapes during its computation). Default 1000. */
  metricsMaxAgeMs?: number
}

/** What GET /status.json answers and GET /stream sends every second. */
export interface StatusReport {
  title: string
  host: string
  pid: number
  uptimeMs: number
  at: string
  sections: StatusSection[]
}

export interface StatusServer extends AsyncDisposable {
  /** Where it serves: "http://127.0.0.1:9300" or "unix:/run/app/status.sock" (what `slotbus status` takes). */
  readonly url: string
  /** The report now, as GET /status.json answers it. */
  report(): Promise<StatusReport>
  /** Ends every stream and stops serving; a unix socket file is removed. */
  stop(): Promise<void>
}

/** A 403 for a request whose Host names another machine than this one's loopback, or null. */
function refuseForeignHost(req: Request): Response | null {
  const host = req.headers.get("host")
  if (host === null || isLoopbackName(hostName(host))) return null
  const message = `Host ${JSON.stringify(host)} is not this server's: on a loopback address it answers localhost, 127.0.0.1 and [::1] only (a proxy in front sends one of them)`
  return Response.json({ error: "forbidden", message }, { status: 403 })
}

/** Anything with a status section: a SlotBus, Topic, Contest, StdioBus or Hub, or a function of your own. */
export type StatusInput = StatusSource | (() => StatusSection | Promise<StatusSection>)

const OPTIONS = optionNames<StatusServerOptions>({
  port: true,
  hostname: true,
  unix: true,
  title: true,
  metricsMaxAgeMs: true,
})
const EVERY_MS = 1000
/** Watchers at once; more get 503 (each costs a report a second). */
const MAX_WATCHERS = 64
/** A watcher whose unread reports pass this is too slow: its stream is ended. */
const MAX_BACKLOG_BYTES = 1024 * 1024
const encoder = new TextEncoder()

function sectionOf(input: StatusInput, i: number): () => StatusSection | Promise<StatusSection> {
  if (typeof input === "function") return input
  if (input !== null && typeof input === "object" && typeof (input as StatusSource)[STATUS] === "function")
    return () => (input as StatusSource)[STATUS]()
  throw new TypeError(
    `serveStatus: source ${i} has no status view; pass a SlotBus, Topic, Contest, StdioBus, Hub or a function returning a section`,
  )
}

/**
 * Serves a live status view of `sources` (SlotBus, Topic, Contest, StdioBus, Hub, or your own `() => section`) on a
 * port or a unix socket: open its URL in a browser, or run `slotbus status <url>`.
 */
export async function serveStatus(sources: StatusInput[], options: StatusServerOptions): Promise<StatusServer> {
  if (!Array.isArray(sources)) throw new TypeError("serveStatus takes an array of sources, like [bus, topic]")
  const getters = sources.map(sectionOf)
  const o = checkOptions(options, OPTIONS, "serveStatus")
  if ((o.port === undefined) === (o.unix === undefined))
    throw new TypeError("serveStatus needs one of { port } (0 picks one) and { unix: path }")
  if (o.port !== undefined) checkPort(o.port, { what: "port", where: "serveStatus" })
  if (o.unix !== undefined && (typeof o.unix !== "string" || o.unix === "" || o.unix.includes("\0")))
    throw new TypeError("unix must be a socket file path")
  if (o.hostname !== undefined && o.unix !== undefined) throw new TypeError("hostname goes with port, not unix")
  if (o.hostname !== undefined && typeof o.hostname !== "string") throw new TypeError("hostname must be a string")
  if (o.title !== undefined && typeof o.title !== "string") throw new TypeError("title must be a string")
  const title = o.title ?? [process.argv0, ...process.argv.slice(1)].join(" ")
  // its own port: the target names the front, no `front` label
  const metrics = sharedScrape(
    () => exposition(sources, false),
    metricsMaxAge(o.metricsMaxAgeMs, "metricsMaxAgeMs", "serveStatus"),
  )
  const started = performance.now()

  const report = async (): Promise<StatusReport> => ({
    title,
    host: hostname(),
    pid: process.pid,
    uptimeMs: Math.round(performance.now() - started),
    at: new Date().toISOString(),
    sections: await Promise.all(getters.map((g, i) => readSection(g, `source ${i}`))),
  })

  const watchers = new Set<ReadableStreamDefaultController<Uint8Array>>()
  let timer: ReturnType<typeof setInterval> | undefined
  const frame = async () => encoder.encode(`event: status\ndata: ${JSON.stringify(await report())}\n\n`)
  const drop = (c: ReadableStreamDefaultController<Uint8Array>, end: boolean) => {
    if (!watchers.delete(c)) return
    if (end) {
      try {
        c.close()
      } catch {} // already closed by the client
    }
    if (watchers.size === 0) {
      clearInterval(timer)
      timer = undefined
    }
  }
  const send = (c: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array) => {
    if (!watchers.has(c)) return
    if ((c.desiredSize ?? 0) < -MAX_BACKLOG_BYTES) return drop(c, true) // a reader this far behind is gone or stuck
    c.enqueue(bytes)
  }
  const tick = async () => {
    const bytes = await frame()
    for (const c of watchers) send(c, bytes)
  }

  // On a loopback address only a loopback Host is answered: a web page whose name was rebound to 127.0.0.1 (DNS
  // rebinding) asks with its own name, and must not read the pids, hosts and errors shown here
  const loopback = o.unix === undefined && isLoopbackName(o.hostname ?? "127.0.0.1")
  const route = async (req: Request, server: HttpServer<undefined>): Promise<Response> => {
    const refused = refuseServed(req) ?? (loopback ? refuseForeignHost(req) : null)
    if (refused !== null) return refused
    const path = new URL(req.url, "http://localhost").pathname // Bun's has no host when the request had none
    const only = (methods: string) =>
      methods.split(", ").includes(req.method)
        ? null
        : Response.json(
            { error: "method-not-allowed", message: `${path} takes ${methods}` },
            { status: 405, headers: { allow: methods } },
          )
    if (path === "/" || path === "/status")
      return (
        only("GET, HEAD") ?? new Response(req.method === "HEAD" ? null : STATUS_PAGE_HTML, { headers: PAGE_HEADERS })
      )
    if (path === "/metrics") {
      const refused = only("GET, HEAD")
      if (refused) return refused
      return metricsAnswer(req, metrics)
    }
    if (path === "/status.json")
      return only("GET") ?? Response.json(await report(), { headers: { "cache-control": "no-store" } })
    if (path === "/stream") {
      const refused = only("GET")
      if (refused) return refused
      if (watchers.size >= MAX_WATCHERS)
        return Response.json(
          { error: "busy", message: `${MAX_WATCHERS} viewers already watch` },
          { status: 503, headers: { "retry-after": "5" } },
        )
      server.timeout(req, 0)
      const first = await frame()
      let ctl!: ReadableStreamDefaultController<Uint8Array>
      const body = new ReadableStream<Uint8Array>(
        {
          start(c) {
            ctl = c
            watchers.add(c)
            c.enqueue(encoder.encode("retry: 1000\n\n"))
            c.enqueue(first)
            timer ??= setInterval(tick, EVERY_MS)
          },
          cancel: () => drop(ctl, false),
        },
        new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
      )
      req.signal.addEventListener("abort", () => drop(ctl, false), { once: true })
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "cache-control": "no-store", "x-accel-buffering": "no" },
      })
    }
    return Response.json(
      { error: "not-found", message: "this status server serves /, /status.json, /stream and /metrics" },
      { status: 404 },
    )
  }

  if (o.unix !== undefined) await claimSocketPath(o.unix, "serveStatus", Error)
  // the socket file is made 0600 as it is made (no moment in which another user may connect), then kept so
  const umask = o.unix !== undefined ? process.umask(0o077) : undefined
  let made: HttpServer<undefined> | Promise<HttpServer<undefined>>
  try {
    made = serveHttp({
      ...(o.unix !== undefined ? { unix: o.unix } : { port: o.port, hostname: o.hostname ?? "127.0.0.1" }),
      fetch: (req, srv) => route(req, srv),
      error: (e) => Response.json({ error: "internal", message: String(e?.message ?? e) }, { status: 500 }),
    })
  } finally {
    if (umask !== undefined) process.umask(umask)
  }
  const server = await made // Node binds a TCP port once its hostname is looked up (a unix socket at once)
  if (o.unix !== undefined) chmodSync(o.unix, 0o600)
  const host = server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname
  const url = o.unix !== undefined ? `unix:${o.unix}` : `http://${host}:${server.port}`

  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      for (const c of [...watchers]) drop(c, true)
      clearInterval(timer)
      await server.stop(true)
      if (o.unix !== undefined && existsSync(o.unix)) unlinkSync(o.unix)
    })())
  return { url, report, stop, [Symbol.asyncDispose]: stop }
}
