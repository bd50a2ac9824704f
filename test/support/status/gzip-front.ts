// A front serving /metrics twice, for test/status/metrics-gzip.test.ts, under Bun or Node. Usage:
//   <bun|node> gzip-front.ts <bus-name>
// Listens as bus <bus-name> and serves on 127.0.0.1 metricsHandler([bus]) on /metrics of the app's server (Bun.serve
// under Bun, node:http with nodeHandler under Node) and serveStatus([bus]) on a port of its own, both texts kept for
// 10 minutes. Prints "ready <app url> <status url>"; exits on SIGTERM.
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { nodeHandler, SlotBus } from "../../../src/index.ts"
import { metricsHandler, serveStatus } from "../../../src/status/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: gzip-front.ts <bus-name>")
const bus = await SlotBus.listen(name)
const metrics = metricsHandler([bus], { maxAgeMs: 600_000 })
const status = await serveStatus([bus], { port: 0, metricsMaxAgeMs: 600_000 })
let url: string
let stop: () => void
if (process.versions.bun) {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, routes: { "/metrics": metrics } })
  url = `http://127.0.0.1:${server.port}`
  stop = () => server.stop(true)
} else {
  const served = nodeHandler({ fetch: metrics })
  const server = createServer(served)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  stop = () => server.close()
}
console.log(`ready ${url} ${status.url}`)

process.once("SIGTERM", async () => {
  stop()
  await status.stop()
  await bus.close({ drain: false })
  process.exit(0)
})
