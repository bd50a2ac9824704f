// TCP through the runtime room under Node 26 (src/runtime/node/net.ts), run by test/runtime/node-tcp.test.ts:
// `node node-tcp.js <dir>` (built to JavaScript). First the runtime's listen and connect on a TCP port, printed as
// "runtime <JSON>"; then a stdio bus's tcp: listener (StdioListener, the feature on TCP) over an echo host, printed
// as "listening <port> <token file>", its token file in <dir>. Its own client (the runtime's connect) authenticates
// and prints "self <answer>". On stdin "close" closes the listener and prints "closed <token file still there>".
import { existsSync, readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { join } from "node:path"
import * as rt from "../../../src/runtime/index.ts"
import { StdioListener } from "../../../src/stdio/index.ts"
import { connectOutcome } from "./contract-cases.ts"

const dir = process.argv[2]!
const decode = (b: Uint8Array) => new TextDecoder().decode(b)

// the runtime's TCP: a port picked (0), the same port again refused, echo both ways, stop(true) ends the
// connection, a refused connect calls connectError and rejects
const server = await rt.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (s, b) => void s.write(b) } })
const again = await Promise.resolve()
  .then(() => rt.listen({ hostname: "127.0.0.1", port: server.port, socket: { data() {} } }))
  .then(
    (l) => (l.stop(true), "bound"),
    (e: NodeJS.ErrnoException) => e.code ?? String(e),
  )
const echoed = Promise.withResolvers<string>()
const closed = Promise.withResolvers<void>()
const client = await rt.connect({
  hostname: "127.0.0.1",
  port: server.port,
  socket: { data: (_s, b) => echoed.resolve(decode(b)), close: () => closed.resolve() },
})
client.write("port?")
const echo = await echoed.promise
server.stop(true)
await closed.promise
const refused = await connectOutcome(rt, { hostname: "127.0.0.1", port: server.port })
console.log(`runtime ${JSON.stringify({ port: server.port > 0, again, echo, closed: true, refused })}`)

// the stdio bus's tcp: listener over an echo host: each line is answered { id, result: the line }
type Client = { deliver(m: object): void; close(): void }
const host = {
  limits: { max_input_buffer: 64 * 1024, max_output_queue: 1024 * 1024, drain_timeout_sec: 5 },
  attachClient: (deliver: (m: object) => void): Client => ({ deliver, close() {} }),
  ingest(client: Client, line: string) {
    const msg = JSON.parse(line) as { id: number }
    client.deliver({ jsonrpc: "2.0", id: msg.id, result: line })
  },
  settled: async () => {},
}
const tokenFile = join(dir, "stdio.token")
const listener = await StdioListener.open(host, "tcp:127.0.0.1:0", { tokenFile })
const port = (listener.address as { port: number }).port
console.log(`listening ${port} ${listener.tokenFile}`)

const answered = Promise.withResolvers<string>()
const self = await rt.connect({
  hostname: "127.0.0.1",
  port,
  socket: { data: (_s, b) => answered.resolve(decode(b).trim()) },
})
const token = readFileSync(tokenFile, "utf8").trim()
self.write(`${JSON.stringify({ jsonrpc: "2.0", method: "slotbus/auth", params: { token } })}\n`)
self.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })}\n`)
console.log(`self ${await answered.promise}`)
self.end()

for await (const line of createInterface({ input: process.stdin })) if (line === "close") break
await listener.close()
console.log(`closed ${existsSync(tokenFile)}`)
process.exit(0)
