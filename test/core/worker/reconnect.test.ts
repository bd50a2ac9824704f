// A reconnecting worker keeps trying until it is closed, and once closed never attaches again.
import { describe, expect, test } from "bun:test"
import { SlotBus, SlotWorker } from "../../../src/index.ts"
import { bunChild, busName, until } from "../../support/helpers.ts"

describe("a worker with reconnect: true", () => {
  test("keeps trying when a new hub takes its connection but sends the hello late, and rejoins it", async () => {
    const name = busName("late-hello")
    const first = await SlotBus.listen(name)
    let joins = 0
    const worker = await SlotWorker.connect(name, (r) => r.body.slice().reverse(), {
      reconnect: true,
      onConnect: () => joins++,
    })
    const closed = worker.closed.then((c) => c.reason)
    let hub: ReturnType<typeof bunChild> | null = null
    try {
      await first.waitForWorkers(1)
      await first.close({ drain: false })
      await until(() => !worker.connected, "the worker sees the first hub go")
      hub = bunChild("core/slow-hub.ts", [name, "5600"]) // longer than one attempt waits for a hello (5 s)
      await hub.waitLine(/^unblocked$/, 15_000)
      await hub.waitLine(/^join \d+$/)
      await until(() => worker.connected, "the worker rejoins the slow hub")
      expect(joins).toBe(2)
      expect(await Promise.race([closed, Bun.sleep(0).then(() => "still open")])).toBe("still open")
    } finally {
      await worker.close({ timeoutMs: 100 })
      await hub?.kill()
    }
    expect(await closed).toBe("closed")
  }, 20_000)

  test("closed while a new hub's hello is on its way, it does not attach when the hello arrives", async () => {
    const name = busName("close-reconnect")
    const first = await SlotBus.listen(name)
    let joins = 0
    const worker = await SlotWorker.connect(name, (r) => r.body, { reconnect: true, onConnect: () => joins++ })
    let hub: ReturnType<typeof bunChild> | null = null
    try {
      await first.waitForWorkers(1)
      await first.close({ drain: false })
      hub = bunChild("core/slow-hub.ts", [name, "600"])
      await hub.waitLine(/^listening$/)
      await Bun.sleep(100) // the worker found the new hub and waits for its hello
      await worker.close()
      expect((await worker.closed).reason).toBe("closed")
      await hub.waitLine(/^unblocked$/)
      await Bun.sleep(300) // the hub has had time to accept and hand over the region
      expect(joins).toBe(1)
      expect(worker.connected).toBe(false)
      expect(hub.lines.filter((l) => l.startsWith("join")).length).toBeLessThanOrEqual(1)
      // If the hub accepted the dead connection at all, it saw it leave at once.
      if (hub.lines.some((l) => l.startsWith("join"))) await hub.waitLine(/^leave \d+$/)
    } finally {
      await worker.close()
      await hub?.kill()
    }
  })
})
