// A process with a topic open, for the TopicRemote conformance suite (test/conformance/topic-remote.test.ts). Usage:
//   conformance-topic.ts <topic> <transport> <address> bridge          the topic through the transport
//   conformance-topic.ts <topic> <transport> <address> sub <filter>    the same, and a subscriber
//   conformance-topic.ts <topic> - - lsub <filter>                     a subscriber, the topic local
// A subscriber prints "ev <data>" per event and "count <received> <lagged>" every 50 ms; with a transport it prints
// "stats <json>" (its bridge's stats) every 50 ms. Each stdin line "pub <type> <data>" publishes an event.
// Prints "ready <pid>" once the topic is open (and subscribed). Runs under Bun and Node (test/support/runtime/peers.ts).
import { createInterface } from "node:readline"
import { Topic } from "../../../src/events/index.ts"
import { remoteNamed } from "../../conformance/remotes.ts"

const [name, transport, address, role, filter] = process.argv.slice(2)
if (!name || !role) throw new Error("usage: conformance-topic.ts <topic> <transport|-> <address|-> <role> [filter]")
const topic = await Topic.open(name, transport === "-" ? {} : { remote: remoteNamed(transport!, address!) })
if (transport !== "-") setInterval(() => console.log(`stats ${JSON.stringify(topic.bridgeStats())}`), 50)
void (async () => {
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, type, data] = line.split(" ")
    if (cmd === "pub") topic.publish({ type: type!, data: data ?? "" })
  }
})()
if (role === "sub" || role === "lsub") {
  const sub = topic.subscribe({ type: filter! }, { queue: 1 << 16 })
  setInterval(() => console.log(`count ${sub.received} ${sub.lagged}`), 50)
  console.log(`ready ${process.pid}`)
  for await (const ev of sub) console.log(`ev ${ev.text()}`)
} else console.log(`ready ${process.pid}`)
