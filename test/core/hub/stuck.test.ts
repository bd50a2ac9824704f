// A handler that never settles: its slot counts as stuck once its request was given up; a worker with too
// many stuck slots gets nothing new and is disconnected; the hub does not poll for given-up requests.
import { describe, expect, test } from "bun:test"
import { SlotBus, TimeoutError } from "../../../src/index.ts"
import { bunChild, busName, type Child, eventually, rejection } from "../../support/helpers.ts"

const decoder = new TextDecoder()

describe("a worker whose handlers hang", () => {
  test("is disconnected once it holds maxStuckSlots stuck slots, and every later request is served by the healthy one", async () => {
    const name = busName("stuck")
    const bus = await SlotBus.listen(name, { slots: 4, stuckAfterMs: 200, maxStuckSlots: 2, idle: "spin" })
    const procs: Child[] = []
    const events: string[] = []
    bus.onWorker((e) => events.push(`${e.type} ${e.worker.pid}`))
    try {
      const hang = bunChild("core/crash-worker.ts", [name, "hang"])
      procs.push(hang)
      await hang.waitLine(/^ready /)
      await bus.waitForWorkers(1)
      const healthy = bunChild("core/crash-worker.ts", [name, "echo"])
      procs.push(healthy)
      await healthy.waitLine(/^ready /)
      await bus.waitForWorkers(2)
      // Dispatched in one go: least in flight first, ties to the earlier worker: hang, healthy, hang, healthy.
      const calls = ["a", "b", "c", "d"].map((s) =>
        bus.call(s, { timeoutMs: 100 }).then(
          (b) => decoder.decode(b),
          (e: unknown) => e,
        ),
      )
      const outcomes = await Promise.all(calls)
      expect(outcomes[0]).toBeInstanceOf(TimeoutError)
      expect(outcomes[2]).toBeInstanceOf(TimeoutError)
      expect([outcomes[1], outcomes[3]]).toEqual(["b", "d"])
      // Given up on, the hung requests need no polling: nobody waits for them.
      const hung = bus.workers.find((w) => w.pid === hang.pid)!
      expect(hung).toMatchObject({ inFlight: 2, waiting: 0 })
      await hang.waitLine(/^closed hub-closed$/, 5000)
      expect(await eventually(() => bus.workerCount === 1)).toBe(true)
      expect(bus.workers[0]!.pid).toBe(healthy.pid)
      expect(bus.stats().evictedWorkers).toBe(1)
      expect(events).toEqual([`join ${hang.pid}`, `join ${healthy.pid}`, `leave ${hang.pid}`])
      for (let i = 0; i < 20; i++)
        expect(decoder.decode(await bus.call(`after-${i}`, { timeoutMs: 2000 }))).toBe(
          `after-${i}`.split("").reverse().join(""),
        )
    } finally {
      await Promise.all(procs.map((p) => p.kill()))
      await bus.close({ drain: false })
    }
  }, 15_000)

  test("below maxStuckSlots keeps serving with its other slots, and reports its stuck ones", async () => {
    const name = busName("stuck-below")
    const bus = await SlotBus.listen(name, { slots: 4, stuckAfterMs: 50, maxStuckSlots: 4 })
    const hang = bunChild("core/crash-worker.ts", [name, "hang"])
    try {
      await hang.waitLine(/^ready /)
      await bus.waitForWorkers(1)
      expect(await rejection(bus.call("x", { timeoutMs: 50 }))).toBeInstanceOf(TimeoutError)
      expect(await eventually(() => bus.workers[0]?.stuck === 1)).toBe(true)
      expect(bus.workers[0]).toMatchObject({ inFlight: 1, waiting: 0, stuck: 1 })
      expect(bus.stats().evictedWorkers).toBe(0)
    } finally {
      await hang.kill()
      await bus.close({ drain: false })
    }
  })
})
