// StdioBus.stop() with requests in flight from socket clients: every request id a client sent before the close
// gets an answer (its result, or an error saying the bus stopped) before the connection closes.
import { expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { StdioBus } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { clientOf, pacedClient, type PacedClient, workerConfig } from "../support/stdio/stdio.ts"

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

const sleepLines = (n: number, ms: number) => {
  let text = ""
  for (let id = 1; id <= n; id++) text += `${JSON.stringify({ jsonrpc: "2.0", id, method: "sleep", params: { ms } })}\n`
  return text
}

const sockPath = () => join(tmpdir(), `slotbus-stop-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)

// The issue's script, as it was reported (hardening round four, item 14): the workers' queues are full of embedded
// requests, so the client's lines wait in the bus when stop() comes, and are all answered in one burst.
test("stop() with 3,000 embedded requests queued and a unix client writing 2,000 lines answers every id before the close", async () => {
  const bus = StdioBus.fromConfig({ ...workerConfig("echo", 2), limits: { max_output_queue: 65536 } })
  await bus.start()
  let client: PacedClient | undefined
  try {
    const path = sockPath()
    await bus.listen(`unix:${path}`)
    const embedded = Array.from({ length: 3000 }, () =>
      bus.request("sleep", { ms: 3000, pad: "p".repeat(1000) }, { timeoutMs: 0 }).then(
        () => "answered",
        (e: Error) => e.constructor.name,
      ),
    )
    const n = 2000
    client = await pacedClient(path, sleepLines(n, 3000))
    await Bun.sleep(300)
    await bus.stop({ timeoutMs: 100, killAfterMs: 200 })
    await client.closed
    const outcomes = await Promise.all(embedded)
    console.log(
      `stop() with ${n} socket lines written: ${client.answered.size} ids answered before the close, ${client.unsent} bytes unsent; embedded ${JSON.stringify(count(outcomes))}`,
    )
    expect(client.answered.size).toBe(n)
  } finally {
    client?.socket.terminate()
    await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
  }
}, 30_000)

test("a client that reads its answers only after stop() began still gets one for every line its socket took", async () => {
  // The worker reads nothing, so the client's lines wait: in the worker's queue, in the bus, in the socket.
  const bus = StdioBus.fromConfig({ ...workerConfig("no-read", 1), limits: { max_output_queue: 65536 } })
  await bus.start()
  let client: PacedClient | undefined
  try {
    const path = sockPath()
    await bus.listen(`unix:${path}`)
    client = await pacedClient(path, sleepLines(50_000, 0))
    await until(() => client!.unsent > 0, "the client blocked")
    await Bun.sleep(100)
    const sent = client.stopWriting()
    // Its answers (errors: the bus stops) pile up unread, so the bus stops taking its lines for a while.
    client.socket.pause()
    const stopping = bus.stop({ timeoutMs: 0, killAfterMs: 200 })
    await Bun.sleep(300)
    client.socket.resume()
    await stopping
    await client.closed
    console.log(`${sent} whole lines taken by the socket: ${client.answered.size} answered before the close`)
    expect(client.answered.size).toBe(sent)
  } finally {
    client?.socket.terminate()
    await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
  }
}, 30_000)

function count(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const x of xs) out[x] = (out[x] ?? 0) + 1
  return out
}
