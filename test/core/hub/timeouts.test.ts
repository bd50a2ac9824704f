import { afterEach, describe, expect, test } from "bun:test"
import { SlotBus, TimeoutError } from "../../../src/index.ts"
import { busName, stopAll, rejection, sentToWorkers, spawnWorker, until, withHub } from "../../support/helpers.ts"

afterEach(stopAll)

const decoder = new TextDecoder()
const slow = (bus: SlotBus, ms: number, body = "slow", opts: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
  bus.request({ path: "/echo", headers: { "x-delay-ms": String(ms) }, body }, opts)

/** Waits until no slot of any worker is owned by anyone but the free list. */
async function allSlotsFree(bus: SlotBus) {
  await until(() => bus.stats().inFlight === 0, "every slot came back to the hub")
  for (const w of bus.stats().workers) expect(w.slots.every((s) => s === "free")).toBe(true)
}

async function servedBy(bus: SlotBus): Promise<number> {
  return (await bus.request({ path: "/stats" })).json<{ served: number }>().served
}

describe("timeouts", () => {
  test("a request slower than timeoutMs rejects with TimeoutError", async () => {
    await withHub({ slots: 4 }, [{}], async (bus) => {
      const e = await rejection(slow(bus, 300, "x", { timeoutMs: 30 }))
      expect(e).toBeInstanceOf(TimeoutError)
      expect((e as Error).message).toContain("timed out")
      expect(bus.stats().timeouts).toBe(1)
    })
  })

  test("the bus-wide timeoutMs applies when a request sets none, and a request's own timeoutMs overrides it", async () => {
    await withHub({ slots: 4, timeoutMs: 30 }, [{}], async (bus) => {
      expect(await rejection(slow(bus, 300))).toBeInstanceOf(TimeoutError)
      expect((await slow(bus, 60, "patient", { timeoutMs: 5000 })).text()).toBe("patient")
      expect((await slow(bus, 60, "forever", { timeoutMs: 0 })).text()).toBe("forever")
    })
  })

  test("a late response after a timeout is discarded and its slot is reused", async () => {
    const slots = 4
    await withHub({ slots }, [{}], async (bus) => {
      const timedOut = await Promise.all(
        Array.from({ length: slots }, (_, i) => rejection(slow(bus, 300, `late-${i}`, { timeoutMs: 20 }))),
      )
      for (const e of timedOut) expect(e).toBeInstanceOf(TimeoutError)
      expect(bus.stats().inFlight).toBe(slots) // the worker still holds them
      await allSlotsFree(bus) // the late answers came back and were thrown away
      expect(bus.stats()).toMatchObject({ responses: 0, timeouts: slots })

      const replies = await Promise.all(Array.from({ length: 2 * slots }, (_, i) => bus.call(`fresh-${i}`)))
      replies.forEach((r, i) => expect(decoder.decode(r)).toBe(`fresh-${i}`)) // no stale late-* answer leaks in
      await allSlotsFree(bus)
      expect(bus.stats().responses).toBe(2 * slots)
    })
  })

  test("a request that times out while queued never reaches the worker", async () => {
    await withHub({ slots: 1 }, [{}], async (bus) => {
      const first = slow(bus, 150, "first")
      const queued = slow(bus, 0, "queued", { timeoutMs: 20 })
      expect(bus.stats().queued).toBe(1)
      expect(await rejection(queued)).toBeInstanceOf(TimeoutError)
      expect(bus.stats().queued).toBe(0)
      expect((await first).text()).toBe("first")
      expect(await servedBy(bus)).toBe(2) // "first" and this /stats request
      await allSlotsFree(bus)
    })
  })
  test("a request cancelled before the worker claimed it is never run and its slot comes back free", async () => {
    await withHub({ slots: 4 }, [{}], async (bus) => {
      const blocker = bus.request({ path: "/block?ms=250" }) // the worker's thread is stuck in this handler
      await Bun.sleep(50)
      const waiting = Array.from({ length: 3 }, (_, i) => rejection(bus.call(`never-${i}`, { timeoutMs: 20 })))
      for (const e of await Promise.all(waiting)) expect(e).toBeInstanceOf(TimeoutError)
      expect((await blocker).text()).toBe("unblocked")
      await allSlotsFree(bus)
      expect(await servedBy(bus)).toBe(2) // the blocker and this /stats request, none of the cancelled ones
      const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => bus.call(`after-${i}`)))
      replies.forEach((r, i) => expect(decoder.decode(r)).toBe(`after-${i}`))
    })
  })
})

describe("abort signals", () => {
  test("an already aborted signal rejects with the signal's reason and sends nothing", async () => {
    await withHub({}, [{}], async (bus) => {
      const reason = new Error("caller gave up")
      const e = await rejection(bus.request({ path: "/echo" }, { signal: AbortSignal.abort(reason) }))
      expect(e).toBe(reason)
      expect(await rejection(bus.call("x", { signal: AbortSignal.abort(reason) }))).toBe(reason)
      expect(sentToWorkers(bus)).toBe(0)
      expect(await servedBy(bus)).toBe(1)
    })
  })

  test("aborting a queued request rejects it with the reason, removes it from the queue, and it never runs", async () => {
    await withHub({ slots: 1 }, [{}], async (bus) => {
      const first = slow(bus, 100, "first")
      const ac = new AbortController()
      const queued = slow(bus, 0, "queued", { signal: ac.signal })
      expect(bus.stats().queued).toBe(1)
      ac.abort("stop") // a non-Error reason is passed through as is
      expect(await rejection(queued)).toBe("stop")
      expect(bus.stats().queued).toBe(0)
      expect((await first).text()).toBe("first")
      expect(await servedBy(bus)).toBe(2)
      await allSlotsFree(bus)
    })
  })

  test("aborting an in-flight request rejects it with the reason, discards the late answer and frees the slot", async () => {
    await withHub({ slots: 2 }, [{}], async (bus) => {
      const ac = new AbortController()
      const reason = new Error("navigated away")
      const inFlight = slow(bus, 150, "in flight", { signal: ac.signal })
      await Bun.sleep(20)
      expect(bus.stats().inFlight).toBe(1)
      ac.abort(reason)
      expect(await rejection(inFlight)).toBe(reason)
      await allSlotsFree(bus)
      expect(bus.stats().responses).toBe(0)
      const replies = await Promise.all([bus.call("a"), bus.call("b"), bus.call("c"), bus.call("d")])
      expect(replies.map((r) => decoder.decode(r))).toEqual(["a", "b", "c", "d"])
    })
  })

  test("aborting after the response arrived changes nothing", async () => {
    await withHub({}, [{}], async (bus) => {
      const ac = new AbortController()
      const res = await bus.request({ path: "/echo", body: "done" }, { signal: ac.signal })
      ac.abort(new Error("too late"))
      expect(res.text()).toBe("done")
      expect(bus.stats()).toMatchObject({ errors: 0, responses: 1 })
    })
  })
})

describe("no worker connected", () => {
  test("requests made before any worker connects wait and are served once one does", async () => {
    const bus = await SlotBus.listen(busName(), { slots: 4 })
    let worker: Awaited<ReturnType<typeof spawnWorker>> | undefined
    try {
      const waiting = Array.from({ length: 10 }, (_, i) => bus.call(`early-${i}`))
      const waitingHttp = bus.request({ path: "/echo", body: "early-http" })
      expect(bus.stats()).toMatchObject({ queued: 11, workers: [] })
      worker = await spawnWorker(bus.name)
      const replies = await Promise.all(waiting)
      replies.forEach((r, i) => expect(decoder.decode(r)).toBe(`early-${i}`))
      expect((await waitingHttp).text()).toBe("early-http")
    } finally {
      await worker?.kill()
      await bus.close({ drain: false })
    }
  })

  test("a worker started before its hub waits for it with waitForHubMs and then serves", async () => {
    const name = busName()
    const early = spawnWorker(name, { waitForHubMs: 5000 })
    early.catch(() => {})
    await Bun.sleep(100) // the worker is retrying by now
    const bus = await SlotBus.listen(name)
    try {
      await early
      await bus.waitForWorkers(1)
      expect(decoder.decode(await bus.call("late hub"))).toBe("late hub")
    } finally {
      await (await early.catch(() => null))?.kill()
      await bus.close({ drain: false })
    }
  })

  test("requests made while no worker is connected time out with TimeoutError if none comes", async () => {
    const bus = await SlotBus.listen(busName(), { timeoutMs: 40 })
    try {
      const [a, b] = await Promise.all([
        rejection(bus.call("nobody")),
        rejection(bus.request({ path: "/" }, { timeoutMs: 20 })),
      ])
      expect(a).toBeInstanceOf(TimeoutError)
      expect(b).toBeInstanceOf(TimeoutError)
      expect(bus.stats()).toMatchObject({ queued: 0, timeouts: 2 })
    } finally {
      await bus.close({ drain: false })
    }
  })

  test("waitForWorkers rejects with TimeoutError when too few workers connect", async () => {
    const bus = await SlotBus.listen(busName())
    try {
      expect(await rejection(bus.waitForWorkers(1, 30))).toBeInstanceOf(TimeoutError)
    } finally {
      await bus.close({ drain: false })
    }
  })
})
