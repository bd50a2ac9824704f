// A front for the tracing tests (test/core/probe/trace-conventions.test.ts). Usage:
//   bun trace-front.ts <bus> --otlp <url>
// Registers the real OpenTelemetry SDK with the README's lines (a BatchSpanProcessor and the OTLP/HTTP exporter,
// sending to <url>), listens on the bus and serves Bun.serve on a free port with no span written by hand: GET /rpc
// calls the worker's `whoami` through bus.remote(), every other request goes to a worker through bus.fetch.
// Prints `port <n>` once a worker is connected.
import { context, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { SlotBus } from "../../../src/index.ts"

const [name, , url] = process.argv.slice(2)
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 200 })],
})
trace.setGlobalTracerProvider(provider)
const bus = await SlotBus.listen(name!)
await bus.waitForWorkers(1, { timeoutMs: 15_000 })
const api = bus.remote<{ whoami(): unknown }>()
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: async (req) => (new URL(req.url).pathname === "/rpc" ? Response.json(await api.whoami()) : bus.fetch(req)),
})
console.log(`port ${server.port}`)
process.on("SIGTERM", async () => {
  await server.stop(true)
  await provider.shutdown() // sends what is left
  await bus.close({ drain: false })
  process.exit(0)
})
