// `bun bench/stdio/reload.ts [reloads] [callers]`: a stdio bus of 2 echo workers under `callers` callers that
// each keep one request in flight, reloaded `reloads` times in a row; prints the requests, failures, restarts and
// how long each reload took (a successor is ready once it answered a ping; the old one drains, then SIGTERM).
import { join } from "node:path"
import { StdioBus } from "../../src/stdio/index.ts"

const reloads = Number(process.argv[2] ?? 10)
const callers = Number(process.argv[3] ?? 8)
const worker = join(import.meta.dir, "echo-worker.ts")
const bus = StdioBus.fromConfig({ pools: [{ id: "echo", command: process.execPath, args: [worker], instances: 2 }] })
await bus.start()
let running = true
let sent = 0
let failed = 0
const loops = Array.from({ length: callers }, async () => {
  while (running) {
    const n = ++sent
    const r = await bus.request("echo", { n }).catch(() => null)
    if ((r as { n?: number } | null)?.n !== n) failed++
  }
})
await Bun.sleep(300)
const ms: number[] = []
for (let i = 0; i < reloads; i++) {
  const t = performance.now()
  await bus.reload()
  ms.push(performance.now() - t)
}
running = false
await Promise.all(loops)
ms.sort((a, b) => a - b)
const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(0)
console.log(
  `${reloads} reloads of 2 workers under ${callers} callers: ${sent} requests, ${failed} failed or wrong, ` +
    `${bus.stats().restarts} restarts; one reload took ${at(0.5)} ms (median), ${at(1)} ms (max)`,
)
await bus.stop()
