// A front that leaves its bus without close(), under Bun (as it is) and Node 26 (built by test/support/runtime/node.ts),
// for the test of what that leaves behind. Usage: bus-exit.js <name> [<SlotBus.listen options as JSON>] [<extra>]
// Prints "listening <pid>" once it listens. Each stdin line is a command: "exit" exits 0 (process.exit), "throw" throws
// at the top level (an uncaught error, exit code 1), "close" closes the bus and exits 0. <extra> own-sigterm: a
// SIGTERM listener of its own prints "sigterm" and nothing else (once-sigterm: the same by process.once; once-sigint:
// "sigint", the same for SIGINT, put on after the bus listens); signal-exit: npm's signal-exit prints
// "signal-exit <signal>" from its onExit (as a tool that cleans up on exit does).
import { createInterface } from "node:readline"
import { onExit } from "signal-exit"
import { type ListenOptions, SlotBus } from "../../../src/index.ts"

const [name, options, extra] = process.argv.slice(2)
if (!name)
  throw new Error(
    "usage: bus-exit.js <name> [<options as JSON>] [own-sigterm | once-sigterm | once-sigint | signal-exit]",
  )
if (extra === "own-sigterm") process.on("SIGTERM", () => console.log("sigterm"))
if (extra === "once-sigterm") process.once("SIGTERM", () => console.log("sigterm")) // gone from the list as it runs
if (extra === "signal-exit") onExit((_, signal) => console.log(`signal-exit ${signal}`))
const bus = await SlotBus.listen(name, JSON.parse(options ?? "{}") as ListenOptions)
// after the bus listens (slotbus's listeners are in): as an app's shutdown code often comes last
if (extra === "once-sigint") process.once("SIGINT", () => console.log("sigint"))
console.log(`listening ${process.pid}`)
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "exit") process.exit(0)
  if (line === "throw") throw new Error("thrown at the top level, the bus open")
  if (line === "close") break
}
await bus.close()
process.exit(0)
