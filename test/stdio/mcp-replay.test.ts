// pools[].initialize: "replay" against the real @modelcontextprotocol/server-everything: a session's MCP handshake is
// replayed to its restarted worker, so the client goes on without initializing again. server-everything answers
// tools/list uninitialized too, but registers trigger-sampling-request only once a client that declared sampling
// has sent notifications/initialized: that tool in the list says the new process got the whole handshake.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { InitializeReplay, StdioBus } from "../../src/stdio/index.ts"
import { nextEvent, rawClient, withBus } from "../support/stdio/stdio.ts"

const EVERYTHING = join(import.meta.dir, "..", "..", "node_modules", "@modelcontextprotocol", "server-everything")
const everything = (initialize: InitializeReplay) => ({
  pools: [
    { id: "everything", command: process.execPath, args: [join(EVERYTHING, "dist", "index.js"), "stdio"], initialize },
  ],
})
const INIT = {
  protocolVersion: "2025-06-18",
  capabilities: { sampling: {} },
  clientInfo: { name: "slotbus-test", version: "1" },
}
const SAMPLING_TOOL = "trigger-sampling-request"
const sockPath = () => join(tmpdir(), `slotbus-replay-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
const rpc = (m: object) => JSON.stringify({ jsonrpc: "2.0", ...m })
const toolNames = (result: unknown) => (result as { tools: { name: string }[] }).tools.map((t) => t.name)

/** SIGKILLs the pool's one worker and resolves with the pid of the one started in its place. */
async function killWorker(bus: StdioBus): Promise<number> {
  const pid = bus.stats().pools[0]!.instances[0]!.pid
  const restarted = nextEvent(bus, "worker-start", (e) => e.pid !== pid)
  process.kill(pid, "SIGKILL")
  return (await restarted).pid
}

describe("stdio bus replays a session's MCP handshake to a restarted worker", () => {
  test.each([
    ["replay", true],
    ["none", false],
  ] as const)(
    'initialize "%s": after kill -9 of the worker, tools/list from the same session (no new initialize) lists the tools of an initialized server: %p',
    async (initialize, replayed) => {
      await withBus(everything(initialize), async (bus) => {
        await bus.request("initialize", INIT, { sessionId: "A", timeoutMs: 20_000 })
        await bus.notify("notifications/initialized", undefined, { sessionId: "A" })
        const list = async () => toolNames(await bus.request("tools/list", {}, { sessionId: "A", timeoutMs: 20_000 }))
        expect(await list()).toContain(SAMPLING_TOOL)
        const pid = await killWorker(bus)
        if (replayed) expect(await list()).toContain(SAMPLING_TOOL)
        else expect(await list()).not.toContain(SAMPLING_TOOL) // a fresh server nobody initialized
        expect(bus.sessionOf("A")!.pid).toBe(pid)
        expect(
          await bus.request("tools/call", { name: "echo", arguments: { message: "after" } }, { sessionId: "A" }),
        ).toEqual({ content: [{ type: "text", text: "Echo: after" }] })
        expect(bus.stats()).toMatchObject({ restarts: 1, lateResponses: 0, routingErrors: 0 })
      })
    },
    60_000,
  )

  test('a socket client goes on after kill -9 of its worker without initializing again, and never sees the replayed initialize\'s answer (initialize "replay")', async () => {
    await withBus(everything("replay"), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      try {
        c.send(rpc({ id: 1, method: "initialize", params: INIT }))
        await c.waitFor((m) => m.id === 1, "the initialize answered")
        c.send(rpc({ method: "notifications/initialized" }))
        c.send(rpc({ id: 2, method: "tools/list", params: {} }))
        expect(toolNames((await c.waitFor((m) => m.id === 2, "the first tools/list")).result)).toContain(SAMPLING_TOOL)
        await killWorker(bus)
        c.send(rpc({ id: 3, method: "tools/list", params: {} }))
        expect(toolNames((await c.waitFor((m) => m.id === 3, "tools/list after the restart")).result)).toContain(
          SAMPLING_TOOL,
        )
        c.send(rpc({ id: 4, method: "tools/call", params: { name: "echo", arguments: { message: "after" } } }))
        expect((await c.waitFor((m) => m.id === 4, "echo after the restart")).result).toEqual({
          content: [{ type: "text", text: "Echo: after" }],
        })
        // Answers only to what the client asked, each once: the replayed initialize's answer was the bus's.
        expect(c.received.filter((m) => m.method === undefined).map((m) => m.id)).toEqual([1, 2, 3, 4])
        expect(bus.stats()).toMatchObject({ restarts: 1, lateResponses: 0, routingErrors: 0 })
      } finally {
        c.close()
      }
    })
  }, 60_000)
})
