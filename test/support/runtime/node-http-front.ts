// A front for Node 26 serving HTTP, built to JavaScript by test/support/runtime/node.ts.
// Usage: node node-http-front.js <bus-name> [--hono] [--status=tcp|unix:<path>] [--timeout-ms=N]
// Listens as <bus-name> and serves every HTTP request through bus.fetch: on node:http with slotbus's nodeHandler, or
// (--hono) on Hono's Node server, `serve({ fetch: (req) => bus.fetch(req).catch(failureResponse) })`; with --status, its status too
// (serveStatus, on a TCP port or the unix socket given); --timeout-ms: nodeHandler's fetch options' timeoutMs. Prints "listening <http port> <status url or ->"; on stdin,
// "inflight" prints "inflight <requests in flight at the bus>"; "close" stops them all and exits 0.
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"
import { serve } from "@hono/node-server"
// a namespace: a build of this file for the code before nodeHandler still runs its Hono mode
import * as slotbus from "../../../src/index.ts"
import { serveStatus } from "../../../src/status/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: node-http-front.js <bus-name> [--hono] [--status=tcp|unix:<path>]")
const flag = (key: string) => flags.find((f) => f.startsWith(`--${key}=`))?.slice(key.length + 3)
const where = flag("status")
const timeoutMs = flag("timeout-ms")

const bus = await slotbus.SlotBus.listen(name)
const status =
  where === undefined
    ? undefined
    : await serveStatus([bus], where === "tcp" ? { port: 0 } : { unix: where.slice("unix:".length) })
const server = flags.includes("--hono")
  ? serve({ fetch: (req) => bus.fetch(req).catch(slotbus.failureResponse), port: 0, hostname: "127.0.0.1" })
  : createServer(slotbus.nodeHandler(bus, timeoutMs ? { fetch: { timeoutMs: Number(timeoutMs) } } : {})).listen(
      0,
      "127.0.0.1",
    )
await new Promise((r) => server.once("listening", r))
console.log(`listening ${(server.address() as AddressInfo).port} ${status?.url ?? "-"}`)
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "inflight") console.log(`inflight ${bus.stats().workers.reduce((n, w) => n + w.inFlight, 0)}`)
  else if (line === "close") break
}
server.close()
;(server as { closeAllConnections?(): void }).closeAllConnections?.()
await status?.stop()
await bus.close()
process.exit(0)
