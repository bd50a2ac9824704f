// The example app's worker (two run, supervised by server.ts): squares numbers, caches computed values until
// an invalidation event says otherwise, and contends for the "cleanup" job, which one worker runs at a time.
import { SlotWorker, type SlotRequest } from "slotbus"
import { Topic } from "slotbus/events"
import { Contest, type Lease } from "slotbus/leases"

const name = process.argv[2] ?? "example-app"
const cache = new Map<string, { value: string; computedAt: number }>()
let computed = 0

const topic = await Topic.open(name)
const invalidations = topic.subscribe({ type: "cache.invalidate" })
void (async () => {
  for await (const ev of invalidations) cache.delete(ev.text())
})()

const worker = await SlotWorker.connect(name, async (req: SlotRequest) => {
  const [, route, arg = ""] = req.path.split("/")
  if (route === "square") return { status: 200, body: String(Number(arg) ** 2) }
  if (route === "cache") {
    let hit = cache.get(arg)
    const fresh = !hit
    if (!hit) cache.set(arg, (hit = { value: `${arg} computed by pid ${process.pid}`, computedAt: ++computed }))
    return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ ...hit, fresh }) }
  }
  return { status: 404, body: "no such route" }
})

// The leased singleton job: whoever holds "cleanup" runs it every 100 ms and renews its 1 s lease; if that
// worker dies (even kill -9), the other takes over once the lease has expired.
const contest = await Contest.open(name)
const JOB = { kind: 1, label: "cleanup" }
let lease: Lease | null = null
let runs = 0
const timer = setInterval(() => {
  if (lease?.held) lease.renew(1000)
  else {
    const r = contest.tryClaim(JOB, { owner: `worker-${process.pid}`, ttlMs: 1000 })
    lease = r.claimed ? r.lease : null
  }
  if (!lease) return
  try {
    lease.check() // right before the side effect
  } catch {
    lease = null // lost since (this process was stopped past its TTL): the next tick contends again
    return
  }
  runs++
  topic.publish({ type: "job.ran", data: { pid: process.pid, runs, token: String(lease.token) } })
}, 100)

process.once("SIGTERM", async () => {
  clearInterval(timer)
  lease?.release()
  contest.close()
  invalidations.close()
  topic.close()
  await worker.close()
})
await worker.closed
