// The Node front of `slotbus bench soak --production --runtime node`, as a Node team would write one: node:http
// on a reusePort port, nodeHandler (GETs idempotent), a shared bus and the name's elastic pool with recycling;
// SIGHUP reloads it, SIGTERM drains and stops. A request the bus cannot answer is failureResponse's JSON, which
// names the error. Built for Node by production.ts. Prints "ready <pid>".
//   node prod-front-node.js <name> <port> <witness file> <min> <max> <worker command as JSON>
import { createServer } from "node:http"
import { nodeHandler, SlotBus, superviseWorkers } from "../../src/index.ts"

const [name, port, witness, min, max, command] = process.argv.slice(2)
if (!name || !port || !witness || !min || !max || !command)
  throw new Error("usage: prod-front-node.js <name> <port> <witness file> <min> <max> <worker command as JSON>")
const bus = await SlotBus.listen(name, { shared: true })
const pool = superviseWorkers(bus, {
  command: [...(JSON.parse(command) as string[]), name, witness],
  instances: { min: Number(min), max: Number(max) },
  idleTimeoutMs: 3_000,
  recycle: { maxRequests: 3_000, maxAgeMs: 45_000 },
})
const get = nodeHandler(bus, { fetch: { idempotent: true, timeoutMs: 10_000 } })
const other = nodeHandler(bus, { fetch: { timeoutMs: 10_000 } })
const server = createServer((req, res) => (req.method === "GET" ? get : other)(req, res))
await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: Number(port), reusePort: true }, r))
process.on("SIGHUP", () => {
  pool.reload().catch((e: Error) => console.error(`reload failed: ${e.name}: ${e.message}`))
})
process.on("SIGTERM", async () => {
  server.close()
  await pool.stop()
  await bus.close()
  process.exit(0)
})
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
console.log(`ready ${process.pid}`)
