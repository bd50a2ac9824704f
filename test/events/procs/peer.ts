// A publisher process for the yielding tests.
//   flood <topic> <type> <seconds> [--stop=<file>] [--cpu-of=<pid>]
//     open the topic, print {"ready":true}, publish 64-byte events of <type> as fast as it can (never yielding) for
//     <seconds>, then print {"ended": Date.now()} and exit. With --stop it also ends once <file> exists. With
//     --cpu-of, <seconds> is CPU time process <pid> spends meanwhile (user + system, /proc/<pid>/stat), not wall
//     time: a reader given the same CPU on a loaded machine as on a quiet one (wall time ends after 20 × <seconds>;
//     without /proc, <seconds> is wall time).
// The flood ends by itself, so a reader that never yields holds its process only until then: the tests fail
// on counts instead of hanging.
import { existsSync, readFileSync } from "node:fs"
import { Topic } from "../../../src/events/index.ts"

const [mode, name, type, seconds, ...flags] = process.argv.slice(2)
const flag = (key: string) => flags.find((f) => f.startsWith(`--${key}=`))?.slice(key.length + 3)
const stopFile = flag("stop")
const cpuOf = Number(flag("cpu-of") ?? 0)
if (mode !== "flood" || !name || !type || !(Number(seconds) > 0)) {
  process.stderr.write(`peer: usage: flood <topic> <type> <seconds> [--stop=<file>] [--cpu-of=<pid>]\n`)
  process.exit(2)
}
const say = (o: object) => process.stdout.write(JSON.stringify(o) + "\n")

/** Seconds of CPU process `pid` has used (fields 14 and 15 of its stat, in 100 ticks a second); NaN without /proc. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ") // f[0] is field 3
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return Number.NaN
  }
}

const t = await Topic.open(name)
const data = new Uint8Array(64)
say({ ready: true, pid: process.pid })
await Bun.sleep(10) // let the line out before the loop holds the thread
const cpuEnd = cpuOf ? cpuSeconds(cpuOf) + Number(seconds) : Number.NaN // NaN: wall time (no /proc, as on macOS)
const wallEnd = performance.now() + Number(seconds) * 1000 * (Number.isNaN(cpuEnd) ? 1 : 20)
const over = () =>
  performance.now() > wallEnd ||
  (stopFile !== undefined && existsSync(stopFile)) ||
  (!Number.isNaN(cpuEnd) && cpuSeconds(cpuOf) > cpuEnd)
let published = 0
for (;;) {
  data[0] = published & 255
  t.publish({ type, data })
  if ((++published & 4095) === 0 && over()) break
}
say({ ended: Date.now(), published })
t.close()
setTimeout(() => process.exit(0), 50)
