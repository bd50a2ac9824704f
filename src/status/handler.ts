// /metrics on a route of the app's own server: the text serveStatus's GET /metrics answers (this process's series,
// then its sources'), as a function and as a handler for Bun.serve's routes, Hono or Elysia, and for node:http or
// Express (the same handler: told apart at each call by its second argument, node:http's ServerResponse). A shared front (several
// processes on one reusePort port, docs/PROTOCOL.md §15) labels every series it writes `front="<its index>"`.
import type { IncomingMessage, ServerResponse } from "node:http"
import { frontIndexOf } from "../core/internal.ts"
import { checkOptions, hasMetrics, isNodeResponse, optionNames, selfFamilies, type MetricFamily } from "../kit/index.ts"
import { familiesOf, metricsAnswer, metricsMaxAge, metricsNodeAnswer, renderMetrics, sharedScrape } from "./metrics.ts"

export interface MetricsHandlerOptions {
  /**
   * How long a computed text answers scrapes, in ms: scrapes that come while it is computed, and in this time after,
   * get the same text, so a client scraping in a loop costs the server one computation per interval. 0: only
   * scrapes that come while it is computed share it. Default 1000.
   */
  maxAgeMs?: number
}

const HANDLER_OPTIONS = optionNames<MetricsHandlerOptions>({ maxAgeMs: true })

/**
 * The text GET /metrics answers for `sources`: this process's families first, then theirs; `byFront`, every sample
 * labelled `front` when one of them is a shared front (on a shared port, a scrape reaches any one of the fronts).
 */
export async function exposition(sources: readonly unknown[], byFront: boolean): Promise<string> {
  const families = [...(await selfFamilies()), ...familiesOf(sources)]
  const front = byFront ? sources.map(frontIndexOf).find((i) => i !== null) : null
  return renderMetrics(front == null ? families : families.map((f) => labelled(f, String(front))))
}

const labelled = (f: MetricFamily, front: string): MetricFamily => ({
  ...f,
  samples: f.samples.map((s) => ({ ...s, labels: { ...s.labels, front } })),
})

function checkSources(sources: unknown, where: string): readonly unknown[] {
  if (!Array.isArray(sources)) throw new TypeError(`${where} takes an array of sources, like [bus, topic]`)
  sources.forEach((s, i) => {
    if (!hasMetrics(s))
      throw new TypeError(`${where}: source ${i} has no metrics; pass a SlotBus, Topic, Contest, StdioBus or Hub`)
  })
  return sources
}

/**
 * Prometheus's text (version 0.0.4) of this process's series and those of `sources` (SlotBus, Topic, Contest,
 * StdioBus, Hub): what a `/metrics` route of the app's own server answers, computed at each call (a route answering
 * anyone should use metricsHandler, whose text is shared by the scrapes of a second).
 */
export function metricsText(sources: unknown[]): Promise<string> {
  return exposition(checkSources(sources, "metricsText"), true)
}

/**
 * metricsHandler's handler, both ways: a Request's Response (Bun.serve's routes, Hono, Elysia), or node:http's
 * `(req, res)` written to `res` (Express's `(req, res, next)`: `next` is not called), settled once written.
 */
export interface MetricsHandler {
  (req: Request): Promise<Response>
  // the node:http form last: a framework's handler type (Express's) is inferred from the last signature
  (req: IncomingMessage, res: ServerResponse, next?: unknown): Promise<void>
}

/**
 * A handler answering GET and HEAD with `metricsText(sources)` (405 otherwise), for any route of the app's server:
 * `routes: { "/metrics": metricsHandler([bus]) }`, Hono's `app.get("/metrics", (c) => metrics(c.req.raw))`, Express's
 * `app.get("/metrics", metricsHandler([bus]))` or node:http's `(req, res) => metrics(req, res)`. Its text is computed
 * once for the scrapes of `maxAgeMs` (default 1 s), and gzipped once for those that take gzip. On node:http a failure
 * to compute it is answered 500 (the Web form rejects: the app's error handler answers). It answers whoever reaches
 * the route: keep it private (docs/api.md, Metrics).
 */
export function metricsHandler(sources: unknown[], options?: MetricsHandlerOptions): MetricsHandler {
  const checked = checkSources(sources, "metricsHandler")
  const o = checkOptions(options, HANDLER_OPTIONS, "metricsHandler")
  const scrape = sharedScrape(() => exposition(checked, true), metricsMaxAge(o.maxAgeMs, "maxAgeMs", "metricsHandler"))
  return (async (req: Request | IncomingMessage, res?: unknown) => {
    if (isNodeResponse(res)) return metricsNodeAnswer(req as IncomingMessage, res as ServerResponse, scrape)
    if (!(typeof (req as Request)?.headers?.get === "function"))
      throw new TypeError(
        "metricsHandler's handler takes a Request, or node:http's (req, res): call it as handler(req) or handler(req, res)",
      )
    if (req.method !== "GET" && req.method !== "HEAD")
      return Response.json(
        { error: "method-not-allowed", message: "/metrics takes GET, HEAD" },
        { status: 405, headers: { allow: "GET, HEAD" } },
      )
    return metricsAnswer(req as Request, scrape)
  }) as MetricsHandler
}
