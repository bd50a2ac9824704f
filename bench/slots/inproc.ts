// The JavaScript cost of a call by answer size, copied (the default) or copied `into` a buffer the caller reuses:
// hub and worker in this process on one thread, each polling once per event-loop turn, so no wake-up and no
// second CPU enters the figure (what is left is what both sides' code costs per call, the collector included).
// Usage: bun bench/slots/inproc.ts [sizes=64,4096,65536] [ms per measurement=400]
import { SlotBus, SlotWorker } from "../../src/core/index.ts"

const sizes = (process.argv[2] ?? "64,4096,65536").split(",").map(Number)
const ms = Number(process.argv[3] ?? 400)
if (sizes.some((s) => !Number.isInteger(s) || s < 0) || !(ms > 0)) {
  console.error("usage: bun bench/slots/inproc.ts [sizes, e.g. 64,4096,65536] [ms per measurement]")
  process.exit(2)
}
const INPROC = { spinMicros: 0, parkAfterMs: 1000 } // poll once per turn: a spin would only starve the other end
const bus = await SlotBus.listen(`inproc-${process.pid}`, { idle: INPROC, slots: 32, maxBodyBytes: 1 << 20 })
const worker = await SlotWorker.connect(bus.name, (req) => req.body, { idle: INPROC })

/** µs per call (the median of 5 runs of `ms`) and minor page faults per call, `inflight` calls at a time. */
async function measure(body: Uint8Array, inflight: number, into: boolean) {
  const buffers = Array.from({ length: inflight }, () => new Uint8Array(body.length))
  const batch = () => Promise.all(buffers.map((b) => (into ? bus.call(body, { into: b }) : bus.call(body))))
  const runFor = async (ns: number) => {
    let calls = 0
    for (const t = Bun.nanoseconds(); Bun.nanoseconds() - t < ns; calls += inflight) await batch()
    return calls
  }
  await runFor(ms * 1e6) // warm-up
  const runs: { us: number; faults: number }[] = []
  for (let r = 0; r < 5; r++) {
    const f0 = process.resourceUsage().minorPageFault
    const t0 = Bun.nanoseconds()
    const calls = await runFor(ms * 1e6)
    runs.push({
      us: (Bun.nanoseconds() - t0) / calls / 1000,
      faults: (process.resourceUsage().minorPageFault - f0) / calls,
    })
  }
  return runs.sort((a, b) => a.us - b.us)[2]!
}

try {
  await bus.waitForWorkers(1)
  console.log("| size | in flight | copy µs/call | into µs/call | into ÷ copy | faults/call copy, into |")
  console.log("|---:|---:|---:|---:|---:|---|")
  for (const size of sizes) {
    const body = new Uint8Array(size).map((_, i) => i & 0xff)
    for (const inflight of [1, 32]) {
      const copy = await measure(body, inflight, false)
      const into = await measure(body, inflight, true)
      console.log(
        `| ${size} B | ${inflight} | ${copy.us.toFixed(2)} | ${into.us.toFixed(2)} | ${(into.us / copy.us).toFixed(2)}× | ${copy.faults.toFixed(2)}, ${into.faults.toFixed(2)} |`,
      )
    }
  }
} finally {
  await worker.close()
  await bus.close()
}
