// A small MCP server on the MCP SDK (stdio) whose long-running tool honours cancellation, for the stdio bus's
// cancel tests. Tools: count { steps, stepMs } sends notifications/progress after each step while its request is
// not cancelled, then answers; echo { message } answers at once. stderr says when a count starts and when it is
// cancelled, with the request id this server saw: "count <id> started", "count <id> cancelled after step <n>: <reason>".
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"

const server = new Server({ name: "slotbus-cancel-test", version: "1.0.0" }, { capabilities: { tools: {} } })
const number = { type: "number" } as const

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    { name: "count", inputSchema: { type: "object", properties: { steps: number, stepMs: number } } },
    { name: "echo", inputSchema: { type: "object", properties: { message: { type: "string" } } } },
  ],
}))

server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
  const args = (request.params.arguments ?? {}) as { steps?: number; stepMs?: number; message?: string }
  if (request.params.name === "echo") return { content: [{ type: "text", text: `Echo: ${args.message}` }] }
  const steps = args.steps ?? 5
  const stepMs = args.stepMs ?? 100
  const token = request.params._meta?.progressToken
  let done = 0
  console.error(`count ${extra.requestId} started`)
  extra.signal.addEventListener("abort", () =>
    console.error(`count ${extra.requestId} cancelled after step ${done}: ${String(extra.signal.reason)}`),
  )
  while (done < steps) {
    await new Promise((r) => setTimeout(r, stepMs))
    if (extra.signal.aborted) break
    done++
    if (token !== undefined)
      await extra.sendNotification({
        method: "notifications/progress",
        params: { progressToken: token, progress: done, total: steps },
      })
  }
  return { content: [{ type: "text", text: `counted to ${done}` }] }
})

await server.connect(new StdioServerTransport())
