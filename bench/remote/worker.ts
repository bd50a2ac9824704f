// The remote bench's worker, one process per method: `bun bench/remote/worker.ts <mode> <bus-or-subject> [nats-url]`.
// Every mode answers a request with its body. Prints "ready" (http: "ready <port>") once it serves.
import { SlotWorker } from "../../src/index.ts"
import { nats } from "../../src/nats/index.ts"

const [mode, name, url] = process.argv.slice(2)
const echo = (req: { body: Uint8Array }) => req.body.slice()
if (mode === "shm") await SlotWorker.connect(name!, echo)
else if (mode === "nats") await SlotWorker.connect(name!, echo, { remote: nats(url!) })
else if (mode === "nats.js") {
  const { connect } = await import("@nats-io/transport-node")
  const nc = await connect({ servers: url! })
  nc.subscribe(name!, { callback: (err, msg) => void (err || msg.respond(msg.data)) })
  await nc.flush()
} else if (mode === "http") {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: async (req) => new Response(await req.bytes()) })
  console.log(`ready ${server.port}`)
} else throw new Error("usage: worker.ts <shm|nats|nats.js|http> <name> [nats-url]")
if (mode !== "http") console.log("ready")
