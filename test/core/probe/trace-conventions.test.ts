// Traces that start by themselves (issue 59 item 6): with an OpenTelemetry SDK registered, a front that hands
// plain HTTP requests to workers through bus.fetch and RPC records a span per request with no span written by hand,
// and every span slotbus records carries what OpenTelemetry's HTTP and messaging semantic conventions require.
// The real SDK in every process: an in-memory exporter in this one, and the OTLP/HTTP exporter sending to a real
// receiver started here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { nodeHandler, SlotBus } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"
import { bunChild, busName, until, type Child } from "../../support/helpers.ts"
import { registerOtel, spanLine, type SpanLine } from "../../support/otel-setup.ts"

/** The `span <json>` lines a child printed so far. */
const spansOf = (c: Child): SpanLine[] =>
  c.lines.filter((l) => l.startsWith("span ")).map((l) => JSON.parse(l.slice(5)) as SpanLine)

async function start(fixture: string, args: string[], ready: RegExp): Promise<Child> {
  const c = bunChild(fixture, args)
  try {
    await c.waitLine(ready, 20_000)
  } catch (e) {
    await c.kill()
    throw e
  }
  return c
}

describe("a Bun.serve front with the SDK registered and no span written by hand", () => {
  const exporter = new InMemorySpanExporter()
  let unregister: () => Promise<void>
  let bus: SlotBus
  let topic: Topic
  let worker: Child
  let server: ReturnType<typeof Bun.serve>
  let nodeServer: Server // nodeHandler(bus) on node:http, which sends a GET as its head (no Request made)
  let topicName: string
  beforeAll(async () => {
    unregister = registerOtel(exporter)
    bus = await SlotBus.listen(busName("semconv"))
    topicName = busName("semconv-topic")
    topic = await Topic.open(topicName)
    worker = await start("core/trace-worker.ts", [bus.name, topicName, "--otel"], /^ready$/)
    await bus.waitForWorkers(1)
    const api = bus.remote<{ whoami(): unknown; fails(): unknown }>()
    server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        const path = new URL(req.url).pathname
        if (path === "/rpc") return Response.json(await api.whoami())
        if (path === "/rpc-missing")
          return bus.invoke("nope").then(Response.json, (e: Error) => new Response(e.name, { status: 502 }))
        if (path === "/rpc-fails")
          return api.fails().then(Response.json, (e: Error) => new Response(e.name, { status: 502 }))
        return bus.fetch(req)
      },
    })
    nodeServer = createServer(nodeHandler(bus)).listen(0, "127.0.0.1")
    await new Promise((r) => nodeServer.once("listening", r))
  }, 30_000)
  afterAll(async () => {
    nodeServer?.closeAllConnections()
    nodeServer?.close()
    await server?.stop(true)
    await worker?.kill()
    await topic?.close()
    await bus?.close({ drain: false })
    await unregister?.()
  })

  /** The front's CLIENT span and the worker's SERVER span of one plain HTTP request to the front at `path`. */
  async function spansFor(path: string, status: number, port = server.port) {
    exporter.reset()
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    await res.arrayBuffer()
    expect(res.status).toBe(status)
    const clients = exporter
      .getFinishedSpans()
      .map(spanLine)
      .filter((s) => s.kind === SpanKind.CLIENT)
    expect(clients).toHaveLength(1)
    const client = clients[0]!
    await until(
      () => spansOf(worker).some((s) => s.parentSpanId === client.spanId),
      "the worker's SERVER span of the request is out",
      15_000,
    )
    const served = spansOf(worker).find((s) => s.parentSpanId === client.spanId)!
    return { client, served, status: exporter.getFinishedSpans()[0]!.status }
  }

  test("a plain HTTP request through bus.fetch gets a CLIENT span with the HTTP client attributes and a worker SERVER span with the server ones, its server.address the client's Host", async () => {
    const { client, served, status } = await spansFor("/items/7?x=1", 200)
    expect(client.name).toBe("GET")
    expect(client.parentSpanId).toBeUndefined() // the request's own trace: nothing started it by hand
    expect(client.attributes).toMatchObject({
      "http.request.method": "GET",
      "server.address": bus.name,
      "server.port": 80,
      "url.full": `http://${bus.name}/items/7?x=1`,
      "http.response.status_code": 200,
    })
    expect(client.attributes["error.type"]).toBeUndefined()
    expect(status.code).toBe(SpanStatusCode.UNSET)
    expect(served.kind).toBe(SpanKind.SERVER)
    expect(served.traceId).toBe(client.traceId)
    expect(served.name).toBe("GET")
    expect(served.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/items/7",
      "url.query": "x=1",
      "url.scheme": "http",
      "server.address": "127.0.0.1", // the Host the client asked, never the bus's name
      "server.port": server.port,
      "http.response.status_code": 200,
    })
  }, 60_000)

  test("a GET through nodeHandler, outside any trace, gets the same CLIENT span as through bus.fetch", async () => {
    const port = (nodeServer.address() as AddressInfo).port
    const { client, served } = await spansFor("/items/7?x=1", 200, port)
    expect([client.name, client.parentSpanId, served.traceId]).toEqual(["GET", undefined, client.traceId])
    expect(client.attributes).toMatchObject({
      "http.request.method": "GET",
      "server.address": bus.name,
      "url.full": `http://${bus.name}/items/7?x=1`,
      "http.response.status_code": 200,
    })
  }, 60_000)

  test("a 503 answer is in both spans' http.response.status_code, and the CLIENT span is an error of error.type 503", async () => {
    const { client, served, status } = await spansFor("/status/503", 503)
    expect(client.attributes["http.response.status_code"]).toBe(503)
    expect(client.attributes["error.type"]).toBe("503")
    expect(status.code).toBe(SpanStatusCode.ERROR)
    expect(served.attributes["http.response.status_code"]).toBe(503)
    expect(served.attributes["error.type"]).toBe("503")
  }, 60_000)

  test("an RPC call gets a CLIENT span named service/method with the RPC attributes and the bus as server.address", async () => {
    const { client, served } = await spansFor("/rpc", 200)
    expect(client.name).toBe(`${bus.name}/whoami`)
    expect(client.parentSpanId).toBeUndefined()
    expect(client.attributes).toMatchObject({
      "rpc.system": "slotbus",
      "rpc.service": bus.name,
      "rpc.method": "whoami",
      "server.address": bus.name,
    })
    expect(served.name).toBe(`${bus.name}/whoami`)
    expect(served.attributes).toMatchObject({ "rpc.system": "slotbus", "rpc.method": "whoami" })
  }, 60_000)

  test("an RPC call whose function throws is an error in the CLIENT span and in the worker's SERVER span", async () => {
    const { client, served, status } = await spansFor("/rpc-fails", 502)
    expect(client.name).toBe(`${bus.name}/fails`)
    expect(client.attributes["error.type"]).toBe("RemoteError")
    expect(status.code).toBe(SpanStatusCode.ERROR)
    expect(served.attributes["error.type"]).toBe("RangeError")
  }, 60_000)

  test("an RPC call of a function the worker does not expose is an error of error.type UnknownMethodError", async () => {
    const { client, status } = await spansFor("/rpc-missing", 502)
    expect(client.name).toBe(`${bus.name}/nope`)
    expect(client.attributes["error.type"]).toBe("UnknownMethodError")
    expect(status.code).toBe(SpanStatusCode.ERROR)
  }, 60_000)

  test("a publish from a handler is a PRODUCER span named publish <topic> with the messaging attributes", async () => {
    const { served } = await spansFor("/items/8", 200)
    await until(
      () => spansOf(worker).some((s) => s.kind === SpanKind.PRODUCER && s.parentSpanId === served.spanId),
      "the worker's PRODUCER span is out",
      15_000,
    )
    const producer = spansOf(worker).find((s) => s.kind === SpanKind.PRODUCER && s.parentSpanId === served.spanId)!
    expect(producer.name).toBe(`publish ${topicName}`)
    expect(producer.attributes).toMatchObject({
      "messaging.system": "slotbus",
      "messaging.operation.name": "publish",
      "messaging.operation.type": "send",
      "messaging.destination.name": topicName,
      "slotbus.event.type": "seen",
    })
  }, 60_000)
})

/** An OTLP/JSON span as a receiver gets it, its attributes as plain values. */
interface OtlpSpan {
  service: string
  name: string
  kind: number
  traceId: string
  spanId: string
  parentSpanId: string
  attributes: Record<string, unknown>
}

type AnyValue = { stringValue?: string; intValue?: number | string; boolValue?: boolean; doubleValue?: number }
const plain = (v: AnyValue) =>
  v.stringValue ?? (v.intValue === undefined ? (v.boolValue ?? v.doubleValue) : Number(v.intValue))
type Attr = { key: string; value: AnyValue }
const attrs = (list: Attr[] = []) => Object.fromEntries(list.map((a) => [a.key, plain(a.value)]))

/** The spans of one OTLP/JSON ExportTraceServiceRequest. */
function otlpSpans(body: {
  resourceSpans?: { resource?: { attributes?: Attr[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]
}): OtlpSpan[] {
  const out: OtlpSpan[] = []
  for (const rs of body.resourceSpans ?? []) {
    const service = String(attrs(rs.resource?.attributes)["service.name"])
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        out.push({
          service,
          name: s.name as string,
          kind: s.kind as number,
          traceId: s.traceId as string,
          spanId: s.spanId as string,
          parentSpanId: (s.parentSpanId as string | undefined) ?? "",
          attributes: attrs(s.attributes as Attr[]),
        })
  }
  return out
}

describe("the OTLP exporter", () => {
  test("a front and a worker process send their spans of a plain HTTP request to a real OTLP/HTTP receiver as one trace with the conventions' attributes", async () => {
    const received: OtlpSpan[] = []
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        if (new URL(req.url).pathname !== "/v1/traces") return new Response("not here", { status: 404 })
        expect(req.headers.get("content-type")).toContain("application/json")
        received.push(...otlpSpans((await req.json()) as Parameters<typeof otlpSpans>[0]))
        return Response.json({})
      },
    })
    const url = `http://127.0.0.1:${receiver.port}/v1/traces`
    const name = busName("otlp")
    const topicName = busName("otlp-topic")
    const topic = await Topic.open(topicName)
    const procs: Child[] = []
    try {
      procs.push(bunChild("core/trace-front.ts", [name, "--otlp", url]))
      procs.push(await start("core/trace-worker.ts", [name, topicName, "--otel", "--otlp", url], /^ready$/))
      const [, port] = await procs[0]!.waitLine(/^port (\d+)$/, 20_000)
      const res = await fetch(`http://127.0.0.1:${port}/items/9?y=2`)
      expect(res.status).toBe(200)
      await res.arrayBuffer()
      await until(
        () =>
          received.some((s) => s.kind === 3 && s.name === "GET") &&
          received.some((s) => s.kind === 2 && s.attributes["url.path"] === "/items/9"),
        "the receiver has the front's CLIENT span and the worker's SERVER span",
        20_000,
      )
      const client = received.find((s) => s.kind === 3 && s.name === "GET")!
      const served = received.find((s) => s.kind === 2 && s.attributes["url.path"] === "/items/9")!
      expect(served.traceId).toBe(client.traceId)
      expect(served.parentSpanId).toBe(client.spanId)
      expect(client.attributes).toMatchObject({
        "http.request.method": "GET",
        "server.address": name,
        "server.port": 80,
        "url.full": `http://${name}/items/9?y=2`,
        "http.response.status_code": 200,
      })
      expect(served.attributes).toMatchObject({
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.query": "y=2",
        "http.response.status_code": 200,
      })
    } finally {
      await Promise.all(procs.map((p) => p.kill()))
      await topic.close()
      await receiver.stop(true)
    }
  }, 90_000)
})
