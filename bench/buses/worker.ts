// The echo worker of `slotbus bench buses`, under Bun or (built to JavaScript, bench/lib/node.ts) Node:
// `worker.ts <bus name>`; prints "ready" once connected, echoes every request's body, ends when the hub closes.
import { SlotWorker } from "../../src/index.ts"

const worker = await SlotWorker.connect(process.argv[2]!, (req) => req.body, { waitForHubMs: 10_000 })
console.log("ready")
await worker.closed
process.exit(0)
