// A worker that answers every request, RPC calls included, with a reply that does not decode: status 720 (an RPC
// result as JSON) and a body that is not JSON; with --retired, status 721 and bun:jsc's structured clone of 3, as a
// worker of slotbus 0.3 answered add(1, 2) in the encoding PROTOCOL §6.1 retired. Prints "ready" once connected.
// Usage: bun test/support/core/garbled-rpc-worker.ts <bus> [--retired]
import { serialize } from "bun:jsc"
import { SlotWorker } from "../../../src/index.ts"

const [bus, mode] = process.argv.slice(2)
const reply =
  mode === "--retired" ? { status: 721, body: new Uint8Array(serialize(3)) } : { status: 720, body: "{not json" }
await SlotWorker.connect(bus!, () => reply)
console.log("ready")
