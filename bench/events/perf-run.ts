// The throughput phase of `slotbus bench events` (slotbus adaptive batch), long enough to profile: spawns
// <subs> bench/events/peer.ts subscribers, writes "<publisher pid> <subscriber pids…>" to <pidfile>, waits
// 1 s, publishes as cli.ts does (monoNs() + publish, a setImmediate every 1024) for <seconds>, and prints
// what each subscriber got.
//   bun bench/events/perf-run.ts <subs> <seconds> <pidfile> [spin|adaptive|park] [await]
// "await" sends as cli.ts's measure() does: `await send(i)` per event.
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { spawn } from "../lib/child.ts"
import { monoNs as now } from "../lib/clock.ts"

const [subs = 1, seconds = 4] = process.argv.slice(2, 4).map(Number)
const pidfile = process.argv[4] ?? "/tmp/events-run.pids"
const idle = process.argv[5] ?? "adaptive"
const awaitEach = process.argv[6] === "await"
const name = `prof-${process.pid}`
const topic = await Topic.open(name, { capacity: 1 << 24 })
const ctl = await Topic.open(`${name}-ctl`, { capacity: 1 << 16 })
const peers = Array.from({ length: subs }, () =>
  spawn([process.execPath, join(import.meta.dir, "peer.ts"), "topic", name, idle, "batch"]),
)
let lineNo = 0
for (const p of peers) await p.line(0, 30_000)
lineNo = 1
await Bun.write(pidfile, [process.pid, ...peers.map((p) => p.proc.pid)].join(" ") + "\n")
ctl.publish({ type: "end" }) // the (empty) latency phase
for (const p of peers) await p.line(lineNo, 30_000)
lineNo++
await Bun.sleep(1000)

const data = new Uint8Array(64)
const f64 = new Float64Array(data.buffer, 0, 1)
const send = (): void => {
  f64[0] = now()
  topic.publish({ type: "bench", data })
}
const until = now() + seconds * 1e9
let sent = 0
const t0 = now()
while (now() < until) {
  if (awaitEach) for (let i = 0; i < 1024; i++) await send()
  else
    for (let i = 0; i < 1024; i++) {
      f64[0] = now()
      topic.publish({ type: "bench", data })
    }
  sent += 1024
  await new Promise<void>((r) => setImmediate(r))
}
const pubS = (now() - t0) / 1e9
ctl.publish({ type: "end" })
const res = await Promise.all(peers.map((p) => p.line(lineNo, 60_000).then((l) => JSON.parse(l))))
console.log(
  `published ${sent} in ${pubS.toFixed(2)} s = ${(sent / pubS / 1e6).toFixed(2)} M/s (${((pubS * 1e9) / sent).toFixed(0)} ns/event)`,
)
for (const r of res)
  console.log(
    `subscriber: received ${r.count}, lagged ${r.accounted - r.count}, ${(r.count / (r.elapsedNs / 1e9) / 1e6).toFixed(2)} M/s`,
  )
await Promise.all(peers.map((p) => p.kill()))
topic.close()
ctl.close()
