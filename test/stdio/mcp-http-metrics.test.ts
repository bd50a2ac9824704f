// The MCP HTTP side seen from outside: GET /metrics scraped over HTTP from serveStatus (checked by promtool), the
// status view's table, and a SERVER span per MCP request with its session and method.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SpanKind } from "@opentelemetry/api"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { serveStatus } from "../../src/status/index.ts"
import { registerOtel } from "../support/otel-setup.ts"
import { promtool, sample } from "../support/status/prometheus.ts"
import { everything, withBus } from "../support/stdio/stdio.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const config = everything(2)
const promtoolSkip = toolSkipReason("promtool")
sayWhySkipped("promtool check metrics", promtoolSkip)

describe("MCP Streamable HTTP seen from outside", () => {
  const exporter = new InMemorySpanExporter()
  let unregister: () => Promise<void>
  beforeAll(() => {
    unregister = registerOtel(exporter)
  })
  afterAll(() => unregister())

  test("GET /metrics counts sessions, messages by method, errors and refusals per pool, and each worker's sessions; the status view has them; each request a span with its session and method", async () => {
    await withBus(config, async (bus) => {
      const listener = await bus.listen("http:127.0.0.1:0")
      const status = await serveStatus([bus], { port: 0, hostname: "127.0.0.1", metricsMaxAgeMs: 0 })
      const clients = [new Client({ name: "m", version: "1" }), new Client({ name: "m", version: "1" })]
      try {
        const transports = clients.map(() => new StreamableHTTPClientTransport(new URL(listener.url)))
        await Promise.all(clients.map((c, i) => c.connect(transports[i]!)))
        for (const c of clients)
          for (let k = 0; k < 3; k++) await c.callTool({ name: "echo", arguments: { message: "x" } })
        await clients[0]!.listTools()
        const headers = {
          "content-type": "application/json",
          accept: "application/json",
          "mcp-session-id": transports[0]!.sessionId!,
        }
        const unknown = { jsonrpc: "2.0", id: "u", method: "no/such" }
        const answer = await fetch(listener.url, { method: "POST", headers, body: JSON.stringify(unknown) })
        expect(((await answer.json()) as { error: { code: number } }).error.code).toBe(-32601)
        const foreign = await fetch(listener.url, {
          method: "POST",
          headers: { ...headers, origin: "http://evil.example" },
          body: "{}",
        })
        expect(foreign.status).toBe(403)

        const res = await fetch(`${status.url}/metrics`)
        expect(res.status).toBe(200)
        const text = await res.text()
        if (promtoolSkip === null) expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
        const at = (series: string) => sample(text, series)
        expect(at('slotbus_mcp_sessions{pool="everything"}')).toBe(2)
        expect(at('slotbus_mcp_sessions_opened_total{pool="everything"}')).toBe(2)
        expect(at('slotbus_mcp_messages_total{pool="everything",method="tools/call"}')).toBe(6)
        expect(at('slotbus_mcp_messages_total{pool="everything",method="initialize"}')).toBe(2)
        expect(at('slotbus_mcp_messages_total{pool="everything",method="other"}')).toBe(1)
        expect(at('slotbus_mcp_errors_total{pool="everything",method="other"}')).toBe(1)
        expect(at('slotbus_mcp_refusals_total{pool="everything",status="403"}')).toBe(1)
        const perWorker = [0, 1].map((i) => at(`slotbus_stdio_worker_sessions{pool="everything",worker="${i}"}`))
        expect(perWorker).toEqual([1, 1])

        const view = (await (await fetch(`${status.url}/status.json`)).json()) as {
          sections: { kind: string; tables: { title: string; columns: string[]; rows: unknown[][] }[] }[]
        }
        const table = view.sections.find((s) => s.kind === "stdio")!.tables.find((t) => t.title === "MCP over HTTP")!
        const row = Object.fromEntries(table.columns.map((c, i) => [c, table.rows[0]![i]]))
        expect(row).toMatchObject({ pool: "everything", sessions: 2, "tools/call": 6, errors: 1, refusals: 1 })

        const spans = exporter.getFinishedSpans().filter((s) => s.name === "tools/call echo")
        expect(spans.length).toBe(6)
        for (const s of spans) expect(s.kind).toBe(SpanKind.SERVER)
        const sessions = new Set(spans.map((s) => s.attributes["mcp.session.id"]))
        expect(sessions).toEqual(new Set(transports.map((t) => t.sessionId)))
        expect(spans.every((s) => s.attributes["mcp.method.name"] === "tools/call")).toBe(true)
        expect(spans.every((s) => typeof s.attributes["slotbus.stdio.instance"] === "number")).toBe(true)
        const failed = exporter.getFinishedSpans().find((s) => s.name === "no/such")!
        expect(failed.attributes["error.type"]).toBe("-32601")
      } finally {
        await Promise.all(clients.map((c) => c.close()))
        await status.stop()
      }
    })
  }, 60_000)
})
