import { afterEach, describe, expect, test } from "bun:test"
import { BusClosedError, SlotBus, SlotWorker, WorkerGoneError, type IdleStrategy } from "../../../src/index.ts"
import { busName, stopAll, rejection, spawnWorker, until, withHub } from "../../support/helpers.ts"

afterEach(stopAll)

const decoder = new TextDecoder()

// [label, hub strategy, the same strategy as the worker fixture's --idle flag]
const strategies: [string, IdleStrategy, string][] = [
  ["spin", "spin", "spin"],
  ["adaptive", "adaptive", "adaptive"],
  ["park", "park", "park"],
  ["custom {spinMicros: 20, parkAfterMs: 2}", { spinMicros: 20, parkAfterMs: 2 }, "20,2"],
]
const combinations = strategies.flatMap(([hubLabel, hubIdle]) =>
  strategies.map(([workerLabel, , workerIdle]) => [hubLabel, workerLabel, hubIdle, workerIdle] as const),
)

describe("idle strategies", () => {
  test.each(combinations)(
    "a %s hub and a %s worker answer sequential and 32 concurrent requests correctly",
    async (_h, _w, hubIdle, workerIdle) => {
      await withHub({ slots: 32, idle: hubIdle }, [{ idle: workerIdle }], async (bus) => {
        for (let i = 0; i < 20; i++) expect(decoder.decode(await bus.call(`seq-${i}`))).toBe(`seq-${i}`)
        const replies = await Promise.all(
          Array.from({ length: 32 }, (_, i) => bus.request({ method: "POST", path: `/c/${i}`, body: `con-${i}` })),
        )
        replies.forEach((r, i) => {
          expect(r.headers.get("x-path")).toBe(`/c/${i}`)
          expect(r.text()).toBe(`con-${i}`)
        })
        // After a quiet spell (long enough for every strategy to park), a request still wakes both sides.
        await Bun.sleep(20)
        expect(decoder.decode(await bus.call("after a nap"))).toBe("after a nap")
      })
    },
  )
})

describe("closing the hub", () => {
  test("close() lets in-flight and queued requests finish, then the worker process exits", async () => {
    await withHub({ slots: 4 }, [{}], async (bus, [worker]) => {
      const pending = Array.from({ length: 6 }, (_, i) =>
        bus.request({ path: `/d/${i}`, headers: { "x-delay-ms": "80" }, body: `drained-${i}` }),
      )
      expect(bus.stats()).toMatchObject({ inFlight: 4, queued: 2 })
      const closing = bus.close()
      expect(await rejection(bus.call("too late"))).toBeInstanceOf(BusClosedError)
      const replies = await Promise.all(pending)
      replies.forEach((r, i) => expect(r.text()).toBe(`drained-${i}`))
      await closing
      expect(await worker!.exited).toBe(0)
      expect(worker!.output).toContain("closed hub-closed")
    })
  })

  test("close({ drain: false }) rejects in-flight and queued requests with BusClosedError", async () => {
    await withHub({ slots: 2 }, [{}], async (bus, [worker]) => {
      const pending = Array.from({ length: 4 }, (_, i) =>
        rejection(bus.request({ path: `/d/${i}`, headers: { "x-delay-ms": "500" } })),
      )
      expect(bus.stats()).toMatchObject({ inFlight: 2, queued: 2 })
      await bus.close({ drain: false })
      for (const e of await Promise.all(pending)) expect(e).toBeInstanceOf(BusClosedError)
      expect(await worker!.exited).toBe(0)
      expect(worker!.output).toContain("closed hub-closed")
    })
  })

  test("close({ timeoutMs }) waits that long for stragglers, then rejects them with BusClosedError", async () => {
    await withHub({}, [{}], async (bus) => {
      const quick = bus.request({ path: "/echo", headers: { "x-delay-ms": "10" }, body: "quick" })
      const straggler = rejection(bus.request({ path: "/echo", headers: { "x-delay-ms": "2000" } }))
      await bus.close({ timeoutMs: 100 })
      expect((await quick).text()).toBe("quick")
      expect(await straggler).toBeInstanceOf(BusClosedError)
    })
  })

  test("requests after close() reject with BusClosedError, and close() can be called again", async () => {
    await withHub({}, [{}], async (bus) => {
      await bus.close()
      expect(await rejection(bus.call("x"))).toBeInstanceOf(BusClosedError)
      expect(await rejection(bus.request({ path: "/" }))).toBeInstanceOf(BusClosedError)
      await bus.close()
      await bus.close({ drain: false })
      // The name is free again.
      const again = await SlotBus.listen(bus.name)
      await again.close()
    })
  })

  test("an in-process worker learns the hub closed on purpose: closed settles with reason hub-closed", async () => {
    const bus = await SlotBus.listen(busName())
    let worker: SlotWorker | undefined
    try {
      worker = await SlotWorker.connect(bus.name, (req) => req.body)
      await bus.waitForWorkers(1)
      expect(decoder.decode(await bus.call("hi"))).toBe("hi")
      await bus.close()
      expect(await worker.closed).toEqual({ reason: "hub-closed", error: undefined })
      expect(worker.connected).toBe(false)
    } finally {
      await worker?.close()
      await bus.close({ drain: false })
    }
  })
})

describe("closing a worker", () => {
  test("worker close() settles worker.closed with reason closed and the hub drops it", async () => {
    const bus = await SlotBus.listen(busName())
    let worker: SlotWorker | undefined
    try {
      worker = await SlotWorker.connect(bus.name, (req) => req.body)
      await bus.waitForWorkers(1)
      expect(decoder.decode(await bus.call("hi"))).toBe("hi")
      expect(worker.stats()).toEqual({ served: 1, active: 0, connected: true })
      await worker.close()
      expect(await worker.closed).toEqual({ reason: "closed" })
      expect(worker.connected).toBe(false)
      await until(() => bus.workers.length === 0, "the hub dropped the closed worker")
    } finally {
      await worker?.close()
      await bus.close({ drain: false })
    }
  })

  test("worker close() lets running handlers finish and their responses reach the hub", async () => {
    const bus = await SlotBus.listen(busName())
    let worker: SlotWorker | undefined
    try {
      worker = await SlotWorker.connect(bus.name, async (req) => {
        await Bun.sleep(50)
        return req.body
      })
      await bus.waitForWorkers(1)
      const pending = Array.from({ length: 8 }, (_, i) => bus.call(`finishing-${i}`))
      await until(() => worker!.stats().active === 8, "every handler is running")
      await worker.close()
      const replies = await Promise.all(pending)
      replies.forEach((r, i) => expect(decoder.decode(r)).toBe(`finishing-${i}`))
    } finally {
      await worker?.close()
      await bus.close({ drain: false })
    }
  })

  test("a worker process that closes on SIGTERM delivers every response it was working on", async () => {
    await withHub({ slots: 32 }, [{}, {}], async (bus, [victim]) => {
      for (let round = 0; round < 5; round++) {
        const pending = Array.from({ length: 32 }, (_, i) =>
          bus.request({ path: `/g/${round}/${i}`, headers: { "x-delay-ms": "40" }, body: `${round}-${i}` }).then(
            (r) => r.text(),
            (e: Error) => e,
          ),
        )
        if (round === 0) victim!.proc.kill("SIGTERM")
        const results = await Promise.all(pending)
        results.forEach((r, i) => expect(r).toBe(`${round}-${i}`))
      }
      expect(await victim!.exited).toBe(0)
      expect(victim!.output).toContain("closed closed")
    })
  })

  test("responses a closing worker completed while the hub was busy are delivered, not failed with WorkerGoneError", async () => {
    await withHub({ slots: 8 }, [{ closeTimeoutMs: 50 }], async (bus, [worker]) => {
      const pending = Array.from({ length: 8 }, (_, i) =>
        bus.request({ path: `/b/${i}`, headers: { "x-delay-ms": "10" }, body: `busy-${i}` }).then(
          (r) => r.text(),
          (e: Error) => e,
        ),
      )
      await Bun.sleep(2)
      worker!.proc.kill("SIGTERM")
      // The hub's thread is busy while the worker answers everything, gives up waiting for the drain ack
      // (50 ms), and disconnects: the answers sit complete in the completion ring when the hub sees EOF.
      const end = performance.now() + 250
      while (performance.now() < end) {}
      const results = await Promise.all(pending)
      results.forEach((r, i) => expect(r).toBe(`busy-${i}`))
      expect(await worker!.exited).toBe(0)
    })
  })

  test("requests on a worker that disconnects without answering reject with WorkerGoneError", async () => {
    const bus = await SlotBus.listen(busName())
    let worker: SlotWorker | undefined
    try {
      worker = await SlotWorker.connect(bus.name, () => new Promise<never>(() => {})) // never answers
      await bus.waitForWorkers(1)
      const stuck = rejection(bus.call("stuck"))
      await until(() => worker!.stats().active === 1, "the handler is running")
      await worker.close({ timeoutMs: 20 })
      expect(await stuck).toBeInstanceOf(WorkerGoneError)
    } finally {
      await worker?.close()
      await bus.close({ drain: false })
    }
  })
})

describe("await using", () => {
  test("await using closes both the hub and the worker at the end of the block", async () => {
    let bus: SlotBus | undefined
    let worker: SlotWorker | undefined
    {
      await using b = await SlotBus.listen(busName())
      await using w = await SlotWorker.connect(b.name, (req) => req.body)
      bus = b
      worker = w
      await b.waitForWorkers(1)
      expect(decoder.decode(await b.call("scoped"))).toBe("scoped")
    }
    expect(await worker.closed).toEqual({ reason: "closed" })
    expect(await rejection(bus.call("after"))).toBeInstanceOf(BusClosedError)
    const again = await SlotBus.listen(bus.name) // the name was released
    await again.close()
  })

  test("await using a hub drains a request still in flight when the block exits", async () => {
    const name = busName()
    let pending: Promise<string> | undefined
    let worker: Awaited<ReturnType<typeof spawnWorker>> | undefined
    try {
      {
        await using bus = await SlotBus.listen(name)
        worker = await spawnWorker(name)
        await bus.waitForWorkers(1)
        pending = bus
          .request({ path: "/echo", headers: { "x-delay-ms": "50" }, body: "in flight" })
          .then((r) => r.text())
      }
      expect(await pending).toBe("in flight")
      expect(await worker.exited).toBe(0)
    } finally {
      await worker?.kill()
    }
  })
})
