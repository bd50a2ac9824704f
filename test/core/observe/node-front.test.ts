// instrument() around a node:http request listener (serve-span.ts), on Bun's node:http with the real SDK: a Fastify
// app (its handler through serverFactory, its route named by one onRequest hook) and a Koa app (@koa/router's
// route named by one middleware through httpRoute(ctx.req, …)), as docs/api.md gives them. Real HTTP: each
// request's SERVER span is `{method} {route}`, a child of the client's traceparent, and its server histogram series
// is labelled with the pattern; requests no route matched share one series without http_route, whatever their path;
// a listener's span has a Bun.serve route's attributes.
// The same under Node, with Express: test/runtime/node-otel.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import http from "node:http"
import type { AddressInfo } from "node:net"
import Router from "@koa/router"
import { SpanKind } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import Fastify from "fastify"
import Koa from "koa"
import { httpRoute, instrument } from "../../../src/index.ts"
import { metricsText } from "../../../src/status/index.ts"
import { registerOtel, spanLine } from "../../support/otel-setup.ts"
import { sample } from "../../support/status/prometheus.ts"

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const CALLER = "00f067aa0ba902b7"
const count = async (labels: string) =>
  sample(await metricsText([]), `http_server_request_duration_seconds_count{${labels}}`) ?? 0
const UNMATCHED = 'http_request_method="GET",http_response_status_code="404"'

describe("instrument() around a node:http listener on Bun", () => {
  const exporter = new InMemorySpanExporter()
  let unregister: () => Promise<void>
  const closers: (() => Promise<unknown>)[] = []
  beforeAll(() => {
    unregister = registerOtel(exporter)
  })
  afterAll(async () => {
    for (const close of closers) await close()
    await unregister?.()
  })

  /** GETs each path of `base`; the front's SERVER spans, the first with the client's traceparent. */
  async function get(base: string, paths: string[]) {
    exporter.reset()
    const statuses: number[] = []
    for (const [i, path] of paths.entries()) {
      const headers: Record<string, string> = i === 0 ? { traceparent: `00-${TRACE}-${CALLER}-01` } : {}
      const res = await fetch(base + path, { headers })
      await res.arrayBuffer()
      statuses.push(res.status)
    }
    const spans = exporter
      .getFinishedSpans()
      .map(spanLine)
      .filter((s) => s.kind === SpanKind.SERVER)
    return { statuses, spans }
  }

  /** The spans and series of /{tag}/1, /{tag}/2 and two unmatched paths, their route `/{tag}/:id`. */
  async function expectRoutes(base: string, tag: string) {
    const route = `/${tag}/:id`
    const unmatchedBefore = await count(UNMATCHED)
    const { statuses, spans } = await get(base, [`/${tag}/1?full=1`, `/${tag}/2`, `/${tag}-no/1`, `/${tag}-no/2`])
    expect(statuses).toEqual([200, 200, 404, 404])
    expect(spans.map((s) => [s.name, s.attributes["http.route"], s.attributes["http.response.status_code"]])).toEqual([
      [`GET ${route}`, route, 200],
      [`GET ${route}`, route, 200],
      ["GET", undefined, 404],
      ["GET", undefined, 404],
    ])
    expect(spans[0]).toMatchObject({ traceId: TRACE, parentSpanId: CALLER })
    expect(spans[0]!.attributes).toMatchObject({ "url.path": `/${tag}/1`, "url.query": "full=1", "url.scheme": "http" })
    expect(spans[1]!.traceId).not.toBe(TRACE)
    expect(await count(`http_request_method="GET",http_route="${route}",http_response_status_code="200"`)).toBe(2)
    expect((await count(UNMATCHED)) - unmatchedBefore).toBe(2)
    expect(await metricsText([])).not.toContain(`${tag}-no`)
  }

  test("Fastify: its handler in instrument() through serverFactory and one onRequest hook name each request by its route", async () => {
    const app = Fastify({ serverFactory: (handler) => http.createServer(instrument(handler)) })
    app.addHook("onRequest", async (req) => void (req.routeOptions.url && httpRoute(req.raw, req.routeOptions.url)))
    app.get("/fastify/:id", async () => "ok")
    closers.push(() => app.close())
    await app.listen({ port: 0, host: "127.0.0.1" })
    await expectRoutes(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, "fastify")
  }, 30_000)

  test("a listener's SERVER span has the attributes a Bun.serve route's has, by the same names", async () => {
    const bun = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      routes: instrument({ "/bun/:id": () => new Response("ok") }),
    })
    closers.push(() => bun.stop(true))
    const node = http.createServer(instrument((_req: http.IncomingMessage, res: http.ServerResponse) => res.end("ok")))
    closers.push(() => new Promise((r) => node.close(r)))
    await new Promise<void>((r) => node.listen(0, "127.0.0.1", r))
    const [onBun] = (await get(`http://127.0.0.1:${bun.port}`, ["/bun/1?q=1"])).spans
    const [onNode] = (await get(`http://127.0.0.1:${(node.address() as AddressInfo).port}`, ["/node/1?q=1"])).spans
    const keys = (s: typeof onBun) => Object.keys(s!.attributes).sort()
    // the listener names no route: the same keys but http.route
    expect(keys(onNode)).toEqual(keys(onBun).filter((k) => k !== "http.route"))
    expect(onNode!.attributes).toMatchObject({
      "url.path": "/node/1",
      "url.query": "q=1",
      "server.address": "127.0.0.1",
    })
    expect(onNode!.name).toBe("GET")
    expect(onBun!.name).toBe("GET /bun/:id")
  }, 30_000)

  test("Koa: app.callback() in instrument() and one middleware naming @koa/router's route name each request", async () => {
    const app = new Koa()
    app.use(async (ctx, next) => {
      await next()
      if (ctx._matchedRoute) httpRoute(ctx.req, String(ctx._matchedRoute))
    })
    const router = new Router()
    router.get("/koa/:id", (ctx) => {
      ctx.body = "ok"
    })
    app.use(router.routes())
    const server = http.createServer(instrument(app.callback()))
    closers.push(() => new Promise((r) => server.close(r)))
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    await expectRoutes(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, "koa")
  }, 30_000)
})
