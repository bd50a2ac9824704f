// StdioBus.stop() with requests in flight from socket clients: every request id a client sent before the close
// gets an answer (its result, or an error saying the bus stopped) before the connection closes.
import { expect, test } from "bun:test"
import { StdioBus } from "../../src/stdio/index.ts"
import { clientOf, workerConfig } from "../support/stdio.ts"

test("stop() with 2,000 socket requests in flight answers every id before it closes the connection", async () => {
  const bus = StdioBus.fromConfig(workerConfig("echo", 2))
  await bus.start()
  try {
    const listener = await bus.listen("tcp:127.0.0.1:0")
    const client = await clientOf(listener)
    const n = 2000
    const line = (id: number) => `${JSON.stringify({ jsonrpc: "2.0", id, method: "sleep", params: { ms: id % 50 } })}\n`
    // written while the bus stops: some lines are answered, some queued, some still on the way
    const writing = (async () => {
      for (let id = 1; id <= n; id += 100) {
        let batch = ""
        for (let k = id; k < id + 100; k++) batch += line(k)
        client.write(batch)
        await Bun.sleep(1)
      }
    })()
    while (client.received.length === 0) await Bun.sleep(1)
    const stopping = bus.stop({ killAfterMs: 200 })
    await writing
    await stopping
    await client.closed
    const ids = new Set(client.received.map((m) => m.id))
    expect(ids.size).toBe(n)
    const errors = client.received.filter((m) => m.error)
    for (const m of errors) expect(m.error.message).toMatch(/stop/)
    console.log(`stop() with ${n} in flight: ${n - errors.length} results, ${errors.length} errors`)
  } finally {
    await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
  }
}, 30_000)
