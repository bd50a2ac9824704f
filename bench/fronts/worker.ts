// A worker of `slotbus bench fronts`: answers every request with 1 KiB after SLOTBUS_FRONTS_WORK_US µs of CPU (the
// work a handler does; the bench's --work-us, default 0). Serves every front of the name.
//   bun bench/fronts/worker.ts <name>
import { SlotWorker } from "../../src/index.ts"

const [name] = process.argv.slice(2)
if (!name) throw new Error("usage: worker.ts <name>")
const workUs = Number(process.env.SLOTBUS_FRONTS_WORK_US ?? 0)
const page = "x".repeat(1024)
const worker = await SlotWorker.connect(
  name,
  () => {
    const end = performance.now() + workUs / 1000
    while (performance.now() < end) {}
    return { headers: { "content-type": "text/plain" }, body: page }
  },
  { waitForHubMs: 10_000, idle: (process.env.SLOTBUS_FRONTS_IDLE || undefined) as "park" | undefined },
)
process.on("SIGTERM", () => void worker.close())
await worker.closed
process.exit(0)
