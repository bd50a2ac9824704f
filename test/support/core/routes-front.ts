// A front handing 10 routes to its bus, for test/core/observe/client-labels.test.ts, under Bun or Node. Usage:
//   <bun|node> routes-front.ts <bus-name>
// Listens as bus <bus-name> and serves on 127.0.0.1 /b0/:id … /b9/:id through bus.fetch, each with its pattern as
// `route` (docs/api.md's pattern), and /metrics (metricsHandler, every scrape computed): Bun.serve's routes under
// Bun, node:http under Node. Prints "ready <url>" once listening (the test starts the worker); exits on SIGTERM.
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { nodeHandler, SlotBus } from "../../../src/index.ts"
import { metricsHandler } from "../../../src/status/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: routes-front.ts <bus-name>")
const bus = await SlotBus.listen(name)
const metrics = metricsHandler([bus], { maxAgeMs: 0 })
const ROUTES = Array.from({ length: 10 }, (_, i) => `/b${i}/:id`)
let url: string
let stop: () => void
if (process.versions.bun) {
  const routes: Record<string, (req: Request) => Promise<Response>> = { "/metrics": metrics }
  for (const route of ROUTES) routes[route] = (req) => bus.fetch(req, { route })
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, routes })
  url = `http://127.0.0.1:${server.port}`
  stop = () => server.stop(true)
} else {
  const served = nodeHandler({ fetch: metrics })
  const byRoute = new Map(
    ROUTES.map((route) => [route.slice(0, route.indexOf("/", 1)), nodeHandler(bus, { fetch: { route } })]),
  )
  const server = createServer((req, res) => {
    const path = req.url ?? "/"
    if (path === "/metrics") return served(req, res)
    const handler = byRoute.get(path.slice(0, path.indexOf("/", 1)))
    if (handler) return handler(req, res)
    res.statusCode = 404
    res.end()
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  stop = () => server.close()
}
console.log(`ready ${url}`)

process.once("SIGTERM", async () => {
  stop()
  await bus.close({ drain: false })
  process.exit(0)
})
