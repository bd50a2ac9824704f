// Edges of the core found by reading it (issue 17): accepting that could stop in silence, bad arguments that
// threw instead of rejecting, and delays past 2^31-1 ms that fired at once.
import { afterEach, expect, spyOn, test } from "bun:test"
import { busName, outcome, rejection, spawnWorker, stopAll } from "../../support/helpers.ts"
import { SlotBus, SlotWorker, Supervisor, TimeoutError } from "../../../src/index.ts"
import { createHub } from "../../../src/http/index.ts"

afterEach(stopAll)

test("a failed read of the accept doorbell is counted, logged and recovered: workers still join", async () => {
  await using bus = await SlotBus.listen(busName("accept"))
  const warn = spyOn(console, "warn").mockImplementation(() => {})
  try {
    // The one failure a test can cause for real: the doorbell's stream ends under the bus.
    const { acceptor } = bus as unknown as { acceptor: { watches: { reader: { cancel(): Promise<void> } }[] } }
    await acceptor.watches[0]!.reader.cancel()
    await spawnWorker(bus.name)
    await bus.waitForWorkers(1, { timeoutMs: 5000 })
    expect(bus.stats().acceptErrors).toBe(1)
    expect(String(warn.mock.calls[0]?.[0])).toContain(`bus "${bus.name}" lost its accept doorbell`)
  } finally {
    warn.mockRestore()
  }
})

test.each([
  ["waitForWorkers", (bus: SlotBus) => bus.waitForWorkers(1, { timeoutMs: -1 })],
  ["waitForWorkers", (bus: SlotBus) => bus.waitForWorkers(1, { timeoutMs: 1.5 })],
  ["waitForWorkers", (bus: SlotBus) => bus.waitForWorkers(1, "soon" as never)],
  ["close", (bus: SlotBus) => bus.close({ timeoutMs: "x" as never })],
  ["close", (bus: SlotBus) => bus.close({ drian: false } as never)],
  ["close", (bus: SlotBus) => bus.close(null as never)],
])("%s with a bad argument rejects (never throws) and changes nothing", async (_, call) => {
  await using bus = await SlotBus.listen(busName("bad"))
  let result: Promise<unknown> | undefined
  expect(() => {
    result = call(bus)
  }).not.toThrow()
  const e = await rejection(result!)
  expect(e).toBeInstanceOf(Error)
  expect(e instanceof TypeError || e instanceof RangeError).toBe(true)
  await spawnWorker(bus.name)
  await bus.waitForWorkers(1, { timeoutMs: 5000 }) // still open and accepting
})

test("timeouts past 2^31-1 ms wait instead of firing at once", async () => {
  await using bus = await SlotBus.listen(busName("long"), { timeoutMs: 1e10 })
  const waiting = bus.waitForWorkers(1, { timeoutMs: 2 ** 31 })
  const early = await outcome(waiting, 100)
  expect(early.state).toBe("hung")
  await spawnWorker(bus.name)
  await waiting
  expect(await bus.call("hello", { timeoutMs: 1e12 })).toBeDefined()
  const never = bus.waitForWorkers(2, { timeoutMs: 1e15 })
  expect((await outcome(never, 100)).state).toBe("hung")
  await bus.close({ drain: false })
  expect(await rejection(never)).not.toBeInstanceOf(TimeoutError)
})

test("a supervisor's restart backoff past 2^31-1 ms waits instead of restarting at once", async () => {
  const sup = new Supervisor({
    command: [process.execPath, "-e", "setTimeout(() => process.exit(3), 20)"],
    stdout: "ignore",
    restart: {
      backoffInitialMs: 1e10,
      backoffMaxMs: 1e10,
    },
    killGraceMs: 1e10,
  })
  const restart = new Promise<number>((r) => sup.on("restart", (_, x) => r(x.delayMs)))
  sup.start()
  expect(await restart).toBe(1e10)
  await Bun.sleep(100)
  expect(sup.restarts).toBe(0) // a bare setTimeout restarted it at once
  await sup.stop()
  expect(sup.state).toBe("stopped")
})

test("a running supervisor's stop() lets drain finish when drainTimeoutMs is past 2^31-1 ms", async () => {
  let drained = false
  const sup = new Supervisor({
    command: [process.execPath, "-e", "setInterval(() => {}, 1e6)"],
    stdout: "ignore",
    drainTimeoutMs: 1e10,
    drain: () => Bun.sleep(150).then(() => void (drained = true)),
  })
  sup.start()
  await sup.stop()
  expect(drained).toBe(true) // before: the overflowing timer ended the drain at once
})

test.each(["heartbeatMs", "pingEveryMs"])(
  "createHub refuses an interval %s past 2^31-1 ms (it would run every millisecond)",
  async (name) => {
    expect(await rejection(createHub({ port: 0, quiet: true, [name]: 2 ** 31 }))).toBeInstanceOf(RangeError)
  },
)

test("an idle spin longer than one turn is a RangeError, not an event loop frozen for that long", async () => {
  // 2^32 µs was accepted: 71 minutes of synchronous polling before any timer or socket got a turn
  const e = await rejection(SlotBus.listen(busName("spin"), { idle: { spinMicros: 2 ** 32, parkAfterMs: 1 } }))
  expect(e).toBeInstanceOf(RangeError)
  expect(String((e as Error).message)).toContain("idle.spinMicros must be a number in 0..1000")
  await using bus = await SlotBus.listen(busName("spin-ok"), { idle: { spinMicros: 1000, parkAfterMs: 1 } })
  expect(bus.name).toContain("spin-ok")
})

test.each([
  ["a negative timeoutMs", { timeoutMs: -1 }, RangeError],
  ["a NaN timeoutMs", { timeoutMs: Number.NaN }, RangeError],
  ["a fractional timeoutMs", { timeoutMs: 1.5 }, RangeError],
  ["a string timeoutMs", { timeoutMs: "5000" as never }, TypeError], // not a number: TypeError, as in every room
  ["null", null as never, TypeError],
])("worker.close with %s rejects (never throws) and the worker keeps serving", async (_, opts, type) => {
  await using bus = await SlotBus.listen(busName("bad-close"))
  const worker = await SlotWorker.connect(bus.name, () => "still here")
  try {
    await bus.waitForWorkers(1)
    let result: Promise<unknown> | undefined
    expect(() => {
      result = worker.close(opts)
    }).not.toThrow()
    const e = await rejection(result!)
    expect(e).toBeInstanceOf(type)
    expect((e as Error).message).toContain("timeoutMs")
    expect(new TextDecoder().decode(await bus.call("x", { timeoutMs: 5000 }))).toBe("still here")
  } finally {
    await worker.close({ timeoutMs: 1000 })
  }
})

test.each([
  ["listen maxHeadBytes 0 (no head fits)", () => SlotBus.listen(busName("bad"), { maxHeadBytes: 0 }), "maxHeadBytes"],
  ["connect hubUid -1", () => SlotWorker.connect(busName("bad"), () => "x", { hubUid: -1 }), "hubUid"],
  ["connect hubUid 1.5", () => SlotWorker.connect(busName("bad"), () => "x", { hubUid: 1.5 }), "hubUid"],
  ["connect hubUid '0'", () => SlotWorker.connect(busName("bad"), () => "x", { hubUid: "0" as never }), "hubUid"],
  ["connect hubUid 2^32-1", () => SlotWorker.connect(busName("bad"), () => "x", { hubUid: 2 ** 32 - 1 }), "hubUid"],
] as const)("%s is a TypeError or RangeError naming it", async (_, call, what) => {
  const e = (await rejection(call())) as Error
  expect(e instanceof TypeError || e instanceof RangeError).toBe(true)
  expect(e.message).toContain(what)
})
