// The Node front of `slotbus bench soak --production --runtime node`, as a Node team would write one: node:http
// on a reusePort port, nodeHandler (GETs idempotent) on a shared bus, the name's pool (prod-pool.ts). A request the
// bus cannot answer is failureResponse's JSON, which names the error. Built for Node by production.ts. Prints
// "ready <pid>".
//   node prod-front-node.js <name> <port> <witness file> <min> <max> <worker command as JSON>
import { createServer } from "node:http"
import { nodeHandler, SlotBus } from "../../src/index.ts"
import { frontPool } from "./prod-pool.ts"

const [name, port, ...rest] = process.argv.slice(2)
if (!name || !port) throw new Error("usage: prod-front-node.js <name> <port> <witness> <min> <max> <worker command>")
const bus = await SlotBus.listen(name, { shared: true })
const get = nodeHandler(bus, { fetch: { idempotent: true, timeoutMs: 10_000 } })
const other = nodeHandler(bus, { fetch: { timeoutMs: 10_000 } })
const server = createServer((req, res) => (req.method === "GET" ? get : other)(req, res))
await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: Number(port), reusePort: true }, r))
frontPool(bus, rest, () => server.close())
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
console.log(`ready ${process.pid}`)
