// A front supervising test/support/kit/log-worker.ts, for test/kit/worker-logs.test.ts. argv[2] is JSON:
// { worker: [mode, ...args], instances?, logs?, bus? }, or with `command: [fixture, ...args]` another worker of
// test/support, relative to this folder (a slotbus worker of `bus`: ../echo-worker.ts) instead of log-worker.ts. It tells the test over IPC when each worker starts and
// exits ({ start | exit, instance, pid }) and answers "stats" with what its pool's logs counted; SIGTERM stops it.
import { join } from "node:path"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"

const cfg = JSON.parse(process.argv[2]!) as {
  worker?: string[]
  command?: string[]
  instances?: number
  logs?: unknown
  bus?: string
}
const send = (m: unknown) => process.send?.(m)
const bus = cfg.bus ? await SlotBus.listen(cfg.bus) : null
const [fixture, ...args] = cfg.command ?? ["log-worker.ts", ...cfg.worker!]
const sup = superviseWorkers(bus, {
  command: [process.execPath, join(import.meta.dir, fixture!), ...args],
  instances: cfg.instances ?? 1,
  ...(cfg.logs !== undefined && { logs: cfg.logs as never }),
})
sup.on("start", (i) => send({ start: i.pid, instance: i.index }))
sup.on("exit", (i, e) => send({ exit: e.pid, instance: i.index }))
for (const i of sup.instances) send({ start: i.pid, instance: i.index })
process.on("message", (m) => {
  const { lines, dropped, truncated, overBudget } = sup.logs
  if (m === "stats") send({ stats: { lines, dropped, truncated, overBudget } })
})
process.on("SIGTERM", async () => {
  await sup.stop({ killGraceMs: 500 })
  await bus?.close()
  process.disconnect?.()
})
