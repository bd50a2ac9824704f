// A front serving /metrics on servers of the app's own, for test/status/metrics-gzip.test.ts, under Bun or Node. Usage:
//   <bun|node> gzip-front.ts <bus-name>
// Listens as bus <bus-name> and serves on 127.0.0.1, each text kept for 10 minutes: metricsHandler([bus]) on /metrics
// of the app's server (Bun.serve under Bun, node:http with nodeHandler under Node), serveStatus([bus]) on a port of
// its own, and the same handler as it is on an Express app's `app.all("/metrics", …)` and a plain node:http server's
// `(req, res) => metrics(req, res)` (node:http is Bun's under Bun). The plain server's /counted serves a source whose
// first computation throws and that counts its computations (test_reads_total); its /late calls the handler once
// the client has gone, /late-count says how many such calls settled. Prints
// "ready <app url> <status url> <express url> <node:http url>"; exits on SIGTERM.
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import express from "express"
import { nodeHandler, SlotBus } from "../../../src/index.ts"
import { METRICS, type MetricFamily, metricsHandler, serveStatus } from "../../../src/status/index.ts"

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
  url = await listening(server)
  stop = () => server.close()
}

const app = express()
app.all("/metrics", metrics) // all: a POST is answered 405 by the handler (app.get leaves it to Express's 404)
const onExpress = createServer(app)
const expressUrl = await listening(onExpress)

const counted = { reads: 0 }
const source = {
  [METRICS](): MetricFamily[] {
    counted.reads++
    // a family without samples makes the text's computation throw, as a broken source of one's own would
    const samples = counted.reads === 1 ? (undefined as unknown as []) : [{ labels: {}, value: counted.reads }]
    return [{ name: "test_reads_total", type: "counter", help: "computations of this text", samples }]
  },
}
const countedMetrics = metricsHandler([source], { maxAgeMs: 600_000 })
// /late: the handler called once its client has gone (as after an auth step the scraper did not wait for)
const late = { calls: 0, settled: 0 }
const plain = createServer((req, res) => {
  if (req.url === "/metrics") return metrics(req, res)
  if (req.url === "/counted") return countedMetrics(req, res)
  if (req.url === "/late")
    return void res.once("close", () => {
      late.calls++
      void metrics(req, res).then(() => late.settled++)
    })
  if (req.url === "/late-count") return void res.end(JSON.stringify(late))
  res.writeHead(404).end()
})
const plainUrl = await listening(plain)
console.log(`ready ${url} ${status.url} ${expressUrl} ${plainUrl}`)

function listening(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  )
}

process.once("SIGTERM", async () => {
  stop()
  onExpress.close()
  plain.close()
  await status.stop()
  await bus.close({ drain: false })
  process.exit(0)
})
