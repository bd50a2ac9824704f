// A SlotWorker that connects to whatever hub listens as argv[2] and reports on stdout:
//   "tick N" every 10 timer ticks while it waits (its event loop is running), then one line:
//   "connected", or "rejected <ErrorClass>: <message>".
import { SlotWorker } from "../../../src/index.ts"

let ticks = 0
const timer = setInterval(() => {
  if (++ticks % 10 === 0) console.log(`tick ${ticks}`)
}, 10)
try {
  const worker = await SlotWorker.connect(process.argv[2]!, () => "")
  console.log("connected")
  await worker.close({ timeoutMs: 100 })
} catch (e) {
  console.log(`rejected ${(e as Error).constructor.name}: ${(e as Error).message}`)
}
clearInterval(timer)
