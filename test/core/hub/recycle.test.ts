// recycle.maxRequests (issue 64, item 4): a worker at its request limit retires at once and gets a request only
// while no other worker serves, until its successor serves. Before, recycles ran one after another, so with every
// worker at its limit the last waited for the others' successors to start, serving all along: 28 879–30 017
// requests for a limit of 2 000 under load. Now each worker's successor starts when it reaches its limit, beside
// the others'. Real worker processes that take 2 s to start (test/support/echo-worker.ts behind a delay).
import { afterEach, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus, superviseWorkers } from "../../../src/index.ts"
import { startedBy } from "../../support/core/front-child.ts"
import { busName, ECHO_WORKER, until } from "../../support/helpers.ts"

const cleanup: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

test("workers at their request limit together are replaced side by side, each waiting for its own successor only", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-recycle-"))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const entry = join(dir, "slow-start.ts") // a worker loading its code for 2 s
  writeFileSync(entry, `await Bun.sleep(2000)\nawait import(${JSON.stringify(ECHO_WORKER)})\n`)
  const bus = await SlotBus.listen(busName("recycle"))
  cleanup.push(() => bus.close({ drain: false }))
  const served = new Map<number, number>() // by worker pid, at its leave
  bus.onWorker((e) => e.type === "leave" && served.set(e.worker.pid, e.worker.requests))
  const limit = 100
  const sup = superviseWorkers(bus, {
    command: [process.execPath, entry, bus.name],
    instances: 3,
    stdout: "ignore",
    recycle: { maxRequests: limit },
  })
  cleanup.push(() => sup.stop({ killGraceMs: 500 }))
  await bus.waitForWorkers(3, { timeoutMs: 30_000 })
  const first = sup.instances.map((i) => i.pid)
  // the pool's processes when the first successor serves: the 3 old ones and the successors started by then
  const processes: number[] = []
  sup.on("replaced", () => processes.push(startedBy(process.pid).length))
  let on = true
  let failed = 0
  const callers = Array.from({ length: 8 }, async () => {
    while (on)
      await bus.request({ method: "POST", path: "/echo", body: "x" }, { timeoutMs: 30_000 }).catch(() => failed++)
  })
  try {
    await until(() => first.every((pid) => served.has(pid)), "the first three workers replaced and gone", 60_000)
  } finally {
    on = false
    await Promise.all(callers)
  }
  console.log(
    `requests served by the first three workers (limit ${limit}): ${first.map((p) => served.get(p)).join(", ")}`,
  )
  // before: 4 (one successor at a time: the third worker served on through two other starts)
  expect(processes[0]).toBe(6)
  expect(failed).toBe(0)
  expect(sup.restarts).toBe(0)
  expect(sup.replacements.recycle).toBeGreaterThanOrEqual(3)
}, 90_000)
