import { afterEach, describe, expect, test } from "bun:test"
import { BusFullError, WorkerGoneError, type SlotBus } from "../../../src/index.ts"
import { stopAll, rejection, sentToWorkers, until, withHub } from "../../support/helpers.ts"

afterEach(stopAll)

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A payload unique to request i, of a size that varies with i (so lengths differ, too). */
function payload(i: number): Uint8Array {
  const tag = `req-${i}-`
  return encoder.encode(tag.repeat(1 + (i % 17)))
}

async function concurrentCalls(bus: SlotBus, n: number) {
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => bus.call(payload(i))))
  replies.forEach((r, i) => expect(decoder.decode(r)).toBe(decoder.decode(payload(i))))
}

async function concurrentRequests(bus: SlotBus, n: number) {
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      bus.request({
        method: "POST",
        path: `/echo/${i}`,
        headers: { "x-reply-headers": JSON.stringify([["x-i", String(i)]]) },
        body: payload(i),
      }),
    ),
  )
  replies.forEach((r, i) => {
    expect(r.headers.get("x-path")).toBe(`/echo/${i}`)
    expect(r.headers.get("x-i")).toBe(String(i))
    expect(r.text()).toBe(decoder.decode(payload(i)))
  })
}

describe("many requests at once", () => {
  test.each([32, 1000])("%p concurrent raw calls each get their own payload back", async (n) => {
    await withHub({ slots: 32 }, [{}], async (bus) => {
      await concurrentCalls(bus, n)
      const s = bus.stats()
      expect(s.responses).toBe(n)
      expect(s.inFlight).toBe(0)
      expect(s.queued).toBe(0)
    })
  })

  test.each([32, 1000])("%p concurrent http requests each get their own path, header and body back", async (n) => {
    await withHub({ slots: 32 }, [{}], async (bus) => {
      await concurrentRequests(bus, n)
      expect(bus.stats().responses).toBe(n)
    })
  })

  test("1000 requests beyond 32 slots queue and are each answered exactly once", async () => {
    await withHub({ slots: 32 }, [{ delayMs: 1 }], async (bus) => {
      let settled = 0
      const all = Array.from({ length: 1000 }, (_, i) =>
        bus.call(payload(i)).then((r) => {
          settled++
          return r
        }),
      )
      const s = bus.stats()
      expect(s.inFlight).toBe(32)
      expect(s.queued).toBe(1000 - 32)
      const replies = await Promise.all(all)
      expect(settled).toBe(1000)
      replies.forEach((r, i) => expect(decoder.decode(r)).toBe(decoder.decode(payload(i))))
      const stats = (await bus.request({ path: "/stats" })).json<{ served: number }>()
      expect(stats.served).toBe(1001) // no request was run twice
    })
  })

  test("a slow worker with slots: 32 and queue: 10 rejects the 43rd concurrent request with BusFullError and serves the other 42", async () => {
    await withHub({ slots: 32, queue: 10 }, [{}], async (bus) => {
      const slow = (i: number) => bus.request({ path: `/echo/${i}`, headers: { "x-delay-ms": "200" }, body: String(i) })
      const accepted = Array.from({ length: 42 }, (_, i) => slow(i))
      expect(bus.stats()).toMatchObject({ inFlight: 32, queued: 10 })
      const e = await rejection(slow(42))
      expect(e).toBeInstanceOf(BusFullError)
      expect((e as Error).message).toContain("queue")
      const replies = await Promise.all(accepted)
      replies.forEach((r, i) => expect(r.text()).toBe(String(i)))
      expect(sentToWorkers(bus)).toBe(42)
      expect(bus.stats()).toMatchObject({ requests: 43, errors: 1 }) // the refused one was made, and failed
      // The bound is on waiting requests, not total: once slots free up the bus accepts again.
      expect((await bus.request({ path: "/echo", body: "again" })).text()).toBe("again")
    })
  })
})

describe("several workers", () => {
  test("three worker processes share concurrent load and each answers from its own pid", async () => {
    await withHub({ slots: 8 }, [{}, {}, {}], async (bus, procs) => {
      const replies = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          bus.request({ path: `/echo/${i}`, headers: { "x-delay-ms": "1" }, body: payload(i) }),
        ),
      )
      replies.forEach((r, i) => expect(r.text()).toBe(decoder.decode(payload(i))))
      const workers = bus.workers
      expect(workers.length).toBe(3)
      for (const w of workers) expect(w.requests).toBeGreaterThan(0)
      expect(workers.reduce((n, w) => n + w.requests, 0)).toBe(300)
      expect(new Set(workers.map((w) => w.pid))).toEqual(new Set(procs.map((p) => p.pid)))
      const answeredBy = new Set(replies.map((r) => Number(r.headers.get("x-pid"))))
      expect(answeredBy).toEqual(new Set(procs.map((p) => p.pid)))
    })
  })

  test("when one of three workers is SIGKILLed its in-flight requests reject with WorkerGoneError and the others serve every new request", async () => {
    await withHub({ slots: 8 }, [{}, {}, {}], async (bus, procs) => {
      const victim = procs[0]!
      // 24 slow requests fill every slot of every worker, 8 of them on the victim.
      const inFlight = Array.from({ length: 24 }, (_, i) =>
        bus.request({ path: `/echo/${i}`, headers: { "x-delay-ms": "300" }, body: String(i) }).then(
          (r) => ({ ok: true as const, pid: Number(r.headers.get("x-pid")), text: r.text(), i }),
          (e: unknown) => ({ ok: false as const, e, i }),
        ),
      )
      expect(bus.workers.map((w) => w.inFlight)).toEqual([8, 8, 8])
      await victim.kill("SIGKILL")
      const outcomes = await Promise.all(inFlight)
      const failed = outcomes.filter((o) => !o.ok)
      expect(failed.length).toBe(8)
      for (const f of failed) expect(f.e).toBeInstanceOf(WorkerGoneError)
      for (const o of outcomes)
        if (o.ok) {
          expect(o.pid).not.toBe(victim.pid)
          expect(o.text).toBe(String(o.i))
        }

      await until(() => bus.workers.length === 2, "the hub dropped the killed worker")
      const replies = await Promise.all(
        Array.from({ length: 200 }, (_, i) => bus.request({ path: `/after/${i}`, body: payload(i) })),
      )
      replies.forEach((r, i) => {
        expect(r.text()).toBe(decoder.decode(payload(i)))
        expect(Number(r.headers.get("x-pid"))).not.toBe(victim.pid)
      })
      expect(new Set(replies.map((r) => Number(r.headers.get("x-pid"))))).toEqual(
        new Set([procs[1]!.pid, procs[2]!.pid]),
      )
    })
  })

  test("requests queued behind a killed worker's slots are served by the survivors", async () => {
    await withHub({ slots: 4 }, [{}, {}], async (bus, procs) => {
      const victim = procs[0]!
      const all = Array.from({ length: 40 }, (_, i) =>
        bus.request({ path: `/q/${i}`, headers: { "x-delay-ms": "20" }, body: String(i) }).then(
          (r) => ({ ok: true as const, text: r.text(), i }),
          (e: unknown) => ({ ok: false as const, e, i }),
        ),
      )
      expect(bus.stats().queued).toBe(32)
      await victim.kill("SIGKILL")
      const outcomes = await Promise.all(all)
      // Only what was on the victim when it died may fail, and only with WorkerGoneError.
      const failed = outcomes.filter((o) => !o.ok)
      expect(failed.length).toBeLessThanOrEqual(4)
      for (const f of failed) expect(f.e).toBeInstanceOf(WorkerGoneError)
      for (const o of outcomes) if (o.ok) expect(o.text).toBe(String(o.i))
      expect(bus.stats().queued).toBe(0)
    })
  })
})
