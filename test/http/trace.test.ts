// The HTTP hub passes its client's W3C trace context on only as the one parser takes it (docs/PROTOCOL.md §6.2,
// issue 56 item 11): a worker process's handler sees the headers the hub wrote, not the client's raw ones.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHub, type Hub } from "../../src/http/index.ts"
import { stopAll, type Child } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"

afterAll(stopAll)

const TRACE = "0af7651916cd43dd8448eb7b319ad0a1"
const VALID = `00-${TRACE}-b7ad6b7169203331-01`
const SMALL = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"

describe("a hub's client sending a trace context", () => {
  let hub: Hub
  let worker: Child
  beforeAll(async () => {
    hub = await createHub({ port: 0 })
    worker = await startWorker(hub.url, "shop")
  })
  afterAll(async () => {
    await worker?.kill()
    await hub?.close()
  })

  /** The headers the worker's handler saw for a request with `headers`. */
  const seenBy = async (headers: Record<string, string>) =>
    (await (await fetch(`${hub.url}/headers`, { headers })).json()) as Record<string, string>

  test("a 12,000-character tracestate reaches the worker as its whole members that fit in 512 characters", async () => {
    const big = Array.from({ length: 24 }, (_, i) => `m${i}${"k".repeat(240)}=${"v".repeat(256)}`)
    const tracestate = [SMALL, ...big].join(",")
    expect(tracestate.length).toBeGreaterThan(12_000)
    const seen = await seenBy({ traceparent: VALID, tracestate })
    expect(seen.traceparent).toBe(VALID)
    expect(seen.tracestate).toBe(SMALL)
  })

  test("a version-ff traceparent reaches the worker as neither a traceparent nor a tracestate", async () => {
    const seen = await seenBy({ traceparent: `ff-${TRACE}-b7ad6b7169203331-01`, tracestate: SMALL, "x-other": "1" })
    expect(seen["x-other"]).toBe("1")
    expect(seen.traceparent).toBeUndefined()
    expect(seen.tracestate).toBeUndefined()
  })
})
