// A caller's W3C trace context on its way in (docs/PROTOCOL.md §6.2, issue 56 item 11): the traceparent/tracestate
// headers a bus takes from outside (bus.fetch's Request, bus.request's headers: what an HTTP hub passes on) go
// through the one parser (src/kit/telemetry/trace-context.ts) before a worker process or the flight recorder sees them.
// Without OpenTelemetry in this process: the context a worker sees is the received one, as checked.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { SlotBus } from "../../../src/index.ts"
import { recorderDir } from "../../../src/native/recorder-layout.ts"
import { readRecorder } from "../../../src/status/host-recorder.ts"
import { bunChild, busName, spawnWorker, stopAll, type Child } from "../../support/helpers.ts"

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  // last in, first out; one that throws does not keep the others from running
  while (cleanups.length > 0)
    await Promise.resolve(cleanups.pop())
      .then((c) => c?.())
      .catch(() => {})
  await stopAll()
})

const TRACE = "0af7651916cd43dd8448eb7b319ad0a1"
const VALID = `00-${TRACE}-b7ad6b7169203331-01`
const VERSION_FF = `ff-${TRACE}-b7ad6b7169203331-01`
const SMALL = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
// two small members, then 24 valid members of 500 characters each: 12,063 characters
const BIG = (i: number) => `m${String(i).padStart(2, "0")}${"k".repeat(240)}=${"v".repeat(256)}`
const LONG_STATE = [SMALL, ...Array.from({ length: 24 }, (_, i) => BIG(i))].join(",")

type Seen = {
  traceparent: string | null
  header: string | null
  tracestate?: string
  stateHeader: string | null
}

/** A bus with one trace-worker process (it answers what its handler saw of the context). */
async function busWithTraceWorker() {
  const bus = await SlotBus.listen(busName("tlim"))
  cleanups.push(() => bus.close({ drain: false }))
  const worker: Child = bunChild("core/trace-worker.ts", [bus.name, busName("tlim-topic")])
  cleanups.push(() => worker.kill())
  await worker.waitLine(/^ready$/, 15_000)
  await bus.waitForWorkers(1)
  return bus
}

describe("a caller's trace context reaching a worker process", () => {
  test("bus.fetch hands on a 12,000-character tracestate as the whole members that fit in 512 characters", async () => {
    expect(LONG_STATE.length).toBeGreaterThan(12_000)
    const bus = await busWithTraceWorker()
    const req = new Request("http://front/long", { headers: { traceparent: VALID, tracestate: LONG_STATE } })
    const seen = (await (await bus.fetch(req)).json()) as Seen
    expect(seen).toMatchObject({ traceparent: VALID, header: VALID, tracestate: SMALL, stateHeader: SMALL })
  }, 60_000)

  test("a version-ff traceparent and its tracestate reach the worker as no context and no such headers", async () => {
    const bus = await busWithTraceWorker()
    const headers = { traceparent: VERSION_FF, tracestate: "congo=t61rcWkgMzE" }
    const viaFetch = (await (await bus.fetch(new Request("http://front/ff", { headers }))).json()) as Seen
    // bus.request with the client's headers is what the HTTP hub does
    const viaRequest = (await bus.request({ path: "/ff", headers })).json() as Seen
    for (const seen of [viaFetch, viaRequest]) {
      expect(seen).toMatchObject({ traceparent: null, header: null, stateHeader: null })
      expect(seen.tracestate).toBeUndefined()
    }
  }, 60_000)

  test("a tracestate that breaks the W3C grammar is dropped whole; its valid traceparent rides on", async () => {
    const bus = await busWithTraceWorker()
    for (const bad of ["congo=1,Rojo=2", "congo=1,congo=2", "x".repeat(257) + "=1"]) {
      const seen = (await bus.request({ path: "/bad-state", headers: { traceparent: VALID, tracestate: bad } })).json()
      expect(seen).toMatchObject({ traceparent: VALID, header: VALID, stateHeader: null })
    }
  }, 60_000)
})

describe("the flight recorder's trace id", () => {
  // what the C recorder stores is what the parser accepted: the hub writes only a checked traceparent (version 00)
  test.each([
    [VALID, TRACE],
    [`cc-${TRACE}-b7ad6b7169203331-01-what-the-future-will-be-like`, TRACE],
    [VERSION_FF, ""],
    [`ff-${TRACE}-b7ad6b7169203331-01-\x1b]0;pwned\x07`, ""],
    [`00-${TRACE}-0000000000000000-01`, ""],
    [`00-${TRACE}-b7ad6b7169203331-01-extra`, ""],
    [`00-${TRACE.toUpperCase()}-b7ad6b7169203331-01`, ""],
  ])(
    "a request with traceparent %j is recorded with trace id %j",
    async (traceparent, traceId) => {
      const bus = await SlotBus.listen(busName("tlim"))
      cleanups.push(() => bus.close({ drain: false }))
      await spawnWorker(bus.name)
      await bus.waitForWorkers(1)
      await bus.request({ path: "/rec", headers: { traceparent } })
      const r = readRecorder(join(recorderDir(), `${bus.name}.${process.pid}.rec`))
      if ("malformed" in r) throw new Error(r.malformed)
      expect(r.records.find((q) => q.what === "GET /rec")?.traceId).toBe(traceId)
    },
    60_000,
  )
})
