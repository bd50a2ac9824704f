// A stdio MCP server's requests to its client (sampling, elicitation) when several HTTP sessions share one server
// process: each goes to the session whose tool call asked, and the answer goes back to that process.
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { CreateMessageRequestSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { until } from "../support/helpers.ts"
import { everything, withBus } from "../support/stdio/stdio.ts"

const config = everything(1)

/** A client that samples and elicits, recording what it was asked. */
async function asker(url: string, name: string) {
  const asked: string[] = []
  const client = new Client({ name, version: "1" }, { capabilities: { sampling: {}, elicitation: {} } })
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    const text = (req.params.messages[0]!.content as { text: string }).text
    asked.push(text)
    return { model: name, role: "assistant", content: { type: "text", text: `${name} sampled` } }
  })
  client.setRequestHandler(ElicitRequestSchema, async () => {
    asked.push("elicit")
    return { action: "decline" }
  })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return { client, asked }
}

describe("MCP Streamable HTTP: a server's requests go to the session that asked", () => {
  test("two sessions on one server process sampling at once, a third that declared no sampling calling echo meanwhile: each sampling reaches its own session", async () => {
    await withBus(config, async (bus) => {
      const { url } = await bus.listen("http:127.0.0.1:0")
      const a = await asker(url, "A")
      const b = await asker(url, "B")
      const c = new Client({ name: "C", version: "1" }) // no sampling, no elicitation
      await c.connect(new StreamableHTTPClientTransport(new URL(url)))
      try {
        let echoing = true
        const echoes = (async () => {
          while (echoing) await c.callTool({ name: "echo", arguments: { message: "c" } })
        })()
        const sample = (who: typeof a, tag: string, k: number) =>
          who.client.callTool({ name: "trigger-sampling-request", arguments: { prompt: `${tag}${k}` } })
        const results = await Promise.all([0, 1, 2, 3, 4].flatMap((k) => [sample(a, "a", k), sample(b, "b", k)]))
        echoing = false
        await echoes
        for (const [i, r] of results.entries())
          expect(JSON.stringify(r)).toContain(i % 2 === 0 ? "A sampled" : "B sampled")
        const prompt = (t: string) => t.replace(/^.*context: /, "")
        expect(a.asked.map(prompt).sort()).toEqual(["a0", "a1", "a2", "a3", "a4"])
        expect(b.asked.map(prompt).sort()).toEqual(["b0", "b1", "b2", "b3", "b4"])
        const elicited = await b.client.callTool({ name: "trigger-elicitation-request", arguments: {} })
        expect(JSON.stringify(elicited)).toContain("decline")
        expect(b.asked).toContain("elicit")
        expect(a.asked).not.toContain("elicit")
      } finally {
        await Promise.all([a.client.close(), b.client.close(), c.close()])
      }
    })
  }, 60_000)
})

describe("MCP Streamable HTTP: a server's cancel of its own request", () => {
  test("a worker that gives up its sampling request: only the session asked is told, under the id it was given, and its handler is aborted", async () => {
    const worker = join(import.meta.dir, "workers", "mcp-worker.ts")
    const pool = { id: "asks", command: process.execPath, args: [worker], instances: 1, initialize: "replay" as const }
    await withBus({ pools: [pool] }, async (bus) => {
      const { url } = await bus.listen("http:127.0.0.1:0")
      const other = await asker(url, "other")
      const aborted: string[] = []
      const client = new Client({ name: "asked", version: "1" }, { capabilities: { sampling: {} } })
      client.setRequestHandler(
        CreateMessageRequestSchema,
        (_req, extra) =>
          new Promise((_, reject) =>
            extra.signal.addEventListener("abort", () => {
              aborted.push(String(extra.requestId))
              reject(new Error("cancelled"))
            }),
          ),
      )
      await client.connect(new StreamableHTTPClientTransport(new URL(url)))
      try {
        const r = await client.callTool({ name: "ask", arguments: { timeoutMs: 300 } })
        expect(JSON.stringify(r)).toContain("ask gave up")
        await until(() => aborted.length === 1, "the asked session's handler aborted", 10_000)
        expect(aborted[0]).toStartWith("sb-")
        expect(other.asked).toEqual([])
      } finally {
        await Promise.all([client.close(), other.client.close()])
      }
    })
  }, 60_000)
})

describe("MCP Streamable HTTP: a server's message to a session with no SSE stream open", () => {
  const worker = join(import.meta.dir, "workers", "mcp-worker.ts")
  const pool = { id: "asks", command: process.execPath, args: [worker], instances: 1, initialize: "replay" as const }
  const INIT = {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-11-25",
      capabilities: { sampling: {} },
      clientInfo: { name: "raw", version: "1" },
    },
  }
  /** A POST of `body` with `accept`; the answer's session id and JSON body (null for none). */
  const post = async (url: string, body: object, accept: string, session?: string) => {
    const headers = { "content-type": "application/json", accept, ...(session ? { "mcp-session-id": session } : {}) }
    const signal = AbortSignal.timeout(30_000) // before: the ask waited for the worker's own 60 s timeout
    const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal })
    const text = await r.text()
    return { session: r.headers.get("mcp-session-id") ?? session!, body: text, status: r.status }
  }

  test.each([
    ["Accept: application/json, no GET stream", {}, "application/json"],
    ["jsonResponse: true, no GET stream", { jsonResponse: true }, "application/json, text/event-stream"],
  ] as const)(
    "%s: a sampling request is answered to the worker at once (-32603, no SSE stream open) and counted as a routing error; a notification is counted dropped",
    async (_what, options, accept) => {
      await withBus({ pools: [pool] }, async (bus) => {
        const { url } = await bus.listen("http:127.0.0.1:0", options)
        const reasons: string[] = []
        bus.on("routing-error", (e) => reasons.push(e.reason))
        const { session } = await post(url, INIT, accept)
        await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, accept, session)
        const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "ask", arguments: {} } }
        const asked = await post(url, call, accept, session)
        expect(asked.status).toBe(200)
        expect(asked.body).toContain("ask gave up: MCP error -32603")
        expect(asked.body).toContain("no SSE stream open")
        expect(bus.stats().routingErrors).toBe(1)
        expect(reasons).toEqual([expect.stringContaining("sampling/createMessage")])
        const flood = {
          jsonrpc: "2.0",
          id: 3,
          method: "tools/call",
          params: { name: "flood", arguments: { count: 3 } },
        }
        expect((await post(url, flood, accept, session)).body).toContain("flooded 3")
        expect(bus.stats().droppedMessages).toBe(3)
        expect(bus.stats().routingErrors).toBe(1)
      })
    },
    60_000,
  )
})
