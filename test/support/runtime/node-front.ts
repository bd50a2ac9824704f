// A front for Node 26 (node:ffi), built to JavaScript by test/support/runtime/node.ts. Usage:
//   node node-front.js <bus-name> [nats-url]      with a URL, it takes workers over NATS too (remote: nats(url))
// Listens as <bus-name>, prints "listening" and "join <pid>" / "leave <pid>" as workers come and go; for each line
// on stdin: "call <id> <text>" sends <text> and prints "answer <id> <text back>" or "failed <id> <error name>" when
// it settles (calls overlap); "workers" prints "workers <pid>:<requests in flight>,…"; "close" closes the bus and exits.
// SLOTBUS_TEST_IDLE: the bus's idle strategy; SLOTBUS_TEST_SLOTS: its slots.
import { createInterface } from "node:readline"
import { type IdleStrategy, SlotBus } from "../../../src/index.ts"
import { busVerb } from "./bus-verbs.ts"
import { nats } from "../../../src/nats/index.ts"

const [name, url] = process.argv.slice(2)
if (!name) throw new Error("usage: node-front.js <bus-name> [nats-url]")
const idle = process.env.SLOTBUS_TEST_IDLE as IdleStrategy | undefined
const slots = process.env.SLOTBUS_TEST_SLOTS ? Number(process.env.SLOTBUS_TEST_SLOTS) : undefined
const bus = await SlotBus.listen(name, url ? { remote: nats(url), heartbeatMs: 100, idle, slots } : { idle, slots })
bus.onWorker((e) => console.log(`${e.type} ${e.worker.pid}`))
console.log("listening")
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, ...rest] = line.split(" ")
  if (busVerb(bus, verb, rest)) continue
  if (verb === "close") break
}
await bus.close()
process.exit(0)
