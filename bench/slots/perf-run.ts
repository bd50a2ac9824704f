// One method of `slotbus bench --sizes 64 --load 2` long enough to profile: starts <load> CPU burners (as the
// bench does), opens the method the bench's way (hub here, worker in a child), writes "<hub pid> <worker pid>"
// to <pidfile>, warms up 1 s, then does 64 B round trips at 1 in flight for <seconds> and prints p50/p99.
//   bun bench/slots/perf-run.ts <slotbus:adaptive|slotbus:spin|slotbus:park|process.send> <seconds> <pidfile> [load=2]
import { spawn } from "../lib/child.ts"
import type { Transport } from "./transport.ts"
import * as sb from "./methods/slotbus.ts"
import * as ps from "./methods/process-send.ts"

const [method = "slotbus:adaptive", secs = "5", pidfile = "/tmp/busy-run.pids", loadArg = "2"] = process.argv.slice(2)
const burners = Array.from({ length: Number(loadArg) }, () => spawn([process.execPath, "-e", "for (;;) {}"]))
let t: Transport
if (method.startsWith("slotbus:")) t = await sb.open(method.slice(8) as "adaptive")
else if (method === "process.send") t = await ps.open()
else throw new Error(`unknown method ${method}`)
// the worker is the newest child of this process that is not a burner
const kids = (await Bun.$`pgrep -P ${process.pid}`.text()).trim().split("\n").map(Number)
const worker = kids.filter((k) => !burners.some((b) => b.pid === k)).at(-1)
await Bun.write(pidfile, `${process.pid} ${worker}\n`)
const body = new Uint8Array(64)
let warmed = 0
const warm = performance.now() + 1000
while (performance.now() < warm) await t.roundTrip(body), warmed++
const lat: number[] = []
const until = performance.now() + Number(secs) * 1000
while (performance.now() < until) {
  const t0 = Bun.nanoseconds()
  await t.roundTrip(body)
  lat.push(Bun.nanoseconds() - t0)
}
lat.sort((a, b) => a - b)
const q = (p: number) => (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! / 1000).toFixed(1)
console.log(
  `${method} · load ${loadArg} · ${lat.length} round trips in ${secs} s · p50 ${q(0.5)} µs · p90 ${q(0.9)} µs · p99 ${q(0.99)} µs · ${warmed + lat.length} round trips with warm-up`,
)
await t.close()
await Promise.all(burners.map((b) => b.kill()))
