// A worker that stalls and holds memory, for test/status/worker-vitals.test.ts. Usage:
//   bun test/support/status/stall-worker.ts <bus-name> [--stall]
// Connects to <bus-name> and echoes raw calls. With --stall it holds ~100 MB of small objects on its heap and
// busy-waits 300 ms every second, so its event loop runs late. Prints "ready" once connected; exits on SIGTERM.
import { SlotWorker } from "../../../src/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: stall-worker.ts <bus-name> [--stall]")
const held: { n: number; s: string }[] = []
if (flags.includes("--stall")) {
  for (let i = 0; i < 2_000_000; i++) held.push({ n: i, s: `item ${i}` })
  setInterval(() => {
    held[0]!.n++ // still in use: JavaScriptCore frees what no later code reads
    const end = performance.now() + 300
    while (performance.now() < end) {}
  }, 1000)
}
const worker = await SlotWorker.connect(name, (req) => req.body, { waitForHubMs: 5000 })
console.log("ready")
process.once("SIGTERM", () => void worker.close().then(() => process.exit(0)))
