// respond(): what a request resolves with, as the Response a Bun.serve route returns, through a real Bun.serve, a real
// client and worker processes. A page (15–64 KiB) that arrives after its request's turn goes as a closed stream
// holding its bytes (Bun.serve writes it in two sends, not ~15: docs/perf/bun-late-write.md), so the client sees it
// chunked; everything else keeps its content-length. Each route says whether its answer came in its own turn (a
// front the scheduler stalls for the worker's 5 ms may collect it there, and then rightly sends bytes); a test of a
// late page asks again until one came late.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { RemoteError, respond, SlotBus, SlotResponse } from "../../../src/index.ts"
import { pumpTurns } from "../../../src/core/internal.ts"
import { busName, type Child, REPO, spawn, spawnWorker } from "../../support/helpers.ts"
import type { api } from "../../support/core/rpc-worker.ts"

let bus: SlotBus
let rpcBus: SlotBus
const procs: Child[] = []
let server: ReturnType<typeof Bun.serve>

const page = (n: number) => "<p>" + "x".repeat(n - 7) + "</p>"

beforeAll(async () => {
  bus = await SlotBus.listen(busName("respond"))
  rpcBus = await SlotBus.listen(busName("respond-rpc"))
  // workers that answer 5 ms later: in a turn after the request's (the hub's spin may catch a quicker answer in
  // the route's own turn, which respond() sends as bytes: the "/now" test)
  procs.push(await spawnWorker(bus.name, { delayMs: 5 }))
  const rpc = spawn([process.execPath, join(REPO, "test/support/core/rpc-worker.ts"), rpcBus.name])
  procs.push(rpc)
  await rpc.waitLine(/^ready$/, 20_000)
  const remote = rpcBus.remote<typeof api>()
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const answered = route(req)
      const turn = pumpTurns() // as respond() read it: after the request was sent
      return answered.then((res) => {
        res.headers.set("x-in-turn", String(pumpTurns() === turn))
        return res
      })
    },
  })
  function route(req: Request): Promise<Response> {
    const u = new URL(req.url)
    const n = Number(u.searchParams.get("n"))
    const body = new Uint8Array(n).fill(97)
    switch (u.pathname) {
      case "/call":
        return respond(bus.call(body))
      case "/request":
        return respond(bus.request({ method: "POST", path: "/", body }))
      case "/string":
        return respond(remote.echoLater(page(n), 5), { headers: { "content-type": "text/html" } })
      case "/utf8": // n characters of ?c, each 2 or 3 bytes in UTF-8: the window is in bytes
        return respond(remote.echoLater(u.searchParams.get("c")!.repeat(n), 5))
      case "/json":
        return respond(remote.echoLater({ text: "y".repeat(n) }, 5), { status: 201 })
      case "/now":
        return respond(Promise.resolve(body)) // resolved in the route's own turn
    }
    return Promise.resolve(new Response("no", { status: 404 }))
  }
})

afterAll(async () => {
  server?.stop(true)
  for (const p of procs) await p.kill()
  await bus?.close({ drain: false })
  await rpcBus?.close({ drain: false })
})

async function get(path: string, n: number) {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}${path.includes("?") ? "&" : "?"}n=${n}`)
  const bytes = new Uint8Array(await res.arrayBuffer())
  return {
    status: res.status,
    length: res.headers.get("content-length"),
    chunked: res.headers.get("transfer-encoding") === "chunked",
    type: res.headers.get("content-type"),
    inTurn: res.headers.get("x-in-turn") === "true",
    bytes,
  }
}

/** The first answer of up to 10 that came after its route's turn; each one before it was sent as bytes. */
async function getLate(path: string, n: number) {
  for (let i = 0; ; i++) {
    const r = await get(path, n)
    if (!r.inTurn || i === 9) return r
    expect(r).toMatchObject({ chunked: false, length: String(r.bytes.length) })
  }
}

describe("respond() answers a page that came late as a closed stream, the rest with its length", () => {
  test("bus.call's bytes: 40 000 chunked; 1000 and 100 000 with content-length; every byte there", async () => {
    const page40 = await getLate("/call", 40_000)
    expect(page40).toMatchObject({ status: 200, inTurn: false, chunked: true, length: null })
    expect(page40.bytes).toEqual(new Uint8Array(40_000).fill(97))
    for (const n of [1000, 100_000]) {
      const r = await get("/call", n)
      expect(r).toMatchObject({ status: 200, chunked: false, length: String(n) })
      expect(r.bytes).toEqual(new Uint8Array(n).fill(97))
    }
  })

  test("bus.request's SlotResponse, and SlotResponse.toResponse() itself: a late 40 000 chunked", async () => {
    expect(await getLate("/request", 40_000)).toMatchObject({ inTurn: false, chunked: true, length: null })
    expect(await get("/request", 2000)).toMatchObject({ status: 200, chunked: false, length: "2000" })
    const late = await bus.request({ method: "POST", path: "/", body: new Uint8Array(40_000) })
    expect(late).toBeInstanceOf(SlotResponse)
    const res = late.toResponse()
    expect(res.headers.get("content-length")).toBeNull()
    expect((await res.bytes()).length).toBe(40_000)
  })

  test("an RPC method's string keeps the route's content type; a value is JSON with the route's status", async () => {
    const html = await getLate("/string", 40_000)
    expect(html).toMatchObject({ status: 200, inTurn: false, chunked: true, type: "text/html" })
    expect(new TextDecoder().decode(html.bytes)).toBe(page(40_000))
    const small = await get("/string", 100)
    expect(small).toMatchObject({ chunked: false, length: "100", type: "text/html" })
    const json = await getLate("/json", 30_000)
    expect(json).toMatchObject({ status: 201, inTurn: false, chunked: true, type: "application/json;charset=utf-8" })
    expect(JSON.parse(new TextDecoder().decode(json.bytes))).toEqual({ text: "y".repeat(30_000) })
    const smallJson = await get("/json", 10)
    expect(smallJson).toMatchObject({ status: 201, chunked: false, type: "application/json;charset=utf-8" })
  })

  test("a string's size is its UTF-8 bytes: 20 000 'é' (40 000 B) chunked, 30 000 '€' (90 000 B) with its length", async () => {
    const held = await getLate("/utf8?c=%C3%A9", 20_000)
    expect(held).toMatchObject({ status: 200, inTurn: false, chunked: true, type: "text/plain;charset=utf-8" })
    expect(new TextDecoder().decode(held.bytes)).toBe("é".repeat(20_000))
    const big = await getLate("/utf8?c=%E2%82%AC", 30_000)
    expect(big).toMatchObject({ status: 200, inTurn: false, chunked: false, length: "90000" })
    expect(new TextDecoder().decode(big.bytes)).toBe("€".repeat(30_000))
  })

  test("an answer there in the route's own turn is sent as bytes, with its length", async () => {
    expect(await get("/now", 40_000)).toMatchObject({ status: 200, chunked: false, length: "40000" })
  })

  test("an init beside an answer that has its own status and headers, or a value with no JSON form, is a TypeError", async () => {
    const r = await bus.request({ method: "GET", path: "/" })
    await expect(respond(r, { status: 200 })).rejects.toThrow(/SlotResponse carries its own status and headers/)
    await expect(respond(Promise.resolve(undefined))).rejects.toThrow(TypeError)
    await expect(respond(Promise.resolve(() => 1))).rejects.toThrow(/function has no JSON form/)
  })

  test("a request that fails rejects respond() with its own error", async () => {
    const remote = rpcBus.remote<typeof api>()
    const e = await respond(remote.failLater("no page today")).catch((e) => e)
    expect(e).toBeInstanceOf(RemoteError)
    expect(e).toMatchObject({ message: "TypeError: no page today" })
  })
})
