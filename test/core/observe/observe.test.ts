// What the bus's observer counts at a request's moments (core/observe/observe.ts): a request is counted as sent to a
// worker (its queue wait, its bytes out) only once it is in the worker's hands, never when its publish failed; a
// request its caller aborted is a cancel in bus.stats() as in GET /metrics, no error (to a Bun and a Node worker).
import { afterAll, expect, test } from "bun:test"
import { SlotBus } from "../../../src/index.ts"
import { METRICS } from "../../../src/status/index.ts"
import { bunChild, busName, rejection, spawnWorker, until } from "../../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterAll(() => removeNodeBuilds())

/** The queue-wait histogram's count: one per request that went to a worker. */
function queueWaits(bus: SlotBus): number {
  const f = bus[METRICS]().find((x) => x.name === "slotbus_request_queue_wait_seconds")!
  const s = f.samples[0]!
  return "histogram" in s ? s.histogram.count : -1
}

test("a queued request whose publish fails (its body was transferred meanwhile) counts no queue wait and no bytes out", async () => {
  const bus = await SlotBus.listen(busName("observe-sent"), { slots: 1 })
  const worker = await spawnWorker(bus.name)
  try {
    await bus.waitForWorkers(1)
    const first = bus.request({ path: "/hold", headers: { "x-delay-ms": "300" }, body: new Uint8Array(10) })
    const body = new Uint8Array(100)
    const second = rejection(bus.request({ path: "/queued", body })) // the one slot is taken: it waits in the queue
    body.buffer.transfer() // its buffer goes while it waits: its publish will refuse it
    expect((await first).status).toBe(200)
    expect(await second).toBeInstanceOf(TypeError)
    expect(queueWaits(bus)).toBe(1)
    expect(bus.stats()).toMatchObject({ requests: 2, responses: 1, errors: 1, bytesOut: 10 })
  } finally {
    await worker.kill()
    await bus.close({ drain: false })
  }
}, 30_000)

test("a retried idempotent request whose publish fails leaves its new worker free for other requests", async () => {
  const bus = await SlotBus.listen(busName("observe-retry"), { timeoutMs: 30_000 })
  const hanging = bunChild("core/crash-worker.ts", [bus.name, "hang"])
  try {
    await hanging.waitLine(/^ready /)
    await bus.waitForWorkers(1)
    const body = new Uint8Array(100)
    const idem = rejection(bus.request({ path: "/i", body }, { idempotent: true }))
    await until(() => bus.workers[0]?.inFlight === 1, "the hanging worker holds it", 10_000)
    const echo = await spawnWorker(bus.name)
    try {
      await bus.waitForWorkers(2)
      body.buffer.transfer() // kept for a retry (idempotent), and gone: the retry's publish refuses it
      process.kill(hanging.pid, "SIGKILL")
      expect(await idem).toBeInstanceOf(TypeError)
      const next = await bus.request({ path: "/next", body: "after" }, { timeoutMs: 5_000 })
      expect(next.text()).toBe("after")
    } finally {
      await echo.kill()
    }
  } finally {
    await hanging.kill()
    await bus.close({ drain: false })
  }
}, 30_000)

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `a bus.fetch whose request's signal aborts (the client went away) is a cancel in stats() as in GET /metrics, no error (${runtime} worker)`,
    async () => {
      const bus = await SlotBus.listen(busName("observe-cancel"))
      const worker = await peerChild(runtime, "runtime/node-worker.ts", [bus.name, "--fetch"])
      try {
        await bus.waitForWorkers(1, { timeoutMs: 30_000 })
        const client = new AbortController()
        const held = rejection(bus.fetch(new Request("http://app/hold", { signal: client.signal })))
        await until(() => bus.stats().inFlight === 1, "the worker holds the request", 10_000)
        client.abort()
        expect(await held).toMatchObject({ name: "AbortError" })
        const sample = (name: string) => bus[METRICS]().find((f) => f.name === name)!.samples
        expect(sample("slotbus_request_cancels_total")).toEqual([{ labels: { bus: bus.name }, value: 1 }])
        expect(sample("slotbus_request_errors_total").filter((s) => "value" in s && s.value !== 0)).toEqual([])
        expect(bus.stats()).toMatchObject({ requests: 1, errors: 0, timeouts: 0, cancels: 1 })
      } finally {
        await worker.kill()
        await bus.close({ drain: false })
      }
    },
    60_000,
  )

test("a request refused before it is queued is made and failed by its class in stats() and GET /metrics; one aborted before, a cancel", async () => {
  const bus = await SlotBus.listen(busName("observe-refused"), { slots: 1, queue: 1, maxBodyBytes: 1024 })
  const worker = await spawnWorker(bus.name)
  try {
    await bus.waitForWorkers(1)
    const held = bus.request({ path: "/hold", headers: { "x-delay-ms": "300" } }) // the one slot
    const queued = bus.request({ path: "/queued" }) // the one place in the queue
    const refusals = await Promise.all([
      rejection(bus.request({ path: "/full" })),
      rejection(bus.call(new Uint8Array(2000))),
      rejection(bus.request({ path: "/head", headers: { "x-big": "y".repeat(20_000) } })),
      rejection(bus.fetch(new Request("http://app/", { method: "POST", body: new Uint8Array(5000) }))),
      rejection(bus.request({ path: "/" }, { timeoutMs: -1 })),
      rejection(bus.invoke("", [])),
      rejection(bus.request({ path: "/" }, { signal: AbortSignal.abort() })),
    ])
    expect(refusals.map((e) => (e as Error).name)).toEqual([
      "BusFullError",
      "PayloadTooLargeError",
      "HeadTooLargeError",
      "PayloadTooLargeError",
      "RangeError",
      "TypeError",
      "AbortError",
    ])
    expect((await held).status).toBe(200)
    expect((await queued).status).toBe(200)
    await bus.close()
    expect(await rejection(bus.call(new Uint8Array(1)))).toMatchObject({ name: "BusClosedError" })
    const errors = bus[METRICS]().find((f) => f.name === "slotbus_request_errors_total")!.samples
    const byKind = Object.fromEntries(errors.map((s) => [s.labels.kind, "value" in s ? s.value : -1]))
    expect(byKind).toEqual({
      ...{ BusFullError: 1, PayloadTooLargeError: 2, HeadTooLargeError: 1, RangeError: 1, TypeError: 1 },
      BusClosedError: 1,
      ...{ WorkerGoneError: 0, TimeoutError: 0, RemoteError: 0, http5xx: 0 }, // there from the start
    })
    expect(bus.stats()).toMatchObject({ requests: 10, responses: 2, errors: 7, cancels: 1 })
  } finally {
    await worker.kill()
    await bus.close({ drain: false })
  }
}, 30_000)
