// A front for Node 26 serving HTTP on node:http, built to JavaScript by test/support/runtime/node.ts.
// Usage: node node-http-front.js <bus-name> [--status=tcp|unix:<path>] [--timeout-ms=N] [--metrics-max-age-ms=N]
//   [--max-head-bytes=N] [--max-body-bytes=N]
// Listens as <bus-name> (with those limits) and serves every HTTP request through bus.fetch with slotbus's nodeHandler (--timeout-ms:
// its fetch options' timeoutMs); with --status, its status too (serveStatus, on a TCP port or the unix socket
// given; --metrics-max-age-ms: its metricsMaxAgeMs). Driven over stdin as front-loop.ts says.
import { createServer } from "node:http"
import { nodeHandler, SlotBus } from "../../../src/index.ts"
import { serveStatus } from "../../../src/status/index.ts"
import { runFront } from "./front-loop.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: node-http-front.js <bus-name> [--status=tcp|unix:<path>] [--timeout-ms=N]")
const flag = (key: string) => flags.find((f) => f.startsWith(`--${key}=`))?.slice(key.length + 3)
const where = flag("status")
const timeoutMs = flag("timeout-ms")
const maxAge = flag("metrics-max-age-ms")
const metricsMaxAgeMs = maxAge === undefined ? {} : { metricsMaxAgeMs: Number(maxAge) }

const limits = Object.fromEntries(
  (["maxHeadBytes", "maxBodyBytes"] as const).flatMap((k) => {
    const v = flag(k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))
    return v === undefined ? [] : [[k, Number(v)]]
  }),
)
const bus = await SlotBus.listen(name, limits)
const status =
  where === undefined
    ? undefined
    : await serveStatus(
        [bus],
        where === "tcp" ? { port: 0, ...metricsMaxAgeMs } : { unix: where.slice("unix:".length), ...metricsMaxAgeMs },
      )
const handler = nodeHandler(bus, timeoutMs ? { fetch: { timeoutMs: Number(timeoutMs) } } : {})
await runFront(bus, createServer(handler).listen(0, "127.0.0.1"), status)
