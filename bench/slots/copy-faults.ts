// Mid-size answers in copy mode against borrow: µs per round trip and the hub's minor page faults per round
// trip, one request in flight (docs/perf/mid-size.md). Run it under different allocator settings to compare:
//   bun bench/slots/copy-faults.ts 65536 call 2500
//   MIMALLOC_PURGE_DELAY=-1 bun bench/slots/copy-faults.ts 65536 call 2500
import { SlotBus } from "../../src/index.ts"
import { spawn } from "../lib/child.ts"

const [sizeArg = "65536", mode = "call", msArg = "2500"] = process.argv.slice(2)
const size = Number(sizeArg)
const ms = Number(msArg)
if (!Number.isInteger(size) || size < 1 || !["call", "borrow"].includes(mode) || !(ms > 0)) {
  console.error("usage: bun bench/slots/copy-faults.ts <bytes> call|borrow <ms>")
  process.exit(2)
}
const name = `copy-faults-${process.pid}`
const bus = await SlotBus.listen(name, { idle: "adaptive", slots: 32 })
const worker = spawn([process.execPath, `${import.meta.dir}/methods/slotbus.ts`, name, "adaptive"])
try {
  await worker.whileAlive(bus.waitForWorkers(1, 10_000), "the echo worker")
  const body = new Uint8Array(size).fill(7)
  const t0 = performance.now()
  const r0 = process.resourceUsage()
  let n = 0
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 100; i++) {
      if (mode === "borrow") (await bus.call(body, { borrow: true })).release()
      else await bus.call(body)
    }
    n += 100
  }
  const r1 = process.resourceUsage()
  const us = (((performance.now() - t0) * 1000) / n).toFixed(2)
  const faults = ((r1.minorPageFault - r0.minorPageFault) / n).toFixed(2)
  console.log(`${mode} ${size} B: ${n} round trips, ${us} µs each, ${faults} minor page faults each (hub)`)
} finally {
  await worker.kill()
  await bus.close({ drain: false })
}
