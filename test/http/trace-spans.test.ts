// The HTTP hub is a front with no span written by hand (issue 59 item 6): with an OpenTelemetry SDK registered in
// its process, each plain HTTP request it passes to a worker process gets a CLIENT span named by its route's
// pattern, with OpenTelemetry's HTTP client attributes, and the worker's SERVER span is named by it too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SpanKind } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { createHub, type Hub } from "../../src/http/index.ts"
import { stopAll, until, type Child } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"
import { registerOtel, spanLine, type SpanLine } from "../support/otel-setup.ts"

afterAll(stopAll)

describe("an HTTP hub with the SDK registered", () => {
  const exporter = new InMemorySpanExporter()
  let unregister: () => Promise<void>
  let hub: Hub
  let worker: Child
  beforeAll(async () => {
    unregister = registerOtel(exporter)
    hub = await createHub({ port: 0, quiet: true })
    worker = await startWorker(hub.url, "shop", ["--otel"])
  }, 30_000)
  afterAll(async () => {
    await worker?.kill()
    await hub?.close()
    await unregister?.()
  })

  test("a plain HTTP request through the hub gets a CLIENT span named by its route's pattern, with the HTTP client attributes", async () => {
    exporter.reset()
    const res = await fetch(`${hub.url}/items/42?full=1`)
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    const spans = exporter
      .getFinishedSpans()
      .map(spanLine)
      .filter((s) => s.kind === SpanKind.CLIENT && s.attributes["url.template"] === "/items/:id")
    expect(spans).toHaveLength(1)
    const [client] = spans
    expect(client!.name).toBe("GET /items/:id")
    expect(client!.attributes).toMatchObject({
      "http.request.method": "GET",
      "server.port": 80,
      "http.response.status_code": 200,
    })
    expect(client!.attributes["url.full"]).toBe(`http://${client!.attributes["server.address"]}/items/42?full=1`)
  }, 60_000)

  test("the worker's SERVER span of a request through the hub is named by the route it matched, with http.route", async () => {
    exporter.reset()
    const res = await fetch(`${hub.url}/items/43`)
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    const client = exporter
      .getFinishedSpans()
      .map(spanLine)
      .find((s) => s.kind === SpanKind.CLIENT && String(s.attributes["url.full"]).endsWith("/items/43"))!
    const served = () =>
      worker.lines
        .filter((l) => l.startsWith("span "))
        .map((l) => JSON.parse(l.slice(5)) as SpanLine)
        .find((s) => s.parentSpanId === client.spanId)
    await until(() => served() !== undefined, "the worker's SERVER span is out", 15_000)
    expect(served()!.name).toBe("GET /items/:id")
    expect(served()!.attributes).toMatchObject({ "http.route": "/items/:id", "url.path": "/items/43" })
  }, 60_000)
})
