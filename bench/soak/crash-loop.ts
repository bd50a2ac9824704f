// A pool on a worker that throws from a timer 1 s after its start (docs/api.md, "Crash loops"): 2 workers, 8
// callers sending raw requests throughout for 15 s (each waits --pause-ms between its requests, 5 s timeout); prints
// the requests answered and failed, the crash restarts, and the pool's log lines (crash restarts, "crash loop").
// Usage: bun bench/soak/crash-loop.ts [--seconds 15] [--after-ms 1000] [--pause-ms 100]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { SlotBus, superviseWorkers } from "../../src/index.ts"

const { values } = parseArgs({
  options: { seconds: { type: "string" }, "after-ms": { type: "string" }, "pause-ms": { type: "string" } },
})
const seconds = Number(values.seconds ?? 15)
const afterMs = Number(values["after-ms"] ?? 1000)
const pauseMs = Number(values["pause-ms"] ?? 100)
const dir = mkdtempSync(join(tmpdir(), "slotbus-crash-loop-"))
const worker = join(dir, "worker.ts")
writeFileSync(
  worker,
  `import { SlotWorker } from ${JSON.stringify(join(import.meta.dir, "../../src/index.ts"))}
setTimeout(() => { throw new Error("a bug ${afterMs} ms after the start") }, ${afterMs})
await SlotWorker.connect(process.argv[2], (req) => req.body)
`,
)
const bus = await SlotBus.listen(`crashloop-bench-${process.pid}`)
const lines: string[] = []
let pool: ReturnType<typeof superviseWorkers> | undefined
try {
  pool = superviseWorkers(bus, {
    command: [process.execPath, worker, bus.name],
    instances: 2,
    stdout: "ignore",
    log: (l) => lines.push(l),
  })
  await bus.waitForWorkers(2, { timeoutMs: 30_000 })
  let ok = 0
  const failed = new Map<string, number>()
  const end = performance.now() + seconds * 1000
  const caller = async () => {
    while (performance.now() < end) {
      try {
        await bus.request({ body: "x" }, { timeoutMs: 5_000 })
        ok++
      } catch (e) {
        const name = (e as Error).name
        failed.set(name, (failed.get(name) ?? 0) + 1)
      }
      await Bun.sleep(pauseMs)
    }
  }
  await Promise.all(Array.from({ length: 8 }, caller))
  const nFailed = [...failed.values()].reduce((a, b) => a + b, 0)
  console.log(
    `${seconds} s, 8 callers pausing ${pauseMs} ms, 2 workers throwing ${afterMs} ms after their start: ${ok + nFailed} requests, ${nFailed} failed (${((100 * nFailed) / (ok + nFailed)).toFixed(1)}%: ${[...failed].map(([k, v]) => `${k} ${v}`).join(", ") || "none"}), ${pool.restarts} crash restarts, pool ${pool.state}${pool.crashLoop ? " in a crash loop" : ""}`,
  )
  console.log(
    `log lines: ${lines.length} (${lines.filter((l) => l.includes("crashed:")).length} crash restarts, ${lines.filter((l) => l.includes("crash loop")).length} "crash loop")`,
  )
  for (const l of lines) console.log(`  ${l}`)
} finally {
  await pool?.stop({ killGraceMs: 500 })
  await bus.close({ drain: false })
  rmSync(dir, { recursive: true, force: true })
}
