// A front that stops on SIGTERM with closeGracefully, for test/runtime/graceful.test.ts: Bun.serve (under Bun) or
// node:http with nodeHandler (under Bun or, built by node.ts, under Node), over a pool of two echo workers; `own`:
// node:http answering itself, as an app's own routes do (no nodeHandler between), the bus still served; `head`:
// node:http with nodeHandler(bus), whose GETs take the head way. `timeout-ms`: closeGracefully's timeoutMs.
// Usage: graceful-front <bus-name> <bun|node|own|head> <bun binary> <echo-worker.ts> [timeout-ms]
// Prints "ready <port>"; on SIGTERM, "closed <ms>" (from its last answer to the end of closeGracefully), then exits 0.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { closeGracefully, nodeHandler, SlotBus, superviseWorkers } from "../../../src/index.ts"

const [name, kind, bun, worker, timeoutMs] = process.argv.slice(2)
if (!name || !worker || !["bun", "node", "own", "head"].includes(kind!))
  throw new Error("usage: graceful-front <bus-name> <bun|node|own|head> <bun binary> <echo-worker.ts> [timeout-ms]")

const bus = await SlotBus.listen(name)
const pool = superviseWorkers(bus, { command: [bun!, worker, name, "--delay-ms=2"], instances: 2, stdout: "ignore" })
await bus.waitForWorkers(2, { timeoutMs: 30_000 })
let last = 0
const answer = (req: Request) =>
  bus.fetch(req).then((r) => {
    last = performance.now()
    return r
  })
let server: Parameters<typeof closeGracefully>[0]
if (kind === "bun") {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: answer })
  server = s
  console.log(`ready ${s.port}`)
} else {
  const own = (_req: IncomingMessage, res: ServerResponse) => {
    last = performance.now()
    res.end("own")
  }
  const s = createServer(kind === "own" ? own : kind === "head" ? nodeHandler(bus) : nodeHandler({ fetch: answer }))
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r))
  server = s
  console.log(`ready ${(s.address() as AddressInfo).port}`)
}
process.once("SIGTERM", async () => {
  await closeGracefully(server, { pool, bus, timeoutMs: timeoutMs === undefined ? undefined : Number(timeoutMs) })
  console.log(`closed ${Math.round(performance.now() - last)}`)
  process.exit(0)
})
