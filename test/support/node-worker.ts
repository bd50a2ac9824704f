// A worker for Node 26 (node:ffi), built to JavaScript by test/runtime/node-worker.test.ts (`bun build --target=node`:
// Node strips types but not parameter properties). Usage: node node-worker.js <bus-name>
// Echoes a raw request's body; "?pid" answers the process id. Prints "ready" once connected, "closed <reason>" at the end.
import { SlotWorker } from "../../src/index.ts"

const name = process.argv[2]
if (!name) throw new Error("usage: node-worker.js <bus-name>")
const worker = await SlotWorker.connect(name, (req) =>
  req.kind === "raw" && req.text() === "?pid" ? String(process.pid) : req.body,
)
process.on("SIGTERM", () => void worker.close())
console.log("ready")
const closed = await worker.closed
console.log(`closed ${closed.reason}`)
process.exit(0)
