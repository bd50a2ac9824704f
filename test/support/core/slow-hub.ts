// A hub whose event loop is busy right after it starts listening, so connections wait for their hello. Usage:
//   bun test/support/core/slow-hub.ts <bus-name> <block-ms>
// Prints "listening", blocks its event loop for <block-ms>, prints "unblocked", then serves raw calls by
// echoing them reversed and prints "join <pid>" / "leave <pid>" as workers come and go.
import { SlotBus } from "../../../src/index.ts"

const [name, blockArg] = process.argv.slice(2)
if (!name) throw new Error("usage: slow-hub.ts <bus-name> <block-ms>")
const bus = await SlotBus.listen(name, { timeoutMs: 5000 })
bus.onWorker((e) => console.log(`${e.type} ${e.worker.pid}`))
console.log("listening")
const until = performance.now() + Number(blockArg ?? 1000)
while (performance.now() < until) {} // like a hub busy with something else: nothing is accepted meanwhile
console.log("unblocked")
process.stdin // keep the process up until killed
setInterval(() => {}, 1 << 30)
