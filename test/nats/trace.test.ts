// A request from another host's hub over NATS carries its trace context in its head (docs/PROTOCOL.md §6.2,
// §10.2); the worker reads it through the one W3C parser (issue 56 items 11 and 18). A raw NATS client plays the
// hub: its presence, then a request whose head holds a version-ff traceparent and a 12,000-character tracestate.
// Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import { connect } from "@nats-io/transport-node"
import { writePrefix } from "../../src/nats/wire.ts"
import { bunChild, busName, until } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the trace-over-NATS tests are skipped: ${skip}`)
const nats = natsPerFile(skip)
const { cleanup } = nats

const enc = new TextEncoder()
const TRACE = "0af7651916cd43dd8448eb7b319ad0a1"
const SMALL = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
const LONG_STATE = [SMALL, ...Array.from({ length: 24 }, (_, i) => `m${i}${"k".repeat(240)}=${"v".repeat(256)}`)]

/** A §10.2 request: the prefix (http, its head length, a 10 s wait), the head's strings, padding, no body. */
function request(strings: string[]): Uint8Array {
  const head = enc.encode(strings.map((s) => `${s}\0`).join(""))
  const out = new Uint8Array(16 + Math.ceil(head.length / 8) * 8)
  writePrefix(out, 1, head.length, 10_000)
  out.set(head, 16)
  return out
}

describe.skipIf(skip !== null)("a worker process served by another host's hub over NATS", () => {
  test("reads a version-ff traceparent as no context, and a valid one's 12,000-character tracestate as at most 512", async () => {
    const bus = busName("nats-trace")
    const root = `slotbus.${bus.replaceAll(".", "~")}`
    const nc = await connect({ servers: nats.url })
    cleanup.push(() => nc.close())
    const workers: string[] = []
    nc.subscribe(`${root}.hb`, { callback: (_, m) => void workers.push(JSON.parse(m.string()).worker) })
    const presence = () => nc.publish(`${root}.hub`, JSON.stringify({ v: 1, hub: "tester", heartbeatMs: 100 }))
    const beat = setInterval(presence, 50)
    cleanup.push(async () => clearInterval(beat))
    const worker = bunChild("core/trace-worker.ts", [bus, busName("nats-trace-topic"), "--nats", nats.url])
    cleanup.push(async () => void (await worker.kill()))
    await worker.waitLine(/^ready$/, 20_000)
    await until(() => workers.length > 0, "the worker's presence", 10_000)

    let n = 0
    /** What the worker's handler saw of a request with these head pairs. */
    const seen = async (pairs: string[]) => {
      const m = await nc.request(`${root}.req.${workers[0]}`, request(["GET", "/t", ...pairs]), {
        timeout: 15_000,
        reply: `${root}.re.tester.k.${++n}`,
        noMux: true,
      })
      const v = new DataView(m.data.buffer, m.data.byteOffset)
      expect({ flags: m.data[1], status: v.getUint32(4, true) }).toEqual({ flags: 0, status: 200 })
      const headLen = v.getUint32(8, true)
      return JSON.parse(m.string().slice(16 + Math.ceil(headLen / 8) * 8)) as Record<string, unknown>
    }
    const ff = await seen(["traceparent", `ff-${TRACE}-b7ad6b7169203331-01-\x1b]0;x`, "tracestate", SMALL])
    expect(ff.traceparent).toBeNull()
    expect(ff.tracestate).toBeUndefined()
    const valid = `00-${TRACE}-b7ad6b7169203331-01`
    const long = await seen(["traceparent", valid, "tracestate", LONG_STATE.join(",")])
    expect(long).toMatchObject({ traceparent: valid, tracestate: SMALL })
  }, 60_000)
})
