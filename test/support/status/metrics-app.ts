// An app with traffic, for test/status/metrics.test.ts. Usage: bun test/support/status/metrics-app.ts <name>
// Runs a SlotBus <name> (metricsRoutes: 4) fed by a superviseWorkers pool of two echo workers, a topic <name> with a
// subscriber that reads nothing and one that reads everything, a contest with one claim; sends requests all along,
// each with its route pattern (most answered, some thrown by the handler, some timed out, some aborted) and
// publishes events. Serves its status
// on a free port and prints "metrics <url>" and "pids <pid> <pid>"; SIGUSR2 reloads the pool (surge-first, one
// process at a time) and prints "reloaded <n>"; stops everything and exits on SIGTERM.
import { join } from "node:path"
import { Topic } from "../../../src/events/index.ts"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"
import { Contest } from "../../../src/leases/index.ts"
import { serveStatus } from "../../../src/status/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: metrics-app.ts <name>")
const bus = await SlotBus.listen(name, { metricsRoutes: 4 })
const pool = superviseWorkers(bus, {
  command: [process.execPath, join(import.meta.dir, "..", "echo-worker.ts"), name],
  instances: 2,
  restart: {
    backoffInitialMs: 10,
  },
})
const topic = await Topic.open(name)
const quiet = topic.subscribe({ type: "order.*" }, { queue: 16 }) // never read: it falls behind
const reader = topic.subscribe({ type: "order.*" })
void (async () => {
  for await (const _ of reader);
})()
const contest = await Contest.open(name)
contest.tryClaim({ kind: 1, label: "nightly-report" }, { owner: "metrics-app", ttlMs: 60_000 })
await bus.waitForWorkers(2)

let stopping = false
let n = 0
const traffic = (async () => {
  while (!stopping) {
    n++
    const sent = [
      bus.request({ path: `/item/${n % 7}`, body: "x" }, { route: "/item/:n" }),
      bus.request({ path: "/describe" }, { route: "/describe" }),
    ]
    const fail = { path: "/fail", headers: { "x-message": `failed on purpose ${n}` } }
    if (n % 5 === 0) sent.push(bus.request(fail, { route: "/fail" }))
    if (n % 7 === 0) sent.push(bus.request({ path: "/slow" }, { timeoutMs: 1, route: "/slow" }))
    if (n % 9 === 0) {
      const caller = new AbortController()
      sent.push(bus.request({ path: "/slow" }, { signal: caller.signal, route: "/slow" }))
      setTimeout(() => caller.abort(), 2) // while a worker holds it (/slow takes 20 ms)
    }
    topic.publish({ type: "order.created", data: { n } })
    await Promise.allSettled(sent)
    await Bun.sleep(20)
  }
})()

const status = await serveStatus([bus, topic, contest], { port: 0, title: `metrics-app ${name}` })
console.log(`metrics ${status.url}`)
console.log(`pids ${pool.instances.map((i) => i.pid).join(" ")}`)

let reloads = 0
process.on("SIGUSR2", async () => {
  await pool.reload()
  console.log(`reloaded ${++reloads}`)
})

process.once("SIGTERM", async () => {
  stopping = true
  await traffic
  await status.stop()
  await pool.stop()
  quiet.close()
  reader.close()
  topic.close()
  contest.close()
  await bus.close({ drain: false })
  process.exit(0)
})
