// Session pins: bounded over the bus and per socket client (the least recently used forgotten, counted), and never
// made or used for a socket client that has left.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { StdioBus } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { nextEvent, pacedClient, rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"

const sockPath = () => join(tmpdir(), `slotbus-pins-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
const rpc = (m: object) => JSON.stringify({ jsonrpc: "2.0", ...m })
const pins = (bus: StdioBus) =>
  bus
    .stats()
    .pools.flatMap((p) => p.instances)
    .reduce((n, i) => n + i.sessions, 0)

describe("stdio session pins", () => {
  test("one socket client naming 30,000 sessions keeps at most 1,000 pins: the least recently used are forgotten and counted", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const n = 30_000
      // Its own session (no sessionId) is used every 500 lines, so it stays among the most recent.
      let text = `${rpc({ id: "own-0", method: "echo" })}\n`
      for (let i = 0; i < n; i++) {
        text += `${rpc({ id: i, method: "echo", sessionId: `s${i}` })}\n`
        if (i % 500 === 0) text += `${rpc({ id: `own-${i + 1}`, method: "echo" })}\n`
      }
      const lines = text.split("\n").length - 1
      Bun.gc(true)
      const heap0 = process.memoryUsage().heapUsed
      const c = await pacedClient(path, text)
      try {
        await until(() => c.answered.size === lines, `${lines} answers`, 120_000)
        Bun.gc(true)
        const grown = (process.memoryUsage().heapUsed - heap0) / 2 ** 20
        console.log(
          `${n} sessions from one client: ${pins(bus)} pinned, ${bus.stats().sessionsDropped} dropped, heap +${grown.toFixed(1)} MiB`,
        )
        expect(pins(bus)).toBe(1000)
        expect(bus.stats().sessionsDropped).toBe(n - 999)
        expect(bus.sessionOf("s29001")).not.toBeNull()
        expect(bus.sessionOf("s29000")).toBeNull()
      } finally {
        c.socket.end()
        await c.closed
      }
      await until(() => pins(bus) === 0, "the client's pins gone with it")
    })
  }, 150_000)

  test("at most 10,000 pins over the bus: past that the least recently used is forgotten, a session in use is kept", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      for (let i = 0; i < 10_000; i++) await bus.notify("n", undefined, { sessionId: `e${i}` })
      expect(pins(bus)).toBe(10_000)
      await bus.notify("n", undefined, { sessionId: "e0" }) // e0 is now the most recently used, e1 the least
      await bus.notify("n", undefined, { sessionId: "e10000" })
      expect(pins(bus)).toBe(10_000)
      expect(bus.stats().sessionsDropped).toBe(1)
      expect(bus.sessionOf("e0")).not.toBeNull()
      expect(bus.sessionOf("e1")).toBeNull()
      expect(bus.sessionOf("e10000")).not.toBeNull()
    })
  }, 60_000)

  test("a client whose only pin the bus-wide cap forgot keeps track of its next one: it goes when the client leaves", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      try {
        c.send(rpc({ id: 1, method: "echo", sessionId: "a0" }))
        await c.waitFor((m) => m.id === 1, "a0 answered")
        for (let i = 0; i < 9_999; i++) await bus.notify("n", undefined, { sessionId: `e${i}` })
        c.send(rpc({ id: 2, method: "echo", sessionId: "a1" })) // the bus is full: a0, the oldest, goes
        // behind 9,999 notifications to the same two workers: a loaded CI machine took more than 10 s (load 15-20)
        await c.waitFor((m) => m.id === 2, "a1 answered", 45_000)
        expect(bus.sessionOf("a0")).toBeNull()
        expect(bus.sessionOf("a1")).not.toBeNull()
      } finally {
        c.close()
      }
      await until(() => bus.clientCount === 0, "the client gone")
      expect(bus.sessionOf("a1")).toBeNull()
      expect(pins(bus)).toBe(9_999)
    })
  }, 60_000)

  test("a client that leaves while its first messages wait for a restarting worker leaves no pin, and nothing of it is written", async () => {
    await withBus(workerConfig("echo", 1, { max_restarts: 100 }), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      // Each restart within the window waits twice as long: after four, the fifth comes 1.6 s after its kill.
      for (let k = 0; k < 5; k++) {
        const pid = bus.stats().pools[0]!.instances[0]!.pid
        const started = nextEvent(bus, "worker-start", (e) => e.pid !== pid)
        process.kill(pid, "SIGKILL")
        if (k < 4) await started
        else {
          await nextEvent(bus, "worker-exit", (e) => e.pid === pid)
          started.catch(() => {})
        }
      }
      const restarted = nextEvent(bus, "worker-start")
      const c = await rawClient(`unix:${path}`)
      c.send(rpc({ method: "note", params: { from: "the client that left" } }))
      c.send(rpc({ id: 1, method: "echo" }))
      const pool = (bus as unknown as { router: { pools: Map<string, { liveWaiters: unknown[] }> } }).router.pools.get(
        "w",
      )!
      await until(() => pool.liveWaiters.length === 1, "its notification waiting for a live worker") // peeked, read only
      const out0 = bus.stats().messagesOut
      c.close()
      await c.closed
      await until(() => bus.clientCount === 0, "the bus saw the client go")
      await restarted
      expect(await bus.request("echo", { after: true })).toMatchObject({ echo: { after: true } })
      expect(bus.stats().pools[0]!.instances[0]!.sessions).toBe(0)
      expect(bus.stats().messagesOut - out0).toBe(1) // the request above, nothing of the client's
    })
  }, 30_000)
})
