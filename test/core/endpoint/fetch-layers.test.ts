// bus.fetch and the fetch-mode worker with their layers thinned (issue 58): the Request a handler gets is made as
// far as it is used, bus.fetch cuts the path from the URL, the Response is made from [name, value] pairs. What a
// handler and a caller see stays as it was.
import { afterEach, expect, test } from "bun:test"
import { bunChild, busName, type Child, rejection, stopAll, until } from "../../support/helpers.ts"
import { ProtocolError, SlotBus } from "../../../src/index.ts"
import { webResponse } from "../../../src/core/endpoint/response.ts"

afterEach(stopAll)
const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})

async function withWorker(fn: (bus: SlotBus, worker: Child) => Promise<void>) {
  const bus = await SlotBus.listen(busName("layers"))
  try {
    const worker = bunChild("core/fetch-layers-worker.ts", [bus.name])
    children.push(worker)
    await worker.waitLine(/^ready$/)
    await bus.waitForWorkers(1)
    await fn(bus, worker)
  } finally {
    await bus.close({ drain: false })
  }
}

test("a fetch-mode handler that never reads req.signal costs no AbortController, and one that reads it still aborts", async () => {
  await withWorker(async (bus, worker) => {
    for (let i = 0; i < 20; i++) await (await bus.fetch(new Request("http://x/made"))).json()
    const seen = (await (await bus.fetch(new Request("http://x/made"))).json()) as { made: number; isRequest: boolean }
    expect(seen).toEqual({ made: 0, isRequest: true })
    const ac = new AbortController()
    const pending = rejection(bus.fetch(new Request("http://x/wait", { signal: ac.signal })))
    await worker.waitLine(/^waiting$/)
    ac.abort()
    await pending
    await worker.waitLine(/^aborted AbortError$/)
  })
}, 60_000)

test("a fetch-mode handler's Request keeps method, headers (repeated names, each set-cookie) and a JSON body", async () => {
  await withWorker(async (bus) => {
    const headers = new Headers({ "x-one": "1", "content-type": "application/json" })
    headers.append("x-one", "2")
    headers.append("set-cookie", "a=1")
    headers.append("set-cookie", "b=2")
    const res = await bus.fetch(new Request("http://x/echo?q=1", { method: "POST", headers, body: '{"n":[1,2]}' }))
    const seen = (await res.json()) as { method: string; url: string; headers: [string, string][]; cookies: string[] }
    expect(seen).toMatchObject({ method: "POST", url: `http://${bus.name}/echo?q=1`, body: { n: [1, 2] } })
    expect(seen.headers).toContainEqual(["x-one", "1, 2"])
    expect(seen.cookies).toEqual(["a=1", "b=2"])
  })
}, 60_000)

test("bus.fetch hands the worker the path and query exactly as URL reads them, and parses no URL to do it", async () => {
  const urls = [
    "http://h/a?b=1#frag",
    "http://u:p@h:81/x%20y/?q=a%2Fb&r",
    "https://[::1]:8443/p;x/../y?z#w",
    "http://h/ünï?ß=é",
    "http://h",
    "http://h?only",
    "http://h/a#?not-a-query",
    "http://h/%zz?%",
  ]
  await withWorker(async (bus) => {
    const Real = globalThis.URL
    let parsed = 0
    globalThis.URL = class Counted extends Real {
      constructor(url: string | URL, base?: string | URL) {
        super(url, base)
        parsed++
      }
    } as typeof URL
    let seen: string[]
    try {
      seen = []
      for (const u of urls) seen.push(((await (await bus.fetch(new Request(u))).json()) as { url: string }).url)
    } finally {
      globalThis.URL = Real
    }
    expect(parsed).toBe(0)
    expect(seen).toEqual(
      urls.map((u) => {
        const url = new URL(new Request(u).url)
        return `http://${bus.name}${url.pathname}${url.search}`
      }),
    )
  })
}, 60_000)

test("bus.fetch's Response from a head with a name Headers refuses leaves that pair out and keeps the rest", async () => {
  const res = webResponse(
    201,
    ["x-a", "1", "bad name", "v", "set-cookie", "a=1", "set-cookie", "b=2"],
    new Uint8Array([104, 105]),
  )
  expect(res.status).toBe(201)
  expect([...res.headers].sort()).toEqual([
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
    ["x-a", "1"],
  ])
  expect(await res.text()).toBe("hi")
  expect(webResponse(204, ["x-a", "1"], new Uint8Array([1])).body).toBeNull()
  expect(() => webResponse(999, ["bad name", "v"], null)).toThrow(ProtocolError)
})

/** A Request that counts the reads of its signal (Bun makes a Request's signal when it is first read). */
function countedRequest(url: string, init?: RequestInit) {
  const req = new Request(url, init)
  const read = Object.getOwnPropertyDescriptor(Request.prototype, "signal")!.get!
  const counted = { req, reads: 0 }
  Object.defineProperty(req, "signal", { get: () => (counted.reads++, read.call(req)) })
  return counted
}

test("bus.fetch reads its Request's signal only once the request is out at a tick: a quick answer never makes it", async () => {
  await withWorker(async (bus, worker) => {
    // before: every request read it once (an AbortSignal and its listener per request); a loaded machine may hold
    // one answer past a tick, so of ten quick ones at least one must have gone unread
    const reads: number[] = []
    for (let i = 0; i < 10; i++) {
      const quick = countedRequest("http://x/made")
      expect((await bus.fetch(quick.req)).status).toBe(200)
      reads.push(quick.reads)
    }
    expect(Math.min(...reads)).toBe(0)
    // one still out at a tick is watched, and aborting it then cancels it on the worker
    const ac = new AbortController()
    const slow = countedRequest("http://x/wait", { signal: ac.signal })
    const pending = rejection(bus.fetch(slow.req))
    await worker.waitLine(/^waiting$/)
    await until(() => slow.reads > 0, "the tick read the signal")
    ac.abort()
    expect(((await pending) as Error).name).toBe("AbortError")
    await worker.waitLine(/^aborted AbortError$/)
    // one whose signal aborted before its first tick fails at that tick
    const gone = new AbortController()
    const early = rejection(bus.fetch(new Request("http://x/wait", { signal: gone.signal })))
    gone.abort()
    expect(((await early) as Error).name).toBe("AbortError")
  })
}, 60_000)
