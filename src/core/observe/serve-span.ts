// A front's own requests: instrument() wraps Bun.serve's `routes` (or its `fetch`) so that each request is timed into
// the process's HTTP server histogram (kit/telemetry/http-server.ts) and, with an SDK, runs in a SERVER span named by its
// route's pattern, with OpenTelemetry's HTTP server attributes (docs/api.md, Traces), a child of the client's
// `traceparent` when it sent one. bus.fetch and RPC inside it record their CLIENT spans as its children. Without
// an SDK a request pays two clock reads, a WeakMap entry and a histogram walk more than the bare handler.
import {
  httpServer,
  openExchange,
  otelTracing,
  receivedContext,
  remoteParent,
  slotbusTracer,
  type Exchange,
  type Otel,
  type OtelContext,
} from "../../kit/index.ts"
import { httpMethod, recordStatus, serverSpanFailed } from "../probe/trace.ts"
import { nanoseconds, type HttpServer, type HttpRoutes } from "../../runtime/index.ts"

type Handler = (req: Request, server: ServerLike) => unknown
/** What traced() reads of Bun.serve's server: the client's address. */
interface ServerLike {
  requestIP?(req: Request): { address: string } | null
}

/**
 * Bun.serve's `routes` (or its `fetch`), each request timed into this process's HTTP server histogram
 * (`http_server_request_duration_seconds`, by method, route pattern and status) and, with an OpenTelemetry SDK, run
 * in a SERVER span `{method} {pattern}` (`http.route` the pattern; `{method}` for `fetch` until `httpRoute(req, …)`
 * or `bus.fetch(req, { route })` names it). Static values (a Response) stay as they are.
 */
// the fetch form first: a function is also assignable to Routes<W, never> (`{}`), which would swallow it (TS2322)
export function instrument<F extends (req: Request, server: HttpServer<undefined>) => unknown>(fetch: F): F
export function instrument<R extends string, W = undefined>(routes: HttpRoutes<W, R>): HttpRoutes<W, R>
export function instrument(routesOrFetch: object): object {
  if (typeof routesOrFetch === "function") return measured(routesOrFetch as Handler, undefined)
  if (routesOrFetch === null || typeof routesOrFetch !== "object")
    throw new TypeError("instrument() takes the routes object of Bun's serve() or its fetch function")
  const out: Record<string, unknown> = {}
  for (const [pattern, value] of Object.entries(routesOrFetch)) {
    if (typeof value === "function") out[pattern] = measured(value as Handler, pattern)
    else if (byMethod(value)) {
      const methods: Record<string, unknown> = {}
      for (const [m, h] of Object.entries(value))
        methods[m] = typeof h === "function" ? measured(h as Handler, pattern) : h
      out[pattern] = methods
    } else out[pattern] = value // a Response, a file, an HTML bundle, a directory: no handler of the app's runs
  }
  return out
}

/** instrument()'s first name, from when it only traced: the same function. */
export const traced: typeof instrument = instrument

const METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
/** A route's `{ GET: fn, POST: fn }`: a plain object whose keys are all methods. */
function byMethod(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Object.getPrototypeOf(v) !== Object.prototype) return false
  const keys = Object.keys(v)
  return keys.length > 0 && keys.every((k) => METHODS.has(k))
}

/** The status a handler's result is counted with: a Response's, 101 for nothing (a WebSocket upgrade), else 500. */
const statusOf = (res: unknown) => (res instanceof Response ? res.status : res === undefined ? 101 : 500)

function measured(handler: Handler, route: string | undefined): Handler {
  return (req, server) => {
    const at = nanoseconds()
    const { method, original } = httpMethod(req.method)
    const ex: Exchange = { route, span: null, verb: original === undefined ? method : "HTTP" }
    openExchange(req, ex)
    const o = otelTracing()
    const parent = o === null ? undefined : parentOf(o, req)
    const span = o === null ? null : serverSpan(o, req, server, route, parent!)
    ex.span = span
    const ended = (res: unknown) => {
      const status = statusOf(res)
      httpServer.observe(method, ex.route, status, nanoseconds() - at)
      if (span !== null) {
        if (res instanceof Response) recordStatus(span, res.status, 500) // a SERVER span's 4xx is no error
        span.end()
      }
      return res
    }
    const failed = (err: unknown) => {
      httpServer.observe(method, ex.route, 500, nanoseconds() - at) // Bun answers a throw with its error handler: 500
      if (span !== null) {
        serverSpanFailed(span, err)
        span.end()
      }
      throw err
    }
    let out: unknown
    try {
      out =
        o === null
          ? handler(req, server)
          : o.context.with(o.trace.setSpan(parent!, span!), handler, undefined, req, server)
    } catch (e) {
      return failed(e)
    }
    return out instanceof Promise ? out.then(ended, failed) : ended(out)
  }
}

/** The client's context as the W3C parser takes it, else the active one. */
function parentOf(o: Otel, req: Request): OtelContext {
  const tc = receivedContext(req.headers.get("traceparent"), req.headers.get("tracestate"))
  const sc = tc === undefined ? undefined : remoteParent(o, tc)
  return sc === undefined ? o.context.active() : o.trace.setSpanContext(o.context.active(), sc)
}

/** The SERVER span of `req`, with the HTTP server attributes it has before its answer. */
function serverSpan(o: Otel, req: Request, server: ServerLike, route: string | undefined, parent: OtelContext) {
  const url = new URL(req.url)
  const { method, original } = httpMethod(req.method)
  const scheme = url.protocol.slice(0, -1)
  const attributes: Record<string, string | number> = {
    "http.request.method": method,
    "url.path": url.pathname,
    "url.scheme": scheme,
    "server.address": url.hostname,
    "server.port": url.port === "" ? (scheme === "https" ? 443 : 80) : Number(url.port),
  }
  if (original !== undefined) attributes["http.request.method_original"] = original
  if (url.search !== "") attributes["url.query"] = url.search.slice(1)
  if (route !== undefined) attributes["http.route"] = route
  const client = server?.requestIP?.(req)?.address
  if (client) attributes["client.address"] = client
  const agent = req.headers.get("user-agent")
  if (agent !== null) attributes["user_agent.original"] = agent
  const verb = original === undefined ? method : "HTTP"
  const name = route === undefined ? verb : `${verb} ${route}`
  return slotbusTracer(o).startSpan(name, { kind: o.SpanKind.SERVER, attributes }, parent)
}
