// An NDJSON MCP server that never parses a payload lossily, for the bus's exactness tests (ids, cancels, progress
// tokens, params and results with numbers a JS number cannot hold as written). tools/call by params.name:
//   line      answers with the line it got, as a string (what the bus wrote, byte for byte)
//   numbers   answers with a result written as text: {"n":[9007199254740993,12345678901234567890,0.30000000000000001,1e400,1.50]}
//   progress  a notifications/progress with the token it got, as written, then the answer
//   hold      no answer until a tools/call "release", which answers every held one and itself with
//             { cancelled: [the requestId text of each notifications/cancelled it got, in order] }
import { createInterface } from "node:readline"

export const NUMBERS = "[9007199254740993,12345678901234567890,0.30000000000000001,1e400,1.50]"
const held: string[] = []
const cancelled: string[] = []
const write = (line: string) => process.stdout.write(`${line}\n`)
const answer = (id: string, result: string) => write(`{"jsonrpc":"2.0","id":${id},"result":${result}}`)
// the bus's own ids are small integers: read as text all the same
const member = (line: string, name: string) => new RegExp(`"${name}":(-?[0-9][0-9.eE+-]*)`).exec(line)?.[1]

for await (const line of createInterface({ input: process.stdin })) {
  const id = member(line, "id")
  if (line.includes('"notifications/cancelled"')) cancelled.push(member(line, "requestId") ?? "?")
  if (id === undefined || !line.includes('"method"')) continue
  const name = /"name":"([a-z]+)"/.exec(line)?.[1]
  if (line.includes('"initialize"'))
    answer(
      id,
      '{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"exact","version":"1"}}',
    )
  else if (name === "line") answer(id, JSON.stringify({ content: [{ type: "text", text: line }] }))
  else if (name === "numbers") answer(id, `{"n":${NUMBERS}}`)
  else if (name === "progress") {
    const token = /"progressToken":("[^"]*"|[^,}]+)/.exec(line)?.[1]
    write(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":${token},"progress":1}}`)
    answer(id, "{}")
  } else if (name === "hold") held.push(id)
  else if (name === "release") {
    for (const h of held.splice(0)) answer(h, '{"released":true}')
    answer(id, JSON.stringify({ cancelled }))
  } else answer(id, "{}")
}
