// A front server as the README's first example writes it: Bun.serve handing every request to `bus.fetch`, with
// test/support/core/stream-worker.ts as its worker. Prints "ready <port> <worker pid>"; its stderr is what an operator
// reads in the server's log.
//   bun fetch-front.ts
import { join } from "node:path"
import { SlotBus } from "../../../src/index.ts"

const bus = await SlotBus.listen(`front-${process.pid}`)
const worker = Bun.spawn([process.execPath, join(import.meta.dir, "stream-worker.ts"), bus.name], {
  stdout: "ignore",
  stderr: "inherit",
})
await bus.waitForWorkers(1, 10_000)
const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => bus.fetch(req) })
console.log(`ready ${server.port} ${worker.pid}`)
process.on("SIGTERM", async () => {
  worker.kill("SIGKILL")
  server.stop(true)
  await bus.close({ drain: false })
  process.exit(0)
})
