// Cancellation crosses the hub: a client that goes away aborts the worker handler's req.signal.
import { afterAll, expect, test } from "bun:test"
import { connect } from "node:net"
import { createHub } from "../../src/http/index.ts"
import { stopAll, until } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"

afterAll(stopAll)

test("an HTTP client that disconnects mid-request aborts req.signal in the worker's handler", async () => {
  await using hub = await createHub({ port: 0 })
  const w = await startWorker(hub.url, "shop")
  try {
    const socket = connect(hub.port, "127.0.0.1")
    socket.on("error", () => {})
    socket.write("GET /wait-abort HTTP/1.1\r\nhost: x\r\n\r\n")
    await w.waitLine(/^waiting$/)
    socket.destroy() // the client hangs up while the worker holds the request
    await w.waitLine(/^aborted AbortError$/)
    await until(
      async () =>
        ((await (await fetch(`${hub.url}/health`)).json()) as { counters: { clientAborts: number } }).counters
          .clientAborts === 1,
      "the hub counted the client abort",
    )
  } finally {
    await w.kill()
  }
})

test("a request the hub times out aborts req.signal in the worker's handler", async () => {
  await using hub = await createHub({ port: 0, timeoutMs: 300 })
  const w = await startWorker(hub.url, "shop")
  try {
    const res = await fetch(`${hub.url}/wait-abort`)
    expect(res.status).toBe(504)
    await w.waitLine(/^aborted AbortError$/)
  } finally {
    await w.kill()
  }
})

test("a client that hangs up mid-upload counts as a client abort, and the hub goes on answering", async () => {
  await using hub = await createHub({ port: 0 })
  const w = await startWorker(hub.url, "shop")
  try {
    await until(async () => (await fetch(`${hub.url}/items/1`)).status === 200, "the worker serves")
    for (const head of ["content-length: 100000", "transfer-encoding: chunked"]) {
      const socket = connect(hub.port, "127.0.0.1")
      socket.on("error", () => {})
      await new Promise((r) => socket.once("connect", r))
      const part = head.startsWith("content") ? "x".repeat(10) : "a\r\n0123456789\r\n"
      socket.write(`POST /echo HTTP/1.1\r\nhost: x\r\n${head}\r\n\r\n${part}`)
      await Bun.sleep(50)
      socket.destroy() // gone with the body half sent
    }
    await until(async () => (await health(hub)).counters.clientAborts === 2, "the hub counted both hang-ups")
    const h = await health(hub)
    expect(h.counters.requests - h.counters.responses).toBe(h.counters.clientAborts)
    expect((await fetch(`${hub.url}/items/1`)).status).toBe(200)
  } finally {
    await w.kill()
  }
})

async function health(hub: { url: string }) {
  return (await (await fetch(`${hub.url}/health`)).json()) as {
    counters: { clientAborts: number; requests: number; responses: number }
  }
}
