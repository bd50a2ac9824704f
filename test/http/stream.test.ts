// Responses stream through the hub on the core's streams (docs/PROTOCOL.md §9.9): chunk by chunk as the worker
// produces them, large ones intact, the client leaving gives the request up, SSE-style routes work, and a hub that
// offers no stream window still gets large bodies through the old pulled chunks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { connect } from "node:net"
import { join } from "node:path"
import { createHub, type Hub, type HubHealth } from "../../src/http/index.ts"
import { FIXTURES, pattern, sha256, spawn, stopAll, until, type Child } from "../support/helpers.ts"
import { SseReader } from "../support/http/http.ts"

afterAll(stopAll)

const MiB = 1024 * 1024

async function startStreamWorker(hubUrl: string): Promise<Child> {
  const p = spawn([process.execPath, join(FIXTURES, "http/http-stream-worker.ts"), hubUrl, "streams"])
  try {
    await p.waitLine(/^ready \d+$/)
  } catch (e) {
    await p.kill()
    throw e
  }
  return p
}

const health = async (hub: Hub) => (await (await fetch(`${hub.url}/health`)).json()) as HubHealth
const stats = async (hub: Hub) => (await (await fetch(`${hub.url}/stats`)).json()) as { streams: number }
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b)
/** x-slotbus-set-cookie values a worker may send that are no JSON array of header-safe strings. */
const BAD_COOKIES = ["not json", '{"a":1}', "[1,2]", '"a=1"', '["a=1\\nb=2"]', "null"]

/** Reads a body to its end (after `first`, read already): how many bytes and their sha256. */
async function drain(reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }, first: Uint8Array[] = []) {
  const hasher = new Bun.CryptoHasher("sha256")
  let length = 0
  for (const c of first) (length += c.length), hasher.update(c)
  for (;;) {
    const r = await reader.read()
    if (r.done || !r.value) break
    length += r.value.length
    hasher.update(r.value)
  }
  return { length, sha: hasher.digest("hex") }
}

describe("a hub offering stream windows (the default)", () => {
  let hub: Hub
  let worker: Child

  beforeAll(async () => {
    hub = await createHub({ port: 0, slots: 2, quiet: true })
    worker = await startStreamWorker(hub.url)
  })
  afterAll(async () => {
    await worker.kill()
    await hub.close()
  })

  test("a body reaches the client chunk by chunk: chunk 1 arrives before chunk 2 exists", async () => {
    const before = (await health(hub)).counters.streamedResponses
    const res = await fetch(`${hub.url}/steps/a`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("text/plain")
    expect(res.headers.get("x-steps")).toBe("a")
    const reader = res.body!.getReader()
    // Chunk 2 is produced only after the POST below; a hub that buffered the body would never get here.
    const one = await reader.read()
    expect(text(one.value)).toBe("one\n")
    const go = await fetch(`${hub.url}/steps/a/go`, { method: "POST" })
    expect(await go.json()).toEqual({ produced: 1 }) // the client had chunk 1 while chunk 2 did not exist
    const two = await reader.read()
    expect(text(two.value)).toBe("two\n")
    expect((await reader.read()).done).toBe(true)
    const h = await health(hub)
    expect(h.counters.streamedResponses).toBe(before + 1)
    expect(h.workers[0]!.inFlight).toBe(0)
    expect((await stats(hub)).streams).toBe(0) // no chunks waiting to be pulled: the core streamed it
  })

  test("an answer that is all there when the handler returns goes whole, sent with its length; one made over time streams", async () => {
    const before = (await health(hub)).counters.streamedResponses
    const whole = await fetch(`${hub.url}/steps/w/go`, { method: "POST" }) // a Response.json
    expect(whole.headers.get("content-length")).toBe(String('{"produced":0}'.length))
    expect(whole.headers.get("transfer-encoding")).toBeNull()
    expect(await whole.json()).toEqual({ produced: 0 })
    const ready = await fetch(`${hub.url}/big?bytes=${256 * 1024}&seed=3&as=response`) // a Response of bytes, < window
    expect(ready.headers.get("content-length")).toBe(String(256 * 1024))
    expect((await drain(ready.body!.getReader())).sha).toBe(sha256(pattern(256 * 1024, 3)))
    const made = await fetch(`${hub.url}/steps/m`) // "two" waits for its POST: the head cannot wait for the end
    expect(made.headers.get("transfer-encoding")).toBe("chunked")
    const reader = made.body!.getReader()
    expect(text((await reader.read()).value)).toBe("one\n")
    await fetch(`${hub.url}/steps/m/go`, { method: "POST" })
    expect(text((await reader.read()).value)).toBe("two\n")
    expect((await reader.read()).done).toBe(true)
    expect((await health(hub)).counters.streamedResponses).toBe(before + 1)
  })

  test.each(["stream", "bytes", "response"])(
    "a 32 MiB body given as %s streams to the client with every byte correct",
    async (as) => {
      const bytes = 32 * MiB
      const res = await fetch(`${hub.url}/big?bytes=${bytes}&seed=5&as=${as}`)
      expect(res.status).toBe(200)
      const reader = res.body!.getReader()
      const first = await reader.read()
      expect((await stats(hub)).streams).toBe(0) // streamed by the core, not waiting in the old chunks
      const got = await drain(reader, [first.value!])
      expect(got.length).toBe(bytes)
      expect(got.sha).toBe(sha256(pattern(bytes, 5)))
    },
  )

  test("an SSE-style text/event-stream route: each event reaches the client as the worker sends it", async () => {
    const res = await fetch(`${hub.url}/sse/s1`, { headers: { accept: "text/event-stream" } })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("text/event-stream")
    expect(res.headers.get("cache-control")).toBe("no-cache")
    const sse = new SseReader(res)
    expect(await sse.next((m) => m.id === "1")).toEqual({ event: "tick", id: "1", data: '{"n":1}' })
    for (const n of [2, 3]) {
      // Event n exists only once this POST has been answered: the client held event n - 1 before.
      expect(await (await fetch(`${hub.url}/sse/s1/go`, { method: "POST" })).json()).toEqual({ produced: n - 1 })
      expect(await sse.next((m) => m.id === String(n))).toEqual({ event: "tick", id: String(n), data: `{"n":${n}}` })
    }
    await expect(sse.next((m) => m.id === "4")).rejects.toThrow("SSE stream ended")
  })

  test("a client that disconnects mid-stream aborts the worker's req.signal and cancels its body; the slot returns", async () => {
    const before = (await health(hub)).counters.clientAborts
    const socket = connect(hub.port, "127.0.0.1")
    socket.on("error", () => {})
    let received = 0
    socket.on("data", (d) => (received += d.length))
    socket.write("GET /watch/raw HTTP/1.1\r\nhost: x\r\n\r\n")
    await until(() => received > 64 * 1024, "the client got the head and the first chunk")
    socket.destroy() // hangs up with the body streaming
    await worker.waitLine(/^cancelled raw AbortError$/)
    await worker.waitLine(/^aborted raw AbortError$/)
    await until(async () => {
      const h = await health(hub)
      return h.workers[0]!.slotsInUse === 0 && h.workers[0]!.inFlight === 0
    }, "the slot went back and nothing is in flight")
    expect((await health(hub)).counters.clientAborts).toBe(before + 1)
  })

  test("fetch clients that abort mid-stream, more of them than slots: each is given up, then the hub still answers", async () => {
    for (let i = 0; i < 5; i++) {
      const ctl = new AbortController()
      const res = await fetch(`${hub.url}/watch/f${i}`, { signal: ctl.signal })
      expect(res.status).toBe(200)
      const reader = res.body!.getReader()
      expect((await reader.read()).done).toBe(false)
      ctl.abort()
      await reader.cancel().catch(() => {})
      await worker.waitLine(new RegExp(`^cancelled f${i} AbortError$`))
      const seen = (await (await fetch(`${hub.url}/seen/f${i}`)).json()) as { aborted: string; chunks: number }
      expect(seen.aborted).toBe("AbortError")
      // Back-pressure: the worker produced what the window and the sockets hold, not an endless body.
      expect(seen.chunks).toBeLessThan(1024)
    }
    const res = await fetch(`${hub.url}/steps/after`)
    const reader = res.body!.getReader()
    expect(text((await reader.read()).value)).toBe("one\n")
    await fetch(`${hub.url}/steps/after/go`, { method: "POST" })
    expect(text((await reader.read()).value)).toBe("two\n")
    await until(async () => (await health(hub)).workers[0]!.slotsInUse === 0, "every slot went back")
  })

  test("a body that fails after the head cuts the connection; the worker logs the error, the hub counts it", async () => {
    const before = (await health(hub)).counters.workerErrors
    const res = await fetch(`${hub.url}/broken/b1`)
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    expect(text((await reader.read()).value)).toBe("partial\n")
    await fetch(`${hub.url}/broken/b1/go`, { method: "POST" })
    await expect(reader.read()).rejects.toBeDefined()
    expect((await health(hub)).counters.workerErrors).toBe(before + 1)
    await until(() => worker.stderr.includes("the disk is on fire"), "the worker logged the error")
    expect(worker.stderr).toContain("the response body of GET /broken/:id failed while streaming")
  })

  test("HEAD on a streaming route: headers only, the worker's body given up, no client abort counted", async () => {
    const before = (await health(hub)).counters.clientAborts
    const res = await fetch(`${hub.url}/watch/head`, { method: "HEAD" })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe("")
    await worker.waitLine(/^cancelled head AbortError$/)
    await until(async () => (await health(hub)).workers[0]!.slotsInUse === 0, "the slot went back")
    expect((await health(hub)).counters.clientAborts).toBe(before)
  })
  test.each(["whole", "stream"])(
    "a worker's malformed x-slotbus-set-cookie (%s answer) is a counted 502: nothing stays in flight, the body is given up, every slot comes back",
    async (as) => {
      const before = await health(hub)
      for (const [i, value] of BAD_COOKIES.entries()) {
        const id = `cookie-${as}-${i}`
        const res = await fetch(`${hub.url}/bad-cookie/${id}?as=${as}&value=${encodeURIComponent(value)}`)
        expect(res.status).toBe(502)
        expect(((await res.json()) as { message: string }).message).toContain("malformed x-slotbus-set-cookie")
        if (as === "stream") await worker.waitLine(new RegExp(`^cancelled ${id} `))
      }
      const h = await health(hub)
      expect(h.counters.badGateway).toBe(before.counters.badGateway + BAD_COOKIES.length)
      expect(h.workers[0]!.inFlight).toBe(before.workers[0]!.inFlight)
      // Both slots serve again at once: two endless bodies stream side by side.
      const readers = await Promise.all(
        ["both-a", "both-b"].map(async (id) => {
          const res = await fetch(`${hub.url}/watch/${id}-${as}`)
          const reader = res.body!.getReader()
          expect((await reader.read()).done).toBe(false)
          return reader
        }),
      )
      for (const r of readers) await r.cancel()
      await until(async () => {
        const w = (await health(hub)).workers[0]!
        return w.slotsInUse === 0 && w.inFlight === 0
      }, "the slots went back and nothing is in flight")
    },
  )
})

// What a worker meets behind a hub from before streams (and what a worker from before streams does behind this hub):
// no window, so large bodies travel in the chunks the hub pulls (x-slotbus-stream, { op: "pull" }).
describe("a hub offering no stream window (streamWindowBytes: 0)", () => {
  let hub: Hub
  let worker: Child

  beforeAll(async () => {
    hub = await createHub({ port: 0, slots: 2, streamWindowBytes: 0, quiet: true })
    worker = await startStreamWorker(hub.url)
  })
  afterAll(async () => {
    await worker.kill()
    await hub.close()
  })

  test.each(["stream", "bytes", "response"])(
    "a 32 MiB body given as %s arrives intact in pulled chunks",
    async (as) => {
      const bytes = 32 * MiB
      const before = (await health(hub)).counters.streamedResponses
      const res = await fetch(`${hub.url}/big?bytes=${bytes}&seed=7&as=${as}`)
      expect(res.status).toBe(200)
      expect(res.headers.has("x-slotbus-stream")).toBe(false)
      const reader = res.body!.getReader()
      const first = await reader.read()
      expect((await stats(hub)).streams).toBe(1) // the rest waits in the worker for the hub to pull it
      const got = await drain(reader, [first.value!])
      expect(got.length).toBe(bytes)
      expect(got.sha).toBe(sha256(pattern(bytes, 7)))
      expect((await stats(hub)).streams).toBe(0)
      expect((await health(hub)).counters.streamedResponses).toBe(before + 1)
    },
  )

  test("a stream body is read to its end by the worker, then answered in one piece", async () => {
    const answer = fetch(`${hub.url}/sse/old`) // answered only once all three events exist
    for (let i = 0; i < 2; i++) await fetch(`${hub.url}/sse/old/go`, { method: "POST" })
    const res = await answer
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("text/event-stream")
    expect(await res.text()).toBe([1, 2, 3].map((n) => `event: tick\nid: ${n}\ndata: {"n":${n}}\n\n`).join(""))
  })

  test("a client that leaves mid-body cancels the worker's stream; the hub still answers", async () => {
    const ctl = new AbortController()
    const res = await fetch(`${hub.url}/watch/old`, { signal: ctl.signal })
    const reader = res.body!.getReader()
    expect((await reader.read()).done).toBe(false)
    ctl.abort()
    await reader.cancel().catch(() => {})
    await worker.waitLine(/^cancelled old /)
    await until(async () => (await stats(hub)).streams === 0, "the worker dropped the stream")
    expect((await fetch(`${hub.url}/seen/old`)).status).toBe(200)
  })
  test("a worker's malformed x-slotbus-set-cookie on a pulled answer is a counted 502 and its stream is cancelled", async () => {
    const before = (await health(hub)).counters.badGateway
    const res = await fetch(`${hub.url}/bad-cookie/old-cookie?as=stream`)
    expect(res.status).toBe(502)
    await res.body?.cancel()
    await worker.waitLine(/^cancelled old-cookie /)
    await until(async () => (await stats(hub)).streams === 0, "the worker dropped the stream")
    const h = await health(hub)
    expect(h.counters.badGateway).toBe(before + 1)
    expect(h.workers[0]!.inFlight).toBe(0)
  })
})
