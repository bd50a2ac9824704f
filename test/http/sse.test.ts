import { afterAll, beforeAll, expect, test } from "bun:test"
import { connect } from "node:net"
import { createHub, type Hub, type HubHealth } from "../../src/http/index.ts"
import { spawn, stopAll, until, type Child } from "../support/helpers.ts"
import { curlSkip, SseReader, startWorker } from "../support/http/http.ts"

let hub: Hub
let worker: Child

beforeAll(async () => {
  hub = await createHub({ port: 0, heartbeatMs: 200, sseMaxBufferedBytes: 256 * 1024 })
  worker = await startWorker(hub.url, "chat")
})
afterAll(async () => {
  await stopAll()
  await hub.close()
})

const health = async () => (await (await fetch(`${hub.url}/health`)).json()) as HubHealth
const post = (path: string, body: unknown) =>
  fetch(hub.url + path, { method: "POST", body: JSON.stringify(body) }).then(
    (r) => r.json() as Promise<Record<string, number>>,
  )

async function open(path: string): Promise<{ sse: SseReader; abort: AbortController }> {
  const abort = new AbortController()
  const res = await fetch(hub.url + path, { signal: abort.signal })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toStartWith("text/event-stream")
  return { sse: new SseReader(res), abort }
}

test("an SSE client gets the worker's welcome and events pushed by exact path, by pattern and params, and to its connection", async () => {
  const a = await open("/sessions/7/events")
  const b = await open("/sessions/8/events")
  try {
    const welcome = await a.sse.next((m) => m.event === "welcome")
    expect(JSON.parse(welcome.data)).toEqual({ session: "7", pid: worker.pid })
    await b.sse.next((m) => m.event === "welcome")

    expect(await post("/push", { to: "/sessions/7/events", data: "by path", event: "note" })).toEqual({ delivered: 1 })
    expect(
      await post("/push", { to: { pattern: "/sessions/:id/events", params: { id: "8" } }, data: { by: "pattern" } }),
    ).toEqual({ delivered: 1 })
    expect(await post("/push", { to: { pattern: "/sessions/:id/events" }, data: "everyone" })).toEqual({ delivered: 2 })

    expect(await a.sse.next((m) => m.data === "by path")).toMatchObject({ event: "note" })
    expect(await b.sse.next((m) => m.data === '{"by":"pattern"}')).toMatchObject({ event: "message" })
    await a.sse.next((m) => m.data === "everyone")
    await b.sse.next((m) => m.data === "everyone")
    expect(a.sse.received.some((m) => m.data.includes("pattern"))).toBe(false)
    expect(b.sse.received.some((m) => m.data === "by path")).toBe(false)
  } finally {
    a.abort.abort()
    b.abort.abort()
  }
})

test("a worker can end a client's stream, and hears that it ended", async () => {
  const c = await open("/sessions/99/events")
  try {
    await c.sse.next((m) => m.event === "welcome")
    const [, conn] = (await worker.waitLine(/^sse-open (\S+) \/sessions\/99\/events$/))!
    expect(await post("/sessions/99/end", {})).toEqual({ ended: 1 })
    await expect(c.sse.next(() => false)).rejects.toThrow("SSE stream ended")
    await worker.waitLine(new RegExp(`^sse-close ${conn} worker$`))
  } finally {
    c.abort.abort()
  }
})

test("GET /events carries what workers emit, and ?types= filters it", async () => {
  const all = await open("/events")
  const some = await open("/events?types=order")
  try {
    const [userId] = (await post("/emit/user", { id: 1 })).ids as unknown as number[]
    await post("/emit/order", { total: 5 })
    const user = await all.sse.next((m) => m.event === "user")
    expect(JSON.parse(user.data)).toEqual({ id: 1 })
    expect(user.id).toBe(String(userId))
    await all.sse.next((m) => m.event === "order")
    expect(JSON.parse((await some.sse.next((m) => m.event === "order")).data)).toEqual({ total: 5 })
    expect(some.sse.received.some((m) => m.event === "user")).toBe(false)
  } finally {
    all.abort.abort()
    some.abort.abort()
  }
})

test("every SSE connection starts with retry: 500, so a cut-off browser comes back within half a second; sseRetryMs sets it, 0 sends none", async () => {
  const first = async (url: string) => {
    const ac = new AbortController()
    const res = await fetch(url, { signal: ac.signal })
    const { value } = await res.body!.getReader().read()
    ac.abort()
    return new TextDecoder().decode(value)
  }
  // a loaded machine may hand the first read a heartbeat too: what the stream starts with is what counts
  expect(await first(`${hub.url}/events`)).toStartWith(": connected\nretry: 500\n\n")
  expect(await first(`${hub.url}/sessions/7/events`)).toStartWith(": connected\nretry: 500\n\n")
  for (const [retry, text] of [
    [2500, ": connected\nretry: 2500\n\n"],
    [0, ": connected\n\n"],
  ] as const) {
    const other = await createHub({ port: 0, quiet: true, sseRetryMs: retry })
    try {
      const got = await first(`${other.url}/events`)
      expect(got).toStartWith(text)
      if (retry === 0) expect(got).not.toContain("retry:")
    } finally {
      await other.close()
    }
  }
  for (const bad of [-1, 1.5, 2 ** 31])
    await expect(createHub({ port: 0, sseRetryMs: bad })).rejects.toThrow(RangeError)
})

test("idle SSE connections get heartbeat comments", async () => {
  const c = await open("/events")
  try {
    await c.sse.next((m) => m.comment === "heartbeat")
  } finally {
    c.abort.abort()
  }
})

test.skipIf(curlSkip !== null)("a curl client's disconnect reaches the worker", async () => {
  const client = spawn(["curl", "-s", "-N", `${hub.url}/sessions/42/events`])
  try {
    await client.waitLine(/^event: welcome$/)
    const [, conn] = (await worker.waitLine(/^sse-open (\S+) \/sessions\/42\/events$/))!
    await client.kill()
    await worker.waitLine(new RegExp(`^sse-close ${conn} client$`))
    await until(async () => (await health()).sse.connections === 0, "the hub forgets the connection")
  } finally {
    await client.kill()
  }
})

test("a slow SSE client is dropped and counted while a fast one keeps receiving", async () => {
  const fast = await open("/events")
  const slow = connect(hub.port, "127.0.0.1")
  try {
    let got = 0
    slow.on("data", (d: Buffer) => {
      got += d.length
      slow.pause() // read the headers, then never again: the kernel buffers fill and the hub's queue grows
    })
    slow.write(`GET /events HTTP/1.1\r\nhost: x\r\n\r\n`)
    await until(() => got > 0, "the slow client is connected")
    const before = (await health()).counters.sseDropped
    const payload = "x".repeat(32 * 1024)
    let batch = 0
    await until(
      async () => {
        const mark = String(++batch)
        const res = await fetch(`${hub.url}/_slotbus/emit`, {
          method: "POST",
          headers: { authorization: `Bearer ${hub.token}` },
          body: JSON.stringify([
            ...Array.from({ length: 4 }, () => ({ type: "bulk", data: payload })),
            { type: "mark", data: mark },
          ]),
        })
        expect(res.status).toBe(200)
        // the fast client reads each batch before the next is sent, however slowly this process runs: it is never
        // more than one batch (128 KiB) behind, under the hub's 256 KiB limit
        await fast.sse.next((m) => m.event === "mark" && m.data === mark, 20_000)
        return (await health()).counters.sseDropped > before
      },
      "the slow client is dropped",
      20_000,
    )
    expect((await health()).counters.sseDropped).toBe(before + 1)
    expect((await health()).sse.eventsClients).toBe(1)
    await fetch(`${hub.url}/_slotbus/emit`, {
      method: "POST",
      headers: { authorization: `Bearer ${hub.token}` },
      body: JSON.stringify({ type: "last", data: "done" }),
    })
    await fast.sse.next((m) => m.event === "last", 20_000)
  } finally {
    slow.destroy()
    fast.abort.abort()
  }
})

test("when the worker holding a connection dies, the hub ends the client's stream so it can reconnect", async () => {
  const w = await startWorker(hub.url, "chat")
  const conns: { sse: SseReader; abort: AbortController }[] = []
  try {
    // Two workers share the route; open until one connection lands on the new worker.
    for (let i = 0; i < 8; i++) {
      const c = await open(`/sessions/${i}/events`)
      conns.push(c)
      const welcome = await c.sse.next((m) => m.event === "welcome")
      if (JSON.parse(welcome.data).pid === w.pid) break
    }
    const mine = conns.at(-1)!
    expect(JSON.parse((await mine.sse.next((m) => m.event === "welcome")).data).pid).toBe(w.pid)
    await w.kill()
    await expect(mine.sse.next(() => false, 10_000)).rejects.toThrow("SSE stream ended")
  } finally {
    for (const c of conns) c.abort.abort()
    await w.kill()
  }
})

test("an SSE open its worker dies under is answered 502, counted neither opened nor closed", async () => {
  await using own = await createHub({ port: 0, heartbeatMs: 200 })
  const w = await startWorker(own.url, "chat")
  try {
    const counters = async () => ((await (await fetch(`${own.url}/health`)).json()) as HubHealth).counters
    process.kill(w.pid, "SIGSTOP") // the open waits on a worker that cannot answer
    const opening = fetch(`${own.url}/sessions/1/events`)
    await Bun.sleep(100)
    process.kill(w.pid, "SIGKILL")
    expect((await opening).status).toBe(502)
    const c = await counters()
    expect([c.sseOpened, c.sseClosed]).toEqual([0, 0])
  } finally {
    await w.kill()
  }
})
