// Dropped SSE clients are closed, not just left unwritten: the TCP connection ends and the hub's fd is released.
import { expect, test } from "bun:test"
import { readdirSync } from "node:fs"
import { connect, type Socket } from "node:net"
import { createHub, type Hub } from "../../src/http/index.ts"
import { until } from "../support/helpers.ts"
import { SseReader } from "../support/http/http.ts"

const fdCount = () => readdirSync("/proc/self/fd").length

/** A raw client on `path` that reads the response head, then stops reading: its socket buffers fill up. */
async function stuckClient(port: number, path: string) {
  const socket = connect(port, "127.0.0.1")
  let got = 0
  let reading = false
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()))
  socket.on("error", () => {}) // a reset after the hub drops it is as good as an end
  socket.on("data", (d: Buffer) => {
    got += d.length
    if (!reading) socket.pause()
  })
  socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`)
  await until(() => got > 0, "the stuck client got the response head")
  return {
    socket,
    closed,
    /** Reads again: it takes what the hub left in its buffers, then sees the end the hub sent. */
    drain() {
      reading = true
      socket.resume()
    },
  }
}

/** POSTs to an internal endpoint over a raw socket with `connection: close`, so no pooled connection keeps an fd. */
function internalPost(hub: Hub, op: string, body: unknown): Promise<void> {
  const payload = Buffer.from(JSON.stringify(body))
  return new Promise((resolve, reject) => {
    const s: Socket = connect(hub.port, "127.0.0.1", () => {
      s.write(
        `POST /_slotbus/${op} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${hub.token}\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\nconnection: close\r\n\r\n`,
      )
      s.write(payload)
    })
    let head = ""
    s.on("data", (d: Buffer) => void (head ||= d.toString("latin1", 0, 12)))
    s.on("error", reject)
    s.on("close", () =>
      head.startsWith("HTTP/1.1 200") ? resolve() : reject(new Error(`emit answered ${JSON.stringify(head)}`)),
    )
  })
}

const bulk = (n: number, bytes: number) => Array.from({ length: n }, () => ({ type: "bulk", data: "x".repeat(bytes) }))

/** One SSE client and one emit, so whatever the hub and the runtime open lazily is open before counting. */
async function warmUp(hub: Hub) {
  const c = await stuckClient(hub.port, "/events")
  await internalPost(hub, "emit", { type: "warm", data: "1" })
  c.socket.destroy()
  await until(() => hub.health().sse.eventsClients === 0, "the warm-up client is gone")
}

test("a slow SSE client that is dropped has its connection closed and the hub's fd released", async () => {
  await using hub = await createHub({ port: 0, sseMaxBufferedBytes: 256 * 1024, heartbeatMs: 60_000 })
  await warmUp(hub)
  const base = fdCount()
  const slow = await stuckClient(hub.port, "/events")
  try {
    await until(
      async () => {
        await internalPost(hub, "emit", bulk(8, 32 * 1024))
        return hub.health().counters.sseDropped > 0
      },
      "the slow client is dropped",
      20_000,
    )
    expect(hub.health().counters.sseDropped).toBe(1)
    expect(hub.health().sse.eventsClients).toBe(0)
    // Only the client's own socket is left open: the hub closed its side although the client never read.
    await until(
      () => fdCount() <= base + 1,
      `the hub's fd count returns to baseline + the client's socket (${base + 1})`,
      20_000,
    )
    slow.drain()
    await slow.closed
    await until(() => fdCount() <= base, `the fd count returns to its baseline (${base})`)
  } finally {
    slow.socket.destroy()
  }
}, 40_000)

test("an SSE client that stops reading is closed after sseIdleTimeoutMs, though it is under the backlog limit", async () => {
  // Events are at most a quarter of the events ring: 4 MiB lets 512 KiB ones through.
  await using hub = await createHub({
    port: 0,
    sseMaxBufferedBytes: 256 * 1024 * 1024,
    sseIdleTimeoutMs: 500,
    heartbeatMs: 100,
    eventsCapacity: 4 * 1024 * 1024,
  })
  await warmUp(hub)
  const base = fdCount()
  const stuck = await stuckClient(hub.port, "/events")
  try {
    // Fill the kernel's buffers so that what the hub queues next waits; it never reaches the backlog limit.
    await until(
      async () => {
        await internalPost(hub, "emit", bulk(1, 512 * 1024))
        return hub.health().counters.sseIdleClosed > 0
      },
      "the stuck client is closed as idle",
      30_000,
    )
    const h = hub.health()
    expect(h.counters.sseIdleClosed).toBe(1)
    expect(h.counters.sseDropped).toBe(0)
    expect(h.sse.eventsClients).toBe(0)
    await until(
      () => fdCount() <= base + 1,
      `the hub's fd count returns to baseline + the client's socket (${base + 1})`,
      20_000,
    )
    stuck.drain()
    await stuck.closed
    await until(() => fdCount() <= base, `the fd count returns to its baseline (${base})`)
  } finally {
    stuck.socket.destroy()
  }
}, 40_000)

test("heartbeats keep a reading SSE client connected well past sseIdleTimeoutMs", async () => {
  await using hub = await createHub({ port: 0, sseIdleTimeoutMs: 200, heartbeatMs: 50 })
  const abort = new AbortController()
  const sse = new SseReader(await fetch(`${hub.url}/events`, { signal: abort.signal }))
  try {
    // 20 heartbeats are at least 1 s, five idle timeouts.
    await sse.next(() => sse.received.filter((m) => m.comment === "heartbeat").length >= 20)
    const h = hub.health()
    expect(h.counters.sseIdleClosed).toBe(0)
    expect(h.sse.eventsClients).toBe(1)
  } finally {
    abort.abort()
  }
})
