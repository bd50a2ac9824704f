// Syscalls per request of a Bun worker whose every wait is a park on its doorbell (issue 66): a hub and a worker,
// both `idle: "park"`, sequential 64 B bus.call, the worker under `strace -c -f`; the hub's CPU per call too.
// Run it on two trees to compare them (a run of 0 calls gives the baseline to subtract):
//   bun bench/doorbell/bus-park.ts [tree] [calls]
import { readFileSync } from "node:fs"
import { resolve } from "node:path"

const here = resolve(import.meta.dir, "../..")
if (process.argv[2] === "--worker") {
  const { SlotWorker } = await import(`${process.argv[3]}/src/index.ts`)
  const w = await SlotWorker.connect(process.argv[4]!, (req: { body: Uint8Array }) => req.body, { idle: "park" })
  await w.closed
  process.exit(0)
}
const root = resolve(process.argv[2] ?? here)
const calls = Number(process.argv[3] ?? 5000)
const { SlotBus } = await import(`${root}/src/index.ts`)
const name = `bell-park-${process.pid}`
const bus = await SlotBus.listen(name, { idle: "park" })
const log = `/tmp/bell-park-${process.pid}.strace`
const worker = Bun.spawn(["strace", "-c", "-f", "-o", log, process.execPath, import.meta.path, "--worker", root, name])
await bus.waitForWorkers(1, { timeoutMs: 20_000 })
const body = new Uint8Array(64)
for (let i = 0; i < 500; i++) await bus.call(body) // warm-up
const t0 = Bun.nanoseconds()
const r0 = process.resourceUsage()
for (let i = 0; i < calls; i++) await bus.call(body)
const ns = Bun.nanoseconds() - t0
const r1 = process.resourceUsage()
await bus.close({ drain: false })
await Promise.race([worker.exited, Bun.sleep(5000)])
const cpu = r1.userCPUTime + r1.systemCPUTime - r0.userCPUTime - r0.systemCPUTime
const counts = readFileSync(log, "utf8")
const total = Number(/\s(\d+)(?:\s+\d+)?\s+total$/m.exec(counts)?.[1] ?? Number.NaN)
console.log(
  `${root}: ${calls} calls, ${(ns / calls / 1000).toFixed(1)} µs each, hub CPU ${(cpu / calls).toFixed(1)} µs each`,
)
console.log(`worker syscalls (all of its life, warm-up included): ${total}`)
console.log(
  counts
    .split("\n")
    .filter((l) => /epoll|recv|preadv|sendto|write$|read$/.test(l))
    .join("\n"),
)
process.exit(0)
