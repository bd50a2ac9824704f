// A front of `slotbus bench soak --production`, as a team would write one: Bun.serve({ reusePort: true }) and
// bus.fetch on a shared bus (GETs idempotent), the name's pool (prod-pool.ts). A request the bus cannot answer is
// failureResponse's JSON, which names the error (the Node front, prod-front-node.ts, answers the same). Prints
// "ready <pid>".
//   bun bench/soak/prod-front.ts <name> <port> <witness file> <min> <max> <worker command as JSON>
import { failureResponse, SlotBus } from "../../src/index.ts"
import { frontPool } from "./prod-pool.ts"

const [name, port, ...rest] = process.argv.slice(2)
if (!name || !port) throw new Error("usage: prod-front.ts <name> <port> <witness> <min> <max> <worker command as JSON>")
const bus = await SlotBus.listen(name, { shared: true })
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  reusePort: true,
  fetch: (req) => bus.fetch(req, { idempotent: req.method === "GET", timeoutMs: 10_000 }),
  error: failureResponse,
})
frontPool(bus, rest, () => server.stop())
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
console.log(`ready ${process.pid}`)
