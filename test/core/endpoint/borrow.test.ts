// Borrowed responses: the body views the slot (no copy), the slot is the caller's until release().
import { afterEach, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { BorrowedResponse, SlotBus, SlotWorker } from "../../../src/index.ts"
import { busName, stopAll, pattern, spawnWorker, until } from "../../support/helpers.ts"

afterEach(stopAll)
const MiB = 1024 * 1024
const rssBytes = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024

describe("a borrowed response", () => {
  test("views the slot until release(): the slot stays out meanwhile, and the body and its views read empty after", async () => {
    const bus = await SlotBus.listen(busName("borrow"), { slots: 2 })
    const worker = await SlotWorker.connect(bus.name, (r) => r.body)
    try {
      await bus.waitForWorkers(1)
      const res = await bus.call("borrowed bytes", { borrow: true })
      expect(res).toBeInstanceOf(BorrowedResponse)
      expect(res.text()).toBe("borrowed bytes")
      const view = res.body.subarray(0, 8)
      expect(bus.workers[0]!.inFlight).toBe(1)
      expect(bus.workers[0]!.slots).toContain("done") // answered, not yet handed back
      // The other slot keeps serving.
      expect(new TextDecoder().decode(await bus.call("meanwhile"))).toBe("meanwhile")
      res.release()
      res.release() // idempotent
      expect(res.body.length).toBe(0)
      expect(view.length).toBe(0)
      expect(bus.workers[0]!.inFlight).toBe(0)
      await until(() => bus.workers[0]!.slots.every((s) => s === "free"), "both slots are free")
      // An HTTP one, through `using`.
      {
        using r = await bus.request(
          { method: "POST", path: "/x", headers: { a: "b" }, body: "http body" },
          { borrow: true },
        )
        expect([r.status, r.text()]).toEqual([200, "http body"])
      }
      expect(bus.workers[0]!.inFlight).toBe(0)
    } finally {
      await worker.close()
      await bus.close({ drain: false })
    }
  })

  test("whose worker disconnects reads empty from then on (no crash, no stale bytes), and requests queued behind it go on", async () => {
    const bus = await SlotBus.listen(busName("borrow-gone"), { slots: 1 })
    const proc = await spawnWorker(bus.name)
    try {
      await bus.waitForWorkers(1)
      const res = await bus.call(pattern(4096), { borrow: true })
      expect(res.body).toEqual(pattern(4096))
      await proc.kill()
      await until(() => bus.workerCount === 0, "the hub saw the worker go")
      expect(res.body.length).toBe(0)
      res.release()
      const next = await spawnWorker(bus.name)
      await bus.waitForWorkers(1)
      expect(new TextDecoder().decode(await bus.call("next"))).toBe("next")
      await next.kill()
    } finally {
      await bus.close({ drain: false })
    }
  })

  test("steady 1 MiB echo traffic through borrow keeps the hub's RSS within a small multiple of the region", async () => {
    const slots = 4
    const bus = await SlotBus.listen(busName("borrow-rss"), { slots, maxBodyBytes: MiB + 4096 })
    await spawnWorker(bus.name)
    try {
      await bus.waitForWorkers(1)
      const region = 2 * slots * (MiB + 2 * 4096 + 16 * 1024) // both arenas of every slot, rounded up
      const body = pattern(MiB, 3)
      const roundTrip = async () => {
        using res = await bus.call(body, { borrow: true })
        expect(res.body.length).toBe(MiB)
        expect(Buffer.compare(res.body, body)).toBe(0)
      }
      for (let i = 0; i < 8; i++) await roundTrip() // warm: the arenas' pages are touched once
      const before = rssBytes()
      let peak = before
      for (let round = 0; round < 100; round++) {
        await Promise.all(Array.from({ length: slots }, roundTrip))
        peak = Math.max(peak, rssBytes())
      }
      console.log(
        `hub RSS ${(before / MiB).toFixed(0)} MiB → peak ${(peak / MiB).toFixed(0)} MiB over 400 borrowed 1 MiB echoes (region ${(region / MiB).toFixed(1)} MiB)`,
      )
      expect(peak - before).toBeLessThan(4 * region)
    } finally {
      await bus.close({ drain: false })
    }
  }, 30_000)
})
