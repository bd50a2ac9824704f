// The NDJSON JSON-RPC echo worker both sides of `slotbus bench stdio` talk to: answers { id, result: params }.
const out = Bun.stdout.writer()
const decoder = new TextDecoder()
let rest = ""
for await (const chunk of Bun.stdin.stream()) {
  const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
  rest = lines.pop()!
  for (const line of lines) {
    if (!line) continue
    const m = JSON.parse(line)
    if (m.id !== undefined) out.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: m.params ?? null }) + "\n")
  }
  out.flush() // one write for every answer to this chunk
}
export {}
