// A worker for Node 26 (node:ffi), built to JavaScript by test/support/node.ts (Node strips types but not the
// parameter properties src/ uses). Usage: node node-worker.js <bus-name>
// Echoes a raw request's body; "?pid" answers the process id; "?hold" never answers (a request in flight to kill
// the process under). Prints "ready" once connected, "closed <reason>" at the end.
import { SlotWorker } from "../../src/index.ts"

const name = process.argv[2]
if (!name) throw new Error("usage: node-worker.js <bus-name>")
const worker = await SlotWorker.connect(name, (req) => {
  const text = req.body.length === 5 ? req.text() : ""
  if (text === "?hold") return new Promise<never>(() => {})
  return text === "?pid " ? String(process.pid) : req.body
})
process.on("SIGTERM", () => void worker.close())
console.log(`ready ${process.versions.node}`)
const closed = await worker.closed
console.log(`closed ${closed.reason}`)
process.exit(0)
