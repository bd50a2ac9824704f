// An app's own node:http server with a stdio bus's MCP Streamable HTTP handler (bus.mcpHandler().nodeListener()),
// run under Node 26 or Bun by test/runtime/node-mcp-http.test.ts. Usage: mcp-http-front.js <program> <server
// script> [max_output_queue] [listen]: a pool of one `<program> <server script> stdio` (server-everything), then
// "ready <port>"; on a "stop" line on stdin the server closes, the bus stops, and it prints "stopped <state>". With
// "listen" the bus's own server (`bus.listen("http:…")`: Bun.serve under Bun) serves it instead of the app's.
import { createServer } from "node:http"
import { createInterface } from "node:readline"
import { StdioBus } from "../../../src/stdio/index.ts"

const [program, script, queue, mode] = process.argv.slice(2)
if (!program || !script)
  throw new Error("usage: mcp-http-front.js <program> <server script> [max_output_queue] [listen]")
const bus = StdioBus.fromConfig({
  pools: [{ id: "everything", command: program, args: [script, "stdio"], initialize: "replay" }],
  limits: queue ? { max_output_queue: Number(queue) } : {},
})
await bus.start()
if (mode === "listen") {
  console.log(`ready ${(await bus.listen("http:127.0.0.1:0")).address.port}`)
  for await (const line of createInterface({ input: process.stdin })) if (line === "stop") break
  await bus.stop({ timeoutMs: 0, killAfterMs: 500 })
  console.log(`stopped ${bus.state}`)
  process.exit(0)
}
const handler = bus.mcpHandler()
const server = createServer(handler.nodeListener())
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
console.log(`ready ${(server.address() as { port: number }).port}`)
for await (const line of createInterface({ input: process.stdin })) if (line === "stop") break
server.closeAllConnections()
await new Promise((r) => server.close(r))
await bus.stop({ timeoutMs: 0, killAfterMs: 500 })
console.log(`stopped ${bus.state}`)
process.exit(0)
