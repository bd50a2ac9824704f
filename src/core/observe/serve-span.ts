// A front's own SERVER span: traced() wraps Bun.serve's `routes` (or its `fetch`) so that each request runs in a
// span named by its route's pattern, with OpenTelemetry's HTTP server attributes (docs/api.md, Traces), a child of
// the client's `traceparent` when it sent one. bus.fetch and RPC inside it record their CLIENT spans as its
// children. Without an SDK a request pays one property read and one call more than the bare handler.
import {
  otelTracing,
  receivedContext,
  remoteParent,
  slotbusTracer,
  type Otel,
  type OtelContext,
} from "../../kit/index.ts"
import type { Serve, Server } from "bun"
import { httpMethod, recordStatus, serverSpanFailed } from "../wire/trace.ts"

type Handler = (req: Request, server: ServerLike) => unknown
/** What traced() reads of Bun.serve's server: the client's address. */
interface ServerLike {
  requestIP?(req: Request): { address: string } | null
}

/**
 * Bun.serve's `routes`, each handler run in a SERVER span `{method} {pattern}` (`http.route` the pattern), or its
 * `fetch`, in a span `{method}`. Static values (a Response) stay as they are. With no SDK registered it does nothing
 * but call the handler.
 */
export function traced<R extends string, W = undefined>(routes: Serve.Routes<W, R>): Serve.Routes<W, R>
export function traced<F extends (req: Request, server: Server<undefined>) => unknown>(fetch: F): F
export function traced(routesOrFetch: object): object {
  if (typeof routesOrFetch === "function") return inSpan(routesOrFetch as Handler, undefined)
  if (routesOrFetch === null || typeof routesOrFetch !== "object")
    throw new TypeError("traced() takes Bun.serve's routes object or its fetch function")
  const out: Record<string, unknown> = {}
  for (const [pattern, value] of Object.entries(routesOrFetch)) {
    if (typeof value === "function") out[pattern] = inSpan(value as Handler, pattern)
    else if (byMethod(value)) {
      const methods: Record<string, unknown> = {}
      for (const [m, h] of Object.entries(value))
        methods[m] = typeof h === "function" ? inSpan(h as Handler, pattern) : h
      out[pattern] = methods
    } else out[pattern] = value // a Response, a file, an HTML bundle, a directory: no handler of the app's runs
  }
  return out
}

const METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
/** A route's `{ GET: fn, POST: fn }`: a plain object whose keys are all methods. */
function byMethod(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Object.getPrototypeOf(v) !== Object.prototype) return false
  const keys = Object.keys(v)
  return keys.length > 0 && keys.every((k) => METHODS.has(k))
}

function inSpan(handler: Handler, route: string | undefined): Handler {
  return (req, server) => {
    const o = otelTracing()
    if (o === null) return handler(req, server)
    const parent = parentOf(o, req)
    const span = serverSpan(o, req, server, route, parent)
    const ended = (res: unknown) => {
      if (res instanceof Response) recordStatus(span, res.status, 500) // a SERVER span's 4xx is no error
      span.end()
      return res
    }
    const failed = (err: unknown) => {
      serverSpanFailed(o, span, err)
      span.end()
      throw err
    }
    let out: unknown
    try {
      out = o.context.with(o.trace.setSpan(parent, span), handler, undefined, req, server)
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
