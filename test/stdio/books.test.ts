// What the bus keeps for a request, and for how long: given-up requests leave the books after a grace, limits
// past 2^31−1 ms keep their word, ids come back exactly as sent, and stop() answers everything it was sent.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  BackpressureError,
  BusErrorCode,
  StdioBus,
  StdioConfigError,
  TimeoutError,
  loadConfig,
} from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { rawClient, withBus, workerConfig } from "../support/stdio/stdio.ts"

const sockPath = () => join(tmpdir(), `slotbus-books-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
const rpc = (m: object) => JSON.stringify({ jsonrpc: "2.0", ...m })

describe("given-up stdio requests", () => {
  const ways = {
    "timed out": async (bus: StdioBus) => {
      await expect(bus.request("ignore", undefined, { timeoutMs: 20 })).rejects.toBeInstanceOf(TimeoutError)
    },
    aborted: async (bus: StdioBus) => {
      const ac = new AbortController()
      const p = bus.request("ignore", undefined, { signal: ac.signal, timeoutMs: 0 })
      await until(() => bus.stats().pools[0]!.instances[0]!.inFlight === 1, "in flight")
      ac.abort(new Error("changed my mind"))
      await expect(p).rejects.toThrow("changed my mind")
    },
    "left by its client": async (bus: StdioBus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      c.send(rpc({ id: 1, method: "ignore" }))
      await until(() => bus.stats().pools[0]!.instances[0]!.inFlight === 1, "in flight")
      c.close()
      await until(() => bus.stats().pools[0]!.instances[0]!.stuck === 1, "the bus saw the client go")
    },
  }

  test.each(Object.keys(ways))(
    "a request %s that its worker never answers leaves the books after a grace, and stop() does not wait for it",
    async (way) => {
      const bus = StdioBus.fromConfig(workerConfig("echo", 1))
      await bus.start()
      try {
        await ways[way as keyof typeof ways](bus)
        expect(bus.stats().pools[0]!.instances[0]).toMatchObject({ inFlight: 1, stuck: 1 })
        await until(() => bus.stats().stuckDropped === 1, "the stuck request dropped")
        expect(bus.stats().pools[0]!.instances[0]).toMatchObject({ inFlight: 0, stuck: 0 })
        expect(await bus.request("echo", { after: true })).toMatchObject({ echo: { after: true } })
        // Nothing is awaited any more, so a drain of an hour ends at once (a stuck entry kept it waiting the whole hour).
        bus.request("ignore", undefined, { timeoutMs: 1 }).catch(() => {})
        await until(() => bus.stats().pools[0]!.instances[0]!.stuck === 1, "another stuck request")
        const stopped = await Promise.race([
          bus.stop({ timeoutMs: 3_600_000 }).then(() => "stopped"),
          Bun.sleep(10_000).then(() => "still draining"),
        ])
        expect(stopped).toBe("stopped")
      } finally {
        await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
      }
    },
  )

  test("an answer that comes after its request was dropped is counted late, not as a routing error", async () => {
    await withBus(workerConfig("echo", 1), async (bus) => {
      await expect(bus.request("sleep", { ms: 1500 }, { timeoutMs: 20 })).rejects.toBeInstanceOf(TimeoutError)
      await until(() => bus.stats().stuckDropped === 1, "dropped")
      await until(() => bus.stats().lateResponses === 1, "the late answer counted")
      expect(bus.stats().routingErrors).toBe(0)
    })
  })
})

describe("stdio limits past 2^31-1 ms", () => {
  test("backpressure_timeout_sec 1e7 does not fire at once: callers keep waiting for room", async () => {
    await withBus(
      workerConfig("no-read", 1, { max_output_queue: 64 * 1024, backpressure_timeout_sec: 1e7 }),
      async (bus) => {
        const outcomes: unknown[] = []
        for (let i = 0; i < 64; i++)
          bus.request("x", { pad: "y".repeat(16 * 1024) }, { timeoutMs: 0 }).catch((e) => outcomes.push(e))
        await Bun.sleep(300)
        expect(outcomes.filter((e) => e instanceof BackpressureError)).toEqual([])
      },
    )
  })

  test("drain_timeout_sec 1e7 lets a request in flight finish instead of killing it", async () => {
    const bus = StdioBus.fromConfig(workerConfig("echo", 1, { drain_timeout_sec: 1e7 }))
    await bus.start()
    try {
      const r = bus.request("sleep", { ms: 300 })
      await until(
        () =>
          bus.stats().pools[0]!.instances[0]!.queuedBytes === 0 && bus.stats().pools[0]!.instances[0]!.inFlight === 1,
        "written",
      )
      const stopping = bus.stop()
      expect(await r).toMatchObject({ slept: 300 })
      await stopping
    } finally {
      await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
    }
  })

  test("a request timeoutMs past 2^31-1 does not time out at once", async () => {
    await withBus(workerConfig("echo", 1), async (bus) => {
      expect(await bus.request("sleep", { ms: 100 }, { timeoutMs: 2 ** 31 + 5 })).toMatchObject({ slept: 100 })
    })
  })

  test.each([
    [-1, RangeError],
    [Number.NaN, RangeError],
    ["5" as unknown as number, TypeError], // not a number: a TypeError, as everywhere (issue 46)
  ] as const)("timeoutMs %p is refused with a %p, and the bus keeps serving", async (bad, type) => {
    await withBus(workerConfig("echo", 1), async (bus) => {
      expect(() => bus.request("x", undefined, { timeoutMs: bad })).toThrow(type)
      await expect(bus.stop({ timeoutMs: bad })).rejects.toBeInstanceOf(type)
      await expect(bus.stop({ killAfterMs: bad })).rejects.toBeInstanceOf(type)
      expect(bus.state).toBe("running")
      expect(await bus.request("x")).toMatchObject({ method: "x" })
    })
  })

  test.each(["toString", "constructor", "valueOf", "hasOwnProperty", "__proto__"])("%s is not a limit name", (name) => {
    const limits = JSON.parse(`{"${name}": 1}`)
    expect(() => loadConfig({ pools: [{ id: "a", command: "x" }], limits })).toThrow(StdioConfigError)
  })
})

describe("stdio ids and stop()", () => {
  test("ids a JS number cannot hold come back exactly as the client wrote them", async () => {
    await withBus(workerConfig("echo", 1), async (bus) => {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      try {
        const ids = [
          "12345678901234567890",
          "1e400",
          "-1e400",
          "1.50",
          "0.1000000000000000055511151231257827",
          "-0",
          "9007199254740993",
        ]
        for (const id of ids) c.send(`{"jsonrpc":"2.0","id":${id},"method":"echo"}`)
        await until(() => c.lines.length === ids.length, "every answer")
        const back = c.lines.map((l) => /^\{"jsonrpc":"2.0","id":([^,]*),/.exec(l)?.[1] ?? l)
        expect(back.sort()).toEqual([...ids].sort())
      } finally {
        c.close()
      }
    })
  })

  test("stop() answers every one of 2000 requests a socket client sent before it disconnects the client", async () => {
    const bus = StdioBus.fromConfig(workerConfig("echo", 1))
    await bus.start()
    try {
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      const lines = Array.from({ length: 2000 }, (_, i) => rpc({ id: i, method: "sleep", params: { ms: 20 } }))
      c.send(lines.join("\n"))
      await until(() => bus.stats().pools[0]!.instances[0]!.inFlight > 0, "requests in flight")
      await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
      await c.closed
      const answered = new Set(c.received.map((m) => m.id))
      expect(answered.size).toBe(2000)
      for (const m of c.received)
        if (m.error) expect([BusErrorCode.BusStopping, BusErrorCode.WorkerGone]).toContain(m.error.code)
    } finally {
      await bus.stop({ timeoutMs: 0, killAfterMs: 200 })
    }
  })
})
