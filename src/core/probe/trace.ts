// Traces across a request's hops (docs/PROTOCOL.md §6.2): the W3C context a request carries in its head, the hub's
// CLIENT span around it (queue wait and slot time) and the worker's SERVER span its handler runs in. The hub's side
// is a request's ClientTrace (submit.ts makes it, observe.ts tells it), the worker's the one serverTrace (serve.ts
// tells it); each call does something only for a request that has a context, or when an OpenTelemetry SDK is
// registered (kit/telemetry/otel.ts); otherwise it tests one null.
import {
  activeContext,
  checkTraceOptions,
  otelTracing,
  receivedContext,
  remoteParent,
  slotbusTracer,
  SPAN_ERROR,
  spanContext,
  type Otel,
  type OtelAttributes as Attributes,
  type OtelSpan as Span,
  type TraceContext,
} from "../../kit/index.ts"
import { Kind } from "../../native/ffi.ts"
import { isHeaderValue } from "../wire/codec.ts"
import { isRpcVerb, rpcErrorOf } from "../wire/rpc-status.ts"
import { nanoseconds } from "../../runtime/index.ts"

/** The head pair carrying a traced HTTP request's route pattern to its worker (docs/PROTOCOL.md §6.2, The route). */
const ROUTE_PAIR = "slotbus-route"

/**
 * The trace of one request on the hub's side: the context it carries (undefined: none, the caller's own pairs taken
 * out of its head) and, with an SDK, its CLIENT span.
 */
export class ClientTrace {
  private sentAt = 0
  private waitedNs = 0
  private sends = 0

  constructor(
    readonly context: TraceContext | undefined,
    private readonly otel: Otel | null,
    private readonly span: Span | null,
    /** What the request is: an HTTP request's span records the answer's status, an RPC call's whether it threw. */
    private readonly what: "http" | "rpc" | "raw" = "raw",
  ) {}

  /**
   * It was published to a worker after `waitedNs` in the queue: the span's queue wait is the sum over its sends, and
   * a send after the first (a retry, a refusal unrun) is a resend (OpenTelemetry's `http.request.resend_count`).
   */
  sent(waitedNs: number) {
    if (this.span === null) return
    this.sentAt = nanoseconds()
    this.waitedNs += waitedNs
    this.span.setAttribute("slotbus.queue_wait_ms", this.waitedNs / 1e6)
    if (this.sends++ > 0)
      this.span.setAttribute(
        this.what === "http" ? "http.request.resend_count" : "slotbus.resend_count",
        this.sends - 1,
      )
    this.span.addEvent("slotbus.sent")
  }

  /** It failed (before end): the span is an error of the error's class (`error.type`). */
  failed(err: unknown) {
    if (this.span === null || this.otel === null) return
    if (err instanceof Error) this.span.recordException(err)
    this.span.setAttribute("error.type", errorType(err))
    this.span.setStatus({
      code: SPAN_ERROR,
      message: err instanceof Error ? err.message : String(err),
    })
  }

  /**
   * It is over (answered at `status`, or failed): the time it held its slot, and the span ends. An HTTP answer's
   * status is `http.response.status_code`; 4xx and 5xx make a CLIENT span an error (HTTP conventions, Status). An
   * RPC call's is an error of the class its caller gets when its reply is no result (rpcErrorOf).
   */
  end(status = 0) {
    if (this.span === null) return
    if (this.sentAt !== 0) this.span.setAttribute("slotbus.slot_ms", (nanoseconds() - this.sentAt) / 1e6)
    if (this.what === "http" && status > 0) recordStatus(this.span, status, 400)
    else if (this.what === "rpc" && status > 0) {
      const error = rpcErrorOf(status)
      if (error !== null) {
        this.span.setAttribute("error.type", error)
        this.span.setStatus({ code: SPAN_ERROR })
      }
    }
    this.span.end()
  }
}

/** An error's `error.type`: its class's name (TimeoutError, WorkerGoneError, …). */
function errorType(err: unknown): string {
  return err instanceof Error ? err.name : "_OTHER"
}

/** A head whose caller's own pairs go, with no context in their place (no span: nothing in it changes). */
const BARE = new ClientTrace(undefined, null, null)

/**
 * The trace of a request a caller makes, or null (nothing to carry, nothing to record). Its context: the explicit
 * `{ traceparent, tracestate }` option, else, with an SDK, a CLIENT span's, child of that or of the active span, else
 * the `traceparent`/`tracestate` among the request's own headers (a bus.fetch Request's, an HTTP hub's client's) as
 * the W3C parser takes them: a head never carries a caller's pairs as they came. With an SDK, bus.fetch (`starts`),
 * RPC calls and requests naming their `route` (the HTTP hub's) start a trace of their own when outside any: a
 * front's request, with no span written by hand. Other requests outside any trace get no span: internal traffic
 * (pings, control calls) stays out of the traces.
 */
export function clientTrace(
  kind: number,
  strings: readonly string[] | null,
  opts: { traceparent?: string; tracestate?: string; route?: string },
  bus: string,
  where: string,
  starts = false,
): ClientTrace | null {
  const o = otelTracing()
  const carried = kind !== Kind.RAW && strings !== null && carriesContext(strings)
  if (o === null && opts.traceparent === undefined && opts.tracestate === undefined && !carried) return null
  const explicit = checkTraceOptions(opts, where)
  const received = carried ? headerContext(strings!) : undefined
  const bare = carried ? BARE : null
  if (o === null) {
    const context = explicit ?? received
    return context ? new ClientTrace(context, null, null) : bare
  }
  let parent = o.context.active()
  const active = activeContext(o) !== undefined
  const remote = explicit ?? (active ? undefined : received)
  if (remote !== undefined) {
    const sc = remoteParent(o, remote)
    if (sc !== undefined) parent = o.trace.setSpanContext(parent, sc)
  } else if (!active && !starts && opts.route === undefined && !isRpc(kind, strings)) return bare // outside any trace
  const { name, attributes, what } = describe(kind, strings, bus, "client", opts.route)
  const span = slotbusTracer(o).startSpan(name, { kind: o.SpanKind.CLIENT, attributes }, parent)
  const context = spanContext(o, span)
  if (context === undefined) {
    span.end()
    return remote ? new ClientTrace(remote, null, null) : bare
  }
  return new ClientTrace(context, o, span, what)
}

const isRpc = (kind: number, strings: readonly string[] | null) =>
  kind !== Kind.RAW && strings !== null && isRpcVerb(strings[0]!)

/** Whether an HTTP request's own header pairs hold a `traceparent` or `tracestate`. */
function carriesContext(strings: readonly string[]): boolean {
  for (let i = 2; i < strings.length; i += 2)
    if (strings[i] === "traceparent" || strings[i] === "tracestate") return true
  return false
}

/** The context among an HTTP request's own header pairs, as the W3C parser takes it (two traceparents: none). */
function headerContext(strings: readonly string[]): TraceContext | undefined {
  let tp: string | undefined
  let ts: string | undefined
  for (let i = 2; i + 1 < strings.length; i += 2)
    if (strings[i] === "traceparent") {
      if (tp !== undefined) return undefined
      tp = strings[i + 1]
    } else if (strings[i] === "tracestate") ts = ts === undefined ? strings[i + 1] : `${ts},${strings[i + 1]}`
  return receivedContext(tp, ts)
}

// RFC 9110's methods and PATCH: any other is `_OTHER` (HTTP conventions, http.request.method)
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "CONNECT",
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "POST",
  "PUT",
  "TRACE",
])

/** A method as a label: as it is if RFC 9110 or PATCH, else `_OTHER` (a client names any method it likes). */
export const methodLabel = (method: string) => (KNOWN_METHODS.has(method) ? method : "_OTHER")

/** `http.request.method` for a method: as it is if RFC 9110 or PATCH, else `_OTHER` and the original. */
export function httpMethod(method: string): { method: string; original?: string } {
  return KNOWN_METHODS.has(method) ? { method } : { method: "_OTHER", original: method }
}

/**
 * A span's name and attributes for a request, by OpenTelemetry's semantic conventions (docs/api.md, Traces): RPC's
 * for an RPC call, HTTP's client or server span for an HTTP request. The CLIENT span's URL is the hop's,
 * `http://<bus><path>`: its host (the bus) is `server.address`, port 80; the SERVER span's `server.address` and
 * `server.port` are the request's Host, what the app's client asked for. A client span of a request naming its
 * route's pattern is `{method} {route}`, the route its `url.template`.
 */
function describe(
  kind: number,
  strings: readonly string[] | null,
  bus: string,
  side: "client" | "server",
  route?: string,
  host: string | null = null,
): { name: string; attributes: Attributes; what: "http" | "rpc" | "raw" } {
  if (kind === Kind.RAW || strings === null)
    return { name: `${bus} call`, attributes: { "slotbus.bus": bus, "slotbus.kind": "raw" }, what: "raw" }
  const [method = "", path = ""] = strings
  if (isRpcVerb(method))
    return {
      name: `${bus}/${path}`,
      attributes: {
        "slotbus.bus": bus,
        "slotbus.kind": "rpc",
        "rpc.system": "slotbus",
        "rpc.service": bus,
        "rpc.method": path,
        "server.address": bus,
      },
      what: "rpc",
    }
  const m = httpMethod(method)
  const attributes: Attributes = { "slotbus.bus": bus, "slotbus.kind": "http", "http.request.method": m.method }
  if (m.original !== undefined) attributes["http.request.method_original"] = m.original
  if (side === "client") {
    attributes["server.address"] = bus
    attributes["server.port"] = 80
    attributes["url.full"] = `http://${bus}${path}`
    if (route !== undefined) attributes["url.template"] = route
  } else {
    // the server the client asked for (its Host), never the bus: no Host, no server.address
    const at = host === null ? undefined : hostPort(host)
    if (at !== undefined) {
      attributes["server.address"] = at.address
      if (at.port !== undefined) attributes["server.port"] = at.port
    }
    if (route !== undefined) attributes["http.route"] = route
    const q = path.indexOf("?")
    attributes["url.scheme"] = "http"
    attributes["url.path"] = q < 0 ? path : path.slice(0, q)
    if (q >= 0) attributes["url.query"] = path.slice(q + 1)
  }
  const verb = m.original === undefined ? method : "HTTP"
  return { name: route === undefined ? verb : `${verb} ${route}`, attributes, what: "http" }
}

/**
 * The head strings with `context` in them (docs/PROTOCOL.md §6.2): after method and path (HTTP) or alone (raw),
 * `traceparent` first, then an HTTP request's `route` pattern (`slotbus-route`) when it has a context, and the
 * caller's own `traceparent`/`tracestate`/`slotbus-route` pairs left out (also without a context).
 */
export function headWithContext(
  kind: number,
  strings: readonly string[] | null,
  context: TraceContext | undefined,
  route?: string,
): string[] {
  const out = kind === Kind.RAW || strings === null ? [] : [strings[0]!, strings[1]!]
  if (context !== undefined) out.push("traceparent", context.traceparent)
  if (context?.tracestate) out.push("tracestate", context.tracestate)
  if (strings !== null && kind !== Kind.RAW) {
    if (context !== undefined && route !== undefined && !isRpcVerb(strings[0]!) && isHeaderValue(route))
      out.push(ROUTE_PAIR, route)
    for (let i = 2; i + 1 < strings.length; i += 2) {
      const name = strings[i]
      if (name !== "traceparent" && name !== "tracestate" && name !== ROUTE_PAIR) out.push(name!, strings[i + 1]!)
    }
  }
  return out
}

// ── The worker's side ─────────────────────────────────────────────────────────────────────────────────────

/** `host[:port]` of a Host header (`[v6]:port` too); undefined for one that is no such thing. */
export function hostPort(host: string): { address: string; port?: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]@/]+)(?::(\d{1,5}))?$/.exec(host)
  if (m === null) return undefined
  const address = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!
  return m[2] === undefined ? { address } : { address, port: Number(m[2]) }
}

/** What the worker's SERVER span needs of a request (SlotRequest). */
export interface TracedRequest {
  readonly kind: "raw" | "http"
  readonly method: string
  readonly path: string
  readonly headers: { get(name: string): string | null }
  readonly traceparent: string | undefined
  readonly tracestate: string | undefined
  span: Span | null
}

/**
 * The worker's SERVER spans, told by its serving pipeline (worker/serve.ts) at a request's moments: the handler runs,
 * it threw, it was answered, the request is over. One object for every request; a request without a span (no SDK
 * registered, or no context carried) costs each call one test.
 */
class ServerTrace {
  /** Runs `handler(req)`: inside a SERVER span when an OpenTelemetry SDK is registered and the request is traced. */
  run<R extends TracedRequest, T>(req: R, bus: string, handler: (req: R) => T): T {
    if (req.traceparent === undefined) return handler(req)
    const o = otelTracing()
    return o === null ? handler(req) : runInServerSpan(o, req, bus, handler)
  }

  /** The handler threw (or its reply could not be read): the span says so, and of what class. */
  failed(req: TracedRequest, err: unknown) {
    if (req.span !== null) serverSpanFailed(req.span, err)
  }

  /**
   * Its answer has `status`: an HTTP request's span records it, and a 5xx makes it an error (a SERVER span's 4xx is
   * not: HTTP conventions, Status), unless the handler `threw` and failed() said why already.
   */
  answered(req: TracedRequest, status: number, threw: boolean) {
    if (req.span !== null && req.kind === "http" && !isRpcVerb(req.method))
      recordStatus(req.span, status, threw ? 1000 : 500)
  }

  /** The request is over (answered, streamed, or nobody waits any more): its span ends. */
  ended(req: TracedRequest) {
    if (req.span !== null) req.span.end()
  }
}

export const serverTrace = new ServerTrace()

/**
 * Runs `handler(req)` inside a SERVER span, child of the caller's context (req.span is that span until it ends),
 * named by the route the front matched when the request carries it.
 */
function runInServerSpan<R extends TracedRequest, T>(o: Otel, req: R, bus: string, handler: (req: R) => T): T {
  const tp = req.traceparent
  const sc = tp === undefined ? undefined : remoteParent(o, { traceparent: tp, tracestate: req.tracestate })
  const base = sc === undefined ? o.ROOT_CONTEXT : o.trace.setSpanContext(o.ROOT_CONTEXT, sc)
  const http = req.kind !== "raw"
  const { name, attributes } = describe(
    http ? Kind.HTTP : Kind.RAW,
    http ? [req.method, req.path] : null,
    bus,
    "server",
    (http && req.headers.get(ROUTE_PAIR)) || undefined, // the front's route, carried with the context
    http ? req.headers.get("host") : null,
  )
  const span = slotbusTracer(o).startSpan(name, { kind: o.SpanKind.SERVER, attributes }, base)
  req.span = span
  return o.context.with(o.trace.setSpan(base, span), handler, undefined, req)
}

/** A router in the worker (the HTTP hub's app) matched `pattern`: the SERVER span is `{method} {pattern}`, http.route. */
export function routedSpan(span: Span, method: string, pattern: string) {
  span.updateName(`${httpMethod(method).original === undefined ? method : "HTTP"} ${pattern}`)
  span.setAttribute("http.route", pattern)
}

/** The handler failed: its span says so, and of what class (`error.type`). */
export function serverSpanFailed(span: Span, err: unknown) {
  if (err instanceof Error) span.recordException(err)
  span.setAttribute("error.type", errorType(err))
  span.setStatus({ code: SPAN_ERROR, message: err instanceof Error ? err.message : String(err) })
}

/** An HTTP span's `http.response.status_code`; from `errorFrom` on, the span is an error of `error.type` the status. */
export function recordStatus(span: Span, status: number, errorFrom: number) {
  span.setAttribute("http.response.status_code", status)
  if (status >= errorFrom) {
    span.setAttribute("error.type", String(status))
    span.setStatus({ code: SPAN_ERROR })
  }
}
