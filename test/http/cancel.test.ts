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
