// A process with a topic open through NATS (docs/PROTOCOL.md §11), for test/events/remote and hosts tests.
//   bun topic-member.ts <topic> <nats: URL or JSON options> bridge           a bridge candidate: prints "bridging <pid>"
//                                                                             when it is elected, "stats <json>" each 100 ms
//   bun topic-member.ts <topic> <nats> sub <type filter> [routingKey=value]   a subscriber: "ev <data>" per event,
//                                                                             "count <received> <lagged> <estimates>" each 100 ms;
//                                                                             for an event with a trace context also
//                                                                             "trace <data> <traceparent> <tracestate or -> <routing json>"
//   bun topic-member.ts <topic> <nats> pub <type> <n>                        publishes n events "<i>" of <type>, paced
//   bun topic-member.ts <topic> <nats> dpub <n>       the topic durable (§11.6): publishes n events "p<i>" of type t,
//                                                    exits once its bridge sent them all (it must be the host's bridge)
//   bun topic-member.ts <topic> <nats> dbridge        as bridge, with the topic durable (§11.6)
//   bun topic-member.ts <topic> <nats> dsub <from>    the topic durable: a stream subscriber from <from> (an id,
//                                                    "oldest" or "now"), "ev <id> <data>" per event
//   bun topic-member.ts <topic> - lpub <type> <n> <prefix> <per ms> [first]   the topic without nats (never a
//                                                    bridge): publishes n events "<prefix><i>", i from first (0),
//                                                    <per ms> each ms
//   bun topic-member.ts <topic> - lsub <type filter>  the topic without nats: "ev <data>" per event, and "count …";
//                                                    "keeper <pid>" whenever the keeper pid in its stats changes
//   bun topic-member.ts <topic> - lsquat <ms>       another uid's loop: Topic.open(timeoutMs 200) again and again
//                                                    for <ms>, closing each handle that is not the keeper; prints
//                                                    "keeper <pid>" when one is (and holds it), then
//                                                    "squat <json>": how many opens, how each failed
// Prints "ready <pid>" once the topic is open (and subscribed).
import { Topic } from "../../../src/events/index.ts"
import { nats } from "../../../src/nats/index.ts"

const [name, natsArg, role, ...rest] = process.argv.slice(2)
const local = role === "lpub" || role === "lsub" || role === "lsquat"
if (role === "lsquat") await squat(Number(rest[0]))
const server = natsArg!.startsWith("{") ? (JSON.parse(natsArg!) as Record<string, unknown>) : natsArg!
const topic = await Topic.open(name!, {
  ...(local ? {} : { remote: nats(server) }),
  durable: role === "dpub" || role === "dsub" || role === "dbridge",
  ...(process.env.TOPIC_CAPACITY ? { capacity: Number(process.env.TOPIC_CAPACITY) } : {}),
})
const stats = () => topic.bridgeStats()!
let bridging = false
if (!local) {
  setInterval(() => {
    const s = stats()
    if (s.bridging && !bridging) console.log(`bridging ${process.pid}`)
    bridging = s.bridging
  }, 10)
  setInterval(() => console.log(`stats ${JSON.stringify(stats())}`), 100)
}

if (role === "lpub") {
  console.log(`ready ${process.pid}`)
  const [type, n, prefix, per, first] = [rest[0]!, Number(rest[1]), rest[2]!, Number(rest[3]), Number(rest[4] ?? 0)]
  for (let i = first; i < first + n; i++) {
    topic.publish({ type, data: `${prefix}${i}` })
    if (i % per === per - 1) await Bun.sleep(1)
  }
  console.log("published")
  await new Promise(() => {}) // until killed: the ring stays for the bridges
} else if (role === "lsub") {
  const sub = topic.subscribe({ type: rest[0]! }, { queue: 1 << 16 })
  let keeper = -1
  setInterval(() => {
    console.log(`count ${sub.received} ${sub.lagged} ${sub.estimates}`)
    const k = topic.stats().keeperPid
    if (k !== keeper) console.log(`keeper ${(keeper = k)}`)
  }, 100)
  console.log(`ready ${process.pid}`)
  for await (const ev of sub) console.log(`ev ${ev.text()}`)
} else if (role === "bridge" || role === "dbridge") {
  console.log(`ready ${process.pid}`)
} else if (role === "sub") {
  const routing = Object.fromEntries(rest.slice(1).map((kv) => kv.split("=") as [string, string]))
  const sub = topic.subscribe({ type: rest[0]!, routing }, { queue: 1 << 16 })
  setInterval(() => console.log(`count ${sub.received} ${sub.lagged} ${sub.estimates}`), 100)
  console.log(`ready ${process.pid}`)
  for await (const ev of sub) {
    console.log(`ev ${ev.text()}`)
    if (ev.traceparent !== undefined)
      console.log(`trace ${ev.text()} ${ev.traceparent} ${ev.tracestate ?? "-"} ${JSON.stringify(ev.routing)}`)
  }
} else if (role === "pub") {
  console.log(`ready ${process.pid}`)
  const n = Number(rest[1])
  for (let i = 0; i < n; i++) {
    topic.publish({ type: rest[0]!, data: String(i) })
    if (i % 50 === 49) await Bun.sleep(1)
  }
  console.log("published")
} else if (role === "dpub") {
  const n = Number(rest[0])
  for (let i = 0; i < n; i++) topic.publish({ type: "t", data: `p${i}` })
  while (stats().sent < n) await Bun.sleep(5)
  await topic[Symbol.asyncDispose]()
  process.exit(0)
} else if (role === "dsub") {
  const from = /^\d+$/.test(rest[0]!) ? Number(rest[0]) : (rest[0] as "oldest" | "now")
  const sub = await topic.subscribeDurable({}, { from })
  console.log(`ready ${process.pid}`)
  for await (const ev of sub) console.log(`ev ${ev.id} ${ev.text()}`)
} else throw new Error(`unknown role ${role}`)

async function squat(ms: number): Promise<never> {
  const end = Date.now() + ms
  let n = 0
  const failed: Record<string, number> = {}
  let held: Topic | undefined
  while (Date.now() < end) {
    if (!held) {
      n++
      try {
        const t = await Topic.open(name!, { timeoutMs: 200 })
        if (t.isKeeper) console.log(`keeper ${process.pid}`), (held = t)
        else t.close()
      } catch (e) {
        const why = (e as Error).name
        failed[why] = (failed[why] ?? 0) + 1
      }
    }
    await Bun.sleep(1)
  }
  console.log(`squat ${JSON.stringify({ n, failed, took: held !== undefined })}`)
  held?.close()
  process.exit(0)
}
