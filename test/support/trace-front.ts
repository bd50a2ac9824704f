// A front for the tracing tests (test/core/trace-conventions.test.ts). Usage:
//   bun trace-front.ts <bus> --otlp <url>
// Registers the real OpenTelemetry SDK with the OTLP/HTTP exporter sending to <url>, listens on the bus and serves
// Bun.serve on a free port with no span written by hand: GET /rpc calls the worker's `whoami` through bus.remote(),
// every other request goes to a worker through bus.fetch. Prints `port <n>` once a worker is connected.
import { SlotBus } from "../../src/index.ts"
import { otlpExporter, registerOtel } from "./otel-setup.ts"

const [name, , url] = process.argv.slice(2)
const unregister = registerOtel(otlpExporter(url!))
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
  await unregister() // the provider's shutdown sends what is left
  await bus.close({ drain: false })
  process.exit(0)
})
