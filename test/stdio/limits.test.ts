import { describe, expect, test } from "bun:test"
import { PoolFailedError as CorePoolFailedError } from "../../src/index.ts"
import { BackpressureError, BusErrorCode, PoolFailedError, StdioBus, WorkerGoneError } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { nextEvent, withBus, workerConfig } from "../support/stdio/stdio.ts"

describe("stdio bus limits and supervision", () => {
  test("a worker that keeps crashing is restarted with backoff, then past max_restarts within the window the pool is failed", async () => {
    const bus = StdioBus.fromConfig(workerConfig("crash-at-start", 1, { max_restarts: 3, restart_window_sec: 30 }))
    const delays: number[] = []
    bus.on("worker-restart", (e) => delays.push(e.delayMs))
    const failed = nextEvent(bus, "pool-failed")
    await bus.start()
    try {
      expect(await failed).toMatchObject({
        pool: "w",
        reason: expect.stringContaining(
          "4 crashes within restart.windowMs (30000 ms), more than restart.maxRestarts (3)",
        ),
      })
      expect(delays).toEqual([100, 200, 400])
      const s = bus.stats()
      expect(s.pools[0]).toMatchObject({
        state: "failed",
        failure: expect.stringContaining("more than restart.maxRestarts (3)"),
      })
      expect(s.restarts).toBe(3)
      expect(s.workerCount).toBe(0)
      const e = (await bus.request("x").catch((x) => x)) as PoolFailedError
      expect(e).toBeInstanceOf(PoolFailedError)
      expect(e).toBeInstanceOf(CorePoolFailedError) // one class for both kinds of pool
      expect(e.pool).toBe("w")
      expect(e.reason).toContain("more than restart.maxRestarts (3)")
      const it = bus.messages()
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "x" }))
      expect((await it.next()).value!.message).toMatchObject({ id: 1, error: { code: BusErrorCode.PoolFailed } })
    } finally {
      await bus.stop()
    }
    expect(bus.state).toBe("stopped")
  })

  test("with max_restarts 0 the first crash fails the pool: the request it held is WorkerGoneError, later ones PoolFailedError", async () => {
    await withBus(workerConfig("echo", 1, { max_restarts: 0 }), async (bus) => {
      const pending = bus.request("sleep", { ms: 10_000 })
      await until(() => bus.stats().pools[0]!.instances[0]!.queuedBytes === 0, "the request written")
      const failed = nextEvent(bus, "pool-failed")
      process.kill(bus.stats().pools[0]!.instances[0]!.pid, "SIGKILL")
      await expect(pending).rejects.toBeInstanceOf(WorkerGoneError)
      await failed
      await expect(bus.request("x")).rejects.toBeInstanceOf(PoolFailedError)
      expect(bus.stats().pools[0]!.state).toBe("failed")
      // the fix deployed, a reload (SIGHUP to slotbus stdio) starts the failed pool again: before, it stayed failed
      await bus.reload()
      expect(bus.stats().pools[0]!.state).toBe("running")
      expect(await bus.request("echo", { again: true })).toMatchObject({ echo: { again: true } })
    })
  })

  test("an answer written just before the worker exits is delivered, not lost to the exit", async () => {
    await withBus(workerConfig("echo", 1, { max_restarts: 20 }), async (bus) => {
      let last = 0
      for (let i = 0; i < 3; i++) {
        await until(() => ![0, last].includes(bus.stats().pools[0]!.instances[0]!.pid), "a fresh worker")
        const r = (await bus.request("answer-exit", { bytes: i * 150_000 })) as { last: boolean; pid: number }
        expect(r.last).toBe(true)
        last = r.pid
      }
      expect(bus.stats().routingErrors).toBe(0)
    })
  })

  test("messages() nobody reads keeps the newest 64 MiB of unasked messages: the older ones are dropped, counted", async () => {
    // before: only 10 000 messages were a limit, so 1 MiB lines could pile up to ~10 GiB
    await withBus(workerConfig("echo", 1, { max_input_buffer: 1024 * 1024 }), async (bus) => {
      for (let k = 0; k < 4; k++)
        expect(await bus.request("notify-many", { count: 40, bytes: 900_000 })).toBe("notified")
      const dropped = bus.stats().droppedMessages
      // 160 of ~0.9 MB: ~74 fit
      expect(dropped).toBeGreaterThanOrEqual(160 - Math.floor((64 * 1024 * 1024) / 900_000))
      const kept: number[] = []
      for await (const { message } of bus.messages()) {
        kept.push((message.params as { i: number }).i)
        if (kept.length === 160 - dropped) break
      }
      // the newest, in order: the last batch's 40 at the end
      expect(kept.slice(-40)).toEqual(Array.from({ length: 40 }, (_, i) => i))
    })
  }, 60_000)

  test("a worker line longer than max_input_buffer gets the worker killed and restarted, counted; it serves again afterwards", async () => {
    await withBus(workerConfig("echo", 1, { max_input_buffer: 4096 }), async (bus) => {
      const pid = bus.stats().pools[0]!.instances[0]!.pid
      const logged = nextEvent(bus, "log", (l) => l.line.includes("max_input_buffer"))
      expect(((await bus.request("big", { bytes: 3000 })) as string).length).toBe(3000)
      const e = (await bus.request("big", { bytes: 200_000 }).catch((x) => x)) as Error
      expect(e.name).toBe("WorkerGoneError")
      expect((await logged).level).toBe("error")
      await until(() => bus.workerCount === 1, "the restart")
      const s = bus.stats()
      expect(s.oversizeKills).toBe(1)
      expect(s.restarts).toBe(1)
      expect(s.pools[0]!.instances[0]!.pid).not.toBe(pid)
      expect(await bus.request("again")).toMatchObject({ method: "again" })
    })
  })

  test("a worker that stops reading stdin: callers wait backpressure_timeout_sec, then BackpressureError; queued memory stays bounded", async () => {
    const limit = 256 * 1024
    await withBus(
      workerConfig("no-read", 1, { max_output_queue: limit, backpressure_timeout_sec: 0.3 }),
      async (bus) => {
        const params = { pad: "y".repeat(16 * 1024) }
        const rss0 = process.memoryUsage().rss
        const outcomes: Promise<unknown>[] = []
        for (let i = 0; i < 400; i++) outcomes.push(bus.request("x", params, { timeoutMs: 0 }).catch((e) => e))
        const settled = await Promise.all(outcomes.slice(100))
        expect(settled.every((e) => e instanceof BackpressureError)).toBe(true)
        const s = bus.stats()
        expect(s.backpressureRejects).toBeGreaterThanOrEqual(300)
        // What the bus holds for the worker never goes past the limit plus one message, whatever was offered (6.5 MB here).
        expect(s.pools[0]!.instances[0]!.queuedBytes).toBeLessThanOrEqual(limit + 17 * 1024)
        expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * 1024 * 1024)
      },
    )
  })
})
