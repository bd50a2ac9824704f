// An Express 5 front with Node workers: Express answers its own routes, POST /report/:id goes over shared memory
// to two supervised worker processes (worker.mjs). GET /metrics for Prometheus, SIGHUP reloads the workers with
// the code now on disk, SIGTERM (or Ctrl-C) closes without dropping a request.
//   npm install slotbus express && node front.mjs        PORT (3000), APP_NAME (the bus's name)
import http from "node:http"
import { fileURLToPath } from "node:url"
import express from "express"
import { closeGracefully, instrument, nodeHandler, SlotBus, superviseWorkers } from "slotbus"
import { metricsHandler } from "slotbus/status"
/** @typedef {import("node:net").AddressInfo} AddressInfo */ // server.address() once listening on a port

const NAME = process.env.APP_NAME ?? "express-reports"
const bus = await SlotBus.listen(NAME)
const pool = superviseWorkers(bus, {
  command: [process.execPath, fileURLToPath(new URL("worker.mjs", import.meta.url)), NAME],
  instances: 2,
})
await bus.waitForWorkers(2, { timeoutMs: 30_000 })

const app = express()
// the heavy route goes to a worker, which reads the body itself: mount it before any body parser
app.post("/report/:id", nodeHandler(bus))
// the front's own routes
app.get("/hello/:name", (req, res) => res.json({ hello: req.params.name, pid: process.pid }))
app.post("/echo", express.json(), (req, res) => res.json(req.body))
app.get("/health", (_req, res) => res.json({ workers: bus.workers.map((w) => w.pid) }))
// one text a second at most, however often it is scraped; keep it off the public internet
app.get("/metrics", metricsHandler([bus]))

// instrument(): http_server_request_duration_seconds for every request, labelled with Express's route
const server = http.createServer(instrument(app))
server.listen(Number(process.env.PORT ?? 3000), () =>
  console.log(`express front listening on http://localhost:${/** @type {AddressInfo} */ (server.address()).port}/`),
)

// a deploy: put the new worker.mjs on disk, then kill -HUP <pid> (systemctl reload): nothing is dropped
process.on("SIGHUP", () => {
  console.log("reloading the workers")
  pool.reload().then(
    () => console.log(`reloaded: workers ${pool.instances.map((i) => i.pid).join(", ")}`),
    (e) => console.error(`reload failed: ${e.message}`), // the old workers keep serving
  )
})
for (const sig of ["SIGTERM", "SIGINT"])
  process.once(sig, async () => {
    await closeGracefully(server, { pool, bus }) // requests in flight finish, keep-alive clients are told to go
    process.exit(0)
  })
