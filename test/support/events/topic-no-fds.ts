// A topic member with no fd left: it opens topic argv[2], takes every fd its open-file limit allows (the test runs
// it under `ulimit -n`), subscribes, gives the fds back and prints what the subscribe threw, as JSON.
import { closeSync, openSync } from "node:fs"
import { SlotBusError } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"

const topic = await Topic.open(process.argv[2]!)
const held: number[] = []
try {
  for (;;) held.push(openSync("/dev/null", "r"))
} catch {}
let out: Record<string, unknown> = { threw: false }
try {
  topic.subscribe().close()
} catch (e) {
  const err = e as Error & { errno?: unknown; code?: unknown }
  out = { threw: true, name: err.name, slotbus: e instanceof SlotBusError, errno: err.errno, code: err.code }
  out.message = err.message
}
for (const fd of held) closeSync(fd)
topic.close()
console.log(JSON.stringify(out))
