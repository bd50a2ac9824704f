// A small MCP server on the MCP SDK (stdio) whose long-running tool honours cancellation, for the stdio bus's
// cancel tests. Tools: count { steps, stepMs } sends notifications/progress after each step while its request is
// not cancelled, then answers; echo { message } answers at once. stderr says when a count starts and when it is
// cancelled, with the request id this server saw: "count <id> started", "count <id> cancelled after step <n>: <reason>".
// ask { timeoutMs } asks its client for sampling and gives up after timeoutMs (the SDK then sends the client
// notifications/cancelled for it), answering "asked: <text>" or "ask gave up: <error>". flood { count, size, every } sends
// `count` notifications/message of `size` characters (to the session's GET stream), with a 1 ms pause after each
// `every` of them if given, then answers "flooded <count>".
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import {
  CallToolRequestSchema,
  CreateMessageResultSchema,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js"

const server = new Server(
  { name: "slotbus-cancel-test", version: "1.0.0" },
  { capabilities: { tools: {}, logging: {} } },
)
const number = { type: "number" } as const

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    { name: "count", inputSchema: { type: "object", properties: { steps: number, stepMs: number } } },
    { name: "echo", inputSchema: { type: "object", properties: { message: { type: "string" } } } },
    { name: "ask", inputSchema: { type: "object", properties: { timeoutMs: number } } },
    { name: "flood", inputSchema: { type: "object", properties: { count: number, size: number } } },
  ],
}))

server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
  const args = (request.params.arguments ?? {}) as {
    steps?: number
    stepMs?: number
    message?: string
    timeoutMs?: number
    count?: number
    size?: number
    every?: number
  }
  if (request.params.name === "flood") {
    const data = "x".repeat(args.size ?? 1000)
    for (let i = 0; i < (args.count ?? 1); i++) {
      await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: `${i} ${data}` } })
      if (args.every && (i + 1) % args.every === 0) await new Promise((r) => setTimeout(r, 1))
    }
    return { content: [{ type: "text", text: `flooded ${args.count ?? 1}` }] }
  }
  if (request.params.name === "echo") return { content: [{ type: "text", text: `Echo: ${args.message}` }] }
  if (request.params.name === "ask") {
    const sampling = {
      method: "sampling/createMessage" as const,
      params: { messages: [{ role: "user" as const, content: { type: "text" as const, text: "?" } }], maxTokens: 9 },
    }
    try {
      const r = await extra.sendRequest(sampling, CreateMessageResultSchema, { timeout: args.timeoutMs ?? 60_000 })
      return { content: [{ type: "text", text: `asked: ${(r.content as { text?: string }).text}` }] }
    } catch (e) {
      return { content: [{ type: "text", text: `ask gave up: ${(e as Error).message}` }] }
    }
  }
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
