// A worker that holds more than its connection, for test/core/worker/worker-lifetime.test.ts: a timer, a topic
// subscription (slotbus/events) and a claimed lease (slotbus/leases), as an app's worker does. Usage:
//   bun test/support/core/holding-worker.ts <bus-name> [--exit-with-front=true|false]
// Echoes raw bodies. Prints "ready <pid>" once it holds all three and serves, "closed <reason>" when its worker
// closes; it never exits by itself.
import { SlotWorker } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"
import { Contest } from "../../../src/leases/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: holding-worker.ts <bus-name> [--exit-with-front=true|false]")
const exitFlag = flags.find((f) => f.startsWith("--exit-with-front="))?.slice(18)

setInterval(() => {}, 1000)
const topic = await Topic.open(`${name}-topic`)
const sub = topic.subscribe({})
void (async () => {
  for await (const _ of sub) {
  }
})()
const contest = await Contest.open(`${name}-lease`)
await contest.claim({ kind: 7, label: `worker-${process.pid}` }, { owner: `worker-${process.pid}` })
const worker = await SlotWorker.connect(name, (req) => req.body, {
  waitForHubMs: 5000,
  ...(exitFlag === undefined ? {} : { exitWithFront: exitFlag === "true" }),
})
console.log(`ready ${process.pid}`)
void worker.closed.then((c) => console.log(`closed ${c.reason}`))
