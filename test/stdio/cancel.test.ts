// Cancellation passed on to workers: a request its caller aborts, that times out, or whose socket client leaves
// is cancelled on its worker with the pool's protocol (MCP's notifications/cancelled by default, LSP's
// $/cancelRequest, or none), under the id the worker saw. The worker (test/stdio/workers/worker.ts) reports every
// notification back as "seen", so what it was told is read from its own side. MCP servers: mcp-cancel.test.ts.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BusMessage, type CancelProtocol, type StdioBus, TimeoutError } from "../../src/stdio/index.ts"
import { serveStatus } from "../../src/status/index.ts"
import { until } from "../support/helpers.ts"
import { sample } from "../support/status/prometheus.ts"
import { STDIO_WORKER, rawClient, withBus } from "../support/stdio/stdio.ts"

const CANCELS = ["notifications/cancelled", "$/cancelRequest"]
const config = (cancel?: CancelProtocol) => ({
  pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER, "echo"], ...(cancel ? { cancel } : {}) }],
})
const sockPath = () => join(tmpdir(), `slotbus-cancel-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)

/** Everything messages() yields until the bus stops, gathered as it comes. */
function gather(bus: StdioBus): BusMessage[] {
  const got: BusMessage[] = []
  void (async () => {
    for await (const m of bus.messages()) got.push(m)
  })()
  return got
}
const cancelsSeen = (got: BusMessage[]) =>
  got.filter((m) => m.message.method === "seen" && CANCELS.includes((m.message.params as { method: string }).method))

/** Sends `hold` (never answered until cancelled) and resolves with the id the worker saw for it. */
async function held(got: BusMessage[], start: () => void): Promise<number> {
  const before = got.length
  start()
  await until(() => got.slice(before).some((m) => m.message.method === "holding"), "the worker holding the request")
  return (got.slice(before).find((m) => m.message.method === "holding")!.message.params as { id: number }).id
}

describe("stdio bus passes cancellation on to workers", () => {
  const ways: Record<string, { reason: string; giveUp: (bus: StdioBus, got: BusMessage[]) => Promise<number> }> = {
    "aborted by its caller": {
      reason: "aborted by the caller: changed my mind",
      giveUp: async (bus, got) => {
        const ac = new AbortController()
        // Answered before the abort: never cancelled, though it shared the signal.
        expect(await bus.request("echo", { first: true }, { signal: ac.signal })).toMatchObject({
          echo: { first: true },
        })
        let call!: Promise<unknown>
        const id = await held(got, () => (call = bus.request("hold", undefined, { signal: ac.signal, timeoutMs: 0 })))
        ac.abort(new Error("changed my mind"))
        await expect(call).rejects.toThrow("changed my mind")
        return id
      },
    },
    "timed out": {
      reason: "hold: no answer within 500 ms",
      giveUp: async (bus, got) => {
        let call!: Promise<unknown>
        // handled at once: on a loaded machine the timeout may come before the worker says it holds the request
        const id = await held(
          got,
          () => void (call = bus.request("hold", undefined, { timeoutMs: 500 })).catch(() => {}),
        )
        await expect(call).rejects.toBeInstanceOf(TimeoutError)
        return id
      },
    },
    "left by its socket client": {
      reason: "the client disconnected",
      giveUp: async (bus) => {
        const path = sockPath()
        await bus.listen(`unix:${path}`)
        const c = await rawClient(`unix:${path}`)
        try {
          c.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "hold" }))
          return (await c.waitFor((m) => m.method === "holding", "the worker holding the request")).params.id
        } finally {
          c.close()
        }
      },
    },
  }

  test.each(Object.keys(ways))(
    "a request %s is cancelled on its worker with MCP's notifications/cancelled (the default), under the id the worker saw",
    async (way) => {
      await withBus(config(), async (bus) => {
        const got = gather(bus)
        const id = await ways[way]!.giveUp(bus, got)
        await until(() => cancelsSeen(got).length > 0, "the worker told to cancel")
        // The worker reads its stdin in order: anything else the bus sent it is seen before this answer.
        expect(await bus.request("echo", { settle: true })).toMatchObject({ echo: { settle: true } })
        expect(cancelsSeen(got).map((m) => (m.message.params as { params: unknown }).params)).toEqual([
          { requestId: id, reason: ways[way]!.reason },
        ])
        expect(bus.stats()).toMatchObject({ cancelsSent: 1, lateResponses: 0 })
      })
    },
    30_000,
  )

  test('with cancel: "lsp" the worker gets $/cancelRequest { id }; its RequestCancelled answer is dropped and counted late', async () => {
    await withBus(config("lsp"), async (bus) => {
      const got = gather(bus)
      const ac = new AbortController()
      let call!: Promise<unknown>
      const id = await held(got, () => (call = bus.request("hold", undefined, { signal: ac.signal, timeoutMs: 0 })))
      ac.abort(new Error("changed my mind"))
      await expect(call).rejects.toThrow("changed my mind")
      await until(() => cancelsSeen(got).length > 0, "the worker told to cancel")
      expect(await bus.request("echo", { settle: true })).toMatchObject({ echo: { settle: true } })
      expect(cancelsSeen(got).map((m) => m.message.params)).toEqual([
        { method: "$/cancelRequest", params: { id }, pid: expect.any(Number) },
      ])
      expect(bus.stats()).toMatchObject({ cancelsSent: 1, lateResponses: 1, routingErrors: 0 })
    })
  }, 30_000)

  test('with cancel: "none" the worker is told nothing when a request is aborted or times out', async () => {
    await withBus(config("none"), async (bus) => {
      const got = gather(bus)
      const ac = new AbortController()
      let aborted!: Promise<unknown>
      await held(got, () => (aborted = bus.request("hold", undefined, { signal: ac.signal, timeoutMs: 0 })))
      ac.abort(new Error("changed my mind"))
      await expect(aborted).rejects.toThrow("changed my mind")
      let timedOut!: Promise<unknown>
      await held(got, () => void (timedOut = bus.request("hold", undefined, { timeoutMs: 500 })).catch(() => {}))
      await expect(timedOut).rejects.toBeInstanceOf(TimeoutError)
      // A notification sent now is seen after anything the bus wrote before it, a cancel included.
      await bus.notify("after")
      await until(
        () =>
          got.some((m) => m.message.method === "seen" && (m.message.params as { method: string }).method === "after"),
        "the worker seeing the notification sent after both",
      )
      expect(cancelsSeen(got)).toEqual([])
      expect(bus.stats()).toMatchObject({ cancelsSent: 0, lateResponses: 0 })
    })
  }, 30_000)

  test("a request given up while it waited for room in its worker's queue is cancelled right after it is written", async () => {
    const cfg = {
      pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER, "read-on-usr1"] }],
      limits: { max_output_queue: 1024 },
    }
    await withBus(cfg, async (bus) => {
      const got = gather(bus)
      const instance = () => bus.stats().pools[0]!.instances[0]!
      // More than the pipe holds: the queue stays full until the worker reads.
      const big = bus.request("echo", { pad: "x".repeat(256 * 1024) }, { timeoutMs: 0 })
      await until(() => instance().queuedBytes > 0, "the queue full")
      const ac = new AbortController()
      const waiting = bus.request("hold", undefined, { signal: ac.signal, timeoutMs: 0 })
      await until(() => instance().inFlight === 2, "the second request waiting for room")
      ac.abort(new Error("changed my mind"))
      await expect(waiting).rejects.toThrow("changed my mind")
      expect(bus.stats().cancelsSent).toBe(0) // not written yet: nothing to cancel
      await until(() => got.some((m) => m.message.method === "waiting-for-usr1"), "the worker ready for SIGUSR1")
      process.kill(instance().pid, "SIGUSR1")
      expect(await big).toMatchObject({ echo: { pad: expect.any(String) } })
      await until(() => cancelsSeen(got).length > 0, "the worker told to cancel")
      const holding = got.find((m) => m.message.method === "holding")!
      expect(cancelsSeen(got).map((m) => (m.message.params as { params: unknown }).params)).toEqual([
        { requestId: (holding.message.params as { id: number }).id, reason: "aborted by the caller: changed my mind" },
      ])
    })
  }, 30_000)

  test("an initialize is never cancelled (MCP forbids it), whether aborted, timed out or left by its socket client", async () => {
    await withBus(config(), async (bus) => {
      const got = gather(bus)
      const holding = () => got.filter((m) => m.message.method === "holding").length
      const ac = new AbortController()
      const aborted = bus.request("initialize", { hold: true }, { signal: ac.signal, timeoutMs: 0 })
      await until(() => holding() === 1, "the first initialize held")
      ac.abort(new Error("changed my mind"))
      await expect(aborted).rejects.toThrow("changed my mind")
      await expect(bus.request("initialize", { hold: true }, { timeoutMs: 50 })).rejects.toBeInstanceOf(TimeoutError)
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      c.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { hold: true } }))
      await c.waitFor((m) => m.method === "holding", "the client's initialize held")
      c.close()
      await until(() => bus.clientCount === 0, "the client gone (its requests given up)")
      // The worker reads its stdin in order: a cancel written before this request is seen before its answer.
      expect(await bus.request("echo", { settle: true })).toMatchObject({ echo: { settle: true } })
      expect(cancelsSeen(got)).toEqual([])
      expect(bus.stats().cancelsSent).toBe(0)
    })
  }, 30_000)

  describe("a client's own cancel", () => {
    const rpc = (m: object) => JSON.stringify({ jsonrpc: "2.0", ...m })
    /** Two socket clients of one worker, each holding a request it sent as id 7; yields them and the ids the worker saw. */
    async function twoHolding(bus: StdioBus) {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const a = await rawClient(`unix:${path}`)
      const b = await rawClient(`unix:${path}`)
      a.send(rpc({ id: 7, method: "hold" }))
      const aId = (await a.waitFor((m) => m.method === "holding", "a's request held")).params.id
      b.send(rpc({ id: 7, method: "hold" }))
      const bId = (await b.waitFor((m) => m.method === "holding", "b's request held")).params.id
      return { a, b, aId, bId }
    }
    const cancelsSeenBy = (c: { received: any[] }) =>
      c.received.filter((m) => m.method === "seen" && CANCELS.includes(m.params.method)).map((m) => m.params.params)

    test("reaches the worker under the id it saw, and no client can cancel another's request by naming its worker id (MCP)", async () => {
      await withBus(config(), async (bus) => {
        const { a, b, aId, bId } = await twoHolding(bus)
        try {
          b.send(rpc({ method: "notifications/cancelled", params: { requestId: aId, reason: "not mine" } }))
          b.send(rpc({ method: "notifications/cancelled", params: { requestId: 8 } })) // nothing b has in flight
          a.send(rpc({ method: "notifications/cancelled", params: { requestId: 7, reason: "user" } }))
          a.send(rpc({ id: 8, method: "echo" }))
          await a.waitFor((m) => m.id === 8, "a's later request answered")
          // The worker reads in order: whatever it was sent before a's echo, it reported before the answer.
          expect(cancelsSeenBy(a)).toEqual([{ requestId: aId, reason: "user" }])
          expect(a.received.some((m) => m.id === 7)).toBe(false)
          expect(b.received.some((m) => m.id === 7)).toBe(false) // b's own request is still held
          expect(bId).not.toBe(aId)
        } finally {
          a.close()
          b.close()
        }
      })
    }, 30_000)

    test("is counted in /metrics' slotbus_stdio_cancels_sent_total with the bus's own; one naming nothing is not", async () => {
      await withBus(config(), async (bus) => {
        const status = await serveStatus([bus], { port: 0, hostname: "127.0.0.1", metricsMaxAgeMs: 0 })
        // The bus's own cancel first: with socket clients connected, the worker's notifications go to them.
        const got = gather(bus)
        const ac = new AbortController()
        let call!: Promise<unknown>
        await held(got, () => (call = bus.request("hold", undefined, { signal: ac.signal, timeoutMs: 0 })))
        ac.abort(new Error("changed my mind"))
        await expect(call).rejects.toThrow("changed my mind")
        await until(() => cancelsSeen(got).length > 0, "the worker told to cancel")
        const { a, b } = await twoHolding(bus)
        try {
          a.send(rpc({ method: "notifications/cancelled", params: { requestId: 7, reason: "user" } }))
          b.send(rpc({ method: "$/cancelRequest", params: { id: 7 } }))
          b.send(rpc({ method: "notifications/cancelled", params: { requestId: 99 } })) // nothing b has in flight
          await b.waitFor((m) => m.id === 7, "b's request answered RequestCancelled")
          a.send(rpc({ id: 8, method: "echo" }))
          await a.waitFor((m) => m.id === 8, "a's later request answered")
          const text = await (await fetch(`${status.url}/metrics`)).text()
          expect(sample(text, "slotbus_stdio_cancels_sent_total")).toBe(3)
          expect(bus.stats().cancelsSent).toBe(3)
        } finally {
          a.close()
          b.close()
          await status.stop()
        }
      })
    }, 30_000)

    // Ids the bus restores exactly though a JS number cannot hold them: the cancel names them as the client wrote them.
    const IDS = ["12345678901234567890", "1.5", "1e400", "-0", "7", '"seven"']
    test.each(IDS.flatMap((raw) => [["mcp", raw] as const, ["lsp", raw] as const]))(
      "%s: a cancel naming id %s reaches the worker under the id it saw",
      async (protocol, raw) => {
        await withBus(config(protocol), async (bus) => {
          const path = sockPath()
          await bus.listen(`unix:${path}`)
          const a = await rawClient(`unix:${path}`)
          try {
            a.send(`{"jsonrpc":"2.0","id":${raw},"method":"hold"}`)
            const aId = (await a.waitFor((m) => m.method === "holding", "the request held")).params.id
            a.send(
              protocol === "mcp"
                ? `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":${raw},"reason":"user"}}`
                : `{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":${raw}}}`,
            )
            a.send(rpc({ id: 8, method: "echo" }))
            await a.waitFor((m) => m.id === 8, "a later request answered")
            expect(cancelsSeenBy(a)).toEqual([protocol === "mcp" ? { requestId: aId, reason: "user" } : { id: aId }])
            if (protocol === "lsp") {
              // The server's RequestCancelled answer comes back under the id exactly as the client wrote it.
              const answer = a.lines.find((l) => l.includes("-32800"))
              expect(answer).toStartWith(`{"jsonrpc":"2.0","id":${raw},`)
            }
          } finally {
            a.close()
          }
        })
      },
      30_000,
    )

    test("LSP: $/cancelRequest reaches the worker under the id it saw, and the RequestCancelled answer reaches the client under its own id", async () => {
      await withBus(config("lsp"), async (bus) => {
        const { a, b, aId } = await twoHolding(bus)
        try {
          b.send(rpc({ method: "$/cancelRequest", params: { id: aId } }))
          a.send(rpc({ method: "$/cancelRequest", params: { id: 7 } }))
          expect(await a.waitFor((m) => m.id === 7, "a's request answered")).toMatchObject({
            error: { code: -32800, message: "RequestCancelled" },
          })
          a.send(rpc({ id: 8, method: "echo" }))
          await a.waitFor((m) => m.id === 8, "a's later request answered")
          expect(cancelsSeenBy(a)).toEqual([{ id: aId }])
          expect(a.received.filter((m) => m.id === 7)).toHaveLength(1)
          expect(b.received.some((m) => m.id === 7)).toBe(false)
          expect(bus.stats()).toMatchObject({ lateResponses: 0, routingErrors: 0 })
        } finally {
          a.close()
          b.close()
        }
      })
    }, 30_000)
  })
})
