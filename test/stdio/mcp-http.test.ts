// The MCP Streamable HTTP transport in front of a stdio pool, driven by the real MCP SDK client
// (StreamableHTTPClientTransport) against pools of @modelcontextprotocol/server-everything on stdio, and by raw
// fetch/TCP where the SDK would never send what is tested (a foreign Origin, a missing session id).
import { afterAll, describe, expect, test } from "bun:test"
import { createServer } from "node:http"
import { connect as tcpConnect } from "node:net"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { Hono } from "hono"
import type { McpHttpListener, McpHttpListenOptions, StdioBus, StdioBusConfigInput } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { peerChild, peerSkip, PEER_RUNTIMES, removeNodeBuilds } from "../support/runtime/peers.ts"
import { everything, everythingPool, withBus } from "../support/stdio/stdio.ts"

const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
}
const JSON_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }

async function mcpClient(url: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "slotbus-test", version: "1" })
  const transport = new StreamableHTTPClientTransport(new URL(url))
  await client.connect(transport)
  return { client, transport }
}

const text = (r: unknown) => (r as { content: { text: string }[] }).content[0]!.text

/** A started bus of server-everything with an HTTP listener, stopped (and the clients closed) after `fn`. */
async function withHttp(
  config: StdioBusConfigInput,
  fn: (bus: StdioBus, listener: McpHttpListener) => Promise<void>,
  options: McpHttpListenOptions = {},
): Promise<void> {
  await withBus(config, async (bus) => {
    const listener = await bus.listen("http:127.0.0.1:0", options)
    await fn(bus, listener)
  })
}

/** A raw POST of `body` to `url` with the JSON headers and `headers`. */
const post = (url: string, body: object, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) })

/** A raw initialize; resolves with the session id it issued. */
async function rawSession(url: string): Promise<string> {
  const r = await post(url, INIT, { accept: "application/json" })
  expect(r.status).toBe(200)
  await r.json()
  return r.headers.get("mcp-session-id")!
}

describe("MCP Streamable HTTP in front of a stdio pool", () => {
  test("the SDK client: initialize, tools/list, tools/call echo and get-sum; four sessions at once, spread over both instances", async () => {
    await withHttp(everything(2), async (_bus, listener) => {
      const clients = await Promise.all([0, 1, 2, 3].map(() => mcpClient(listener.url)))
      try {
        const ids = clients.map((c) => c.transport.sessionId!)
        expect(new Set(ids).size).toBe(4)
        for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/)
        await Promise.all(
          clients.map(async ({ client }, i) => {
            const { tools } = await client.listTools()
            expect(tools.map((t) => t.name)).toContain("echo")
            for (let k = 0; k < 5; k++) {
              expect(text(await client.callTool({ name: "echo", arguments: { message: `s${i} #${k}` } }))).toBe(
                `Echo: s${i} #${k}`,
              )
              expect(text(await client.callTool({ name: "get-sum", arguments: { a: i, b: k } }))).toContain(
                String(i + k),
              )
            }
          }),
        )
        const handler = listener.handlers.get("everything")!
        expect(handler.sessionCount).toBe(4)
        const instances = new Set(ids.map((id) => handler.sessionInfo(id)!.instance))
        expect(instances).toEqual(new Set([0, 1]))
      } finally {
        await Promise.all(clients.map(({ client }) => client.close()))
      }
    })
  }, 60_000)

  test("an SSE answer carries the progress of its request; a JSON answer when only application/json is accepted", async () => {
    await withHttp(everything(1), async (_bus, listener) => {
      const { client, transport } = await mcpClient(listener.url)
      try {
        const progress: number[] = []
        const r = await client.callTool(
          { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
          undefined,
          { onprogress: (p) => progress.push(p.progress) },
        )
        expect(text(r)).toContain("Long running operation completed")
        expect(progress).toEqual([1, 2, 3])
        const headers = { "mcp-session-id": transport.sessionId!, accept: "application/json" }
        const raw = await post(listener.url, { jsonrpc: "2.0", id: "x", method: "tools/list" }, headers)
        expect(raw.headers.get("content-type")).toContain("application/json")
        expect(((await raw.json()) as { id: string }).id).toBe("x")
      } finally {
        await client.close()
      }
    })
  }, 60_000)

  for (const [where, second] of [
    ["one listener", (_bus: StdioBus, l: McpHttpListener) => Promise.resolve(l.url)],
    // before: each listener counted its bus tokens from 1, so both sessions got both calls' progress
    ["two listeners", async (bus: StdioBus) => (await bus.listen("http:127.0.0.1:0")).url],
  ] as const)
    test(`two sessions on one worker (${where}), each with progress token 1 on the wire: each gets its own progress only`, async () => {
      await withHttp(everything(1), async (bus, listener) => {
        const clients = [await mcpClient(listener.url), await mcpClient(await second(bus, listener))]
        try {
          const progress: number[][] = [[], []]
          await Promise.all(
            clients.map(({ client }, i) =>
              client.callTool(
                { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
                undefined,
                { onprogress: (p) => progress[i]!.push(p.progress) },
              ),
            ),
          )
          expect(progress).toEqual([
            [1, 2, 3],
            [1, 2, 3],
          ])
        } finally {
          await Promise.all(clients.map(({ client }) => client.close()))
        }
      })
    }, 60_000)

  test("GET opens the session's stream: a log line the worker sends unasked comes on it; a second GET gets 409", async () => {
    await withHttp(everything(1), async (_bus, listener) => {
      const url = listener.url
      const id = await rawSession(url)
      expect((await fetch(url, { headers: { "mcp-session-id": id, accept: "application/json" } })).status).toBe(406)
      const get = await fetch(url, { headers: { "mcp-session-id": id, accept: "text/event-stream" } })
      expect(get.status).toBe(200)
      expect(get.headers.get("content-type")).toBe("text/event-stream")
      const reader = get.body!.getReader()
      try {
        expect((await fetch(url, { headers: { "mcp-session-id": id, accept: "text/event-stream" } })).status).toBe(409)
        const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "toggle-simulated-logging" } }
        const r = await post(url, call, { "mcp-session-id": id, accept: "application/json" })
        expect(await r.text()).toContain("Started simulated")
        let got = ""
        while (!got.includes("notifications/message")) {
          const { value, done } = await reader.read()
          if (done) throw new Error(`the GET stream ended: ${got}`)
          got += new TextDecoder().decode(value)
        }
        expect(got).toMatch(/event: message\ndata: \{[^\n]*"method":"notifications\/message"/)
      } finally {
        await reader.cancel()
      }
    })
  }, 60_000)

  test("an SSE answer that takes longer than Bun.serve's idleTimeout still comes when the handler is given the server", async () => {
    await withBus(everything(1), async (bus) => {
      const handler = bus.mcpHandler()
      const server = Bun.serve({ port: 0, hostname: "127.0.0.1", idleTimeout: 1, fetch: (r, s) => handler.fetch(r, s) })
      const c = await mcpClient(`http://127.0.0.1:${server.port}/mcp`)
      try {
        const long = { name: "trigger-long-running-operation", arguments: { duration: 6, steps: 1 } }
        expect(text(await c.client.callTool(long))).toContain("Long running operation completed")
      } finally {
        await c.client.close()
        await server.stop(true)
      }
    })
  }, 60_000)

  test("DELETE ends the session: its next request, and a second DELETE, get 404; other sessions go on", async () => {
    await withHttp(everything(1), async (_bus, listener) => {
      const a = await mcpClient(listener.url)
      const b = await mcpClient(listener.url)
      try {
        const id = a.transport.sessionId!
        await a.transport.terminateSession()
        const next = await post(listener.url, { jsonrpc: "2.0", id: 2, method: "tools/list" }, { "mcp-session-id": id })
        expect(next.status).toBe(404)
        expect(((await next.json()) as { error: { message: string } }).error.message).toContain("initialize again")
        const again = await fetch(listener.url, { method: "DELETE", headers: { "mcp-session-id": id } })
        expect(again.status).toBe(404)
        expect(text(await b.client.callTool({ name: "echo", arguments: { message: "still here" } }))).toBe(
          "Echo: still here",
        )
      } finally {
        await a.client.close()
        await b.client.close()
      }
    })
  }, 60_000)

  test("refusals: a foreign Origin 403, a missing session id 400, an unknown one 404, an unsupported protocol version 400, a notification 202", async () => {
    await withHttp(everything(1), async (_bus, listener) => {
      const url = listener.url
      const foreign = await post(url, INIT, { origin: "http://evil.example" })
      expect(foreign.status).toBe(403)
      expect(await foreign.text()).toContain("allowedOrigins")
      const id = await rawSession(url)
      expect((await post(url, INIT, { origin: "http://localhost:5173", accept: "application/json" })).status).toBe(200)
      const list = { jsonrpc: "2.0", id: 2, method: "tools/list" }
      expect((await post(url, list)).status).toBe(400)
      expect((await post(url, list, { "mcp-session-id": "no-such-session" })).status).toBe(404)
      const version = await post(url, list, { "mcp-session-id": id, "mcp-protocol-version": "1999-01-01" })
      expect(version.status).toBe(400)
      expect(await version.text()).toContain("2025-11-25")
      const note = { jsonrpc: "2.0", method: "notifications/initialized" }
      expect((await post(url, note, { "mcp-session-id": id })).status).toBe(202)
      expect((await post(url, { jsonrpc: "2.0", id: 5 }, { "mcp-session-id": id })).status).toBe(400)
      const batch = await post(url, [list], { "mcp-session-id": id })
      expect(batch.status).toBe(400)
      // 2025-03-26, which is accepted (and assumed without the header), has batches: the refusal says they are not taken
      expect(await batch.text()).toContain("batches are not supported (MCP 2025-03-26")
      expect((await fetch(url, { method: "PUT" })).status).toBe(405)
      expect((await fetch(`${url}/nope`, { method: "POST" })).status).toBe(404)
      expect((await fetch(`${url}/%zz`, { method: "POST" })).status).toBe(404)
    })
  }, 60_000)

  test("what a server would drop unanswered is refused -32600, not passed on; a member JSON-RPC has not is left out", async () => {
    await withHttp(everything(1), async (_bus, listener) => {
      const url = listener.url
      const id = await rawSession(url)
      const session = { "mcp-session-id": id, accept: "application/json" }
      expect((await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, session)).status).toBe(202)
      for (const bad of [
        { id: 7, method: "ping" },
        { jsonrpc: "1.0", id: 8, method: "ping" },
        { jsonrpc: "2.0", id: 9, method: "tools/call", params: "not structured" },
        { jsonrpc: "2.0", id: 10, method: "ping", result: {} },
      ]) {
        const r = await post(url, bad, session)
        expect([JSON.stringify(bad), r.status, ((await r.json()) as { error: { code: number } }).error.code]).toEqual([
          JSON.stringify(bad),
          400,
          -32600,
        ])
      }
      // server-everything drops a message with a member JSON-RPC does not define: passed on without it, answered
      const extra = await post(url, { jsonrpc: "2.0", id: 11, method: "ping", extra: 1 }, session)
      expect([extra.status, await extra.json()]).toEqual([200, { jsonrpc: "2.0", id: 11, result: {} }])
      // an initialize the server refuses opens no session: no id is handed out
      const failed = await post(url, { ...INIT, params: { bogus: 1 } }, { accept: "application/json" })
      expect([
        failed.status,
        failed.headers.get("mcp-session-id"),
        "error" in ((await failed.json()) as object),
      ]).toEqual([200, null, true])
    })
  }, 60_000)

  test("a Host that is not loopback gets 403 (DNS rebinding), unless allowedHosts names it; allowedOrigins lets an Origin in", async () => {
    const rawPost = (port: number, host: string) =>
      new Promise<string>((resolve, reject) => {
        const body = JSON.stringify(INIT)
        const socket = tcpConnect(port, "127.0.0.1", () =>
          socket.write(
            `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          ),
        )
        let got = ""
        socket.on("data", (d) => (got += d))
        socket.on("end", () => resolve(got.split("\r\n")[0]!))
        socket.on("error", reject)
      })
    await withHttp(everything(1), async (_bus, listener) => {
      expect(await rawPost(listener.address.port, "rebound.example:80")).toContain("403")
      expect(await rawPost(listener.address.port, "localhost")).toContain("200")
      // a Host that is no host[:port] (Bun.serve hands it on with a URL that does not parse): 400, not a 500 page
      for (const host of ["localhost:abc", "localhost:99999", "a@localhost", "localhost evil"])
        expect([host, await rawPost(listener.address.port, host)]).toEqual([host, "HTTP/1.1 400 Bad Request"])
    })
    await withHttp(
      everything(1),
      async (_bus, listener) => {
        expect(await rawPost(listener.address.port, "mcp.example:8080")).toContain("200")
        const r = await post(listener.url, INIT, { origin: "https://app.example", accept: "application/json" })
        expect(r.status).toBe(200)
      },
      { allowedHosts: ["mcp.example"], allowedOrigins: ["https://app.example"] },
    )
  }, 60_000)

  test("allowedOrigins and allowedHosts are true or arrays of strings, jsonResponse a boolean, path one a URL carries: else a TypeError naming it; an allowed name matches whole, a Host in any case", async () => {
    await withBus(everything(1), async (bus) => {
      // before: a string was taken, and matched as a substring of it ("https://mcp.example.co" got in, with CORS)
      for (const [option, value] of [
        ["allowedOrigins", "https://mcp.example.com"],
        ["allowedHosts", "mcp.example.com"],
        ["allowedHosts", [1]],
        ["allowedOrigins", false],
        ["jsonResponse", "yes"],
      ] as const) {
        expect(() => bus.mcpHandler({ [option]: value } as never)).toThrow(TypeError)
        expect(() => bus.mcpHandler({ [option]: value } as never)).toThrow(option)
        await expect(bus.listen("http:127.0.0.1:0", { [option]: value } as never)).rejects.toThrow(option)
      }
      for (const path of ["/a b", "/a/../b", "/mcp?x", "/%zz", "/é"])
        expect([path, await bus.listen("http:127.0.0.1:0", { path }).catch((e: Error) => e.message)]).toEqual([
          path,
          expect.stringContaining("path"),
        ])
    })
    const hostIs = (port: number, host: string) =>
      new Promise<string>((resolve, reject) => {
        const body = JSON.stringify(INIT)
        const socket = tcpConnect(port, "127.0.0.1", () =>
          socket.write(
            `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          ),
        )
        let got = ""
        socket.on("data", (d) => (got += d))
        socket.on("end", () => resolve(got.split("\r\n")[0]!.split(" ")[1]!))
        socket.on("error", reject)
      })
    await withHttp(
      everything(1),
      async (_bus, listener) => {
        const port = listener.address.port
        for (const [host, status] of [
          ["mcp.example.com", "200"],
          ["MCP.EXAMPLE.COM:8080", "200"],
          ["mcp.example.co", "403"],
          ["example.com", "403"],
        ])
          expect([host, await hostIs(port, host)]).toEqual([host, status])
        for (const [origin, status, cors] of [
          ["https://mcp.example.com", 200, "https://mcp.example.com"],
          ["https://mcp.example.co", 403, null],
          ["https://mcp.ex", 403, null],
        ] as const) {
          const r = await post(listener.url, INIT, { origin, accept: "application/json" })
          await r.body?.cancel()
          expect([origin, r.status, r.headers.get("access-control-allow-origin")]).toEqual([origin, status, cors])
        }
      },
      { allowedHosts: ["MCP.Example.com"], allowedOrigins: ["https://MCP.example.com"] },
    )
  }, 60_000)

  test("limits: sessions per instance (503 while each is busy), body size (413), an idle session ends (404)", async () => {
    await withHttp(
      everything(1),
      async (_bus, listener) => {
        const url = listener.url
        const id = await rawSession(url)
        const stream = await fetch(url, { headers: { accept: "text/event-stream", "mcp-session-id": id } })
        expect(stream.status).toBe(200)
        const full = await post(url, INIT, { accept: "application/json" })
        expect(full.status).toBe(503)
        expect(await full.text()).toContain("maxSessionsPerInstance")
        await stream.body!.cancel()
        const big = {
          jsonrpc: "2.0",
          id: 3,
          method: "tools/call",
          params: { name: "echo", arguments: { message: "x".repeat(5000) } },
        }
        const tooBig = await post(url, big, { "mcp-session-id": id })
        expect(tooBig.status).toBe(413)
        expect(await tooBig.text()).toContain("maxBodyBytes")
        expect((await post(url, { jsonrpc: "2.0", id: 4, method: "ping" }, { "mcp-session-id": id })).status).toBe(200)
      },
      { maxSessionsPerInstance: 1, maxBodyBytes: 4096 },
    )
    await withHttp(
      everything(1),
      async (_bus, listener) => {
        const url = listener.url
        const id = await rawSession(url)
        await until(() => listener.sessionCount === 0, "the idle session ended", 20_000)
        expect((await post(url, { jsonrpc: "2.0", id: 4, method: "ping" }, { "mcp-session-id": id })).status).toBe(404)
        await rawSession(url) // its place is free again
      },
      { maxSessionsPerInstance: 1, idleTimeoutMs: 300 },
    )
  }, 60_000)

  test("at the session cap an initialize ends the session unused longest that is idle; a busy one stays", async () => {
    await withHttp(
      everything(1),
      async (_bus, listener) => {
        const url = listener.url
        let n = 0
        const ping = (id: string) =>
          post(url, { jsonrpc: "2.0", id: ++n, method: "ping" }, { "mcp-session-id": id, accept: "application/json" })
        // SDK clients that close() without DELETE leave their sessions: the cap must not lock new clients out
        for (let i = 0; i < 3; i++) {
          const { client, transport } = await mcpClient(url)
          expect(text(await client.callTool({ name: "echo", arguments: { message: `c${i}` } }))).toBe(`Echo: c${i}`)
          await transport.close()
        }
        expect(listener.sessionCount).toBe(2)
        const [a, b, c] = [await rawSession(url), await rawSession(url), await rawSession(url)]
        expect((await ping(a)).status).toBe(404) // each initialize ended the oldest idle session: a went for c
        expect((await ping(b)).status).toBe(200)
        expect((await ping(c)).status).toBe(200)
        // b used less lately than c: d's initialize ends b, not c
        expect((await ping(c)).status).toBe(200)
        const d = await rawSession(url)
        expect((await ping(b)).status).toBe(404)
        expect([(await ping(c)).status, (await ping(d)).status]).toEqual([200, 200])
        // a session with its GET stream open is busy: c and d both streaming, the next initialize gets 503
        const streams = await Promise.all(
          [c, d].map((id) => fetch(url, { headers: { accept: "text/event-stream", "mcp-session-id": id } })),
        )
        expect((await post(url, INIT, { accept: "application/json" })).status).toBe(503)
        for (const r of streams) await r.body!.cancel()
        await until(() => listener.sessionCount === 2, "both sessions still there", 5_000)
      },
      { maxSessionsPerInstance: 2 },
    )
  }, 60_000)

  test("kill -9 of an instance: the call it held gets -32001 naming it, the session's next call is replayed onto its restart, the other session is untouched", async () => {
    await withHttp(everything(2), async (bus, listener) => {
      const a = await mcpClient(listener.url)
      const b = await mcpClient(listener.url)
      try {
        await a.client.ping()
        await b.client.ping()
        const handler = listener.handlers.get("everything")!
        const ia = handler.sessionInfo(a.transport.sessionId!)!.instance
        const ib = handler.sessionInfo(b.transport.sessionId!)!.instance
        expect(ia).not.toBe(ib)
        const pid = (i: number) => bus.stats().pools[0]!.instances[i]!.pid
        const [pidA, pidB] = [pid(ia), pid(ib)]
        let started = false
        const long = a.client.callTool(
          { name: "trigger-long-running-operation", arguments: { duration: 60, steps: 60 } },
          undefined,
          { onprogress: () => (started = true), timeout: 120_000 },
        )
        const failed = long.then(
          () => null,
          (e: { code?: number; message: string }) => e,
        )
        await until(() => started, "the long call's first progress", 30_000)
        process.kill(pidA, "SIGKILL")
        const e = await failed
        expect(e?.code).toBe(-32001)
        expect(e?.message).toContain(`pool "everything" instance ${ia} exited before answering`)
        expect(text(await b.client.callTool({ name: "echo", arguments: { message: "b" } }))).toBe("Echo: b")
        await until(() => pid(ia) !== 0 && pid(ia) !== pidA, "instance restarted", 30_000)
        expect(text(await a.client.callTool({ name: "echo", arguments: { message: "a again" } }))).toBe("Echo: a again")
        expect(handler.sessionInfo(a.transport.sessionId!)).not.toBeNull()
        expect(pid(ib)).toBe(pidB)
      } finally {
        await a.client.close()
        await b.client.close()
      }
    })
  }, 90_000)

  test("a server's request to the client (sampling) reaches it, and its answer goes back to the worker", async () => {
    await withHttp(everything(1), async (_bus, listener) => {
      const client = new Client({ name: "slotbus-test", version: "1" }, { capabilities: { sampling: {} } })
      client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
        model: "test-model",
        role: "assistant",
        content: { type: "text", text: `sampled: ${(req.params.messages[0]!.content as { text: string }).text}` },
      }))
      await client.connect(new StreamableHTTPClientTransport(new URL(listener.url)))
      try {
        const r = await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "hello" } })
        expect(JSON.stringify(r)).toContain("sampled: Resource trigger-sampling-request context: hello")
      } finally {
        await client.close()
      }
    })
  }, 60_000)

  test("a reload moves each session to the successor: the same session id goes on, on new pids", async () => {
    await withHttp(everything(2), async (bus, listener) => {
      const clients = [await mcpClient(listener.url), await mcpClient(listener.url)]
      try {
        const before = bus.stats().pools[0]!.instances.map((i) => i.pid)
        await bus.reload()
        const after = bus.stats().pools[0]!.instances.map((i) => i.pid)
        for (const pid of after) expect(before).not.toContain(pid)
        for (const [i, { client }] of clients.entries())
          expect(text(await client.callTool({ name: "echo", arguments: { message: `after ${i}` } }))).toBe(
            `Echo: after ${i}`,
          )
        expect(listener.sessionCount).toBe(2)
      } finally {
        await Promise.all(clients.map(({ client }) => client.close()))
      }
    })
  }, 90_000)

  test("several pools: the first at /mcp, each at /mcp/<pool id>", async () => {
    await withHttp({ pools: [everythingPool(1, "one"), everythingPool(1, "two")] }, async (bus, listener) => {
      const c = await mcpClient(`${listener.url}/two`)
      try {
        expect(text(await c.client.callTool({ name: "echo", arguments: { message: "two" } }))).toBe("Echo: two")
        expect(listener.handlers.get("two")!.sessionCount).toBe(1)
        expect(listener.handlers.get("one")!.sessionCount).toBe(0)
        expect(bus.stats().pools[1]!.instances[0]!.sessions).toBe(1)
      } finally {
        await c.client.close()
      }
    })
  }, 60_000)

  test("bus.mcpHandler() in an app's own server: Bun.serve, a Hono route and node:http under Bun", async () => {
    await withBus(everything(1), async (bus) => {
      const handler = bus.mcpHandler()
      const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (r, s) => handler.fetch(r, s) })
      const app = new Hono().all("/mcp", (c) => handler.fetch(c.req.raw)).get("/", (c) => c.text("the app"))
      const hono = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch })
      const node = createServer(handler.nodeListener())
      await new Promise<void>((r) => node.listen(0, "127.0.0.1", r))
      try {
        const port = (node.address() as { port: number }).port
        const urls = [`http://127.0.0.1:${server.port}/anywhere`, `http://127.0.0.1:${hono.port}/mcp`]
        for (const url of [...urls, `http://127.0.0.1:${port}/mcp`]) {
          const c = await mcpClient(url)
          expect(text(await c.client.callTool({ name: "echo", arguments: { message: url } }))).toBe(`Echo: ${url}`)
          await c.client.close()
        }
        expect(await (await fetch(`http://127.0.0.1:${hono.port}/`)).text()).toBe("the app")
      } finally {
        await server.stop(true)
        await hono.stop(true)
        await new Promise((r) => node.close(r))
      }
    })
  }, 60_000)
})

describe.each(PEER_RUNTIMES)("MCP Streamable HTTP: a bus.listen() front under %s closing", (runtime) => {
  afterAll(removeNodeBuilds)
  test.skipIf(peerSkip(runtime) !== null)(
    "stopped while a JSON call runs: the call gets -32005 and the session's GET stream ends, not reset",
    async () => {
      const worker = join(import.meta.dir, "workers", "mcp-worker.ts")
      const front = await peerChild(runtime, "runtime/mcp-listen-front.ts", [process.execPath, worker], {
        stdin: "pipe",
      })
      try {
        const [, url] = (await front.waitLine(/^ready (\S+)$/, 60_000)) as unknown as [string, string]
        const session = { "mcp-session-id": await rawSession(url) }
        await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, session)
        const stream = await fetch(url, { headers: { accept: "text/event-stream", ...session } })
        expect(stream.status).toBe(200)
        const ended = (async () => {
          try {
            for await (const _ of stream.body as unknown as AsyncIterable<Uint8Array>);
            return "ended"
          } catch (e) {
            return String(e)
          }
        })()
        const args = { name: "count", arguments: { steps: 600, stepMs: 100 } }
        const call = post(
          url,
          { jsonrpc: "2.0", id: 2, method: "tools/call", params: args },
          {
            ...session,
            accept: "application/json",
          },
        )
        await front.waitLine(/^started$/, 30_000) // at the worker: the stop's drain ends with it still running
        front.write("stop\n")
        // what the stopping listener refuses says Connection: close: a keep-alive client's next request on that
        // socket would meet it closed (it stayed keep-alive before)
        let refused: Response | undefined
        await until(async () => {
          const r = await post(
            url,
            { jsonrpc: "2.0", id: 3, method: "ping" },
            { ...session, accept: "application/json" },
          )
          if (r.status === 503) refused = r
          else await r.body?.cancel()
          return refused !== undefined
        }, "a request is refused 503 while the bus stops")
        expect(refused!.headers.get("connection")).toBe("close")
        expect(await refused!.json()).toMatchObject({
          error: { code: -32005, message: expect.stringContaining("stopping") },
        })
        const answer = (await (await call).json()) as { error: { code: number; message: string } }
        expect(answer.error).toMatchObject({ code: -32005, message: expect.stringContaining("stopped before") })
        // before: the listener's stop(true) at once cut the connection before the stream's end was written (ECONNRESET)
        expect(await ended).toBe("ended")
        await front.waitLine(/^stopped$/, 30_000)
        expect(await front.exited).toBe(0)
      } finally {
        await front.kill()
      }
    },
    90_000,
  )
})

describe.each(PEER_RUNTIMES)("MCP Streamable HTTP: a worker's faults under a %s front", (runtime) => {
  afterAll(removeNodeBuilds)
  /** A raw POST of `message` on `session` answered as JSON, its body parsed; given up (a failure) after 30 s. */
  const ask = async (url: string, session: string, message: object) => {
    const headers = { ...JSON_HEADERS, accept: "application/json", "mcp-session-id": session }
    const signal = AbortSignal.timeout(30_000) // before: no answer ever came
    const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(message), signal })
    return (await r.json()) as {
      result?: { pid?: number; closing?: boolean }
      error?: { code: number; message: string }
    }
  }

  test.skipIf(peerSkip(runtime) !== null)(
    "a worker whose stdout closes while it runs on is a crash: logged, killed and restarted; what it held gets -32001, its session and new ones go on",
    async () => {
      const worker = join(import.meta.dir, "workers", "worker.ts") // close-stdout: answers, then closes fd 1
      const front = await peerChild(runtime, "runtime/mcp-listen-front.ts", [process.execPath, worker], {
        stdin: "pipe",
      })
      try {
        const [, url] = (await front.waitLine(/^ready (\S+)$/, 60_000)) as unknown as [string, string]
        const session = await rawSession(url)
        let n = 1
        const call = (method: string) => ask(url, session, { jsonrpc: "2.0", id: ++n, method })
        const closing = await call("close-stdout")
        expect(closing.result?.closing).toBe(true)
        const old = closing.result!.pid!
        // sent to the process whose stdout is closed (or, later, to its restart): answered either way
        const held = await call("whoami")
        if (held.error) expect(held.error).toMatchObject({ code: -32001, message: expect.stringContaining("exited") })
        else expect(held.result?.pid).not.toBe(old)
        await front.waitLine(/^error .*stdout closed/, 30_000)
        const restarted = async () => ((await call("whoami")).result?.pid ?? old) !== old
        await until(restarted, "the session answered by the restarted worker", 30_000)
        expect(await rawSession(url)).toMatch(/^[A-Za-z0-9_-]{32}$/)
      } finally {
        await front.kill()
      }
    },
    90_000,
  )

  test.skipIf(peerSkip(runtime) !== null)(
    "a server's sampling request to a session with no SSE stream open is answered to the worker at once with -32603 saying so",
    async () => {
      const worker = join(import.meta.dir, "workers", "mcp-worker.ts")
      const front = await peerChild(runtime, "runtime/mcp-listen-front.ts", [process.execPath, worker], {
        stdin: "pipe",
      })
      try {
        const [, url] = (await front.waitLine(/^ready (\S+)$/, 60_000)) as unknown as [string, string]
        const init = { ...INIT, params: { ...INIT.params, capabilities: { sampling: {} } } }
        const r = await post(url, init, { accept: "application/json" })
        const session = r.headers.get("mcp-session-id")!
        await r.json()
        await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, { "mcp-session-id": session })
        // the worker's own timeout (60 s) is past the 30 s this waits: before, only that ended its wait
        const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "ask", arguments: {} } }
        const answer = JSON.stringify(await ask(url, session, call))
        expect(answer).toContain("ask gave up")
        expect(answer).toContain("-32603")
        expect(answer).toContain("no SSE stream open")
      } finally {
        await front.kill()
      }
    },
    90_000,
  )
})
