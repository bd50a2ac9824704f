// Against a real MCP server from npm (@modelcontextprotocol/server-everything, over stdio) and the real MCP SDK client.
import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { WorkerGoneError } from "../../src/stdio/index.ts"
import { spawn, until } from "../support/helpers.ts"
import { nextEvent, rawClient, withBus } from "../support/stdio/stdio.ts"
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js"

const ROOT = join(import.meta.dir, "..", "..")
const EVERYTHING = join(ROOT, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
const SLOTBUS = join(ROOT, "bin", "slotbus.ts")
const everything = (instances: number) => ({
  pools: [{ id: "everything", command: process.execPath, args: [EVERYTHING, "stdio"], instances }],
})
const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "slotbus-test", version: "1" } }

describe("stdio bus with a real MCP server", () => {
  test("two sessions on a pool of 2 each initialize, list tools and call echo on their own instance; kill -9 of one leaves the other untouched", async () => {
    await withBus(everything(2), async (bus) => {
      for (const sessionId of ["A", "B"]) {
        const init = (await bus.request("initialize", INIT, { sessionId, timeoutMs: 20_000 })) as {
          serverInfo: { name: string }
        }
        expect(init.serverInfo.name).toContain("everything")
        await bus.notify("notifications/initialized", undefined, { sessionId })
        const { tools } = (await bus.request("tools/list", {}, { sessionId })) as { tools: { name: string }[] }
        expect(tools.map((t) => t.name)).toContain("echo")
        expect(
          await bus.request("tools/call", { name: "echo", arguments: { message: `hi ${sessionId}` } }, { sessionId }),
        ).toEqual({ content: [{ type: "text", text: `Echo: hi ${sessionId}` }] })
      }
      const a = bus.sessionOf("A")!
      const b = bus.sessionOf("B")!
      expect(a.pid).not.toBe(b.pid)

      const long = bus.request(
        "tools/call",
        { name: "trigger-long-running-operation", arguments: { duration: 30, steps: 1 } },
        { sessionId: "A", timeoutMs: 60_000 },
      )
      await until(
        () =>
          bus.stats().pools[0]!.instances[a.instance]!.inFlight === 1 &&
          bus.stats().pools[0]!.instances[a.instance]!.queuedBytes === 0,
        "the long call written",
      )
      const restarted = nextEvent(bus, "worker-start", (e) => e.instance === a.instance)
      process.kill(a.pid, "SIGKILL")
      await expect(long).rejects.toBeInstanceOf(WorkerGoneError)
      expect(bus.sessionOf("A")).toBeNull()
      expect((await restarted).pid).not.toBe(a.pid)
      expect(bus.stats().restarts).toBe(1)

      expect(
        await bus.request("tools/call", { name: "echo", arguments: { message: "still here" } }, { sessionId: "B" }),
      ).toEqual({ content: [{ type: "text", text: "Echo: still here" }] })
      expect(bus.sessionOf("B")).toEqual(b)
      // A's next message goes to a live instance, where it starts over with initialize.
      await bus.request("initialize", INIT, { sessionId: "A", timeoutMs: 20_000 })
      expect(bus.sessionOf("A")!.pid).not.toBe(a.pid)
    })
  }, 60_000)

  test("the MCP SDK client, spawning `slotbus stdio connect`, lists tools and calls echo through a `slotbus stdio --listen` bus", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-mcp-"))
    const config = join(dir, "bus.json")
    const sock = join(dir, "bus.sock")
    writeFileSync(config, JSON.stringify(everything(2)))
    const server = spawn([process.execPath, SLOTBUS, "stdio", "--config", config, "--listen", `unix:${sock}`])
    const client = new Client({ name: "slotbus-test", version: "1.0.0" })
    try {
      await until(() => server.stderr.includes("listening on"), "the bus to listen", 20_000)
      await client.connect(
        new StdioClientTransport({ command: process.execPath, args: [SLOTBUS, "stdio", "connect", `unix:${sock}`] }),
      )
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["echo", "get-sum"]))
      expect(await client.callTool({ name: "echo", arguments: { message: "through the bus" } })).toMatchObject({
        content: [{ type: "text", text: "Echo: through the bus" }],
      })
      expect(await client.callTool({ name: "get-sum", arguments: { a: 2, b: 40 } })).toMatchObject({
        content: [{ type: "text", text: expect.stringContaining("42") }],
      })
    } finally {
      await client.close()
      server.signal("SIGTERM")
      await server.exited
      rmSync(dir, { recursive: true, force: true })
    }
    expect(server.stderr).toContain("everything#0 started")
  }, 60_000)

  test("without --listen, `slotbus stdio` is itself a stdio MCP server backed by the pool", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-mcp-"))
    const config = join(dir, "bus.json")
    writeFileSync(config, JSON.stringify(everything(1)))
    const client = new Client({ name: "slotbus-test", version: "1.0.0" })
    try {
      await client.connect(
        new StdioClientTransport({
          command: process.execPath,
          args: [SLOTBUS, "stdio", "--config", config, "--quiet"],
          stderr: "ignore",
        }),
      )
      expect(await client.callTool({ name: "echo", arguments: { message: "stdio mode" } })).toMatchObject({
        content: [{ type: "text", text: "Echo: stdio mode" }],
      })
    } finally {
      await client.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  test("a server's sampling request reaches only the MCP client it is for: another client's forged answers are refused, the real one is used", async () => {
    await withBus(everything(1), async (bus) => {
      const dir = mkdtempSync(join(tmpdir(), "slotbus-mcp-"))
      const sock = join(dir, "bus.sock")
      await bus.listen(`unix:${sock}`)
      const mallory = await rawClient(`unix:${sock}`)
      const client = new Client({ name: "alice", version: "1.0.0" }, { capabilities: { sampling: {} } })
      const { promise: forged, resolve: forgedDone } = Promise.withResolvers<void>()
      client.setRequestHandler(CreateMessageRequestSchema, async () => {
        // The question is out: mallory answers it (and every id she can think of) before alice does.
        for (let i = 0; i <= 50; i++)
          mallory.send(
            JSON.stringify({
              jsonrpc: "2.0",
              id: `sb-${i}`,
              result: { role: "assistant", model: "forged", content: { type: "text", text: "FORGED" } },
            }),
          )
        await forged
        return { role: "assistant", model: "alice", content: { type: "text", text: "the real answer" } }
      })
      try {
        await client.connect(
          new StdioClientTransport({ command: process.execPath, args: [SLOTBUS, "stdio", "connect", `unix:${sock}`] }),
        )
        const call = client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "hi" } })
        await until(() => bus.stats().routingErrors >= 50, "mallory's answers seen")
        forgedDone()
        const text = ((await call) as { content: { text: string }[] }).content[0]!.text
        expect(text).toContain("the real answer")
        expect(text).not.toContain("FORGED")
      } finally {
        await client.close()
        mallory.close()
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }, 60_000)
})
