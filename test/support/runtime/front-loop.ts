// The part the HTTP fronts for Node share (node-http-front.ts, node-hono-front.ts): once `server` listens, prints
// "listening <http port> <status url or ->"; on stdin, "inflight" prints "inflight <requests in flight at the bus>",
// "close" stops the server, the status server and the bus and exits 0.
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"
import type { SlotBus } from "../../../src/index.ts"

export async function runFront(bus: SlotBus, server: Server, status?: { url: string; stop(): Promise<void> }) {
  if (!server.listening) await new Promise((r) => server.once("listening", r))
  console.log(`listening ${(server.address() as AddressInfo).port} ${status?.url ?? "-"}`)
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "inflight") console.log(`inflight ${bus.stats().workers.reduce((n, w) => n + w.inFlight, 0)}`)
    else if (line === "close") break
  }
  server.close()
  server.closeAllConnections()
  await status?.stop()
  await bus.close()
  process.exit(0)
}
