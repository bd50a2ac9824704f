// nodeHandler's request listener on node:http in this (Bun) process, over a stand-in for bus.fetch: what it makes of
// a node:http request and writes of a Response (node-http.test.ts runs it under Node with real workers).
import { afterEach, expect, test } from "bun:test"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { type AddressInfo, connect } from "node:net"
import {
  BusFullError,
  failureResponse,
  nodeHandler,
  PayloadTooLargeError,
  RemoteError,
  TimeoutError,
  WorkerGoneError,
} from "../../src/index.ts"
import { serveHttp } from "../../src/runtime/node/http.ts"
import { rawAnswer } from "../support/runtime/raw-http.ts"

let server: Server | undefined
afterEach(() => {
  server?.closeAllConnections()
  server?.close()
  server = undefined
})

async function serve(listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(listener).listen(0, "127.0.0.1")
  await new Promise((r) => server!.once("listening", r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

test("the worker's status, headers (each set-cookie apart) and body; HEAD gets the head alone", async () => {
  const seen: string[] = []
  const base = await serve(
    nodeHandler({
      fetch: async (req) => {
        seen.push(`${req.method} ${new URL(req.url).pathname} ${req.headers.get("x-a")} ${await req.text()}`)
        const headers = new Headers({ "x-b": "c" })
        headers.append("set-cookie", "a=1")
        headers.append("set-cookie", "b=2")
        return new Response("made", { status: 201, headers })
      },
    }),
  )
  const res = await fetch(`${base}/p?q=1`, { method: "POST", body: "sent", headers: { "x-a": "b" } })
  expect([res.status, res.headers.get("x-b"), res.headers.getSetCookie(), await res.text()]).toEqual([
    201,
    "c",
    ["a=1", "b=2"],
    "made",
  ])
  const head = await fetch(`${base}/h`, { method: "HEAD" })
  expect([head.status, await head.text()]).toEqual([201, ""])
  expect(seen).toEqual(["POST /p b sent", "HEAD /h null "])
})

test("a target whose URL would name another path is 400 and never fetched; one that only looks like it goes as sent", async () => {
  const seen: string[] = []
  const base = await serve(
    nodeHandler({ fetch: async (req) => (seen.push(new URL(req.url).pathname), new Response("ok")) }),
  )
  const port = Number(new URL(base).port)
  for (const target of ["/a/../b", "/a/.", "/a/%2e%2E/b", "/a/.%2e/b", "/a\\b", "//x/../b", "http://h/a/../b"])
    for (const method of ["GET", "POST"]) {
      const a = await rawAnswer(port, `${method} ${target} HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi`)
      expect([method, target, a.status, a.json.error]).toEqual([method, target, 400, "bad-request"])
    }
  expect(seen).toEqual([])
  for (const target of ["/a/.../b", "/a/..b/c..", "/a/%2e%2e%2e", "/a?b=/../c"])
    expect((await rawAnswer(port, `GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`)).status).toBe(200)
  expect(seen).toEqual(["/a/.../b", "/a/..b/c..", "/a/%2e%2e%2e", "/a"])
})

test("the worker's hop-by-hop headers are not passed on: the connection's are node:http's own", async () => {
  const base = await serve(
    nodeHandler({
      fetch: async () =>
        new Response("x".repeat(100_000), {
          headers: { "transfer-encoding": "chunked", connection: "close", "keep-alive": "timeout=1", "x-kept": "yes" },
        }),
    }),
  )
  const res = await fetch(base)
  // node:http says its own keep-alive, not the worker's
  expect([res.headers.get("x-kept"), res.headers.get("keep-alive"), (await res.text()).length]).toEqual([
    "yes",
    "timeout=5",
    100_000,
  ])
})

// before: a body a parser read reached the worker empty under its Content-Length (7, then 0 bytes), taken for none
test("a body a middleware read already fails the request (500 naming it), not an empty body; none sent still passes", async () => {
  const seen: string[] = []
  const handler = nodeHandler({
    fetch: async (req) => {
      const text = await req.text()
      seen.push(text)
      return new Response(`got ${text.length}`)
    },
  })
  const base = await serve((req, res) => {
    req.resume() // as a body parser reads it
    req.once("end", () => handler(req, res))
  })
  const signal = AbortSignal.timeout(30_000)
  const sent = await fetch(base, { method: "POST", body: "x".repeat(1000), signal })
  expect(sent.status).toBe(500)
  const failure = (await sent.json()) as { name: string; message: string }
  expect([failure.name, failure.message]).toEqual([
    "TypeError",
    expect.stringContaining("read before nodeHandler (a body parser such as express.json() ran first)"),
  ])
  const none = await fetch(base, { method: "POST", signal })
  expect([none.status, await none.text()]).toEqual([200, "got 0"])
  expect(seen).toEqual([""])
}, 60_000)

test("failureResponse: each failure as the HTTP hub answers it, its class named", async () => {
  const cases: [Error, number, string][] = [
    [new TimeoutError("late"), 504, "timeout"],
    [new BusFullError("full"), 503, "unavailable"],
    [new PayloadTooLargeError("big"), 413, "too-large"],
    [new RemoteError("threw", {}), 500, "worker-error"],
    [new WorkerGoneError("gone"), 502, "bad-gateway"],
    [new TypeError("bad"), 500, "internal"],
  ]
  for (const [e, status, error] of cases) {
    const res = failureResponse(e)
    expect([res.status, await res.json()]).toEqual([status, { error, name: e.name, message: e.message }])
  }
  expect(failureResponse(new BusFullError("full")).headers.get("retry-after")).toBe("1")
  // through nodeHandler: what fetch rejects with
  const base = await serve(nodeHandler({ fetch: () => Promise.reject(new WorkerGoneError("pid 1 died")) }))
  const res = await fetch(base)
  expect([res.status, await res.json()]).toEqual([
    502,
    { error: "bad-gateway", name: "WorkerGoneError", message: "pid 1 died" },
  ])
})

test("nodeHandler refuses what is not a bus", () => {
  expect(() => nodeHandler({} as never)).toThrow("nodeHandler takes a SlotBus (or anything with its fetch)")
})

test("nodeHandler refuses fetch options bus.fetch would refuse, up front: no request is answered 500 for them", () => {
  // before: accepted, then every request failed with 500 {"name":"RangeError","message":"timeoutMs must be …"}
  const bus = { fetch: async () => new Response("ok") }
  for (const [fetch, error] of [
    [{ timeoutMs: -1 }, RangeError],
    [{ streamIdleMs: 1.5 }, RangeError],
    [{ timeoutMs: "5s" }, TypeError],
    [{ timeout: 5000 }, TypeError],
    [{ signal: "x" }, TypeError],
    [{ idempotent: 1 }, TypeError],
    [{ traceparent: "00-nope" }, TypeError],
    [{ route: 7 }, TypeError],
  ] as const)
    expect(() => nodeHandler(bus, { fetch: fetch as never }), JSON.stringify(fetch)).toThrow(error)
  expect(() => nodeHandler(bus, { fetch: { timeoutMs: 0, streamIdleMs: 100, idempotent: true } })).not.toThrow()
})

test("a request a middleware left unfit for a Request (a header value with a newline) is answered 400, never thrown", async () => {
  const handler = nodeHandler({ fetch: async (req) => new Response(`got ${req.headers.get("x-a")}`) })
  const base = await serve((req, res) => {
    if (req.url === "/bad") req.rawHeaders.push("x-a", "one\ntwo") // as a middleware rewriting headers might
    handler(req, res)
  })
  const bad = await fetch(`${base}/bad`)
  expect([bad.status, bad.headers.get("connection"), await bad.json()]).toEqual([
    400,
    "close",
    { error: "bad-request", message: expect.stringContaining("this request makes no Request") },
  ])
  expect(await (await fetch(`${base}/good`, { headers: { "x-a": "b" } })).text()).toBe("got b")
})

test("serveHttp on an IPv6 address names it in brackets in the URL of a request without Host (HTTP/1.0)", async () => {
  const http = await serveHttp({ hostname: "::1", port: 0, fetch: (req) => new Response(req.url) })
  try {
    const sock = connect(http.port!, "::1")
    let got = ""
    sock.on("data", (d) => (got += d))
    const closed = new Promise((r) => sock.once("close", r))
    sock.end("GET /x HTTP/1.0\r\n\r\n")
    await closed
    expect([got.split("\r\n")[0], got.split("\r\n\r\n")[1]]).toEqual(["HTTP/1.1 200 OK", "http://[::1]/x"])
  } finally {
    await http.stop(true)
  }
})
