// A stdio bus (slotbus/stdio) that leaves without stop(), under Bun (as it is) and Node 26 (built by
// test/support/runtime/peers.ts). Usage: stdio-exit.ts [stubborn]: a pool "w" of two `sleep 600` (workers that never
// read their stdin, so a closed stdin tells them nothing; `stubborn`: that ignore SIGTERM too), then "ready <pid>
// <pid>". Each stdin line is a command: "exit" exits 0 (process.exit), "throw" throws at the top level (an uncaught
// error, exit code 1).
import { createInterface } from "node:readline"
import { StdioBus } from "../../../src/stdio/index.ts"

const worker =
  process.argv[2] === "stubborn"
    ? { command: "/bin/sh", args: ["-c", "trap '' TERM; exec sleep 600"] } // an ignored signal stays so across exec
    : { command: "sleep", args: ["600"] }
const bus = StdioBus.fromConfig({ pools: [{ id: "w", ...worker, instances: 2 }] })
await bus.start()
console.log(
  `ready ${bus
    .stats()
    .pools[0]!.instances.map((i) => i.pid)
    .join(" ")}`,
)
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "exit") process.exit(0)
  if (line === "throw") throw new Error("thrown at the top level, the stdio bus running")
}
