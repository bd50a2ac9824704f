// A publisher process for the yielding tests.
//   flood <topic> <type> <seconds>   open the topic, print {"ready":true}, publish 64-byte events of <type> as fast
//                                    as it can for <seconds> (never yielding), then print {"ended": Date.now()} and exit
// The flood ends by itself, so a reader that never yields holds its process only until then: the tests fail
// on counts instead of hanging.
import { Topic } from "../../../src/events/index.ts"

const [mode, name, type, seconds] = process.argv.slice(2)
if (mode !== "flood" || !name || !type || !(Number(seconds) > 0)) {
  process.stderr.write(`peer: usage: flood <topic> <type> <seconds>\n`)
  process.exit(2)
}
const say = (o: object) => process.stdout.write(JSON.stringify(o) + "\n")
const t = await Topic.open(name)
const data = new Uint8Array(64)
say({ ready: true, pid: process.pid })
await Bun.sleep(10) // let the line out before the loop holds the thread
const until = performance.now() + Number(seconds) * 1000
let published = 0
for (;;) {
  data[0] = published & 255
  t.publish({ type, data })
  if ((++published & 4095) === 0 && performance.now() > until) break
}
say({ ended: Date.now(), published })
t.close()
setTimeout(() => process.exit(0), 50)
