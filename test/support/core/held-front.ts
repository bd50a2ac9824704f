// A front taking uploads for a slow worker, for test/core/hub/held-bodies.test.ts, under Bun or Node. Usage:
//   <bun|node> held-front.ts <bus-name> <maxBodyBytes> <maxHeldBodyBytes or - for the default>
// Listens as bus <bus-name> (2 slots a worker) and serves every request on 127.0.0.1 through bus.fetch: Bun.serve
// with `error: failureResponse` under Bun, node:http with nodeHandler under Node. Prints "ready <url>" once listening
// (the test starts the worker). Reads its memory and the bus's held bytes every 5 ms from then on; on stdin, "mem
// <tag>" prints "mem <tag> <rss at ready> <peak rss> <peak arrayBuffers> <bus.stats().heldBodyBytes> <its peak>"
// (bytes), "close" closes the server and the bus and exits 0.
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"
import { failureResponse, nodeHandler, SlotBus } from "../../../src/index.ts"

const [name, maxBody, maxHeld] = process.argv.slice(2)
if (!name || !maxBody || !maxHeld)
  throw new Error("usage: held-front.ts <bus-name> <maxBodyBytes> <maxHeldBodyBytes|->")
const bus = await SlotBus.listen(name, {
  slots: 2,
  maxBodyBytes: Number(maxBody),
  ...(maxHeld === "-" ? {} : { maxHeldBodyBytes: Number(maxHeld) }),
})
let url: string
let stop: () => void
if (process.versions.bun) {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => bus.fetch(req), error: failureResponse })
  url = `http://127.0.0.1:${server.port}`
  stop = () => server.stop(true)
} else {
  const server = createServer(nodeHandler(bus))
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  stop = () => (server.close(), server.closeAllConnections())
}
const start = process.memoryUsage().rss
let peakRss = start
let peakBuffers = 0
let peakHeld = 0
const sampler = setInterval(() => {
  const m = process.memoryUsage()
  peakRss = Math.max(peakRss, m.rss)
  peakBuffers = Math.max(peakBuffers, m.arrayBuffers)
  peakHeld = Math.max(peakHeld, bus.stats().heldBodyBytes)
}, 5)
console.log(`ready ${url}`)

for await (const line of createInterface({ input: process.stdin })) {
  const mem = /^mem (\S+)$/.exec(line)
  if (mem) console.log(`mem ${mem[1]} ${start} ${peakRss} ${peakBuffers} ${bus.stats().heldBodyBytes} ${peakHeld}`)
  else if (line === "close") break
}
clearInterval(sampler)
stop()
await bus.close({ drain: false })
process.exit(0)
