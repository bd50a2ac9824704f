// A front of `slotbus bench soak --production`, as a team would write one: Bun.serve({ reusePort: true }) and
// bus.fetch on a shared bus, the name's elastic pool with recycling, SIGHUP reloads it, SIGTERM drains and stops.
// A request the bus cannot answer is a 502 whose x-error header names the error. Prints "ready <pid>".
//   bun bench/soak/prod-front.ts <name> <port> <witness file> <min> <max>
import { join } from "node:path"
import { SlotBus, superviseWorkers } from "../../src/index.ts"

const [name, port, witness, min, max] = process.argv.slice(2)
if (!name || !port || !witness || !min || !max)
  throw new Error("usage: prod-front.ts <name> <port> <witness file> <min> <max>")
const bus = await SlotBus.listen(name, { shared: true })
const pool = superviseWorkers(bus, {
  command: [process.execPath, join(import.meta.dir, "prod-worker.ts"), name, witness],
  instances: { min: Number(min), max: Number(max) },
  idleTimeoutMs: 3_000,
  recycle: { maxRequests: 3_000, maxAgeMs: 45_000 },
})
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  reusePort: true,
  fetch: async (req) => {
    try {
      return await bus.fetch(req, { idempotent: req.method === "GET", timeoutMs: 10_000 })
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e))
      return new Response(error.message, { status: 502, headers: { "x-error": error.name } })
    }
  },
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
