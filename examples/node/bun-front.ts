// A Bun front with Node workers: Bun.serve takes the connections, two Node processes do the work over shared memory
// (the way in for a Node code base: its handlers move into node-worker.mjs unchanged, under Node).
//   PORT=3000 bun bun-front.ts           NODE=/path/to/node picks the Node (default: node on PATH)
import { join } from "node:path"
import { closeGracefully, failureResponse, SlotBus, superviseWorkers } from "slotbus"

const NAME = process.env.APP_NAME ?? "node-workers"
const bus = await SlotBus.listen(NAME)
const pool = superviseWorkers(bus, {
  command: [process.env.NODE ?? "node", join(import.meta.dir, "node-worker.mjs"), NAME],
  instances: 2,
})
// error: a failed bus.fetch answered as its status (413, 503, 504 …, JSON), not with Bun's 500 page
const server = Bun.serve({
  port: Number(process.env.PORT ?? 3000),
  fetch: (req) => bus.fetch(req),
  error: failureResponse,
})
console.log(`bun front listening on ${server.url}`)

for (const sig of ["SIGTERM", "SIGINT"] as const)
  process.once(sig, async () => {
    await closeGracefully(server, { pool, bus }) // requests in flight finish, keep-alive clients are told to go
    process.exit(0)
  })
