import { describe, expect, test } from "bun:test"
import { BusClosedError, InvalidStateError, SpawnError, StdioBus, TimeoutError } from "../../src/stdio/index.ts"
import { alive, until } from "../support/helpers.ts"
import { nextEvent, withBus, workerConfig } from "../support/stdio/stdio.ts"

describe("stdio bus lifecycle", () => {
  test("created → starting → running → stopping → stopped, and a stopped bus starts again", async () => {
    const bus = StdioBus.fromConfig(workerConfig("echo", 2))
    expect(bus.state).toBe("created")
    const starting = bus.start()
    expect(bus.state).toBe("starting")
    await starting
    expect(bus.state).toBe("running")
    expect(bus.workerCount).toBe(2)
    const pids = bus.stats().pools[0]!.instances.map((i) => i.pid)
    const stopping = bus.stop()
    expect(bus.state).toBe("stopping")
    await stopping
    expect(bus.state).toBe("stopped")
    expect(bus.workerCount).toBe(0)
    for (const pid of pids) expect(alive(pid)).toBe(false)
    await bus.start()
    try {
      expect(await bus.request("hi")).toMatchObject({ method: "hi" })
    } finally {
      await bus.stop()
    }
  })

  test("start() while running or stopping and sending before start are InvalidStateError with expected and actual", async () => {
    const bus = StdioBus.fromConfig(workerConfig())
    const states: [string, () => unknown][] = [
      ["request()", () => bus.request("x")],
      ["notify()", () => bus.notify("x")],
      ["send()", () => bus.send("{}")],
    ]
    for (const [op, call] of states) {
      let e: unknown
      try {
        await call()
      } catch (err) {
        e = err
      }
      expect(e).toBeInstanceOf(InvalidStateError)
      expect(e).toMatchObject({ operation: op, expected: ["running"], actual: "created" })
    }
    await bus.start()
    try {
      await expect(bus.start()).rejects.toBeInstanceOf(InvalidStateError)
      expect(() => bus.request("")).toThrow(TypeError)
      await expect(bus.start()).rejects.toMatchObject({
        operation: "start()",
        expected: ["created", "stopped"],
        actual: "running",
      })
      const stopping = bus.stop()
      await expect(bus.start()).rejects.toMatchObject({ actual: "stopping" })
      expect(() => bus.request("x")).toThrow(InvalidStateError)
      await stopping
      expect(() => bus.request("x")).toThrow(/call start\(\) first/)
    } finally {
      await bus.stop()
    }
  })

  test("await using stops the bus and its workers at the end of the scope", async () => {
    let pid = 0
    {
      await using bus = StdioBus.fromConfig(workerConfig())
      await bus.start()
      pid = ((await bus.request("who")) as { pid: number }).pid
      expect(alive(pid)).toBe(true)
    }
    expect(alive(pid)).toBe(false)
  })

  test("a command that cannot be spawned fails start() with SpawnError and leaves the bus stopped", async () => {
    const bus = StdioBus.fromConfig({
      pools: [
        { id: "ok", command: process.execPath, args: ["-e", "setInterval(()=>{},1e6)"] },
        { id: "bad", command: "/nonexistent/program" },
      ],
    })
    await expect(bus.start()).rejects.toBeInstanceOf(SpawnError)
    expect(bus.state).toBe("stopped")
    expect(bus.workerCount).toBe(0)
  })

  test("stop() lets in-flight requests finish before the workers are stopped", async () => {
    const bus = StdioBus.fromConfig(workerConfig("echo", 2))
    await bus.start()
    const inFlight = [
      bus.request("sleep", { ms: 300 }),
      bus.request("sleep", { ms: 300 }),
      bus.request("sleep", { ms: 200 }, { sessionId: "s" }),
    ]
    await until(() => bus.stats().pools[0]!.instances.every((i) => i.queuedBytes === 0), "requests written")
    await bus.stop({ timeoutMs: 10_000 })
    const results = await Promise.all(inFlight)
    expect(results.map((r) => (r as { slept: number }).slept)).toEqual([300, 300, 200])
    expect(bus.stats().pools[0]!.instances.every((i) => i.inFlight === 0)).toBe(true)
  })

  test("stop() past its drain timeout rejects what is left with BusClosedError, and SIGKILLs a worker that ignores SIGTERM", async () => {
    const bus = StdioBus.fromConfig(workerConfig("ignore-term"))
    await bus.start()
    const pid = bus.stats().pools[0]!.instances[0]!.pid
    const slow = bus.request("sleep", { ms: 60_000 }, { timeoutMs: 0 })
    const exited = nextEvent(bus, "worker-exit")
    const logged = nextEvent(bus, "log", (l) => l.line.includes("ignoring SIGTERM"))
    await bus.stop({ timeoutMs: 100, killAfterMs: 300 })
    await expect(slow).rejects.toBeInstanceOf(BusClosedError)
    expect(await exited).toMatchObject({ pid, signal: "SIGKILL", expected: true })
    expect((await logged).level).toBe("info")
    expect(alive(pid)).toBe(false)
  })

  test("a request times out with TimeoutError; its late answer is dropped and counted", async () => {
    await withBus(workerConfig(), async (bus) => {
      await expect(bus.request("sleep", { ms: 200 }, { timeoutMs: 20 })).rejects.toBeInstanceOf(TimeoutError)
      await until(() => bus.stats().lateResponses === 1, "the late answer")
      expect(bus.stats().routingErrors).toBe(0)
      expect(bus.stats().pools[0]!.instances[0]!.inFlight).toBe(0)
    })
  })

  test("an aborted request rejects with the signal's reason", async () => {
    await withBus(workerConfig(), async (bus) => {
      const ac = new AbortController()
      const p = bus.request("sleep", { ms: 200 }, { signal: ac.signal })
      ac.abort(new Error("changed my mind"))
      await expect(p).rejects.toThrow("changed my mind")
    })
  })
})

test("one AbortSignal shared by many requests does not keep a listener per finished request", async () => {
  await withBus(workerConfig(), async (bus) => {
    const ac = new AbortController()
    let added = 0
    let removed = 0
    const add = ac.signal.addEventListener.bind(ac.signal)
    const remove = ac.signal.removeEventListener.bind(ac.signal)
    ac.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add
    ac.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove
    for (let i = 0; i < 20; i++) await bus.request("x", { i }, { signal: ac.signal })
    await bus.request("fail", null, { signal: ac.signal }).catch(() => {})
    expect(added).toBe(21)
    expect(removed).toBe(21)
  })
})
