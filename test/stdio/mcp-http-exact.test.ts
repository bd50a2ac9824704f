// Numbers a JS number cannot hold as written (9007199254740993, 12345678901234567890, 0.30000000000000001, 1e400,
// 1.50) pass the bus as written: a client's cancel naming such an id reaches that request and no other, a progress
// token comes back as the client wrote it, and params and results are forwarded byte for byte, both ways. MCP
// Streamable HTTP fronts (bus.listen("http:…")) under Bun and Node 26, and the NDJSON path (bus.send / messages()),
// against test/stdio/workers/exact-worker.ts, which reads every line as text.
import { afterAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { StdioBus } from "../../src/stdio/index.ts"
import { peerChild, peerSkip, PEER_RUNTIMES, removeNodeBuilds } from "../support/runtime/peers.ts"
import { NUMBERS } from "./workers/exact-worker.ts"

const WORKER = join(import.meta.dir, "workers", "exact-worker.ts")
const HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }
const INIT =
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}'
const ARGS = `{"orderId":9007199254740993,"big":12345678901234567890,"price":0.30000000000000001,"exp":1e400,"d":1.50,"list":${NUMBERS}}`

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { ...HEADERS, ...headers }, body, signal: AbortSignal.timeout(20_000) })
const call = (id: string, name: string, extra = "") =>
  `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${name}"${extra}}}`
const cancel = (id: string) => `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":${id}}}`

async function withFront(runtime: "bun" | "node", fn: (url: string, session: Record<string, string>) => Promise<void>) {
  const front = await peerChild(runtime, "runtime/mcp-listen-front.ts", [process.execPath, WORKER], { stdin: "pipe" })
  try {
    const [, url] = (await front.waitLine(/^ready (\S+)$/, 60_000)) as unknown as [string, string]
    const init = await post(url, INIT, { accept: "application/json" })
    expect(init.status).toBe(200)
    await init.text()
    const session = { "mcp-session-id": init.headers.get("mcp-session-id")! }
    expect((await post(url, '{"jsonrpc":"2.0","method":"notifications/initialized"}', session)).status).toBe(202)
    await fn(url, session)
  } finally {
    await front.kill()
  }
}

describe.each(PEER_RUNTIMES)("MCP Streamable HTTP under %s: numbers a JS number cannot hold", (runtime) => {
  afterAll(removeNodeBuilds)
  const t = test.skipIf(peerSkip(runtime) !== null)

  t(
    "a cancel naming 1.50, 9007199254740993 or 12345678901234567890 reaches that request, not 1.5 or none",
    async () => {
      await withFront(runtime, async (url, session) => {
        const json = { ...session, accept: "application/json" }
        const ids = ["1.5", "1.50", "9007199254740993", "12345678901234567890"]
        const calls = new Map(ids.map((id) => [id, post(url, call(id, "hold"), json).then((r) => r.text())]))
        // each held call is at the worker once a later request's answer is in (one instance, lines in order)
        await (await post(url, call("2", "ping"), json)).text()
        for (const id of ids.slice(1)) expect((await post(url, cancel(id), session)).status).toBe(202)
        for (const id of ids.slice(1))
          expect(await calls.get(id)).toBe(
            `{"jsonrpc":"2.0","id":${id},"error":{"code":-32800,"message":"cancelled by the client"}}`,
          )
        const released = await (await post(url, call("3", "release"), json)).text()
        // the worker saw three cancels, each naming one of its ids (before: 1.50's named 1.5's, the others none)
        const seen = (JSON.parse(released) as { result: { cancelled: string[] } }).result.cancelled
        expect(seen.length).toBe(3)
        expect(new Set(seen).size).toBe(3)
        // 1.5 was not cancelled: its answer comes (before: given up by the bus, its HTTP call never ended)
        expect(await calls.get("1.5")).toBe('{"jsonrpc":"2.0","id":1.5,"result":{"released":true}}')
      })
    },
    90_000,
  )

  t(
    "a progressToken 12345678901234567890 or 1.50 comes back as the client wrote it",
    async () => {
      await withFront(runtime, async (url, session) => {
        for (const token of ["7", '"abc"', "12345678901234567890", "1.50"]) {
          const text = await (
            await post(url, call("4", "progress", `,"_meta":{"progressToken":${token}}`), session)
          ).text()
          expect(text).toContain(`"params":{"progressToken":${token},"progress":1}`)
        }
      })
    },
    90_000,
  )
})

describe.each(PEER_RUNTIMES)("MCP Streamable HTTP under %s: payloads pass as written", (runtime) => {
  afterAll(removeNodeBuilds)
  const t = test.skipIf(peerSkip(runtime) !== null)

  t(
    "params reach the worker, and its result reaches the client, byte for byte (JSON and SSE answers)",
    async () => {
      await withFront(runtime, async (url, session) => {
        for (const accept of ["application/json", "text/event-stream"]) {
          const sent = await (await post(url, call("5", "line", `,"arguments":${ARGS}`), { ...session, accept })).text()
          // the worker's answer holds the line it got as a string: JSON.stringify of it escapes the quotes
          expect(sent).toContain(JSON.stringify(`"arguments":${ARGS}`).slice(1, -1))
          const got = await (await post(url, call("6", "numbers"), { ...session, accept })).text()
          expect(got).toContain(`{"jsonrpc":"2.0","id":6,"result":{"n":${NUMBERS}}}`)
        }
      })
    },
    90_000,
  )
})

describe("the NDJSON path: payloads pass as written", () => {
  test("bus.send() params reach the worker as written, its result comes out of messages() as written; request() gets numbers", async () => {
    const bus = StdioBus.fromConfig({ pools: [{ id: "x", command: process.execPath, args: [WORKER] }] })
    await bus.start()
    try {
      const messages = bus.messages()[Symbol.asyncIterator]()
      await bus.send(call("12345678901234567890", "line", `,"arguments":${ARGS}`))
      const sent = (await messages.next()).value!.message as { result: { content: { text: string }[] } }
      expect(JSON.stringify(sent)).toStartWith('{"jsonrpc":"2.0","id":12345678901234567890,')
      expect(sent.result.content[0]!.text).toContain(`"arguments":${ARGS}`)
      await bus.send(call("7", "numbers"))
      expect(JSON.stringify((await messages.next()).value!.message)).toBe(
        `{"jsonrpc":"2.0","id":7,"result":{"n":${NUMBERS}}}`,
      )
      // the bus's own request() resolves with plain numbers, as JSON.parse reads them
      expect(await bus.request("tools/call", { name: "numbers" })).toEqual({
        n: [9007199254740992, 12345678901234567000, 0.3, Number.POSITIVE_INFINITY, 1.5],
      })
    } finally {
      await bus.stop()
    }
  }, 60_000)
})
