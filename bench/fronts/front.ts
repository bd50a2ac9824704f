// One front of `slotbus bench fronts`: a Bun.serve({ reusePort: true }) on 127.0.0.1:<port> handing every request
// to bus.fetch on a bus listened to with { shared: true }; with --pool n, superviseWorkers(bus, n workers of
// worker.ts) (the name's pool: the fronts' leader runs it). Prints "ready <pid>" once `workers` workers serve it;
// ends with its stdin (the bench ended or was killed) or on SIGTERM, with its workers.
//   bun bench/fronts/front.ts <name> <port> <workers> [--pool]
import { join } from "node:path"
import { SlotBus, superviseWorkers } from "../../src/index.ts"

const [name, port, workers, pool] = process.argv.slice(2)
if (!name || !port || !workers) throw new Error("usage: front.ts <name> <port> <workers> [--pool]")
// SLOTBUS_FRONTS_IDLE=park|adaptive|spin: the idle strategy of the fronts and workers (default: the library's)
const idle = (process.env.SLOTBUS_FRONTS_IDLE || undefined) as "park" | undefined
const bus = await SlotBus.listen(name, { shared: true, idle })
const sup =
  pool === "--pool"
    ? superviseWorkers(bus, {
        command: [process.execPath, join(import.meta.dir, "worker.ts"), name],
        instances: Number(workers),
        stdout: "ignore",
        stderr: "inherit",
      })
    : null
await bus.waitForWorkers(Number(workers), { timeoutMs: 30_000 })
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  reusePort: true,
  fetch: (req) => bus.fetch(req),
})
console.log(`ready ${process.pid}`)
const stop = async () => {
  server.stop(true)
  await sup?.stop({ killGraceMs: 500 })
  await bus.close({ drain: false })
  process.exit(0)
}
process.on("SIGTERM", () => void stop())
for await (const _ of console) {
}
await stop()
