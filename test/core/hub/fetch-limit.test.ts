// bus.fetch refuses a body over maxBodyBytes while reading it: by its Content-Length before a byte is read, or as
// soon as more than the limit arrived, never after reading a body of any size whole; and gives up a body that stops
// coming at the request's timeoutMs or signal.
import { expect, test } from "bun:test"
import { createServer, Server } from "node:http"
import type { AddressInfo } from "node:net"
import { failureResponse, nodeHandler, PayloadTooLargeError, SlotBus, SlotWorker } from "../../../src/index.ts"
import { busName, rejection } from "../../support/helpers.ts"
import { rawAnswer } from "../../support/runtime/raw-http.ts"

const LIMIT = 1024 * 1024
const CHUNK = 64 * 1024

async function withBus(run: (bus: SlotBus) => Promise<void>) {
  await using bus = await SlotBus.listen(busName("fetch-limit"), { maxBodyBytes: LIMIT })
  const worker = await SlotWorker.connect(bus.name, (req) => String(req.body.length))
  try {
    await bus.waitForWorkers(1)
    await run(bus)
  } finally {
    await worker.close({ timeoutMs: 1000 })
  }
}

// A body of `total` bytes made only as it is read; `pulled` says how much was asked for.
function lazyBody(total: number) {
  const made = { pulled: 0, cancelled: false }
  const body = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (made.pulled >= total) return c.close()
        made.pulled += CHUNK
        c.enqueue(new Uint8Array(CHUNK).fill(1))
      },
      cancel: () => void (made.cancelled = true),
    },
    { highWaterMark: 0 },
  )
  return { body, made }
}

test("a streamed body without a length is refused once more than maxBodyBytes arrived, and the rest is not read", async () => {
  await withBus(async (bus) => {
    const { body, made } = lazyBody(256 * 1024 * 1024)
    const req = new Request("http://front/upload", { method: "POST", body, duplex: "half" } as RequestInit)
    const err = await rejection(bus.fetch(req))
    expect(err).toBeInstanceOf(PayloadTooLargeError)
    expect((err as Error).message).toContain(`over maxBodyBytes ${LIMIT}`)
    expect(made.pulled).toBeLessThanOrEqual(LIMIT + 2 * CHUNK) // not the 256 MiB on offer
    expect(made.cancelled).toBe(true)
    const ok = await bus.fetch(new Request("http://front/", { method: "POST", body: new Uint8Array(LIMIT) }))
    expect(await ok.text()).toBe(String(LIMIT)) // at the limit: served
  })
})

test("a body whose Content-Length is over maxBodyBytes is refused before it is read, through a real server", async () => {
  await withBus(async (bus) => {
    let seen: unknown
    using server = Bun.serve({
      port: 0,
      fetch: (req) =>
        bus.fetch(req).catch((e) => {
          seen = e
          return new Response("too large", { status: e instanceof PayloadTooLargeError ? 413 : 500 })
        }),
    })
    // A client that says 64 MiB follow (under Bun.serve's own limit) and sends three bytes: the answer cannot wait for the rest.
    const answer = Promise.withResolvers<string>()
    let got = ""
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: server.port!,
      socket: {
        data(_, chunk) {
          got += chunk.toString()
          if (got.includes("\r\n\r\n")) answer.resolve(got)
        },
        close: () => answer.resolve(got),
      },
    })
    try {
      socket.write(`POST /upload HTTP/1.1\r\nHost: front\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\nabc`)
      expect((await answer.promise).split(" ")[1]).toBe("413")
    } finally {
      socket.end()
    }
    expect((seen as Error).message).toContain(`request body is ${64 * 1024 * 1024} bytes, over maxBodyBytes ${LIMIT}`)
    const small = await fetch(server.url, { method: "POST", body: "hello" })
    expect(await small.text()).toBe("5")
  })
})

// A body that stops coming (a client that declared or began one and went quiet): the caller is not held past its
// timeoutMs, nor past its signal, and the body is let go (issue: a stalled upload held the caller and its bytes for
// good, whatever timeoutMs said).
function stalledBody() {
  const made = { cancelled: false }
  const body = new ReadableStream<Uint8Array>({
    start: (c) => c.enqueue(new Uint8Array(CHUNK).fill(1)), // then nothing, ever
    cancel: () => void (made.cancelled = true),
  })
  return { body, made }
}

test("a body that stops coming fails with TimeoutError at timeoutMs, and with the signal's reason when it aborts", async () => {
  await withBus(async (bus) => {
    const timed = stalledBody()
    const req = new Request("http://front/upload", { method: "POST", body: timed.body, duplex: "half" } as RequestInit)
    const err = await rejection(bus.fetch(req, { timeoutMs: 300 }))
    expect([(err as Error).name, (err as Error).message]).toEqual([
      "TimeoutError",
      "the request body stopped coming: nothing of it for timeoutMs (300 ms); given up",
    ]) // before: never settled
    expect(timed.made.cancelled).toBe(true)
    const aborted = stalledBody()
    const stop = new AbortController()
    const req2 = new Request("http://front/upload", {
      method: "POST",
      body: aborted.body,
      duplex: "half",
    } as RequestInit)
    const pending = rejection(bus.fetch(req2, { timeoutMs: 0, signal: stop.signal }))
    stop.abort(new Error("the caller left"))
    expect(((await pending) as Error).message).toBe("the caller left")
    expect(aborted.made.cancelled).toBe(true)
    expect(await (await bus.fetch(new Request("http://front/", { method: "POST", body: "ok" }))).text()).toBe("2")
  })
})

test("a slow upload that keeps coming is read to its end, however long past timeoutMs it takes", async () => {
  await withBus(async (bus) => {
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent === 10) return c.close()
        await Bun.sleep(100) // 10 chunks, 1 s in all, against a timeoutMs of 300
        sent++
        c.enqueue(new Uint8Array(1000))
      },
    })
    const req = new Request("http://front/upload", { method: "POST", body, duplex: "half" } as RequestInit)
    expect(await (await bus.fetch(req, { timeoutMs: 300 })).text()).toBe("10000")
  })
})

test.each(["Bun.serve", "node:http"])(
  "a client that declares a body and stops sending gets a 504 from a %s front at timeoutMs",
  async (front) => {
    await withBus(async (bus) => {
      const fetchOptions = { timeoutMs: 300 }
      const server =
        front === "Bun.serve"
          ? Bun.serve({ port: 0, fetch: (req) => bus.fetch(req, fetchOptions), error: failureResponse })
          : createServer(nodeHandler(bus, { fetch: fetchOptions })).listen(0, "127.0.0.1")
      if (server instanceof Server) await new Promise((r) => server.once("listening", r))
      const port = server instanceof Server ? (server.address() as AddressInfo).port : server.port!
      try {
        // a large body (read as it comes) and a small one (read at once): before, no answer, ever
        for (const length of [LIMIT, 2000]) {
          const head = `POST /upload HTTP/1.1\r\nHost: front\r\nContent-Length: ${length}\r\n\r\n`
          const answer = await rawAnswer(port, `${head}${"x".repeat(1000)}`)
          expect([length, answer.status, answer.json.name]).toEqual([length, 504, "TimeoutError"])
        }
      } finally {
        if (server instanceof Server) server.closeAllConnections(), server.close()
        else server.stop(true)
      }
    })
  },
)

test("CONNECT and TRACE through Bun.serve and bus.fetch get a 501, not the front's error page; the worker never sees them", async () => {
  await withBus(async (bus) => {
    let failed: unknown
    using server = Bun.serve({
      port: 0,
      fetch: (req) => bus.fetch(req),
      error: (e) => ((failed = e), new Response("the front's error page", { status: 500 })),
    })
    const before = bus.stats().requests
    // (Bun's parser refuses TRACK itself)
    for (const line of ["CONNECT example.com:443", "TRACE /x"]) {
      const a = await rawAnswer(server.port!, `${line} HTTP/1.1\r\nHost: example.com\r\n\r\n`)
      expect({ line, status: a.status, error: a.json.error }).toEqual({ line, status: 501, error: "not-implemented" })
    }
    expect(failed).toBeUndefined()
    expect(bus.stats().requests).toBe(before)
    const ok = await rawAnswer(server.port!, "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc")
    expect(ok.status).toBe(200) // the front still serves
  })
})
