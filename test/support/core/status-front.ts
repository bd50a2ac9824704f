// A front in instrument() answering whatever status a path asks for, as an app passing on an upstream's statuses
// does, for test/core/observe/client-labels.test.ts, under Bun or Node. Usage:
//   <bun|node> status-front.ts
// Serves on 127.0.0.1 /status/:code (that status, no body), /ok (200) and /metrics (metricsHandler, every scrape
// computed): Bun.serve's routes in instrument() under Bun, an Express app in instrument() on node:http under Node.
// Prints "ready <url>" once listening; exits on SIGTERM.
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import express from "express"
import { instrument } from "../../../src/index.ts"
import { metricsHandler } from "../../../src/status/index.ts"

const metrics = metricsHandler([], { maxAgeMs: 0 })
let url: string
let stop: () => void
if (process.versions.bun) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    routes: instrument({
      "/status/:code": (req: Request & { params: { code: string } }) =>
        new Response(null, { status: Number(req.params.code) }),
      "/ok": () => new Response("ok"),
      "/metrics": metrics,
    }),
  })
  url = `http://127.0.0.1:${server.port}`
  stop = () => server.stop(true)
} else {
  const app = express()
  app.all("/status/:code", (req, res) => void res.status(Number(req.params.code)).end())
  app.get("/ok", (_req, res) => void res.send("ok"))
  app.get("/metrics", metrics)
  const server = createServer(instrument(app))
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  stop = () => server.close()
}
console.log(`ready ${url}`)

process.once("SIGTERM", () => {
  stop()
  process.exit(0)
})
