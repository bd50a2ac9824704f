// In-process micro-benchmarks of slotbus's hot pieces, so a regression shows before it costs round trips.
// bun bench/slots/micro.ts
import { toArrayBuffer, type Pointer } from "bun:ffi"
import { bench, do_not_optimize, group, run, summary } from "mitata"
import { align8, headerPairs, readHead, writeHead } from "../../src/core/wire/codec.ts"
import { BusMetrics } from "../../src/core/observe/bus-metrics.ts"
import type { Endpoint, Pending } from "../../src/core/endpoint/endpoint.ts"
import { Kind, Msg, MSG_WORDS, loadNative } from "../../src/native/ffi.ts"
import { rawChannelPair } from "./channel-pair.ts"

const native = await loadNative()
const KiB = 1024

function arena(ch: Pointer, slot: number, response: 0 | 1): Uint8Array {
  const base = native.sb_region(ch)!
  return new Uint8Array(toArrayBuffer(base, native.sb_arena_offset(ch, slot, response), native.sb_arena_size(ch)))
}

const pair = await rawChannelPair()
const { hub, worker } = pair
const workerMsg = new Uint32Array(toArrayBuffer(native.sb_last_msg(worker)!, 0, MSG_WORDS * 4))

/** claim → publish → worker poll → complete → hub poll → release: one request's whole life, no waiting. */
function cycle(bytes: number): number {
  const slot = native.sb_hub_claim(hub)
  native.sb_hub_publish(hub, slot, Kind.RAW, 1, 0, bytes)
  const w = native.sb_worker_poll(worker)
  native.sb_worker_complete(worker, w, workerMsg[Msg.gen]!, 0, 0, 0, workerMsg[Msg.bodyLen]!)
  const h = native.sb_hub_poll(hub)
  native.sb_hub_release(hub, h)
  return h
}

const body4k = new Uint8Array(4 * KiB).fill(7)
const req = [arena(hub, 0, 0), arena(hub, 1, 0), arena(hub, 2, 0), arena(hub, 3, 0)]
const res = [arena(hub, 0, 1), arena(hub, 1, 1), arena(hub, 2, 1), arena(hub, 3, 1)]

/** The same with the copies a 4 KiB echo makes: into the request arena, across to the response arena, out. */
function cycleWithCopies(): Uint8Array {
  const slot = native.sb_hub_claim(hub)
  req[slot]!.set(body4k)
  native.sb_hub_publish(hub, slot, Kind.RAW, 1, 0, body4k.length)
  const w = native.sb_worker_poll(worker)
  const off = workerMsg[Msg.bodyOff]!
  res[w]!.set(req[w]!.subarray(off, off + workerMsg[Msg.bodyLen]!))
  native.sb_worker_complete(worker, w, workerMsg[Msg.gen]!, 0, 0, 0, workerMsg[Msg.bodyLen]!)
  const h = native.sb_hub_poll(hub)
  const out = res[h]!.slice(0, body4k.length)
  native.sb_hub_release(hub, h)
  return out
}

const strings = [
  "POST",
  "/api/v1/items?limit=20",
  ...headerPairs({
    "content-type": "application/json",
    accept: "*/*",
    "user-agent": "slotbus-micro/1",
    "x-request-id": "3f1c2a9e-77b0-4c8e-9d55-0a8a0f6b2e11",
  }),
]
const headBuf = new Uint8Array(16 * KiB)
const headLen = writeHead(headBuf, strings)

group("ffi call", () => {
  bench("sb_layout_hash() (no arguments)", () => native.sb_layout_hash())
  bench("sb_slot_state(chan, 0)", () => native.sb_slot_state(hub, 0))
  bench("sb_hub_poll(chan) on an empty ring: one spin-loop turn", () => native.sb_hub_poll(hub))
  bench("sb_worker_poll(chan) on an empty ring", () => native.sb_worker_poll(worker))
})

group("codec (src/core/wire/codec.ts)", () => {
  bench("writeHead: method, path, 4 headers", () => writeHead(headBuf, strings))
  bench("readHead: the same head", () => do_not_optimize(readHead(headBuf, headLen)))
  bench("headerPairs: 4-entry record", () => do_not_optimize(headerPairs({ a: "1", b: "2", c: "3", d: "4" })))
  bench("align8", () => align8(headLen))
})

// What a bus records per answered request: the quantile histogram it always kept, and the metrics (bus-metrics.ts)
// added for GET /metrics: the queue wait, the bus's and the worker index's duration histograms, the slowest list.
const busMetrics = new BusMetrics(0)
const joined = { workerIndex: -1, pid: 1 } as unknown as Endpoint
joined.workerIndex = busMetrics.takeWorkerIndex(joined)
const answeredReq = {
  strings: ["GET", "/x"],
  kind: Kind.HTTP,
  endpoint: joined,
  signal: undefined,
} as unknown as Pending
// round trips as a bus sees them: mostly 5-60 µs, one in 50 up to 2 ms
const times = Float64Array.from({ length: 4096 }, (_, i) => (i % 50 === 0 ? 2e6 : 5000 + 55000 * ((i * 0.618) % 1)))
let t = 0
summary(() => {
  group("per answered request (src/core/observe/bus-metrics.ts)", () => {
    bench("BusMetrics waited(0) + answered() (GET /metrics, bus.stats() quantiles)", () => {
      busMetrics.waited(0)
      busMetrics.answered(answeredReq, times[t++ & 4095]!, 200)
    })
  })
})

summary(() => {
  group("slot life, one process, native calls on a connected pair", () => {
    bench("claim → publish → poll → complete → poll → release (empty body)", () => cycle(0))
    bench("the same with a 4 KiB echo's three copies", () => do_not_optimize(cycleWithCopies()))
  })
})

try {
  await run()
} finally {
  pair.close()
}
