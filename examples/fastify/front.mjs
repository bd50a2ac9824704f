// A Fastify 5 front with Node workers: Fastify answers its own routes, POST /report/:id goes over shared memory
// to two supervised worker processes (worker.mjs). GET /metrics for Prometheus, SIGHUP reloads the workers with
// the code now on disk, SIGTERM (or Ctrl-C) closes without dropping a request.
//   npm install slotbus fastify && node front.mjs        PORT (3000), HOST (localhost), APP_NAME (the bus's name)
import http from "node:http"
import { fileURLToPath } from "node:url"
import Fastify from "fastify"
import { closeGracefully, httpRoute, instrument, nodeHandler, SlotBus, superviseWorkers } from "slotbus"
import { metricsHandler } from "slotbus/status"
/** @typedef {import("node:net").AddressInfo} AddressInfo */ // server.address() once listening on a port

const NAME = process.env.APP_NAME ?? "fastify-reports"
const bus = await SlotBus.listen(NAME)
const pool = superviseWorkers(bus, {
  command: [process.execPath, fileURLToPath(new URL("worker.mjs", import.meta.url)), NAME],
  instances: 2,
})
await bus.waitForWorkers(2, { timeoutMs: 30_000 })

// instrument(): http_server_request_duration_seconds for every request, labelled with the route the hook names
const app = Fastify({ serverFactory: (handler) => http.createServer(instrument(handler)) })
app.addHook("onRequest", async (req) => void (req.routeOptions.url && httpRoute(req.raw, req.routeOptions.url)))

// the heavy route goes to a worker, which reads the body itself: in this scope Fastify parses no body
const toWorkers = nodeHandler(bus)
await app.register(async (workers) => {
  workers.removeAllContentTypeParsers()
  workers.addContentTypeParser("*", (_req, _body, done) => done(null)) // 3 arguments: the callback form
  workers.post("/report/:id", (req, reply) => {
    reply.hijack() // nodeHandler writes the answer
    toWorkers(req.raw, reply.raw)
  })
})
// the front's own routes
app.get("/hello/:name", async (req) => ({ hello: /** @type {{ name: string }} */ (req.params).name, pid: process.pid }))
app.post("/echo", async (req) => req.body)
app.get("/health", async () => ({ workers: bus.workers.map((w) => w.pid) }))
// one text a second at most, however often it is scraped; keep it off the public internet
const metrics = metricsHandler([bus])
app.route({
  method: ["GET", "HEAD"],
  url: "/metrics",
  exposeHeadRoute: false, // this route answers HEAD itself
  // node:http's (req, res), written by the handler: gzipped for Prometheus, as Express's app.get("/metrics", metrics)
  handler: (req, reply) => {
    reply.hijack()
    return metrics(req.raw, reply.raw)
  },
})

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? "localhost" })
console.log(`fastify front listening on http://localhost:${/** @type {AddressInfo} */ (app.server.address()).port}/`)

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
    await closeGracefully(app.server, { pool, bus }) // requests in flight finish, keep-alive clients are told to go
    process.exit(0)
  })
