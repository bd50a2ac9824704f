// A stdio bus with an MCP Streamable HTTP listener of its own (bus.listen("http:…")), run under Bun or Node 26 by
// test/stdio/mcp-http.test.ts. Usage: mcp-listen-front.js <program> <mcp-worker script>: a pool of one `<program>
// <script>` (test/stdio/workers/mcp-worker.ts, or worker.ts), then "ready <url>"; "started" once a count call runs on
// the worker; "error <line>" for each error the bus logs about a worker;
// on a "stop" line on stdin the bus stops (a 100 ms drain: a call still running gets -32005) and it prints "stopped".
import { createInterface } from "node:readline"
import { StdioBus } from "../../../src/stdio/index.ts"

const [program, script] = process.argv.slice(2)
if (!program || !script) throw new Error("usage: mcp-listen-front.js <program> <mcp-worker script>")
const bus = StdioBus.fromConfig({ pools: [{ id: "m", command: program, args: [script], initialize: "replay" }] })
await bus.start()
bus.on("log", (l) => {
  if (/^count \S+ started$/.test(l.line)) console.log("started")
  else if (l.level === "error") console.log(`error ${l.line}`)
})
const { url } = await bus.listen("http:127.0.0.1:0")
console.log(`ready ${url}`)
for await (const line of createInterface({ input: process.stdin })) if (line === "stop") break
await bus.stop({ timeoutMs: 100, killAfterMs: 500 })
console.log("stopped")
process.exit(0)
