// A front that serves /metrics on its own server, for test/status/app-metrics.test.ts. Usage:
//   bun test/support/status/app-front.ts <bus-name> <port> [--shared]
// Listens as bus <bus-name> (--shared: one of several fronts of the name) with a pool of one echo worker (on a
// shared name only the leader's runs), and serves Bun.serve on 127.0.0.1:<port> (reusePort) with instrument()ed routes
// /metrics (metricsHandler), /items/:id (bus.fetch), /hello (answered here) and /work (answered here after ~2 ms of
// CPU). Prints "ready <pid> <front index or -1>" once a worker joined; exits on SIGTERM.
import { join } from "node:path"
import { instrument, SlotBus, superviseWorkers } from "../../../src/index.ts"
import { metricsHandler } from "../../../src/status/index.ts"

const [name, port, ...flags] = process.argv.slice(2)
if (!name || !port) throw new Error("usage: app-front.ts <bus-name> <port> [--shared]")
const shared = flags.includes("--shared")
const bus = await SlotBus.listen(name, { shared })
const pool = superviseWorkers(bus, {
  command: [process.execPath, join(import.meta.dir, "..", "echo-worker.ts"), name, "--wait-for-hub-ms=5000"],
  instances: 1,
  stdout: "ignore",
})
const spin = (ms: number) => {
  const end = performance.now() + ms
  while (performance.now() < end);
}
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  reusePort: true,
  routes: instrument({
    "/metrics": metricsHandler([bus]),
    "/items/:id": (req) => bus.fetch(req, { route: "/items/:id" }),
    "/hello": () => new Response("hello"),
    "/work": () => {
      spin(2)
      return new Response("done")
    },
  }),
})
await bus.waitForWorkers(1, { timeoutMs: 20_000 })
console.log(`ready ${process.pid} ${bus.front?.index ?? -1}`)

process.once("SIGTERM", async () => {
  server.stop(true)
  await pool.stop()
  await bus.close({ drain: false })
  process.exit(0)
})
