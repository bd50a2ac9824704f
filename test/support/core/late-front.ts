// A front for test/core/endpoint/late-write.test.ts: Bun.serve handing every request to `bus.fetch` on the bus it listens on,
// whose workers the test starts; /text?chars=N is a string of N characters answered late through respond(), as an RPC
// page is. Prints "ready <port> <pid>"; exits on SIGTERM.
//   bun late-front.ts <bus-name>
import { respond, SlotBus } from "../../../src/index.ts"
import { textPage } from "../helpers.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: late-front.ts <bus-name>")
const bus = await SlotBus.listen(name)
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch(req) {
    const url = new URL(req.url)
    if (url.pathname !== "/text") return bus.fetch(req)
    const asked = bus.request({ path: "/", headers: { "x-delay-ms": req.headers.get("x-delay-ms") ?? "0" } })
    return respond(asked.then(() => textPage(Number(url.searchParams.get("chars")))))
  },
})
console.log(`ready ${server.port} ${process.pid}`)
process.on("SIGTERM", async () => {
  server.stop(true)
  await bus.close({ drain: false })
  process.exit(0)
})
