// Traces across every hop (docs/PROTOCOL.md §6.2, §8.3): one trace from a Bun.serve request through the bus
// (bus.fetch and RPC) to a worker process, on to a topic and a subscriber in a third process, with the real
// OpenTelemetry SDK in each process; and the context arriving in a worker that never loads OpenTelemetry.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SpanKind, trace } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { SlotBus } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"
import { bunChild, busName, sentToWorkers, spawnWorker, until, type Child } from "../../support/helpers.ts"
import { METRICS } from "../../../src/status/index.ts"
import { registerOtel, spanLine, type SpanLine } from "../../support/otel-setup.ts"
import { natsSkipReason, startNats } from "../../support/nats.ts"
import { nats } from "../../../src/nats/index.ts"

const exporter = new InMemorySpanExporter()
let unregister: () => Promise<void>
beforeAll(() => {
  unregister = registerOtel(exporter)
})
afterAll(async () => {
  await unregister()
})

/** The `span <json>` lines a child printed so far. */
const spansOf = (c: Child): SpanLine[] =>
  c.lines.filter((l) => l.startsWith("span ")).map((l) => JSON.parse(l.slice(5)) as SpanLine)

async function start(fixture: string, args: string[]): Promise<Child> {
  const c = bunChild(fixture, args)
  try {
    await c.waitLine(/^ready$/, 15_000)
  } catch (e) {
    await c.kill()
    throw e
  }
  return c
}

type Seen = {
  traceparent: string | null
  activeTraceId: string | null
  activeSpanId: string | null
  loadedOtel: boolean
}

describe("with OpenTelemetry in every process", () => {
  test("one trace runs from a Bun.serve request through bus.fetch and RPC to a worker, and a subscriber links to it", async () => {
    const bus = await SlotBus.listen(busName("trace"))
    const topicName = busName("trace-topic")
    const topic = await Topic.open(topicName) // kept open so the topic outlives its members' comings and goings
    const procs: Child[] = []
    let server: ReturnType<typeof Bun.serve> | undefined
    try {
      procs.push(await start("core/trace-subscriber.ts", [topicName]))
      procs.push(await start("core/trace-worker.ts", [bus.name, topicName, "--otel"]))
      await bus.waitForWorkers(1)
      const tracer = trace.getTracer("front")
      server = Bun.serve({
        port: 0,
        fetch: (req) =>
          tracer.startActiveSpan("GET /front", { kind: SpanKind.SERVER }, async (span) => {
            try {
              const viaFetch = (await (await bus.fetch(req)).json()) as Seen
              const viaRpc = (await bus.remote<{ whoami(): Seen }>().whoami()) as Seen
              return Response.json({ traceId: span.spanContext().traceId, viaFetch, viaRpc })
            } finally {
              span.end()
            }
          }),
      })
      const got = (await (await fetch(`http://127.0.0.1:${server.port}/front?x=1`)).json()) as {
        traceId: string
        viaFetch: Seen & { header: string }
        viaRpc: Seen
      }
      const { traceId } = got
      // the handlers ran inside the worker's SERVER spans, in the caller's trace
      expect(got.viaFetch.activeTraceId).toBe(traceId)
      expect(got.viaRpc.activeTraceId).toBe(traceId)
      expect(got.viaFetch.traceparent!.split("-")[1]).toBe(traceId)
      expect(got.viaFetch.header).toBe(got.viaFetch.traceparent!) // the Request's header, for bus.fetch

      // the front: a CLIENT span per request, children of the Bun.serve span, with the queue wait
      const front = exporter.getFinishedSpans().map(spanLine)
      const serverSpan = front.find((s) => s.name === "GET /front")!
      const clients = front.filter((s) => s.kind === SpanKind.CLIENT && s.traceId === traceId)
      expect(clients.map((s) => s.name).sort()).toEqual(["GET", `${bus.name}/whoami`])
      for (const c of clients) {
        expect(c.parentSpanId).toBe(serverSpan.spanId)
        expect(typeof c.attributes["slotbus.queue_wait_ms"]).toBe("number")
        expect(typeof c.attributes["slotbus.slot_ms"]).toBe("number")
      }

      // the worker: a SERVER span per request, child of the front's CLIENT span, and a PRODUCER span per publish
      const worker = procs[1]!
      const subscriber = procs[0]!
      await worker.waitLine(/"kind":3/, 10_000) // PRODUCER spans end after their handler's answer is on its way
      await subscriber.waitLine(/"name":"process seen"/, 10_000)
      // each SERVER span is printed as it ends, which a loaded machine may leave after the PRODUCER's line
      const serverCount = () => spansOf(worker).filter((s) => s.kind === SpanKind.SERVER).length
      await until(() => serverCount() >= 2, "the worker's two SERVER spans", 10_000)
      const workerSpans = spansOf(worker)
      const servers = workerSpans.filter((s) => s.kind === SpanKind.SERVER)
      expect(servers).toHaveLength(2)
      for (const s of servers) {
        expect(s.traceId).toBe(traceId)
        expect(clients.map((c) => c.spanId)).toContain(s.parentSpanId!)
      }
      expect(servers.map((s) => s.spanId)).toContain(got.viaFetch.activeSpanId!)
      const producers = workerSpans.filter((s) => s.kind === SpanKind.PRODUCER)
      expect(producers.length).toBeGreaterThan(0)
      for (const p of producers) expect(servers.map((s) => s.spanId)).toContain(p.parentSpanId!)

      // the subscriber, a third process: its span is not in the trace but links to the publisher's span
      await until(() => spansOf(subscriber).length >= 2, "the subscriber processed both events", 10_000)
      const processed = spansOf(subscriber).filter((s) => s.name === "process seen")
      for (const s of processed) {
        expect(s.links).toHaveLength(1)
        expect(s.links[0]!.traceId).toBe(traceId)
        expect(producers.map((p) => p.spanId)).toContain(s.links[0]!.spanId)
      }
      // and the context keys are not among the event's routing
      expect(subscriber.lines.filter((l) => l.startsWith("event ")).every((l) => l.endsWith(" {}"))).toBe(true)
    } finally {
      await server?.stop(true)
      await Promise.all(procs.map((p) => p.kill()))
      await topic.close()
      await bus.close({ drain: false })
    }
  }, 60_000)
})

describe("without OpenTelemetry in the worker", () => {
  const given = "00-0af7651916cd43dd8448eb7b319ad0a1-b7ad6b7169203331-01"
  const traceId = given.split("-")[1]

  test("req.traceparent arrives on requests, raw calls, bus.fetch and RPC (withCall), and the worker never loads OpenTelemetry", async () => {
    const bus = await SlotBus.listen(busName("trace"))
    const topicName = busName("trace-topic")
    const topic = await Topic.open(topicName)
    const sub = topic.subscribe({ type: "seen" })
    let worker: Child | undefined
    try {
      worker = await start("core/trace-worker.ts", [bus.name, topicName])
      await bus.waitForWorkers(1)
      const viaRequest = (await bus.request({ path: "/x" }, { traceparent: given, tracestate: "k=v" })).json() as Seen
      const raw = JSON.parse(new TextDecoder().decode(await bus.call("hi", { traceparent: given }))) as Seen & {
        kind: string
      }
      // a Request's own header is the context when nothing nearer gives one (no active span here)
      const viaFetch = (await (
        await bus.fetch(new Request("http://front/y", { headers: { traceparent: given } }))
      ).json()) as Seen
      const viaRpc = (await bus.remote<{ called(): Seen }>({ traceparent: given }).called()) as Seen
      for (const s of [viaRequest, raw, viaFetch, viaRpc]) {
        expect(s.traceparent!.split("-")[1]).toBe(traceId)
        expect(s.activeTraceId).toBeNull()
        expect(s.loadedOtel).toBe(false)
      }
      expect(raw.kind).toBe("raw")
      // the worker passed the context on to the topic by hand: the subscriber here reads it off the event
      const ev = await sub.receive({ timeoutMs: 10_000 })
      expect(ev!.traceparent!.split("-")[1]).toBe(traceId)
      expect(ev!.link!.context.traceId).toBe(traceId)
      expect(ev!.routing).toEqual({})
    } finally {
      await worker?.kill()
      sub.close()
      await topic.close()
      await bus.close({ drain: false })
    }
  }, 60_000)

  test("a request outside any trace gets no span and no context; a traceparent header is continued", async () => {
    const bus = await SlotBus.listen(busName("trace"))
    const topicName = busName("trace-topic")
    let worker: Child | undefined
    try {
      worker = await start("core/trace-worker.ts", [bus.name, topicName])
      await bus.waitForWorkers(1)
      exporter.reset()
      const untraced = JSON.parse(new TextDecoder().decode(await bus.call("ping"))) as Seen
      expect(untraced.traceparent).toBeNull()
      // an HTTP hub passes its client's header on: the CLIENT span continues that trace
      const viaHeader = (await bus.request({ path: "/h", headers: { traceparent: given } })).json() as Seen
      const [, tid, parent] = viaHeader.traceparent!.split("-")
      expect(tid).toBe(traceId)
      const clients = exporter.getFinishedSpans().map(spanLine)
      expect(clients).toHaveLength(1) // the ping made none
      expect(clients[0]!.parentSpanId).toBe(given.split("-")[2]!)
      expect(clients[0]!.spanId).toBe(parent!)
    } finally {
      await worker?.kill()
      await bus.close({ drain: false })
    }
  }, 60_000)

  test("a malformed traceparent option is a TypeError, and nothing is sent", async () => {
    const bus = await SlotBus.listen(busName("trace"))
    try {
      for (const bad of ["nope", "00-00000000000000000000000000000000-b7ad6b7169203331-01", 7])
        await expect(bus.request({}, { traceparent: bad as string, timeoutMs: 100 })).rejects.toThrow(TypeError)
      await expect(bus.request({}, { tracestate: "a=b", timeoutMs: 100 })).rejects.toThrow(/goes with a traceparent/)
      expect(sentToWorkers(bus)).toBe(0)
    } finally {
      await bus.close({ drain: false })
    }
  })
})

describe.skipIf(natsSkipReason() !== null)("a worker on another host (NATS)", () => {
  test("the caller's trace reaches a NATS worker's handler as its active span's trace", async () => {
    const { url, server } = await startNats()
    const bus = await SlotBus.listen(busName("trace"), { remote: nats(url), remotePolicy: "balance" })
    const topicName = busName("trace-topic")
    let worker: Child | undefined
    try {
      worker = await start("core/trace-worker.ts", [bus.name, topicName, "--otel", "--nats", url])
      await bus.waitForWorkers(1, { timeoutMs: 15_000 })
      const tracer = trace.getTracer("front")
      const got = await tracer.startActiveSpan("front", async (span) => {
        try {
          return { traceId: span.spanContext().traceId, seen: (await bus.request({ path: "/n" })).json() as Seen }
        } finally {
          span.end()
        }
      })
      expect(got.seen.activeTraceId).toBe(got.traceId)
      expect(got.seen.traceparent!.split("-")[1]).toBe(got.traceId)
    } finally {
      await worker?.kill()
      await bus.close({ drain: false })
      await server.kill()
    }
  }, 60_000)
})

test("a request sent again after its worker died: its queue wait counts from its requeue, its span says it was resent", async () => {
  const bus = await SlotBus.listen(busName("trace-resend"), { timeoutMs: 30_000 })
  const slow = await spawnWorker(bus.name, { delayMs: 60_000 })
  let fast: Child | undefined
  try {
    await bus.waitForWorkers(1)
    exporter.reset()
    const answer = bus.fetch(new Request("http://x/resend"), { idempotent: true })
    await until(() => bus.workers[0]?.inFlight === 1, "the slow worker holds it")
    await Bun.sleep(500) // in its slot, not in the queue
    const killedAt = performance.now()
    process.kill(slow.pid, "SIGKILL")
    fast = await spawnWorker(bus.name)
    expect((await answer).status).toBe(200)
    const sinceKillMs = performance.now() - killedAt
    // it waited in the queue only between the kill and the new worker: before, its second wait counted from its
    // start, the 500 ms in the dead worker's slot included
    const f = bus[METRICS]().find((x) => x.name === "slotbus_request_queue_wait_seconds")!
    const h = (f.samples[0] as { histogram: { count: number; sum: number } }).histogram
    expect(h.count).toBe(2) // one a send: at once, then after its requeue
    expect(h.sum * 1000).toBeLessThan(sinceKillMs)
    const client = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!
    expect(client.attributes["http.request.resend_count"]).toBe(1)
    expect(client.attributes["slotbus.queue_wait_ms"] as number).toBeLessThan(sinceKillMs)
    expect(client.events.filter((e) => e.name === "slotbus.sent")).toHaveLength(2)
  } finally {
    await fast?.kill()
    await slow.kill()
    await bus.close({ drain: false })
  }
}, 60_000)
