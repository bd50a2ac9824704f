// A hub process for the crash tests, meant to be killed with SIGKILL. Usage:
//   bun test/support/core/crash-hub.ts <bus-name> [--flood]
// Prints "listening <pid>", waits for a worker, sends it 16 raw calls and prints "served <n> <worker-pid>"
// once all came back reversed. With --flood it then keeps 8 calls in flight until it is killed.
import { SlotBus } from "../../../src/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: crash-hub.ts <bus-name> [--flood]")

const bus = await SlotBus.listen(name, { timeoutMs: 10_000 })
console.log(`listening ${process.pid}`)
await bus.waitForWorkers(1, 30_000)

const decoder = new TextDecoder()
const calls = Array.from({ length: 16 }, (_, i) =>
  bus.call(`ping-${i}`).then((b) => decoder.decode(b) === `ping-${i}`.split("").reverse().join("")),
)
const ok = (await Promise.all(calls)).filter(Boolean).length
console.log(`served ${ok} ${bus.workers[0]?.pid ?? 0}`)

if (flags.includes("--flood")) {
  const lane = async () => {
    for (let i = 0; ; i++) await bus.call(`flood-${i}`).catch(() => Bun.sleep(5))
  }
  for (let i = 0; i < 8; i++) void lane()
}
setInterval(() => {}, 1 << 30) // stay up until killed
