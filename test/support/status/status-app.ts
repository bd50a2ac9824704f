// An app serving its status (serveStatus), for test/status. Usage:
//   bun test/support/status/status-app.ts <name> <port:N | unix:/path> [nats-url]
// Runs a SlotBus <name> fed by a superviseWorkers pool of one echo worker, a topic <name> with a subscriber that
// reads nothing (it falls behind), a publisher of 2,000 events, a local contest with one claim; with a NATS URL the bus
// takes workers over NATS, the topic is durable and bridged, and a cluster contest holds one claim too.
// Prints "status <url>" once serving; stops everything and exits on SIGTERM.
import { join } from "node:path"
import { Topic } from "../../../src/events/index.ts"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"
import { type ClusterContest, Contest } from "../../../src/leases/index.ts"
import { type StatusInput, serveStatus } from "../../../src/status/index.ts"
import { nats } from "../../../src/nats/index.ts"

const [name, where, natsUrl] = process.argv.slice(2)
if (!name || !where) throw new Error("usage: status-app.ts <name> <port:N | unix:/path> [nats-url]")
const remote = natsUrl ? nats(natsUrl) : undefined
const bus = await SlotBus.listen(name, remote ? { remote, heartbeatMs: 100 } : {})
const pool = superviseWorkers(bus, { command: [process.execPath, join(import.meta.dir, "..", "echo-worker.ts"), name] })
const topic = await Topic.open(name, remote ? { remote, durable: true } : {})
const quiet = topic.subscribe({ type: "order.*" }, { queue: 16 }) // never read: it falls behind
const contest = await Contest.open(name)
contest.tryClaim({ kind: 1, label: "nightly-report" }, { owner: "status-app", ttlMs: 60_000 })
const sources: StatusInput[] = [bus, topic, contest]
let cluster: ClusterContest | undefined
if (remote) {
  const c = await Contest.open(`${name}-cluster`, { remote }) // a name is local or cluster-wide, never both
  await c.tryClaim({ kind: 1, label: "invoice-run" }, { owner: "status-app", ttlMs: 60_000 })
  sources.push(c)
  cluster = c
}
await bus.waitForWorkers(1)
for (let i = 0; i < 2000; i++) topic.publish({ type: "order.created", data: { i } })
const status = await serveStatus(
  sources,
  where.startsWith("unix:") ? { unix: where.slice(5) } : { port: Number(where.slice(5)), title: `status-app ${name}` },
)
console.log(`status ${status.url}`)

process.once("SIGTERM", async () => {
  await status.stop()
  await pool.stop()
  quiet.close()
  topic.close()
  contest.close()
  await cluster?.close()
  await bus.close({ drain: false })
  process.exit(0)
})
