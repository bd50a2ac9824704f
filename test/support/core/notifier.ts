// A front's notifySystemd for test/core/ops/sd-notify.test.ts, in a process of its own (a blocked send would freeze
// the test runner's event loop). Usage: NOTIFY_SOCKET=<addr> bun test/support/core/notifier.ts <state>
// Prints "tick <n>" every 50 ms from a timer, "calling" just before notifySystemd(state), then "settled sent
// <true|false>" or "settled <error class>: <message>".
import { notifySystemd } from "../../../src/index.ts"

const state = process.argv[2] ?? "READY=1"
let n = 0
const timer = setInterval(() => console.log(`tick ${++n}`), 50)
await Bun.sleep(100)
console.log("calling")
try {
  console.log(`settled sent ${await notifySystemd(state)}`)
} catch (e) {
  console.log(`settled ${(e as Error).name}: ${(e as Error).message}`)
}
await Bun.sleep(200) // a tick or more after the settling
clearInterval(timer)
