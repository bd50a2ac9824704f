// A Node front with Bun workers: node:http takes the connections (an Express or Fastify app mounts the same handler),
// two Bun processes do the work over shared memory.
//   PORT=3000 node node-front.mjs        BUN=/path/to/bun picks the Bun (default: bun on PATH)
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"
import { closeGracefully, nodeHandler, SlotBus, superviseWorkers } from "slotbus"
/** @typedef {import("node:net").AddressInfo} AddressInfo */ // server.address() once listening on a port

const NAME = process.env.APP_NAME ?? "bun-workers"
const bus = await SlotBus.listen(NAME)
const pool = superviseWorkers(bus, {
  command: [process.env.BUN ?? "bun", fileURLToPath(new URL("bun-worker.ts", import.meta.url)), NAME],
  instances: 2,
})
const server = createServer(nodeHandler(bus))
server.listen(Number(process.env.PORT ?? 3000), () =>
  console.log(`node front listening on http://localhost:${/** @type {AddressInfo} */ (server.address()).port}/`),
)

for (const sig of ["SIGTERM", "SIGINT"])
  process.once(sig, async () => {
    await closeGracefully(server, { pool, bus }) // requests in flight finish, keep-alive clients are told to go
    process.exit(0)
  })
