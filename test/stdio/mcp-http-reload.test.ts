// A reload under MCP HTTP traffic: every session keeps calling through it, and nothing fails.
import { describe, expect, test } from "bun:test"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { everything, withBus } from "../support/stdio/stdio.ts"

const config = everything(2)

describe("MCP Streamable HTTP through a reload", () => {
  test("four sessions calling without pause and a long call in flight while every instance is replaced: no call fails, the long one completes", async () => {
    await withBus(config, async (bus) => {
      const { url } = await bus.listen("http:127.0.0.1:0")
      const clients: Client[] = []
      for (let i = 0; i < 4; i++) {
        const c = new Client({ name: `r${i}`, version: "1" })
        await c.connect(new StreamableHTTPClientTransport(new URL(url)))
        clients.push(c)
      }
      try {
        const before = bus.stats().pools[0]!.instances.map((i) => i.pid)
        let reloading = true
        const failures: string[] = []
        const calls = clients.map(() => 0)
        const loops = clients.map(async (c, i) => {
          while (reloading) {
            try {
              const r = await c.callTool({ name: "echo", arguments: { message: `r${i}` } })
              if (JSON.stringify(r).includes(`Echo: r${i}`)) calls[i]!++
              else failures.push(JSON.stringify(r))
            } catch (e) {
              failures.push(String(e))
            }
          }
        })
        const long = clients[0]!.callTool({
          name: "trigger-long-running-operation",
          arguments: { duration: 1.5, steps: 3 },
        })
        await bus.reload()
        const after = bus.stats().pools[0]!.instances.map((i) => i.pid)
        reloading = false
        await Promise.all(loops)
        expect(JSON.stringify(await long)).toContain("Long running operation completed")
        for (const pid of after) expect(before).not.toContain(pid)
        expect(failures).toEqual([])
        for (const n of calls) expect(n).toBeGreaterThan(0)
      } finally {
        await Promise.all(clients.map((c) => c.close()))
      }
    })
  }, 90_000)
})
