// What both fronts of `slotbus bench soak --production` share (prod-front.ts on Bun, prod-front-node.ts on Node):
// the name's elastic pool with recycling, SIGHUP reloads it, SIGTERM stops the server, the pool and the bus.
import { type SlotBus, superviseWorkers } from "../../src/index.ts"

/** The front's arguments after <name> <port>: <witness file> <min> <max> <worker command as JSON>. */
export function frontPool(bus: SlotBus, [witness, min, max, command]: string[], stopServer: () => void) {
  if (!witness || !min || !max || !command)
    throw new Error("usage: <front> <name> <port> <witness> <min> <max> <worker command as JSON>")
  const pool = superviseWorkers(bus, {
    command: [...(JSON.parse(command) as string[]), bus.name, witness],
    instances: { min: Number(min), max: Number(max) },
    idleTimeoutMs: 3_000,
    recycle: { maxRequests: 3_000, maxAgeMs: 45_000 },
  })
  process.on("SIGHUP", () => {
    pool.reload().catch((e: Error) => console.error(`reload failed: ${e.name}: ${e.message}`))
  })
  process.on("SIGTERM", async () => {
    stopServer()
    await pool.stop()
    await bus.close()
    process.exit(0)
  })
}
