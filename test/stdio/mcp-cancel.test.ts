// Cancellation through the bus to real MCP servers on stdio: @modelcontextprotocol/server-everything from npm, and
// a small server on the MCP SDK whose long-running tool watches its request's signal (workers/mcp-worker.ts).
// Each settles by events, not by time: a second operation started after the cancel on the same server, whose
// end comes after the cancelled one's would have.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { BusMessage, StdioBus } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { withBus } from "../support/stdio/stdio.ts"

const ROOT = join(import.meta.dir, "..", "..")
const EVERYTHING = join(ROOT, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
const MCP_WORKER = join(import.meta.dir, "workers", "mcp-worker.ts")
const SLOTBUS = join(ROOT, "bin", "slotbus.ts")
const INIT = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "slotbus-test", version: "1" } }
const pool = (args: string[]) => ({ pools: [{ id: "mcp", command: process.execPath, args }] })

/** Everything messages() yields until the bus stops, gathered as it comes. */
function gather(bus: StdioBus): BusMessage[] {
  const got: BusMessage[] = []
  void (async () => {
    for await (const m of bus.messages()) got.push(m)
  })()
  return got
}
/** The progress values reported so far for `token`, in order. */
const progressOf = (got: BusMessage[], token: string) =>
  got
    .filter((m) => m.message.method === "notifications/progress")
    .map((m) => m.message.params as { progressToken: string; progress: number })
    .filter((p) => p.progressToken === token)
    .map((p) => p.progress)

async function initialize(bus: StdioBus, sessionId: string): Promise<void> {
  await bus.request("initialize", INIT, { sessionId, timeoutMs: 20_000 })
  await bus.notify("notifications/initialized", undefined, { sessionId })
}

const call = (name: string, args: object, token: string) => ({ name, arguments: args, _meta: { progressToken: token } })

describe("stdio bus passes cancellation on to MCP servers", () => {
  test("server-everything is told notifications/cancelled when a call is aborted after its first progress: it drops that call's answer (its tool keeps reporting progress)", async () => {
    await withBus(pool([EVERYTHING, "stdio"]), async (bus) => {
      await initialize(bus, "s")
      const got = gather(bus)
      const op = { duration: 3, steps: 3 }
      const ac = new AbortController()
      const cancelled = bus.request("tools/call", call("trigger-long-running-operation", op, "A"), {
        sessionId: "s",
        signal: ac.signal,
        timeoutMs: 0,
      })
      await until(() => progressOf(got, "A").length > 0, "the first progress of the call", 20_000)
      ac.abort(new Error("not needed any more"))
      await expect(cancelled).rejects.toThrow("not needed any more")
      // Started after the cancel was written, with the same step length: the cancelled call's last step, and its
      // answer had it not been cancelled, come out of the server's stdout before this call's answer.
      const settle = await bus.request("tools/call", call("trigger-long-running-operation", op, "B"), {
        sessionId: "s",
        timeoutMs: 60_000,
      })
      expect(JSON.stringify(settle)).toContain("Long running operation completed")
      expect(progressOf(got, "B")).toEqual([1, 2, 3])
      expect(bus.stats()).toMatchObject({ cancelsSent: 1, lateResponses: 0, routingErrors: 0 })
      // What server-everything does with it: the SDK under it aborts the request's signal and drops the answer,
      // but this tool's loop never looks at the signal and reports progress to the end (src/stdio/README.md says
      // so; update both if that changes).
      expect(progressOf(got, "A"), "the tool's progress after the cancel").toEqual([1, 2, 3])
    })
  }, 60_000)

  test("an MCP SDK server whose tool watches its signal stops working on a call aborted after its first progress: no progress for it after the cancel, no answer", async () => {
    await withBus(pool([MCP_WORKER]), async (bus) => {
      const logs: string[] = []
      bus.on("log", (l) => logs.push(l.line))
      await initialize(bus, "s")
      const got = gather(bus)
      const op = { steps: 8, stepMs: 250 }
      const ac = new AbortController()
      const cancelled = bus.request("tools/call", call("count", op, "A"), {
        sessionId: "s",
        signal: ac.signal,
        timeoutMs: 0,
      })
      await until(() => progressOf(got, "A").length > 0, "the first progress of the call", 20_000)
      ac.abort(new Error("not needed any more"))
      await expect(cancelled).rejects.toThrow("not needed any more")
      // Started after the cancel was written, with the same step length: three steps in which the cancelled call,
      // had it kept counting, would have reported progress at least twice.
      const settle = await bus.request("tools/call", call("count", { ...op, steps: 3 }, "B"), {
        sessionId: "s",
        timeoutMs: 60_000,
      })
      expect(settle).toEqual({ content: [{ type: "text", text: "counted to 3" }] })
      const started = logs.map((l) => /^count (\S+) started/.exec(l)?.[1]).filter(Boolean)
      const stopped = logs.map((l) => /^count (\S+) cancelled after step (\d+): (.*)$/.exec(l)).find(Boolean)
      expect(stopped, "the server logs the cancellation").toBeTruthy()
      const [, id, step, reason] = stopped!
      expect(id).toBe(started[0]!) // the id the server saw, not the caller's
      expect(reason).toBe("aborted by the caller: not needed any more")
      expect(Number(step)).toBeLessThan(op.steps)
      expect(progressOf(got, "A")).toEqual(Array.from({ length: Number(step) }, (_, i) => i + 1))
      expect(bus.stats()).toMatchObject({ cancelsSent: 1, lateResponses: 0, routingErrors: 0 })
    })
  }, 60_000)

  test("an MCP SDK client connected through `slotbus stdio connect` that aborts a call stops the tool on the server: its own cancel arrives under the id the server saw", async () => {
    await withBus(pool([MCP_WORKER]), async (bus) => {
      const logs: string[] = []
      bus.on("log", (l) => logs.push(l.line))
      const sock = join(tmpdir(), `slotbus-mcp-cancel-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
      await bus.listen(`unix:${sock}`)
      const client = new Client({ name: "slotbus-test", version: "1.0.0" })
      try {
        await client.connect(
          new StdioClientTransport({ command: process.execPath, args: [SLOTBUS, "stdio", "connect", `unix:${sock}`] }),
        )
        const ac = new AbortController()
        const progress: number[] = []
        const cancelled = client.callTool({ name: "count", arguments: { steps: 8, stepMs: 250 } }, undefined, {
          signal: ac.signal,
          onprogress: (p) => {
            progress.push(p.progress)
            ac.abort("not needed any more")
          },
        })
        await expect(cancelled).rejects.toThrow()
        // As above: three steps of the same length, started after the cancel went out on the same pipe.
        expect(await client.callTool({ name: "count", arguments: { steps: 3, stepMs: 250 } })).toEqual({
          content: [{ type: "text", text: "counted to 3" }],
        })
        const started = logs.map((l) => /^count (\S+) started/.exec(l)?.[1]).filter(Boolean)
        const stopped = logs.map((l) => /^count (\S+) cancelled after step (\d+): (.*)$/.exec(l)).find(Boolean)
        expect(stopped, "the server logs the cancellation").toBeTruthy()
        expect(stopped![1]).toBe(started[0]!)
        expect(stopped![3]).toBe("not needed any more")
        expect(Number(stopped![2])).toBeLessThan(8)
        expect(bus.stats()).toMatchObject({ lateResponses: 0, routingErrors: 0 })
      } finally {
        await client.close()
      }
    })
  }, 60_000)
})
