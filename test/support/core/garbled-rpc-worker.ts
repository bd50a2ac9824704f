// A worker that answers every request, RPC calls included, with a reply that does not decode: status 720 (an RPC
// result as JSON) and a body that is not JSON. Prints "ready" once connected.
// Usage: bun test/support/core/garbled-rpc-worker.ts <bus>
import { SlotWorker } from "../../../src/index.ts"

const [bus] = process.argv.slice(2)
await SlotWorker.connect(bus!, () => ({ status: 720, body: "{not json" }))
console.log("ready")
