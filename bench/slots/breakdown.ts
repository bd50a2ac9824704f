// Where the time of one request goes: each stage of the HTTP hub path and of request()/call(), measured alone
// with mitata in one process, with the real code of each stage. docs/perf/request-path.md has the figures.
// bun bench/slots/breakdown.ts [filter regex]
import { bench, do_not_optimize, group, run } from "mitata"
import { SlotBus, SlotRequest, SlotWorker } from "../../src/core/index.ts"
import { channelPair } from "./channel-pair.ts"
import { headerPairs, headLength, pairEntries, readHead, writeHead, align8 } from "../../src/core/wire/codec.ts"
import { Kind, Msg, loadNative } from "../../src/native/ffi.ts"
import { parseRoute, RouteTable } from "../../src/http/routes.ts"
import { RequestServer } from "../../src/http/worker/request.ts"

const native = await loadNative()

// What wrk sends, as Bun.serve hands it to the hub.
const URL_ = "http://127.0.0.1:3000/items/42"
const CLIENT_HEADERS = { host: "127.0.0.1:3000" }
const pair = await channelPair()
const { hub, worker } = pair

// --- hub side: from Bun.serve's Request to a published slot ----------------------------------------------
const hubRoutes = new RouteTable<string>()
hubRoutes.add(parseRoute("GET", "/items/:id"), "bench")
const sampleReq = new Request(URL_, { headers: CLIENT_HEADERS })
const hubStrings = ["GET", "/items/42", ...headerPairs(sampleReq.headers)]
const reqArena = hub.arena(0, 0, 65536)

// --- worker side: the same request in slot 0 -------------------------------------------------------------
const headLen = writeHead(reqArena, [...hubStrings, "x-forwarded-for", "127.0.0.1"])
native.sb_hub_claim(hub.ptr)
native.sb_hub_publish(hub.ptr, 0, Kind.HTTP, 1, headLen, 0)
const wslot = native.sb_worker_poll(worker.ptr)
const gen = worker.msg[Msg.gen]!
const newReq = () => new SlotRequest("http", 1, worker, wslot, headLen, align8(headLen), 0)
const server = new RequestServer("bench", () => {})
server.add(parseRoute("GET", "/items/:id"), (req) => Response.json({ id: req.params.id }))

// A response in slot 0 as the worker writes it, for the hub's collect stage.
const replyHead = writeHead(worker.arena(wslot, 1, 65536), ["content-type", "application/json;charset=utf-8"])
const replyBody = new TextEncoder().encode('{"id":"42"}')
worker.arena(wslot, 1, 65536).set(replyBody, align8(replyHead))

group("HTTP hub path, hub side (per request)", () => {
  bench("HTTP parse (upper bound): new Request(url, headers) + .headers", () =>
    do_not_optimize(new Request(URL_, { headers: CLIENT_HEADERS }).headers),
  )
  bench("route match (hub RouteTable)", () => do_not_optimize(hubRoutes.match("GET", "/items/42")))
  bench("x-forwarded-for: headers.get + set", () => {
    const h = sampleReq.headers
    h.get("x-forwarded-for")
    h.set("x-forwarded-for", "127.0.0.1")
  })
  bench("head encode: headerPairs(Headers) + headLength + writeHead", () => {
    const s = ["GET", "/items/42", ...headerPairs(sampleReq.headers)]
    headLength(s)
    return writeHead(reqArena, s)
  })
  bench("hub collect: readHead + pairEntries + body slice", () => {
    const a = hub.arena(0, 1, 65536)
    const h = pairEntries(readHead(a, replyHead), 0)
    return do_not_optimize([h, a.slice(align8(replyHead), align8(replyHead) + replyBody.length)])
  })
  bench("borrowed answer: lend + WeakRef + FinalizationRegistry + release (detach)", () => {
    const buf = hub.lend(0, 1, align8(replyHead), replyBody.length)
    const w = new WeakRef(buf)
    const give = () => {}
    reg.register(buf, give, give)
    const copy = new Uint8Array(buf).slice()
    reg.unregister(give)
    buf.transfer(0)
    return do_not_optimize([w, copy])
  })
  bench("hub-side Response: new Response(bytes, { status, headers: record })", () =>
    do_not_optimize(
      new Response(replyBody, { status: 200, headers: { "content-type": "application/json;charset=utf-8" } }),
    ),
  )
})
const reg = new FinalizationRegistry<() => void>(() => {})

group("slot life (native calls, both ends in this process)", () => {
  bench("claim + publish", () => {
    const s = native.sb_hub_claim(hub.ptr)
    native.sb_hub_publish(hub.ptr, s, Kind.HTTP, 2, headLen, 0)
    const w = native.sb_worker_poll(worker.ptr)
    native.sb_worker_complete(worker.ptr, w, worker.msg[Msg.gen]!, 200, 0, replyHead, replyBody.length)
    native.sb_hub_release(hub.ptr, native.sb_hub_poll(hub.ptr))
  })
  bench("one FFI call (sb_hub_poll on an empty ring)", () => native.sb_hub_poll(hub.ptr))
  bench("Bun.nanoseconds()", () => Bun.nanoseconds())
  bench("sched_yield (sb_yield)", () => native.sb_yield())
})

group("HTTP hub path, worker side (per request)", () => {
  bench("worker decode: new SlotRequest + method/path/headers + retire", () => {
    const r = newReq()
    do_not_optimize([r.method, r.path, r.headers])
    r.retire()
  })
  bench(
    "RequestServer.serve(): route match + HubRequest + handler + Response encode (the worker SDK, async)",
    async () => {
      const r = newReq()
      do_not_optimize(await server.serve(r))
      r.retire()
    },
  )
  bench("handler: Response.json({ id })", () => do_not_optimize(Response.json({ id: "42" })))
  bench("Response encode: Response → headers + body bytes (await)", async () => {
    const res = Response.json({ id: "42" })
    const h: [string, string][] = []
    for (const [k, v] of res.headers) h.push([k, v])
    return do_not_optimize([h, new Uint8Array(await res.arrayBuffer())])
  })
  bench("Response encode: body via res.body stream reader", async () => {
    const res = Response.json({ id: "42" })
    const reader = res.body!.getReader()
    const parts = []
    for (;;) {
      const r = await reader.read()
      if (r.done) break
      parts.push(r.value)
    }
    return do_not_optimize(parts)
  })
  bench("completion: reply head + body into the slot (headerPairs + writeHead + set)", () => {
    const out = worker.arena(wslot, 1, 65536)
    const s = headerPairs([["content-type", "application/json;charset=utf-8"]])
    headLength(s)
    const hl = writeHead(out, s)
    out.set(replyBody, align8(hl))
    return hl
  })
})

// --- whole round trips in one process: every JS cost, no cross-process wake-up -----------------------------
// One thread runs both ends: poll once per turn (no synchronous spin, which would only starve the other end).
const INPROC = { spinMicros: 0, parkAfterMs: 1000 }
const bus = await SlotBus.listen(`breakdown-bus-${process.pid}`, { idle: INPROC })
const w = await SlotWorker.connect(
  bus.name,
  (req) =>
    req.kind === "raw"
      ? req.body.slice()
      : { status: 200, headers: { "content-type": "application/json" }, body: '{"id":"42"}' },
  { idle: INPROC },
)
await bus.waitForWorkers(1)
const body64 = new Uint8Array(64).fill(1)
const httpInit = { method: "GET", path: "/items/42", headers: { host: "127.0.0.1:3000" } }

group("round trips, hub and worker in this process (JS cost without wake-ups)", () => {
  bench("request() 1 in flight", async () => do_not_optimize(await bus.request(httpInit)))
  bench("request() 32 in flight (per batch of 32)", async () =>
    do_not_optimize(await Promise.all(Array.from({ length: 32 }, () => bus.request(httpInit)))),
  )
  bench("call(64 B) 1 in flight", async () => do_not_optimize(await bus.call(body64)))
  bench("call(64 B) 32 in flight (per batch of 32)", async () =>
    do_not_optimize(await Promise.all(Array.from({ length: 32 }, () => bus.call(body64)))),
  )
})

try {
  await run({ filter: process.argv[2] ? new RegExp(process.argv[2]) : undefined })
} finally {
  native.sb_worker_complete(worker.ptr, wslot, gen, 200, 0, 0, 0)
  pair.close()
  await w.close()
  await bus.close()
}
