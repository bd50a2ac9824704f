// The core's "closed" and "full" errors are the shared shapes: one base catches them in every room.
import { afterEach, expect, test } from "bun:test"
import { BusClosedError, BusFullError, ClosedError, FullError, SlotBus } from "../../../src/index.ts"
import { busName, rejection, stopAll, withHub } from "../../support/helpers.ts"

afterEach(stopAll)

test("a closed bus's request rejects with BusClosedError, which is a ClosedError", async () => {
  const bus = await SlotBus.listen(busName())
  await bus.close()
  const e = await rejection(bus.request({ path: "/" }))
  expect(e).toBeInstanceOf(BusClosedError)
  expect(e).toBeInstanceOf(ClosedError)
  expect((e as Error).name).toBe("BusClosedError")
})

test("a request beyond every slot and the queue rejects with BusFullError, which is a FullError", async () => {
  await withHub({ slots: 1, queue: 1 }, [{}], async (bus) => {
    const slow = (i: number) => bus.request({ path: `/echo/${i}`, headers: { "x-delay-ms": "200" }, body: String(i) })
    const accepted = [slow(0), slow(1)]
    expect(bus.stats()).toMatchObject({ inFlight: 1, queued: 1 })
    const e = await rejection(slow(2))
    expect(e).toBeInstanceOf(BusFullError)
    expect(e).toBeInstanceOf(FullError)
    expect((e as Error).name).toBe("BusFullError")
    await Promise.all(accepted)
  })
}, 30_000)
