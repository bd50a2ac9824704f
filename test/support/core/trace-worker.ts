// A worker for the tracing tests (test/core/probe/trace.test.ts). Usage:
//   bun trace-worker.ts <bus> <topic> [--otel] [--otlp <url>] [--nats <url>]
// With --otel it registers the real OpenTelemetry SDK and prints each finished span as `span <json>` (with --otlp,
// sends them to that OTLP/HTTP endpoint instead); without, it
// never loads @opentelemetry/api (it prints `loaded-otel <bool>` on request to show that). Each request or RPC call
// answers what the handler saw: `req.traceparent`, `req.tracestate`, their headers and the active span's trace id,
// and publishes an event of type "seen" on <topic> from inside the handler. Prints "ready" once connected.
import { SlotWorker, withCall, type SlotRequest } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"

const [bus, topicName, ...flags] = process.argv.slice(2)
const withOtel = flags.includes("--otel")
const natsAt = flags.indexOf("--nats")
const otlpAt = flags.indexOf("--otlp")
type Api = typeof import("@opentelemetry/api")
let otel: Api | null = null
if (withOtel) {
  const { registerOtel, stdoutExporter, otlpExporter } = await import("../otel-setup.ts")
  registerOtel(otlpAt >= 0 ? otlpExporter(flags[otlpAt + 1]!) : stdoutExporter)
  otel = await import("@opentelemetry/api")
}
const topic = await Topic.open(topicName!)

/** What a handler saw of its caller's trace. */
function seen(traceparent: string | undefined) {
  const active = otel?.trace.getActiveSpan()?.spanContext()
  // with --otel a PRODUCER span, child of the handler's; without, the context passed on by hand
  topic.publish({ type: "seen", data: traceparent ?? "none", ...(otel || !traceparent ? {} : { traceparent }) })
  return {
    traceparent: traceparent ?? null,
    activeTraceId: active?.traceId ?? null,
    activeSpanId: active?.spanId ?? null,
    loadedOtel: Object.keys(require.cache).some((k) => k.includes("@opentelemetry")),
  }
}

const api = {
  /** Without OpenTelemetry an RPC function reads its caller's context through withCall. */
  called: withCall(async (call) => seen(call.traceparent)),
  /** Throws: its caller's span and the handler's say so. */
  fails() {
    throw new RangeError("out of stock")
  },
  async whoami() {
    await Bun.sleep(1) // the context survives an await
    return seen(undefined)
  },
}

const handler = async (req: SlotRequest) => {
  await Bun.sleep(1)
  const status = /^\/status\/(\d{3})$/.exec(req.path)
  if (status) return new Response("as asked", { status: Number(status[1]) })
  const [header, stateHeader] = [req.headers.get("traceparent"), req.headers.get("tracestate")]
  return Response.json({ ...seen(req.traceparent), kind: req.kind, header, tracestate: req.tracestate, stateHeader })
}

const remote = natsAt >= 0 ? { remote: (await import("../../../src/nats/index.ts")).nats(flags[natsAt + 1]!) } : {}
const worker = await SlotWorker.expose(bus!, api, { handler, waitForHubMs: 10_000, ...remote })
console.log("ready")
process.on("SIGTERM", async () => {
  await worker.close()
  await topic.close()
  process.exit(0)
})
