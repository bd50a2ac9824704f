// A worker that blocks its event loop (test/core/hub/evict-recovered.test.ts), under Bun or Node
// (test/support/runtime/peers.ts). Usage: blocking-worker.ts <bus-name>. /block?until=<file>: prints "blocking
// <file>", then spins (nothing else runs) until the file exists, and answers "unblocked"; anything else answers its
// pid. Prints "ready" once connected, "closed <reason>" when its hub closed it.
import { existsSync } from "node:fs"
import { SlotWorker, type SlotRequest } from "../../../src/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: blocking-worker.ts <bus-name>")

function handler(req: SlotRequest) {
  const url = new URL(req.path, "http://w")
  if (url.pathname !== "/block") return String(process.pid)
  const file = url.searchParams.get("until")!
  console.log(`blocking ${file}`)
  while (!existsSync(file)); // a handler that blocks the loop, as a long synchronous computation does
  return "unblocked"
}

const worker = await SlotWorker.connect(name, handler)
console.log("ready")
console.log(`closed ${(await worker.closed).reason}`)
process.exit(0)
