// Reads events and batches after their subscription went away, in its own process (a read of freed memory
// would crash it). Prints one JSON line: what the stale views read.
//   closed    the subscription was closed: the batch's views read empty, the received event (a copy) reads as received
//   dropped   the subscription was dropped (no close) and garbage-collected: the batch kept it alive, it reads as received
import { Topic } from "../../../src/events/index.ts"

const mode = process.argv[2]
const t = await Topic.open(`stale-${process.pid}`)
const kept = await (async () => {
  const sub = t.subscribe()
  t.publish({ type: "x", data: "hello" })
  t.publish({ type: "y", data: "again" })
  const ev = (await sub.receive(1000))!
  const batch = sub.poll()
  if (mode === "closed") sub.close()
  return { ev, batch }
})()
for (let i = 0; i < 5; i++) {
  Bun.gc(true)
  await Bun.sleep(10)
}
const out = {
  event: kept.ev.text(),
  batch: [...kept.batch].map((e) => e.text()),
  subscribers: t.stats().subscribers.length,
}
process.stdout.write(JSON.stringify(out) + "\n")
t.close()
