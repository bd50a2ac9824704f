// One side of an RPC call between runtimes (issue 67), the same file under Bun and Node (built for Node by node.ts).
// Usage: rpc-peer <bus-name> worker — exposes rpc-values.ts's peerApi, prints "ready"; ends on SIGTERM.
//        rpc-peer <bus-name> front  — listens, prints "listening", waits for one worker, runs crossAll against it,
//                                     prints each line, then "done", and exits.
import { SlotBus, SlotWorker } from "../../../src/index.ts"
import { crossAll, type PeerApi, peerApi } from "./rpc-values.ts"

const [name, role] = process.argv.slice(2)
if (!name || (role !== "worker" && role !== "front")) throw new Error("usage: rpc-peer <bus-name> worker|front")

if (role === "worker") {
  const worker = await SlotWorker.expose(name, peerApi)
  process.on("SIGTERM", () => void worker.close())
  console.log("ready")
  await worker.closed
  process.exit(0)
} else {
  const bus = await SlotBus.listen(name)
  console.log("listening")
  await bus.waitForWorkers(1, { timeoutMs: 60_000 })
  for (const line of await crossAll(bus.remote<PeerApi>())) console.log(line)
  console.log("done")
  await bus.close({ drain: false })
  process.exit(0)
}
