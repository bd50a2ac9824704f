// The stdio bus's MCP Streamable HTTP handler in an app's own node:http server, under Bun and under Node 26 (the
// front is test/support/runtime/mcp-http-front.ts), driven by the MCP SDK's StreamableHTTPClientTransport.
import { afterAll, describe, expect, test } from "bun:test"
import { connect } from "node:net"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { REPO } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { mcpPost } from "../support/stdio/stdio.ts"

const EVERYTHING = join(REPO, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
const MCP_WORKER = join(REPO, "test", "stdio", "workers", "mcp-worker.ts")
type Answer = { result: { content: { text: string }[] } }
afterAll(removeNodeBuilds)

/** The SSE text of `body` until a chunk containing `until` (then the connection is dropped), or to its end. */
async function sseUntil(body: ReadableStream<Uint8Array>, until: string | null): Promise<string> {
  const reader = body.getReader()
  let text = ""
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return text
    text += new TextDecoder().decode(value)
    if (until !== null && text.includes(until) && text.endsWith("\n\n")) {
      await reader.cancel()
      return text
    }
  }
}
/** The front told to stop: its server closes, its bus stops; its exit code. */
async function stopped(front: Awaited<ReturnType<typeof peerChild>>): Promise<number | null> {
  front.write("stop\n")
  await front.waitLine(/^stopped stopped$/, 30_000)
  return front.exited
}
const lastId = (text: string) => [...text.matchAll(/^id: (\S+)$/gm)].at(-1)![1]!

describe.each(PEER_RUNTIMES)("bus.mcpHandler() in a node:http server under %s", (runtime) => {
  const skip = peerSkip(runtime)
  if (skip) console.log(`skipping the ${runtime} MCP HTTP front: ${skip}`)
  test.skipIf(skip !== null)(
    "the SDK client initializes, lists and calls tools, with progress; a cancel ends its stream; DELETE ends the session",
    async () => {
      const front = await peerChild(runtime, "runtime/mcp-http-front.ts", [process.execPath, EVERYTHING], {
        stdin: "pipe",
      })
      try {
        const [, port] = await front.waitLine(/^ready (\d+)$/, 60_000)
        const url = `http://127.0.0.1:${port}/mcp`
        const client = new Client({ name: "slotbus-test", version: "1" })
        const transport = new StreamableHTTPClientTransport(new URL(url))
        await client.connect(transport)
        const { tools } = await client.listTools()
        expect(tools.map((t) => t.name)).toContain("get-sum")
        const echo = await client.callTool({ name: "echo", arguments: { message: runtime } })
        expect((echo as { content: { text: string }[] }).content[0]!.text).toBe(`Echo: ${runtime}`)
        const progress: number[] = []
        await client.callTool(
          { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
          undefined,
          { onprogress: (p) => progress.push(p.progress) },
        )
        expect(progress).toEqual([1, 2, 3])
        const id = transport.sessionId!
        // a POST's SSE stream dropped after its first progress, resumed by a GET with Last-Event-ID: nothing lost
        const call = {
          jsonrpc: "2.0",
          id: "long",
          method: "tools/call",
          params: {
            name: "trigger-long-running-operation",
            arguments: { duration: 1, steps: 4 },
            _meta: { progressToken: 1 },
          },
        }
        const sse = {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": id,
        }
        const posted = await fetch(url, { method: "POST", headers: sse, body: JSON.stringify(call) })
        const first = await sseUntil(posted.body!, "notifications/progress")
        const resumed = await fetch(url, {
          headers: { accept: "text/event-stream", "mcp-session-id": id, "last-event-id": lastId(first) },
        })
        expect(resumed.status).toBe(200)
        const all = first + (await sseUntil(resumed.body!, null))
        expect([...all.matchAll(/"progress":(\d)/g)].map((m) => Number(m[1]))).toEqual([1, 2, 3, 4])
        expect(all).toMatch(/data: \{"result":\{[^\n]*Long running operation completed[^\n]*"id":"long"\}\n/)
        // the client's own cancel: the stream waiting for that answer ends at once, with a -32800 error
        const longer = { ...call, id: "cancelled", params: { ...call.params, arguments: { duration: 20, steps: 20 } } }
        const held = await fetch(url, { method: "POST", headers: sse, body: JSON.stringify(longer) })
        const reader = held.body!.getReader()
        let heldText = ""
        while (!heldText.includes("notifications/progress"))
          heldText += new TextDecoder().decode((await reader.read()).value)
        const cancel = { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: "cancelled" } }
        expect((await fetch(url, { method: "POST", headers: sse, body: JSON.stringify(cancel) })).status).toBe(202)
        for (let r = await reader.read(); !r.done; r = await reader.read())
          heldText += new TextDecoder().decode(r.value)
        expect(heldText).toContain('"id":"cancelled","error":{"code":-32800,"message":"cancelled by the client"}')
        await transport.terminateSession()
        const after = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json", "mcp-session-id": id },
          body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "ping" }),
        })
        expect(after.status).toBe(404)
        const foreign = await fetch(url, { method: "DELETE", headers: { origin: "http://evil.example" } })
        expect(foreign.status).toBe(403)
        const preflight = await fetch(url, { method: "OPTIONS", headers: { origin: "http://localhost:5173" } })
        expect(preflight.status).toBe(204) // a browser page's CORS preflight, through node:http too
        expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:5173")
        await client.close()
        expect(await stopped(front)).toBe(0)
      } finally {
        await front.kill()
      }
    },
    120_000,
  )

  test.skipIf(skip !== null)(
    "a client that does not read its GET stream is cut off past max_output_queue; its session goes on",
    async () => {
      const front = await peerChild(runtime, "runtime/mcp-http-front.ts", [process.execPath, MCP_WORKER, "262144"], {
        stdin: "pipe",
      })
      try {
        const [, port] = await front.waitLine(/^ready (\d+)$/, 60_000)
        const url = `http://127.0.0.1:${port}/mcp`
        const post = mcpPost(url)
        const text = async (r: Response) => ((await r.json()) as Answer).result.content[0]!.text
        const clientInfo = { name: "slow", version: "1" }
        const init = { protocolVersion: "2025-11-25", capabilities: {}, clientInfo }
        const session = (await post({ jsonrpc: "2.0", id: 1, method: "initialize", params: init })).headers.get(
          "mcp-session-id",
        )!
        await post({ jsonrpc: "2.0", method: "notifications/initialized" }, session)
        // the GET stream on a socket that reads nothing: the kernel's buffers fill, then the front's queue does
        const socket = connect(Number(port), "127.0.0.1")
        socket.pause()
        const ended = new Promise<number>((resolve) => {
          let bytes = 0
          socket.on("data", (b) => (bytes += b.length))
          socket.on("close", () => resolve(bytes))
          socket.on("error", () => {})
        })
        socket.write(
          `GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\nmcp-session-id: ${session}\r\n\r\n`,
        )
        // 40 MB of notifications to that stream: more than the socket's buffers and max_output_queue together
        const flood = { name: "flood", arguments: { count: 800, size: 50_000 } }
        const answer = await post({ jsonrpc: "2.0", id: 2, method: "tools/call", params: flood }, session)
        expect(await text(answer)).toBe("flooded 800")
        socket.resume()
        const got = await Promise.race([ended, Bun.sleep(30_000).then(() => -1)])
        socket.destroy()
        expect(got).toBeGreaterThan(0) // the front closed that connection (-1: it kept it, queueing all 40 MB)
        expect(got).toBeLessThan(800 * 50_000)
        const echo = { name: "echo", arguments: { message: "still here" } }
        const after = await post({ jsonrpc: "2.0", id: 3, method: "tools/call", params: echo }, session)
        expect(await text(after)).toBe("Echo: still here")
        expect(await stopped(front)).toBe(0)
      } finally {
        await front.kill()
      }
    },
    120_000,
  )
})
