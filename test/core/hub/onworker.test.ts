// The bus tells of workers joining and leaving as it happens; nobody needs to poll workerCount.
import { afterEach, expect, test } from "bun:test"
import { SlotBus, type WorkerEvent } from "../../../src/index.ts"
import { busName, stopAll, spawnWorker, until } from "../../support/helpers.ts"

afterEach(stopAll)

test("onWorker reports each join and leave with the worker's pid, and stops after unsubscribing", async () => {
  const bus = await SlotBus.listen(busName("onworker"))
  const events: WorkerEvent[] = []
  const later: WorkerEvent[] = []
  const unsubscribe = bus.onWorker((e) => events.push(e))
  bus.onWorker((e) => later.push(e))
  try {
    const a = await spawnWorker(bus.name)
    await until(() => events.length === 1, "the join is told")
    expect(events[0]).toMatchObject({ type: "join", worker: { pid: a.pid, inFlight: 0 } })
    await a.kill()
    await until(() => events.length === 2, "the leave is told")
    expect(events[1]).toMatchObject({ type: "leave", worker: { pid: a.pid } })
    unsubscribe()
    const b = await spawnWorker(bus.name)
    await until(() => later.length === 3, "the other listener hears the third event")
    expect(events.length).toBe(2)
    expect(later.map((e) => `${e.type} ${e.worker.pid}`)).toEqual([`join ${a.pid}`, `leave ${a.pid}`, `join ${b.pid}`])
    await b.kill()
  } finally {
    await bus.close({ drain: false })
  }
})
