// A client's own cancel over MCP Streamable HTTP (notifications/cancelled): the HTTP request or SSE stream that waits
// for the cancelled request's answer ends at once, its id is free again and its session can go idle; and refusals
// that must hold nothing (a refused or failed initialize, a DELETE of another protocol version, timers past their
// limit). Raw fetch against pools of @modelcontextprotocol/server-everything (or test/stdio/workers/worker.ts) on
// stdio, and the MCP SDK client.
import { describe, expect, test } from "bun:test"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { McpHttpListener, McpHttpListenOptions, StdioBus } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { everything, STDIO_WORKER, withBus } from "../support/stdio/stdio.ts"

const HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }
const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
}
type Answer = { id: unknown; result?: unknown; error?: { code: number; message: string } }

const post = (url: string, body: object, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { ...HEADERS, ...headers }, body: JSON.stringify(body) })

async function rawSession(url: string): Promise<string> {
  const r = await post(url, INIT, { accept: "application/json" })
  expect(r.status).toBe(200)
  await r.json()
  return r.headers.get("mcp-session-id")!
}

/** A tools/call of server-everything's long-running operation (10 s, a progress each second) under `id`. */
const longCall = (id: number | string) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: {
    name: "trigger-long-running-operation",
    arguments: { duration: 10, steps: 10 },
    _meta: { progressToken: `p-${id}` },
  },
})
const cancel = (requestId: unknown, reason = "the user pressed stop") => ({
  jsonrpc: "2.0",
  method: "notifications/cancelled",
  params: { requestId, reason },
})

async function withHttp(fn: (bus: StdioBus, l: McpHttpListener) => Promise<void>, options: McpHttpListenOptions = {}) {
  await withBus(everything(1), async (bus) => fn(bus, await bus.listen("http:127.0.0.1:0", options)))
}

describe("MCP Streamable HTTP: a client's notifications/cancelled", () => {
  test("a JSON answer's request: answered -32800 at once, its id free again, the bus gives it up, the session goes idle", async () => {
    await withHttp(
      async (bus, listener) => {
        const url = listener.url
        const sid = await rawSession(url)
        const json = { "mcp-session-id": sid, accept: "application/json" }
        const held = post(url, longCall(7), json)
        await until(() => bus.stats().pools[0]!.instances[0]!.inFlight === 1, "the call reached the worker", 10_000)
        expect((await post(url, cancel(7), json)).status).toBe(202)
        const answer = (await (await held).json()) as Answer
        expect(answer.id).toBe(7)
        expect(answer.error).toEqual({ code: -32800, message: "cancelled by the client: the user pressed stop" })
        const again = await post(url, { jsonrpc: "2.0", id: 7, method: "ping" }, json)
        expect(again.status).toBe(200)
        expect(((await again.json()) as Answer).result).toEqual({})
        // the worker keeps the operation and drops its answer: the bus gave it up and drops it off its books
        await until(() => bus.stats().stuckDropped === 1, "the given-up call dropped from the books", 10_000)
        // nothing in flight and no stream: the session ends as idle, and frees its place under the cap
        await until(() => listener.sessionCount === 0, "the idle session ended", 10_000)
        await rawSession(url)
      },
      { idleTimeoutMs: 500, maxSessionsPerInstance: 1 },
    )
  }, 60_000)

  test("an SSE answer's stream: its progress, then the -32800 error, then its end; a cancel naming nothing in flight is 202 and harmless", async () => {
    await withHttp(async (_bus, listener) => {
      const url = listener.url
      const sid = await rawSession(url)
      const res = await post(url, longCall("s"), { "mcp-session-id": sid })
      expect(res.headers.get("content-type")).toBe("text/event-stream")
      const reader = res.body!.getReader()
      let text = ""
      while (!text.includes("notifications/progress")) text += new TextDecoder().decode((await reader.read()).value)
      expect((await post(url, cancel("nothing-such"), { "mcp-session-id": sid })).status).toBe(202)
      expect((await post(url, cancel("s"), { "mcp-session-id": sid })).status).toBe(202)
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value)
      const last = text.trim().split("\n\n").at(-1)!
      const data = JSON.parse(
        last
          .split("\n")
          .find((l) => l.startsWith("data: "))!
          .slice(6),
      ) as Answer
      expect(data).toEqual({
        jsonrpc: "2.0",
        id: "s",
        error: { code: -32800, message: "cancelled by the client: the user pressed stop" },
      } as Answer)
    })
  }, 60_000)

  test("the SDK client's aborted calls (it sends the cancel itself): each one's POST stream ends", async () => {
    await withHttp(async (_bus, listener) => {
      const posts: Promise<void>[] = [] // each tools/call POST's answer, read to its end
      const fetchSeen = async (input: string | URL, init?: RequestInit) => {
        const res = await fetch(input, init)
        if (init?.method !== "POST" || !String(init.body).includes("tools/call") || !res.body) return res
        const [mine, theirs] = res.body.tee()
        posts.push(new Response(mine).text().then(() => {}))
        return new Response(theirs, res)
      }
      const client = new Client({ name: "slotbus-test", version: "1" })
      const transport = new StreamableHTTPClientTransport(new URL(listener.url), { fetch: fetchSeen })
      await client.connect(transport)
      try {
        for (let i = 0; i < 3; i++) {
          const stop = new AbortController()
          const call = client.callTool(
            { name: "trigger-long-running-operation", arguments: { duration: 10, steps: 10 } },
            undefined,
            { signal: stop.signal, onprogress: () => stop.abort("enough") },
          )
          await expect(call).rejects.toThrow()
        }
        await until(() => posts.length === 3, "three calls posted", 10_000)
        await Promise.all(posts) // each POST stream ended: none is held open for a result nobody wants
      } finally {
        await client.close()
      }
    })
  }, 60_000)
})

describe("MCP Streamable HTTP: refusals that hold nothing", () => {
  test("an initialize whose id is null, true or an object: 400, no session opened, so none is ended for it at the cap", async () => {
    await withHttp(
      async (bus, listener) => {
        const url = listener.url
        const real = await rawSession(url)
        for (const id of [null, true, { a: 1 }]) {
          const r = await post(url, { ...INIT, id }, { accept: "application/json" })
          expect(r.status).toBe(400)
          expect(r.headers.get("mcp-session-id")).toBeNull()
          expect(await r.text()).toContain("must be a string or a number")
        }
        expect(listener.sessionCount).toBe(1)
        expect(bus.clientCount).toBe(1)
        const ping = await post(url, { jsonrpc: "2.0", id: 2, method: "ping" }, { "mcp-session-id": real })
        expect(ping.status).toBe(200)
      },
      { maxSessionsPerInstance: 1 },
    )
  }, 60_000)

  test("DELETE with an unsupported MCP-Protocol-Version: 400 and the session goes on", async () => {
    await withHttp(async (_bus, listener) => {
      const sid = await rawSession(listener.url)
      const del = await fetch(listener.url, {
        method: "DELETE",
        headers: { "mcp-session-id": sid, "mcp-protocol-version": "1999-01-01" },
      })
      expect(del.status).toBe(400)
      expect(await del.text()).toContain("1999-01-01")
      expect(listener.sessionCount).toBe(1)
      const ok = await fetch(listener.url, {
        method: "DELETE",
        headers: { "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" },
      })
      expect(ok.status).toBe(200)
      expect(listener.sessionCount).toBe(0)
    })
  }, 60_000)

  test.each(["sseKeepAliveMs", "resumeWindowMs"])(
    "%s past a timer's limit (2^31 − 1 ms, where a timer fires at once) is a RangeError naming it",
    async (option) => {
      await withBus(everything(1), async (bus) => {
        expect(() => bus.mcpHandler({ [option]: 2 ** 31 })).toThrow(RangeError)
        expect(() => bus.mcpHandler({ [option]: 2 ** 31 })).toThrow(option)
        expect(() => bus.mcpHandler({ [option]: 2 ** 31 - 1 })).not.toThrow()
      })
    },
    60_000,
  )

  /** A pool of worker.ts, whose initialize fails as its params say (refuse, crash, hold), the handshake replayed. */
  const failing = {
    pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER, "echo"], initialize: "replay" as const }],
  }
  /** The SDK client's fetch, with `how: true` added to its initialize's params. */
  const failingInit =
    (how: string) =>
    (input: string | URL, init?: RequestInit): Promise<Response> => {
      const body =
        typeof init?.body === "string" ? (JSON.parse(init.body) as { method?: string; params?: object }) : null
      if (body?.method !== "initialize") return fetch(input, init)
      return fetch(input, { ...init, body: JSON.stringify({ ...body, params: { ...body.params, [how]: true } }) })
    }

  test.each([
    ["refused by the worker", "refuse"],
    ["whose worker crashed", "crash"],
    ["that timed out (the worker never answers)", "hold"],
  ])(
    "the SDK client's initialize %s: no Mcp-Session-Id reaches it, and no session, client or pin is left",
    async (_what, how) => {
      await withBus(failing, async (bus) => {
        const listener = await bus.listen("http:127.0.0.1:0")
        const client = new Client({ name: "slotbus-test", version: "1" })
        const transport = new StreamableHTTPClientTransport(new URL(listener.url), { fetch: failingInit(how) })
        try {
          await expect(client.connect(transport, { timeout: 500 })).rejects.toThrow()
          expect(transport.sessionId).toBeUndefined()
        } finally {
          await client.close() // a held initialize's POST is aborted: its session ends with it
        }
        await until(() => listener.sessionCount === 0 && bus.clientCount === 0, "nothing left of the session")
        expect(bus.stats().pools[0]!.instances.map((i) => i.sessions)).toEqual([0])
        expect(listener.handlers.get("w")!.counts.opened).toBe(0)
      })
    },
    60_000,
  )

  test("1000 initializes refused over SSE: none carries an Mcp-Session-Id, none leaves a session; a good one then does", async () => {
    await withBus(failing, async (bus) => {
      const listener = await bus.listen("http:127.0.0.1:0")
      const refused = { ...INIT, params: { ...INIT.params, refuse: true } }
      for (let i = 0; i < 1000; i++) {
        const r = await post(listener.url, { ...refused, id: i })
        const got = [r.status, r.headers.get("content-type"), r.headers.get("mcp-session-id"), await r.text()]
        expect(got.slice(0, 3)).toEqual([200, "text/event-stream", null])
        expect(got[3]).toContain('"initialize refused"')
      }
      expect([listener.sessionCount, bus.clientCount]).toEqual([0, 0])
      expect(bus.stats().pools[0]!.instances.map((i) => i.sessions)).toEqual([0])
      const ok = await post(listener.url, INIT)
      expect(ok.headers.get("mcp-session-id")).toMatch(/^[\w-]{32}$/)
      expect(await ok.text()).toContain('"result"')
      expect([listener.sessionCount, listener.handlers.get("w")!.counts.opened]).toEqual([1, 1])
    })
  }, 60_000)
})
