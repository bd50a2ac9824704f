// A front for test/core/endpoint/late-write.test.ts: Bun.serve handing every request to `bus.fetch` on the bus it listens on,
// whose workers the test starts. Prints "ready <port> <pid>"; exits on SIGTERM.
//   bun late-front.ts <bus-name>
import { SlotBus } from "../../../src/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: late-front.ts <bus-name>")
const bus = await SlotBus.listen(name)
const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => bus.fetch(req) })
console.log(`ready ${server.port} ${process.pid}`)
process.on("SIGTERM", async () => {
  server.stop(true)
  await bus.close({ drain: false })
  process.exit(0)
})
