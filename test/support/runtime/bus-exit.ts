// A front that leaves its bus without close(), under Bun (as it is) and Node 26 (built by test/support/runtime/node.ts),
// for the test of what that leaves behind. Usage: bus-exit.js <name> [<SlotBus.listen options as JSON>] [own-sigterm]
// Prints "listening <pid>" once it listens. Each stdin line is a command: "exit" exits 0 (process.exit), "throw" throws
// at the top level (an uncaught error, exit code 1), "close" closes the bus and exits 0. With own-sigterm, a SIGTERM
// listener of its own prints "sigterm" and nothing else.
import { createInterface } from "node:readline"
import { type ListenOptions, SlotBus } from "../../../src/index.ts"

const [name, options, own] = process.argv.slice(2)
if (!name) throw new Error("usage: bus-exit.js <name> [<options as JSON>] [own-sigterm]")
if (own === "own-sigterm") process.on("SIGTERM", () => console.log("sigterm"))
const bus = await SlotBus.listen(name, JSON.parse(options ?? "{}") as ListenOptions)
console.log(`listening ${process.pid}`)
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "exit") process.exit(0)
  if (line === "throw") throw new Error("thrown at the top level, the bus open")
  if (line === "close") break
}
await bus.close()
process.exit(0)
