// A front's own SERVER span (issue 59 item 6): Bun.serve's routes wrapped in traced() record a span per request
// named by the route's pattern, with OpenTelemetry's HTTP server attributes, continuing the client's traceparent;
// bus.fetch inside it is its CLIENT child, and the worker's SERVER span is in the same trace. The real SDK, a
// worker process, a real HTTP client (curl when there is one, else fetch).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { SlotBus, traced } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"
import { bunChild, busName, until, type Child } from "../../support/helpers.ts"
import { registerOtel, spanLine, type SpanLine } from "../../support/otel-setup.ts"

const spansOf = (c: Child): SpanLine[] =>
  c.lines.filter((l) => l.startsWith("span ")).map((l) => JSON.parse(l.slice(5)) as SpanLine)

const CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const CLIENT_PARENT = "00f067aa0ba902b7"

describe("Bun.serve routes wrapped in traced()", () => {
  const exporter = new InMemorySpanExporter()
  let unregister: () => Promise<void>
  let bus: SlotBus
  let topic: Topic
  let worker: Child
  let server: ReturnType<typeof Bun.serve>
  beforeAll(async () => {
    unregister = registerOtel(exporter)
    bus = await SlotBus.listen(busName("served"))
    const topicName = busName("served-topic")
    topic = await Topic.open(topicName)
    worker = bunChild("core/trace-worker.ts", [bus.name, topicName, "--otel"])
    await worker.waitLine(/^ready$/, 20_000)
    await bus.waitForWorkers(1)
    server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      routes: traced({
        "/items/:id": (req) => bus.fetch(req),
        "/boom": {
          POST: () => {
            throw new RangeError("no such thing")
          },
        },
        "/health": new Response("ok"),
      }),
      fetch: () => new Response("none", { status: 404 }),
      error: () => new Response("failed", { status: 500 }),
    })
  }, 30_000)
  afterAll(async () => {
    await server?.stop(true)
    await worker?.kill()
    await topic?.close()
    await bus?.close({ drain: false })
    await unregister?.()
  })

  test("a request gets a SERVER span named by its route with the server attributes, parent of bus.fetch's CLIENT span and the worker's", async () => {
    exporter.reset()
    const res = await fetch(`http://127.0.0.1:${server.port}/items/7?x=1`, {
      headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_PARENT}-01`, "user-agent": "shop-test/1" },
    })
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    await until(() => exporter.getFinishedSpans().some((s) => s.kind === SpanKind.SERVER), "the front's span ended")
    const spans = exporter.getFinishedSpans().map(spanLine)
    const front = spans.find((s) => s.kind === SpanKind.SERVER)!
    expect(front.name).toBe("GET /items/:id")
    expect(front.traceId).toBe(CLIENT_TRACE)
    expect(front.parentSpanId).toBe(CLIENT_PARENT)
    expect(front.attributes).toMatchObject({
      "http.request.method": "GET",
      "http.route": "/items/:id",
      "url.path": "/items/7",
      "url.query": "x=1",
      "url.scheme": "http",
      "server.address": "127.0.0.1",
      "server.port": server.port,
      "client.address": "127.0.0.1",
      "user_agent.original": "shop-test/1",
      "http.response.status_code": 200,
    })
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!
    expect(client.parentSpanId).toBe(front.spanId)
    await until(() => spansOf(worker).some((s) => s.parentSpanId === client.spanId), "the worker's span is out", 15_000)
    expect(spansOf(worker).find((s) => s.parentSpanId === client.spanId)!.traceId).toBe(CLIENT_TRACE)
  }, 60_000)

  test("a handler that throws makes its SERVER span an error of its class", async () => {
    exporter.reset()
    const res = await fetch(`http://127.0.0.1:${server.port}/boom`, { method: "POST" })
    expect(res.status).toBe(500)
    await res.arrayBuffer()
    await until(() => exporter.getFinishedSpans().length > 0, "the span ended")
    const [span] = exporter.getFinishedSpans()
    expect(span!.name).toBe("POST /boom")
    expect(span!.status.code).toBe(SpanStatusCode.ERROR)
    expect(span!.attributes["error.type"]).toBe("RangeError")
  }, 60_000)

  test("a static Response route is served as it was given", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/health`)
    expect(await res.text()).toBe("ok")
  })
})
