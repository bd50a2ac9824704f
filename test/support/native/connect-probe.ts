// Tries once to connect a SlotWorker to the hub named argv[2] (no waiting for it) and prints what happened:
// "connected", or "error <name>: <message>". For test/native/hosts.test.ts: from host B, a hub of host A's
// must be out of reach (its socket file is in another socket directory, docs/PROTOCOL.md §1.1).
import { SlotWorker } from "../../../src/index.ts"

const name = process.argv[2]
if (!name) throw new Error("usage: connect-probe.ts <bus-name>")
try {
  const w = await SlotWorker.connect(name, () => "hi", { waitForHubMs: 0 })
  console.log("connected")
  await w.close()
} catch (e) {
  const err = e as Error
  console.log(`error ${err.name}: ${err.message}`)
}
