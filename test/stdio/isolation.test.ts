// Socket clients of one bus cannot reach into each other: a worker's question is answered only by the client it
// went to, a client's own session cannot be named by another, and a noisy worker never evicts another's question.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { until } from "../support/helpers.ts"
import { STDIO_WORKER, rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"

const sockPath = () => join(tmpdir(), `slotbus-iso-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
const rpc = (m: object) => JSON.stringify({ jsonrpc: "2.0", ...m })

describe("stdio bus client isolation", () => {
  test("a worker's question is answered only by the client it went to: another client's forged answer is refused and the real one gets through", async () => {
    await withBus(workerConfig("echo", 1), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const a = await rawClient(`unix:${path}`)
      const b = await rawClient(`unix:${path}`)
      try {
        a.send(rpc({ id: 1, method: "ask", params: { q: "?" } }))
        const q = await a.waitFor((m) => m.method === "client/question", "the question to a")
        expect(b.received).toEqual([]) // b has no session on the worker yet: the question went to a alone
        b.send(rpc({ id: 7, method: "who" }))
        await b.waitFor((m) => m.id === 7, "b pinned to the same worker")
        // b answers a's question (the id leaked, or was guessed) before a does
        b.send(rpc({ id: q.id, result: "forged" }))
        b.send(rpc({ id: "sb-1", result: "forged" }))
        await until(() => bus.stats().routingErrors >= 2, "both forged answers refused")
        a.send(rpc({ id: q.id, result: "real" }))
        expect((await a.waitFor((m) => m.id === 1, "a's answer")).result).toEqual({ answer: "real" })
        // ids cannot be told from a counter
        a.send(rpc({ id: 2, method: "ask" }))
        const q2 = await a.waitFor((m) => m.method === "client/question" && m.id !== q.id, "a second question")
        expect(q.id).not.toMatch(/^sb-\d+$/)
        expect(q2.id).not.toMatch(/^sb-\d+$/)
        a.send(rpc({ id: q2.id, result: "again" }))
        await a.waitFor((m) => m.id === 2, "the second answer")
      } finally {
        a.close()
        b.close()
      }
    })
  })

  test("a client cannot name another client's own session: its message goes where any new session would", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const a = await rawClient(`unix:${path}`)
      const b = await rawClient(`unix:${path}`)
      try {
        // a's session sits on one instance with a long request in flight, so any new session goes to the other
        a.send(rpc({ id: 1, method: "sleep", params: { ms: 30_000 } }))
        await until(() => bus.stats().pools[0]!.instances.some((i) => i.inFlight === 1), "a's request in flight")
        const busy = bus.stats().pools[0]!.instances.find((i) => i.inFlight === 1)!.pid
        const guesses = Array.from({ length: 8 }, (_, i) => [`\u0001client-${i}`, `client-${i}`, `${i}`]).flat()
        for (const [i, sessionId] of guesses.entries()) {
          b.send(rpc({ id: i, method: "who", sessionId }))
          await b.waitFor((m) => m.id === i, `b's answer ${i}`)
        }
        expect(b.received.filter((m) => m.result.pid === busy)).toEqual([])
      } finally {
        a.close()
        b.close()
      }
    })
  })

  test("a worker asking 10 001 questions nobody answers evicts only its own oldest, never another pool's pending question", async () => {
    const config = {
      pools: [
        { id: "quiet", command: process.execPath, args: [STDIO_WORKER], instances: 1 },
        { id: "noisy", command: process.execPath, args: [STDIO_WORKER], instances: 1 },
      ],
    }
    await withBus(config, async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const a = await rawClient(`unix:${path}`)
      const b = await rawClient(`unix:${path}`)
      try {
        a.send(rpc({ id: 1, method: "ask", pool: "quiet" }))
        const q = await a.waitFor((m) => m.method === "client/question", "the quiet worker's question")
        b.send(rpc({ id: 1, method: "ask-many", pool: "noisy", params: { n: 10_001 } }))
        await b.waitFor((m) => m.id === 1, "the noisy worker done asking")
        await until(() => b.received.length === 10_002, "every noisy question delivered")
        a.send(rpc({ id: q.id, result: "still here" }))
        expect((await a.waitFor((m) => m.id === 1, "a's answer")).result).toEqual({ answer: "still here" })
      } finally {
        a.close()
        b.close()
      }
    })
  })
})
