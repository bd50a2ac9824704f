// A front of `slotbus bench soak --production`, as a team would write one: Bun.serve({ reusePort: true }) and
// bus.fetch on a shared bus (GETs idempotent), the name's elastic pool with recycling; SIGHUP reloads it, SIGTERM
// drains and stops. A request the bus cannot answer is failureResponse's JSON, which names the error (the Node
// front, prod-front-node.ts, answers the same). Prints "ready <pid>".
//   bun bench/soak/prod-front.ts <name> <port> <witness file> <min> <max> <worker command as JSON>
import { failureResponse, SlotBus, superviseWorkers } from "../../src/index.ts"

const [name, port, witness, min, max, command] = process.argv.slice(2)
if (!name || !port || !witness || !min || !max || !command)
  throw new Error("usage: prod-front.ts <name> <port> <witness file> <min> <max> <worker command as JSON>")
const bus = await SlotBus.listen(name, { shared: true })
const pool = superviseWorkers(bus, {
  command: [...(JSON.parse(command) as string[]), name, witness],
  instances: { min: Number(min), max: Number(max) },
  idleTimeoutMs: 3_000,
  recycle: { maxRequests: 3_000, maxAgeMs: 45_000 },
})
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  reusePort: true,
  fetch: (req) => bus.fetch(req, { idempotent: req.method === "GET", timeoutMs: 10_000 }),
  error: failureResponse,
})
process.on("SIGHUP", () => {
  pool.reload().catch((e: Error) => console.error(`reload failed: ${e.name}: ${e.message}`))
})
process.on("SIGTERM", async () => {
  server.stop()
  await pool.stop()
  await bus.close()
  process.exit(0)
})
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
console.log(`ready ${process.pid}`)
