// The route, end to end (issue 68 item 3): a Hono app and an Elysia app on Bun.serve, wrapped in instrument() with a
// one-line middleware (Hono) or global hook (Elysia) naming the framework's route pattern through httpRoute, and a
// plain fetch front naming it with
// bus.fetch(req, { route }). With the real SDK: the front's SERVER span is `{method} {route}` with http.route, the
// CLIENT span carries the route (url.template), the server histogram is labelled with it, and the worker's SERVER
// span is `{method} {route}` with http.route (the route travels in the head, docs/PROTOCOL.md §6.2) and has the
// client's Host as server.address and server.port, never the bus's name. A client's own slotbus-route header is
// never taken for the front's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SpanKind } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Elysia } from "elysia"
import { Hono } from "hono"
import { routePath } from "hono/route"
import { httpRoute, instrument, SlotBus } from "../../../src/index.ts"
import { metricsText } from "../../../src/status/index.ts"
import { bunChild, busName, until, type Child } from "../../support/helpers.ts"
import { registerOtel, spanLine, type SpanLine } from "../../support/otel-setup.ts"
import { sample } from "../../support/status/prometheus.ts"

const spansOf = (c: Child): SpanLine[] =>
  c.lines.filter((l) => l.startsWith("span ")).map((l) => JSON.parse(l.slice(5)) as SpanLine)

describe("the route of a front's request, from its framework to every span and the server histogram", () => {
  const exporter = new InMemorySpanExporter()
  let unregister: () => Promise<void>
  let bus: SlotBus
  let worker: Child
  const servers: ReturnType<typeof Bun.serve>[] = []
  beforeAll(async () => {
    unregister = registerOtel(exporter)
    bus = await SlotBus.listen(busName("route"))
    worker = bunChild("core/trace-worker.ts", [bus.name, busName("route-topic"), "--otel"])
    await worker.waitLine(/^ready$/, 20_000)
    await bus.waitForWorkers(1)
  }, 30_000)
  afterAll(async () => {
    for (const s of servers) await s.stop(true)
    await worker?.kill()
    await bus?.close({ drain: false })
    await unregister?.()
  })

  /** The front's SERVER and CLIENT spans and the worker's SERVER span of one GET of `url`. */
  async function spansOfGet(url: string, forgedRoute?: string) {
    exporter.reset()
    const res = await fetch(url, forgedRoute === undefined ? {} : { headers: { "slotbus-route": forgedRoute } })
    await res.arrayBuffer()
    expect(res.status).toBe(200)
    const spans = exporter.getFinishedSpans().map(spanLine)
    const front = spans.find((s) => s.kind === SpanKind.SERVER)
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)
    expect(front).toBeDefined()
    expect(client).toBeDefined()
    expect(client!.parentSpanId).toBe(front!.spanId)
    await until(() => spansOf(worker).some((s) => s.parentSpanId === client!.spanId), "the worker's span", 15_000)
    return { front: front!, client: client!, served: spansOf(worker).find((s) => s.parentSpanId === client!.spanId)! }
  }

  /** A GET of `path` through `fetch` (a framework's app in instrument()) carries `route` to every span and histogram. */
  async function expectRouteCarried(
    fetch: (req: Request) => Response | Promise<Response>,
    path: string,
    route: string,
  ) {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: instrument(fetch) })
    servers.push(server)
    const { front, client, served } = await spansOfGet(`http://127.0.0.1:${server.port}${path}?full=1`)
    expect(front.name).toBe(`GET ${route}`)
    expect(front.attributes["http.route"]).toBe(route)
    expect(client.name).toBe(`GET ${route}`)
    expect(client.attributes["url.template"]).toBe(route)
    expect(served.name).toBe(front.name)
    expect(served.attributes["http.route"]).toBe(front.attributes["http.route"])
    expect(served.attributes["server.address"]).toBe("127.0.0.1")
    expect(served.attributes["server.port"]).toBe(server.port)
    const text = await metricsText([bus])
    const series = `http_request_method="GET",http_route="${route}",http_response_status_code="200"`
    expect(sample(text, `http_server_request_duration_seconds_count{${series}}`)).toBe(1)
    expect(sample(text, `slotbus_route_request_duration_seconds_count{bus="${bus.name}",route="GET ${route}"}`)).toBe(1)
  }

  test("a Hono app: one middleware line carries c's route pattern to the front's span, the CLIENT span, the worker's span and the histogram", async () => {
    const app = new Hono()
    app.use((c, next) => (httpRoute(c.req.raw, routePath(c, -1)), next()))
    app.get("/shop/:id", (c) => bus.fetch(c.req.raw))
    await expectRouteCarried(app.fetch, "/shop/42", "/shop/:id")
  }, 60_000)

  test("an Elysia app: one global hook line carries its route pattern to the front's span, the CLIENT span, the worker's span and the histogram", async () => {
    const app = new Elysia()
      .onBeforeHandle({ as: "global" }, ({ request, route }) => httpRoute(request, route))
      .get("/cart/:id", ({ request }) => bus.fetch(request))
    await expectRouteCarried(app.fetch, "/cart/7", "/cart/:id")
  }, 60_000)

  test("a fetch front: bus.fetch(req, { route }) names the front's SERVER span, the worker's and its histogram sample", async () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: instrument((req: Request) => bus.fetch(req, { route: "/things/:id" })),
    })
    servers.push(server)
    // a client's own slotbus-route header gives way to the front's
    const { front, client, served } = await spansOfGet(`http://127.0.0.1:${server.port}/things/9`, "/forged")
    expect(front.name).toBe("GET /things/:id")
    expect(front.attributes["http.route"]).toBe("/things/:id")
    expect(client.name).toBe("GET /things/:id")
    expect(served.name).toBe("GET /things/:id")
    expect(served.attributes["http.route"]).toBe("/things/:id")
    const text = await metricsText([bus])
    const series = `http_request_method="GET",http_route="/things/:id",http_response_status_code="200"`
    expect(sample(text, `http_server_request_duration_seconds_count{${series}}`)).toBe(1)
  }, 60_000)

  test("a front that names no route: the worker's span is `{method}`, whatever slotbus-route header the client sent", async () => {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: instrument((req: Request) => bus.fetch(req)) })
    servers.push(server)
    const { front, served } = await spansOfGet(`http://127.0.0.1:${server.port}/any/1`, "/forged")
    expect(front.name).toBe("GET")
    expect(served.name).toBe("GET")
    expect(served.attributes["http.route"]).toBeUndefined()
  }, 60_000)
})
