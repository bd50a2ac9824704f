// A process with a topic open through NATS (docs/PROTOCOL.md §11), for test/events/remote and hosts tests.
//   bun topic-member.ts <topic> <nats: URL or JSON options> bridge           a bridge candidate: prints "bridging <pid>"
//                                                                             when it is elected, "stats <json>" each 100 ms
//   bun topic-member.ts <topic> <nats> sub <type filter> [routingKey=value]   a subscriber: "ev <data>" per event,
//                                                                             "count <received> <lagged> <estimates>" each 100 ms
//   bun topic-member.ts <topic> <nats> pub <type> <n>                        publishes n events "<i>" of <type>, paced
// Prints "ready <pid>" once the topic is open (and subscribed).
import { Topic } from "../../src/events/index.ts"

const [name, natsArg, role, ...rest] = process.argv.slice(2)
const nats = natsArg!.startsWith("{") ? (JSON.parse(natsArg!) as Record<string, unknown>) : natsArg!
const topic = await Topic.open(name!, { nats })
const stats = () => topic.bridgeStats()!
let bridging = false
setInterval(() => {
  const s = stats()
  if (s.bridging && !bridging) console.log(`bridging ${process.pid}`)
  bridging = s.bridging
}, 10)
setInterval(() => console.log(`stats ${JSON.stringify(stats())}`), 100)

if (role === "bridge") {
  console.log(`ready ${process.pid}`)
} else if (role === "sub") {
  const routing = Object.fromEntries(rest.slice(1).map((kv) => kv.split("=") as [string, string]))
  const sub = topic.subscribe({ type: rest[0]!, routing }, { queue: 1 << 16 })
  setInterval(() => console.log(`count ${sub.received} ${sub.lagged} ${sub.estimates}`), 100)
  console.log(`ready ${process.pid}`)
  for await (const ev of sub) console.log(`ev ${ev.text()}`)
} else if (role === "pub") {
  console.log(`ready ${process.pid}`)
  const n = Number(rest[1])
  for (let i = 0; i < n; i++) {
    topic.publish({ type: rest[0]!, data: String(i) })
    if (i % 50 === 49) await Bun.sleep(1)
  }
  console.log("published")
} else throw new Error(`unknown role ${role}`)
