// One front of a shared name behind Bun.serve, for test/status/front-metrics.test.ts. Usage:
//   bun test/support/status/metrics-front.ts <bus-name>
// Listens with { shared: true } and runs superviseWorkers(bus, 2 echo workers) (the name's pool: only the fronts'
// leader runs it); Bun.serve answers "/item/:id" with bus.fetch(req, { route: "/item/:id" }) and every other path
// with bus.fetch(req) (no route known). Serves its status (GET /metrics) on a free port and prints
// "ready <http url> <status url> <front index>", then "workers <pid,pid>" once both workers serve it. Exits on
// SIGTERM.
import { join } from "node:path"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"
import { serveStatus } from "../../../src/status/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: metrics-front.ts <bus-name>")
const bus = await SlotBus.listen(name, { shared: true })
const pool = superviseWorkers(bus, {
  command: [process.execPath, join(import.meta.dir, "..", "echo-worker.ts"), name, "--wait-for-hub-ms=5000"],
  instances: 2,
  stdout: "ignore",
})
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  routes: { "/item/:id": (req) => bus.fetch(req, { route: "/item/:id" }) },
  fetch: (req) => bus.fetch(req),
})
const status = await serveStatus([bus], { port: 0 })
console.log(`ready ${server.url.href.replace(/\/$/, "")} ${status.url} ${bus.front?.index}`)

process.once("SIGTERM", async () => {
  await status.stop()
  server.stop(true)
  await pool.stop({ killGraceMs: 500 })
  await bus.close({ drain: false })
  process.exit(0)
})
await bus.waitForWorkers(2, 30_000)
console.log(`workers ${bus.workers.map((w) => w.pid).join(",")}`)
