// A subscription referenced only by the reader awaiting it (`consume(topic.subscribe(filter))`), under Bun (as it
// is) or Node 26 (built by test/support/runtime/node.ts). Usage: topic-awaited.js <topic> <idle>
// Collects garbage in turns of their own, publishes 3 events with collections between them, and prints
// "received <events the reader got> live <subscribers in the registry>" (leaving its loop closed the subscription: it
// leaves the registry once its wake socket's read is cancelled, a turn or two later under Node).
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import type { IdleStrategy } from "../../../src/index.ts"
import { Topic, type Subscription } from "../../../src/events/index.ts"

const [name, idle] = process.argv.slice(2)
if (!name || !idle) throw new Error("usage: topic-awaited.js <topic> <idle>")
const gc = (): void => {
  if (typeof Bun !== "undefined") return Bun.gc(true)
  setFlagsFromString("--expose-gc")
  ;(runInNewContext("gc") as () => void)()
}
const turn = (ms: number) => new Promise((r) => setTimeout(r, ms))

const topic = await Topic.open(name)
let received = 0
async function consume(sub: Subscription) {
  for await (const _ of sub) if (++received === 3) return
}
const consumed = consume(topic.subscribe({ type: "*" }, { idle: idle as IdleStrategy }))
for (let round = 0; round < 3; round++) {
  for (let i = 0; i < 5; i++) {
    await turn(20)
    gc()
  }
  topic.publish({ type: "tick", data: String(round) })
}
let timer: ReturnType<typeof setTimeout> | undefined
await Promise.race([consumed, new Promise((r) => (timer = setTimeout(r, 5000)))])
clearTimeout(timer)
for (let i = 0; i < 100 && topic.stats().subscribers.length > 0; i++) await turn(10)
console.log(`received ${received} live ${topic.stats().subscribers.length}`)
topic.close()
