// A front's HTTP requests as its app's server sees them: the time from the request's arrival at the app's handler to
// its Response, for every request the wrapper (core/observe/serve-span.ts, `instrument()`) sees, routes the front
// answers itself included. One histogram per process, OpenTelemetry's `http.server.request.duration` (seconds, by
// `http.request.method`, `http.route`, `http.response.status_code`), written for Prometheus as
// `http_server_request_duration_seconds` (the name and labels its OpenTelemetry exporter gives it). The route a
// request matched is learnt while it runs (a Bun.serve pattern, `bus.fetch(req, { route })`, a framework's
// middleware through `httpRoute`, Express's `req.route`): the exchange of a Request (or of a node:http
// IncomingMessage) keeps it, and its SERVER span, until it is answered.
import type { IncomingMessage } from "node:http"
import { DURATION_BUCKETS, Histogram } from "./histogram.ts"
import type { MetricFamily, MetricSample } from "./metrics.ts"
import type { OtelSpan } from "./otel.ts"

export const HTTP_SERVER_DURATION = "http_server_request_duration_seconds"
/** Distinct routes kept as labels; after that "other" (a route is a pattern, but one set from a path must stay bounded). */
const MAX_ROUTES = 100
/**
 * Distinct statuses a route keeps as labels; after that "other" (an app passing on an upstream's status answers any
 * of 200–599: a series each made one route 400 series a method).
 */
const MAX_STATUSES = 16
/** A route's series: by status (or "other"), then method; `exact` counts the statuses kept as they came. */
interface RouteSeries {
  exact: number
  byStatus: Map<number | "other", Map<string, Histogram>>
}

/** One request in the front's app, while it runs: its route once known, its SERVER span when traced. */
export interface Exchange {
  route: string | undefined
  span: OtelSpan | null
  /** `{method}` as the span's name is written (`HTTP` for a method outside RFC 9110). */
  verb: string
}

const exchanges = new WeakMap<Request, Exchange>()
// an IncomingMessage's is a property of it: a WeakMap key costs V8's collector µs a request (docs/api.md, Metrics)
const EXCHANGE = Symbol("slotbus.exchange")
type Carrier = IncomingMessage & { [EXCHANGE]?: Exchange }

/** The exchange `req` is in (set by the wrapper), if any. */
export const exchangeOf = (req: Request | IncomingMessage): Exchange | undefined =>
  req instanceof Request ? exchanges.get(req) : (req as Carrier)[EXCHANGE]

export function openExchange(req: Request | IncomingMessage, exchange: Exchange): void {
  if (req instanceof Request) exchanges.set(req, exchange)
  else (req as Carrier)[EXCHANGE] = exchange
}

/**
 * Names the route pattern `req` matched (`/items/:id`, Hono's `routePath(c)`, Elysia's `route`, Koa's
 * `ctx._matchedRoute` for `ctx.req`): the front's SERVER span becomes `{method} {route}` with `http.route`, its
 * server histogram sample is labelled with it, and `bus.fetch(req)` carries it on as its `route`. `req` is a Request
 * or a node:http IncomingMessage. Does nothing for a request outside `instrument()`.
 */
export function httpRoute(req: Request | IncomingMessage, route: string): void {
  if (typeof route !== "string" || route === "") throw new TypeError("httpRoute: route must be a non-empty pattern")
  const ex = exchangeOf(req)
  if (ex === undefined || ex.route === route) return
  ex.route = route
  if (ex.span !== null) {
    ex.span.updateName(`${ex.verb} ${route}`)
    ex.span.setAttribute("http.route", route)
  }
}

class ServerHistograms {
  private readonly routes = new Set<string>()
  private readonly series = new Map<string, RouteSeries>()
  private count = 0

  /** OpenTelemetry histograms recording every request too (reportMetrics), as `http.server.request.duration`. */
  private readonly taps = new Set<(attributes: Record<string, string | number>, seconds: number) => void>()

  /** Calls `record` for every request from now on, with OpenTelemetry's attributes; returns what stops it. */
  tap(record: (attributes: Record<string, string | number>, seconds: number) => void): () => void {
    this.taps.add(record)
    return () => void this.taps.delete(record)
  }

  observe(method: string, route: string | undefined, status: number, ns: number): void {
    // by route, then status, then method: no string made per request
    const r = route === undefined ? "" : this.routeLabel(route)
    let rs = this.series.get(r)
    if (rs === undefined) this.series.set(r, (rs = { exact: 0, byStatus: new Map() }))
    let s: number | "other" = status
    let byMethod = rs.byStatus.get(s)
    if (byMethod === undefined) {
      if (rs.exact < MAX_STATUSES) rs.exact++
      else s = "other"
      byMethod = rs.byStatus.get(s)
      if (byMethod === undefined) rs.byStatus.set(s, (byMethod = new Map()))
    }
    if (this.taps.size > 0) {
      const attributes: Record<string, string | number> = { "http.request.method": method }
      if (r !== "") attributes["http.route"] = r
      attributes["http.response.status_code"] = status // an int, as the conventions say; the SDK bounds its series
      for (const record of this.taps) record(attributes, ns / 1e9)
    }
    let h = byMethod.get(method)
    if (h === undefined) {
      byMethod.set(method, (h = new Histogram(DURATION_BUCKETS)))
      this.count++
    }
    h.observeNs(ns)
  }

  private routeLabel(route: string): string {
    if (this.routes.has(route)) return route
    if (this.routes.size >= MAX_ROUTES) return "other"
    this.routes.add(route)
    return route
  }

  families(): MetricFamily[] {
    if (this.count === 0) return []
    const samples: MetricSample[] = []
    for (const [route, { byStatus }] of this.series)
      for (const [status, byMethod] of byStatus)
        for (const [method, h] of byMethod) {
          const labels: Record<string, string> = { http_request_method: method }
          if (route !== "") labels.http_route = route
          labels.http_response_status_code = String(status)
          samples.push({ labels, histogram: h.snapshot() })
        }
    return [
      {
        name: HTTP_SERVER_DURATION,
        type: "histogram",
        help: "time from a request's arrival at the app's handler to its Response, by method, route pattern and status (OpenTelemetry's http.server.request.duration)",
        samples,
      },
    ]
  }
}

/** This process's HTTP server histogram: one per process, whichever server and wrapper recorded into it. */
export const httpServer = new ServerHistograms()
