// The HTTP hub is a front with no span written by hand (issue 59 item 6): with an OpenTelemetry SDK registered in
// its process, each plain HTTP request it passes to a worker process gets a CLIENT span named by its route's
// pattern, with OpenTelemetry's HTTP client attributes, and the worker's SERVER span is named by it too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { connect } from "node:net"
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

  test("slotbus-route pairs a client sends (many, huge, odd bytes) name no span and reach no worker: the hub's route does", async () => {
    exporter.reset()
    const forged = [
      ...Array.from({ length: 80 }, (_, i) => `/forged-${i}`),
      `/forged-${"x".repeat(4000)}`,
      "/forged-\xff\x80\t-latin1",
      "GET /forged-value",
    ]
    const lines = forged.map((v, i) => `${i % 2 ? "Slotbus-Route" : "slotbus-route"}: ${v}`)
    const { head, body } = await rawGet(hub.port, "/headers", lines)
    expect(head).toStartWith("HTTP/1.1 200")
    const seen = JSON.parse(body) as Record<string, string>
    expect(seen["slotbus-route"]).toBe("/headers") // the hub's route, once: none of the client's
    const spans = exporter.getFinishedSpans().map(spanLine)
    const client = spans.find(
      (s) => s.kind === SpanKind.CLIENT && s.attributes["url.full"]?.toString().endsWith("/headers"),
    )
    expect(client?.name).toBe("GET /headers")
    const served = () =>
      worker.lines
        .filter((l) => l.startsWith("span "))
        .map((l) => JSON.parse(l.slice(5)) as SpanLine)
        .find((s) => s.parentSpanId === client!.spanId)
    await until(() => served() !== undefined, "the worker's SERVER span is out", 15_000)
    expect(served()!.name).toBe("GET /headers")
    expect(served()!.attributes["http.route"]).toBe("/headers")
    expect(JSON.stringify([...spans, ...worker.lines])).not.toContain("forged")
  }, 60_000)
})

/** GET `path` from 127.0.0.1:`port` over a plain socket with `lines` as headers, sent as latin1 bytes (as a client
 * may send them); the answer's head and body once the server closes. */
function rawGet(port: number, path: string, lines: string[]): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1")
    const chunks: Buffer[] = []
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.on("error", reject)
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1")
      const at = text.indexOf("\r\n\r\n")
      resolve({ head: text.slice(0, at), body: text.slice(at + 4) })
    })
    const req = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", ...lines, "", ""].join("\r\n")
    socket.write(Buffer.from(req, "latin1")) // no end: a half-closed client is one whose request the server may drop
  })
}
