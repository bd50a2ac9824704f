// A topic member that runs under Bun (as it is) and Node 26 (built by test/support/runtime/node.ts), for the tests
// of one topic shared between the two runtimes (issue 67). Usage: topic-peer.js <topic>
// Prints "ready <pid>" once the topic is open. Each stdin line is a command:
//   sub <id> <type filter> [k=v,…]   subscribes (routing keys must equal k=v); prints "ev <id> <type> <k=v,…> <data>"
//                                    per event, read by for await (parked between events)
//   big <id> <idle>                  subscribes to every event with that idle strategy; prints "big <id> <data[0]>
//                                    <length> whole|torn" per event (whole: every 4096th byte and the last equal data[0])
//   pub <type> <data> [k=v,…]        publishes an event with those routing keys
//   flood <type> <n>                 publishes n events, data "0" … "n-1", then prints "flooded <n>"
//   count <id>                       prints "count <id> <received> <lagged>"
//   unsub <id>                       closes subscription <id>
//   busy <ms>                        prints "busy", holds its thread for <ms> in a loop, then prints "idle"
//   close                            closes the topic and exits 0
//   exit                             exits 0 without closing it (process.exit); throw: an uncaught error at the top level
import { createInterface } from "node:readline"
import { type Routing, type Subscription, Topic } from "../../../src/events/index.ts"

const name = process.argv[2]
if (!name) throw new Error("usage: topic-peer.js <topic>")

const routingOf = (s: string | undefined): Routing | undefined =>
  s ? Object.fromEntries(s.split(",").map((kv) => kv.split("=") as [string, string])) : undefined
const textOf = (r: Routing) =>
  Object.entries(r)
    .map(([k, v]) => `${k}=${v}`)
    .join(",") || "-"

const topic = await Topic.open(name)
const subs = new Map<string, Subscription>()
console.log(`ready ${process.pid}`)
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, a, b, c] = line.split(" ")
  if (verb === "sub") {
    const routing = routingOf(c)
    const sub = topic.subscribe({ type: b!, ...(routing && { routing }) }, { queue: 1 << 16 })
    subs.set(a!, sub)
    void (async () => {
      for await (const ev of sub) console.log(`ev ${a} ${ev.type} ${textOf(ev.routing)} ${ev.text()}`)
    })()
    console.log(`subscribed ${a}`)
  } else if (verb === "big") {
    const sub = topic.subscribe({}, { queue: 64, idle: b as "spin" })
    subs.set(a!, sub)
    void (async () => {
      for await (const ev of sub) {
        const d = ev.data as Uint8Array
        let whole = d.length > 0 && d[d.length - 1] === d[0]
        for (let i = 0; whole && i < d.length; i += 4096) whole = d[i] === d[0]
        console.log(`big ${a} ${d[0]} ${d.length} ${whole ? "whole" : "torn"}`)
      }
    })()
    console.log(`subscribed ${a}`)
  } else if (verb === "pub") {
    const routing = routingOf(c)
    topic.publish({ type: a!, data: b ?? "", ...(routing && { routing }) })
  } else if (verb === "flood") {
    for (let i = 0; i < Number(b); i++) topic.publish({ type: a!, data: String(i) })
    console.log(`flooded ${b}`)
  } else if (verb === "busy") {
    console.log("busy")
    const until = Date.now() + Number(a)
    while (Date.now() < until) {}
    console.log("idle")
  } else if (verb === "unsub") subs.get(a!)?.close()
  else if (verb === "count") console.log(`count ${a} ${subs.get(a!)?.received} ${subs.get(a!)?.lagged}`)
  else if (verb === "close") break
  else if (verb === "exit") process.exit(0)
  else if (verb === "throw") throw new Error("thrown at the top level, the topic open")
}
await topic[Symbol.asyncDispose]()
process.exit(0)
