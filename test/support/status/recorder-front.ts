// A front with a pool of two echo workers, for the flight recorder's writer tests (test/status/recorder-*.test.ts).
// Usage: bun test/support/status/recorder-front.ts <name> <requests>
// Listens on <name> (and <name>-b, a second bus of the process: its recorder's warning is not said twice), sends
// <requests> requests to distinct paths (each record its own, on fresh pages), prints "answered <n> pid <pid>",
// and closes everything and exits 0 on SIGTERM.
import { join } from "node:path"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"

const [name, requests] = process.argv.slice(2)
if (!name || !requests) throw new Error("usage: recorder-front.ts <name> <requests>")
const bus = await SlotBus.listen(name)
const second = await SlotBus.listen(`${name}-b`)
const pool = superviseWorkers(bus, {
  command: [process.execPath, join(import.meta.dir, "..", "echo-worker.ts"), name],
  instances: 2,
})
await bus.waitForWorkers(2)
process.once("SIGTERM", async () => {
  await pool.stop()
  await second.close()
  await bus.close({ drain: false })
  process.exit(0)
})
let answered = 0
for (let i = 0; i < Number(requests); i++) if ((await bus.request({ path: `/r-${i}` })).status === 200) answered++
console.log(`answered ${answered} pid ${process.pid}`)
