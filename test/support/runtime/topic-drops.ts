// Subscriptions dropped unclosed after each waited for an event (parked: its wake socket read), under Bun (as it
// is) or Node 26 (built by test/support/runtime/node.ts). Usage: topic-drops.js <topic> <idle> <n>
// Makes n subscriptions that each wait 20 ms in receive() and are then dropped, collects garbage until none is
// left in the topic's registry or 5 s passed, and prints "live <subscribers left> parked <of them parked>".
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import type { IdleStrategy } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"

const [name, idle, n] = process.argv.slice(2)
if (!name || !idle || !n) throw new Error("usage: topic-drops.js <topic> <idle> <n>")
const gc = (): void => {
  if (typeof Bun !== "undefined") return Bun.gc(true)
  setFlagsFromString("--expose-gc")
  ;(runInNewContext("gc") as () => void)()
}

const topic = await Topic.open(name)
for (let i = 0; i < Number(n); i++) await topic.subscribe({ type: "none" }, { idle: idle as IdleStrategy }).receive(20)
const left = () => topic.stats().subscribers
// each collection in a turn of its own: stats() derefs the topic's weak references to its subscriptions, which
// keeps them alive to the end of that turn (V8 holds to the letter of WeakRef's spec)
for (let i = 0; i < 50 && left().length > 0; i++) {
  await new Promise((r) => setTimeout(r, 100))
  gc()
}
console.log(`live ${left().length} parked ${left().filter((s) => s.parked).length}`)
topic.close()
