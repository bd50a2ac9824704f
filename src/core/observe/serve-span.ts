// A front's own requests: instrument() wraps Bun.serve's `routes` (or its `fetch`), or a node:http request listener
// (Express's app, Koa's callback, Fastify's handler), so that each request is timed into the process's HTTP server
// histogram (kit/telemetry/http-server.ts) and, with an SDK, runs in a SERVER span named by its route's pattern, with
// OpenTelemetry's HTTP server attributes (docs/api.md, Traces), a child of the client's `traceparent` when it sent
// one. bus.fetch and RPC inside it record their CLIENT spans as its children. Without an SDK a request pays two
// clock reads, a WeakMap entry and a histogram walk more than the bare handler.
import type { IncomingMessage, ServerResponse } from "node:http"
import {
  httpServer,
  isNodeResponse,
  openExchange,
  otelTracing,
  receivedContext,
  remoteParent,
  slotbusTracer,
  type Exchange,
  type Otel,
  type OtelContext,
  type OtelSpan,
} from "../../kit/index.ts"
import { httpMethod, recordStatus, serverSpanFailed } from "../probe/trace.ts"
import { FAILURE_STATUS, failureOf } from "./http-answer.ts"
import { nanoseconds, type HttpServer, type HttpRoutes } from "../../runtime/index.ts"

type Handler = (req: Request, server: ServerLike) => unknown
type Listener = (req: IncomingMessage, res: ServerResponse) => unknown
/** What traced() reads of Bun.serve's server: the client's address. */
interface ServerLike {
  requestIP?(req: Request): { address: string } | null
}

/**
 * Bun.serve's `routes` (or its `fetch`), or a node:http request listener (`http.createServer(instrument(app))` for
 * Express's `app`, Koa's `app.callback()`), each request timed into this process's HTTP server histogram
 * (`http_server_request_duration_seconds`, by method, route pattern and status) and, with an OpenTelemetry SDK, run
 * in a SERVER span `{method} {pattern}` (`http.route` the pattern; `{method}` for `fetch` until `httpRoute(req, …)`
 * or `bus.fetch(req, { route })` names it, for a listener until Express's `req.route` or `httpRoute` does). Static
 * values (a Response) stay as they are.
 */
// the fetch form first: a function is also assignable to Routes<W, never> (`{}`), which would swallow it (TS2322)
export function instrument<F extends (req: Request, server: HttpServer<undefined>) => unknown>(fetch: F): F
export function instrument<L extends (req: IncomingMessage, res: ServerResponse) => unknown>(listener: L): L
export function instrument<R extends string, W = undefined>(routes: HttpRoutes<W, R>): HttpRoutes<W, R>
export function instrument(routesOrFetch: object): object {
  if (typeof routesOrFetch === "function") return fetchOrListener(routesOrFetch as Handler & Listener)
  if (routesOrFetch === null || typeof routesOrFetch !== "object")
    throw new TypeError(
      "instrument() takes the routes object of Bun's serve(), its fetch function, or a node:http request listener",
    )
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

/**
 * A function both ways, told apart at each call by its second argument: node:http passes a ServerResponse (it has
 * `writeHead`), Bun.serve's fetch its Server. Their arity cannot tell them (both take two; Express's app three).
 */
function fetchOrListener(fn: Handler & Listener) {
  const fetch = measured(fn, undefined)
  const listener = measuredListener(fn)
  return function (this: unknown, req: Request & IncomingMessage, second: ServerLike & ServerResponse) {
    return isNodeResponse(second) ? Reflect.apply(listener, this, [req, second]) : fetch(req, second)
  }
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
    const parent = o === null ? undefined : parentOf(o, req.headers.get("traceparent"), req.headers.get("tracestate"))
    const span = o === null ? null : serverSpan(o, headOf(req, server), route, parent!)
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
      // Bun answers a throw with its error handler: failureResponse's status for it (the README's `error:`), 499
      // when the client went away (nothing is answered)
      const status = req.signal?.aborted ? CLIENT_CLOSED_REQUEST : FAILURE_STATUS[failureOf(err)]
      httpServer.observe(method, ex.route, status, nanoseconds() - at)
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

/** The sample's status for a request whose client hung up before any answer was written (nginx's "client closed request"). */
export const CLIENT_CLOSED_REQUEST = 499

type ExpressRequest = IncomingMessage & { route?: { path?: unknown }; baseUrl?: unknown }

const ROUTE = Symbol("slotbus.route")
const MATCHED = Symbol("slotbus.matched")
type Tracked = ExpressRequest & { [ROUTE]?: ExpressRequest["route"]; [MATCHED]?: string }
/** `req.route` kept on the request itself, its route as Express sets it (one descriptor for all: no closure each). */
const ROUTE_SLOT: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: Tracked) {
    return this[ROUTE]
  },
  set(this: Tracked, r: ExpressRequest["route"]) {
    this[ROUTE] = r
    const path = r?.path // no route matched (a 404): none, never the raw path
    this[MATCHED] = typeof path !== "string" ? undefined : typeof this.baseUrl === "string" ? this.baseUrl + path : path
  },
}

/**
 * Express's route (`req.baseUrl + req.route.path`) once one matched, else the one `httpRoute` named. Read as Express
 * sets `req.route`: by the answer's end a router's failed request has left the router, its `baseUrl` reset to "".
 */
class ListenerExchange implements Exchange {
  private named: string | undefined = undefined
  span: OtelSpan | null = null
  constructor(
    private readonly req: Tracked,
    readonly verb: string,
  ) {
    Object.defineProperty(req, "route", ROUTE_SLOT)
  }
  get route(): string | undefined {
    return this.named ?? this.req[MATCHED]
  }
  set route(route: string | undefined) {
    this.named = route
  }
}

/**
 * A node:http request listener timed and traced: from its call to the answer's end (or the client's hang-up), the
 * status the listener wrote, the route known by then.
 */
function measuredListener(listener: Listener): Listener {
  return function (this: unknown, req, res) {
    const at = nanoseconds()
    const { method, original } = httpMethod(req.method ?? "GET")
    const ex = new ListenerExchange(req, original === undefined ? method : "HTTP")
    openExchange(req, ex)
    const o = otelTracing()
    const parent = o === null ? undefined : parentOf(o, header(req, "traceparent"), header(req, "tracestate"))
    const span = o === null ? null : serverSpan(o, nodeHeadOf(req), undefined, parent!)
    ex.span = span
    let threw = false
    let over = false
    const ended = () => {
      if (over) return
      over = true
      const route = ex.route
      // closed with nothing written: the client hung up, and res.statusCode is only the 200 it starts with
      const hungUp = !threw && !res.headersSent && !res.writableFinished
      const status = threw && !res.headersSent ? 500 : hungUp ? CLIENT_CLOSED_REQUEST : res.statusCode
      httpServer.observe(method, route, status, nanoseconds() - at)
      if (span === null) return
      if (route !== undefined) {
        span.updateName(`${ex.verb} ${route}`)
        span.setAttribute("http.route", route)
      }
      if (!hungUp) recordStatus(span, status, 500) // none was sent: the span has no status code (OTel HTTP conventions)
      span.end()
    }
    res.once("finish", ended)
    res.once("close", ended)
    // never fn.bind: OpenTelemetry's with(ctx, fn, thisArg) calls it, and Express's app has a bind() (the BIND verb)
    try {
      return o === null
        ? Reflect.apply(listener, this, [req, res])
        : o.context.with(o.trace.setSpan(parent!, span!), () => Reflect.apply(listener, this, [req, res]))
    } catch (e) {
      threw = true
      if (span !== null) serverSpanFailed(span, e)
      throw e
    }
  }
}

const header = (req: IncomingMessage, name: string) => {
  const v = req.headers[name]
  return typeof v === "string" ? v : undefined
}

/** What a SERVER span says of a request before its answer. */
interface Head {
  method: string
  path: string
  query: string
  scheme: string
  host: string
  port: number
  client: string | undefined
  agent: string | null | undefined
}

function headOf(req: Request, server: ServerLike): Head {
  const url = new URL(req.url)
  const scheme = url.protocol.slice(0, -1)
  return {
    method: req.method,
    path: url.pathname,
    query: url.search.slice(1),
    scheme,
    host: url.hostname,
    port: url.port === "" ? (scheme === "https" ? 443 : 80) : Number(url.port),
    client: server?.requestIP?.(req)?.address,
    agent: req.headers.get("user-agent"),
  }
}

/** A node:http request's head: the server's address and port from its Host header, as a Request's URL has them. */
function nodeHeadOf(req: IncomingMessage): Head {
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? "https" : "http"
  const target = req.url ?? "/"
  const q = target.indexOf("?")
  let host = req.socket.localAddress ?? "localhost"
  let port = req.socket.localPort ?? 0
  try {
    const url = new URL(`${scheme}://${req.headers.host}`)
    host = url.hostname
    port = url.port === "" ? (scheme === "https" ? 443 : 80) : Number(url.port)
  } catch {} // no Host header, or one no URL takes: the socket's own address
  return {
    method: req.method ?? "GET",
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? "" : target.slice(q + 1),
    scheme,
    host,
    port,
    client: req.socket.remoteAddress,
    agent: req.headers["user-agent"],
  }
}

/** The client's context as the W3C parser takes it, else the active one. */
function parentOf(o: Otel, traceparent: string | null | undefined, tracestate: string | null | undefined): OtelContext {
  const tc = receivedContext(traceparent, tracestate)
  const sc = tc === undefined ? undefined : remoteParent(o, tc)
  return sc === undefined ? o.context.active() : o.trace.setSpanContext(o.context.active(), sc)
}

/** The SERVER span of a request, with the HTTP server attributes it has before its answer. */
function serverSpan(o: Otel, head: Head, route: string | undefined, parent: OtelContext) {
  const { method, original } = httpMethod(head.method)
  const attributes: Record<string, string | number> = {
    "http.request.method": method,
    "url.path": head.path,
    "url.scheme": head.scheme,
    "server.address": head.host,
    "server.port": head.port,
  }
  if (original !== undefined) attributes["http.request.method_original"] = original
  if (head.query !== "") attributes["url.query"] = head.query
  if (route !== undefined) attributes["http.route"] = route
  if (head.client) attributes["client.address"] = head.client
  if (head.agent != null) attributes["user_agent.original"] = head.agent
  const verb = original === undefined ? method : "HTTP"
  const name = route === undefined ? verb : `${verb} ${route}`
  return slotbusTracer(o).startSpan(name, { kind: o.SpanKind.SERVER, attributes }, parent)
}
