// Resuming a broken SSE stream of the MCP Streamable HTTP transport with Last-Event-ID: raw fetch that drops the
// connection mid-answer and comes back, and the SDK client whose fetch breaks a stream under it.
import { describe, expect, test } from "bun:test"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { McpHttpListenOptions } from "../../src/stdio/index.ts"
import { everything, withBus } from "../support/stdio/stdio.ts"

const SSE = { "content-type": "application/json", accept: "application/json, text/event-stream" }

interface SseEvent {
  id?: string
  data: string
}

/** Reads SSE events from `reader` until `stop` says so or the stream ends; `got` collects them. */
async function readEvents(
  reader: { read(): Promise<{ value?: Uint8Array; done: boolean }> },
  got: SseEvent[],
  stop: (e: SseEvent) => boolean,
): Promise<void> {
  const decoder = new TextDecoder()
  let buf = ""
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buf += decoder.decode(value, { stream: true })
    for (let at = buf.indexOf("\n\n"); at >= 0; at = buf.indexOf("\n\n")) {
      const block = buf.slice(0, at)
      buf = buf.slice(at + 2)
      if (block.startsWith(":")) continue
      const e: SseEvent = { data: "" }
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) e.id = line.slice(4)
        if (line.startsWith("data: ")) e.data = line.slice(6)
      }
      got.push(e)
      if (stop(e)) return
    }
  }
}

async function withSession(
  options: McpHttpListenOptions,
  fn: (url: string, post: (body: object, headers?: Record<string, string>) => Promise<Response>) => Promise<void>,
): Promise<void> {
  await withBus(everything(1), async (bus) => {
    const { url } = await bus.listen("http:127.0.0.1:0", options)
    const init = {
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: { sampling: {} },
        clientInfo: { name: "raw", version: "1" },
      },
    }
    const r = await fetch(url, {
      method: "POST",
      headers: { ...SSE, accept: "application/json" },
      body: JSON.stringify(init),
    })
    await r.json()
    const session = r.headers.get("mcp-session-id")!
    const post = (body: object, headers: Record<string, string> = {}) =>
      fetch(url, {
        method: "POST",
        headers: { ...SSE, "mcp-session-id": session, ...headers },
        body: JSON.stringify(body),
      })
    await post({ jsonrpc: "2.0", method: "notifications/initialized" })
    await fn(url, (body, headers) => post(body, headers))
  })
}

const longCall = (id: number, steps: number) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: {
    name: "trigger-long-running-operation",
    arguments: { duration: steps * 0.2, steps },
    _meta: { progressToken: "p" },
  },
})
const progressOf = (events: SseEvent[]) =>
  events.filter((e) => e.data.includes("notifications/progress")).map((e) => JSON.parse(e.data).params.progress)

describe("MCP Streamable HTTP: SSE event ids and Last-Event-ID", () => {
  test("a POST stream dropped after its first progress is resumed by a GET with Last-Event-ID: every progress once, then the answer", async () => {
    await withSession({}, async (url, post) => {
      const r = await post(longCall(7, 5))
      const session = r.headers.get("mcp-session-id")!
      const first: SseEvent[] = []
      const reader = r.body!.getReader()
      await readEvents(reader, first, (e) => e.data.includes("notifications/progress"))
      await reader.cancel()
      expect(first[0]).toEqual({ id: expect.stringMatching(/^\d+-0$/), data: "" }) // the priming event
      const last = first.at(-1)!.id!
      const again = await fetch(url, {
        headers: { accept: "text/event-stream", "mcp-session-id": session, "last-event-id": last },
      })
      expect(again.status).toBe(200)
      const rest: SseEvent[] = []
      await readEvents(again.body!.getReader(), rest, () => false)
      const all = [...first, ...rest]
      expect(progressOf(all)).toEqual([1, 2, 3, 4, 5])
      expect(JSON.parse(all.at(-1)!.data)).toMatchObject({ id: 7, result: { content: [{ type: "text" }] } })
      const ids = all.map((e) => e.id!)
      expect(new Set(ids).size).toBe(ids.length)
      // the stream is finished and everything after its last id was sent: nothing more (204, not another replay)
      const done = await fetch(url, {
        headers: { accept: "text/event-stream", "mcp-session-id": session, "last-event-id": ids.at(-1)! },
      })
      expect(done.status).toBe(204)
    })
  }, 60_000)

  test("the GET stream: a sampling request sent while it is broken is replayed on resumption, and its answer completes the call", async () => {
    await withSession({}, async (url, post) => {
      const session = (await post({ jsonrpc: "2.0", id: 1, method: "ping" })).headers.get("mcp-session-id")!
      const get = await fetch(url, { headers: { accept: "text/event-stream", "mcp-session-id": session } })
      const primed: SseEvent[] = []
      const reader = get.body!.getReader()
      await readEvents(reader, primed, () => true)
      await reader.cancel()
      const call = {
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: { name: "trigger-sampling-request", arguments: { prompt: "hi" } },
      }
      const answer = post(call, { accept: "application/json" }).then((r) => r.json())
      const again = await fetch(url, {
        headers: { accept: "text/event-stream", "mcp-session-id": session, "last-event-id": primed[0]!.id! },
      })
      const got: SseEvent[] = []
      const resumed = again.body!.getReader()
      await readEvents(resumed, got, (e) => e.data.includes("sampling/createMessage"))
      const asked = JSON.parse(got.at(-1)!.data)
      const reply = { model: "m", role: "assistant", content: { type: "text", text: "sampled" } }
      expect((await post({ jsonrpc: "2.0", id: asked.id, result: reply })).status).toBe(202)
      expect(JSON.stringify(await answer)).toContain("sampled")
      await resumed.cancel()
    })
  }, 60_000)

  test("refusals: an id this session never issued 400; one whose events left the buffer 410 naming replayBufferBytes", async () => {
    await withSession({ replayBufferBytes: 400 }, async (url, post) => {
      const r = await post(longCall(3, 3))
      const session = r.headers.get("mcp-session-id")!
      const events: SseEvent[] = []
      await readEvents(r.body!.getReader(), events, () => false)
      expect(progressOf(events)).toEqual([1, 2, 3])
      const resume = (id: string) =>
        fetch(url, { headers: { accept: "text/event-stream", "mcp-session-id": session, "last-event-id": id } })
      const never = await resume("99-1")
      expect(never.status).toBe(400)
      expect(await never.text()).toContain("not issued in this session")
      // an event number past the newest, on a stream that exists, and stream 0 (numbers start at 1): never issued
      const stream = events[0]!.id!.split("-")[0]
      for (const id of [`${stream}-99999999999999999999`, `${stream}-${events.length + 50}`, "0-0", "0-1"])
        expect([id, (await resume(id)).status]).toEqual([id, 400])
      const old = await resume(events[0]!.id!)
      expect(old.status).toBe(410)
      expect(await old.text()).toContain("replayBufferBytes: 400")
    })
  }, 60_000)

  test("the SDK client whose POST stream breaks after the first progress resumes it itself: all progress, the result", async () => {
    await withSession({}, async (url) => {
      let broken = 0
      // a network fault under the SDK: the first SSE answer to a tools/call stops after its first progress event
      const faulty: FetchLike = async (input, init) => {
        const r = await fetch(input, init)
        const isCall = typeof init?.body === "string" && init.body.includes('"tools/call"')
        if (!isCall || broken++ > 0 || !r.headers.get("content-type")?.includes("event-stream")) return r
        const reader = r.body!.getReader()
        let seen = ""
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            const { value, done } = await reader.read()
            if (done) return c.close()
            seen += new TextDecoder().decode(value)
            c.enqueue(value)
            if (seen.includes("notifications/progress")) {
              await reader.cancel()
              c.error(new Error("connection reset"))
            }
          },
        })
        return new Response(body, { status: r.status, headers: r.headers })
      }
      const client = new Client({ name: "resume-test", version: "1" })
      const transport = new StreamableHTTPClientTransport(new URL(url), {
        fetch: faulty,
        reconnectionOptions: {
          initialReconnectionDelay: 50,
          maxReconnectionDelay: 50,
          reconnectionDelayGrowFactor: 1,
          maxRetries: 3,
        },
      })
      await client.connect(transport)
      try {
        const progress: number[] = []
        const r = await client.callTool(
          { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 5 } },
          undefined,
          { onprogress: (p) => progress.push(p.progress) },
        )
        expect(broken).toBe(1)
        expect(JSON.stringify(r)).toContain("Long running operation completed")
        expect(progress).toEqual([1, 2, 3, 4, 5])
      } finally {
        await client.close()
      }
    })
  }, 60_000)
})
