// pools[].initialize: "replay" in detail, with the NDJSON test worker (it answers initialize like any request and
// reports every notification back as "seen"): what is replayed, when, how often, and when a handshake is forgotten.
// Against a real MCP server: mcp-replay.test.ts.
import { describe, expect, test } from "bun:test"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BusMessage, type StdioBus, WorkerGoneError } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { STDIO_WORKER, nextEvent, rawClient, withBus } from "../support/stdio/stdio.ts"

const config = {
  pools: [{ id: "w", command: process.execPath, args: [STDIO_WORKER, "echo"], initialize: "replay" as const }],
}
const sockPath = () => join(tmpdir(), `slotbus-replay-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)

function gather(bus: StdioBus): BusMessage[] {
  const got: BusMessage[] = []
  void (async () => {
    for await (const m of bus.messages()) got.push(m)
  })()
  return got
}
/** The notifications the worker process `pid` reported seeing, in order. */
const seenBy = (got: BusMessage[], pid: number) =>
  got
    .map((m) => m.message)
    .filter((m) => m.method === "seen" && (m.params as { pid: number }).pid === pid)
    .map((m) => (m.params as { method: string }).method)

async function handshake(bus: StdioBus, sessionId: string): Promise<void> {
  await bus.request("initialize", { session: sessionId }, { sessionId })
  await bus.notify("notifications/initialized", undefined, { sessionId })
}

/** SIGKILLs the pool's one worker and resolves with the pid of the one started in its place. */
async function killWorker(bus: StdioBus): Promise<number> {
  const pid = bus.stats().pools[0]!.instances[0]!.pid
  const restarted = nextEvent(bus, "worker-start", (e) => e.pid !== pid)
  process.kill(pid, "SIGKILL")
  return (await restarted).pid
}

describe('initialize: "replay"', () => {
  test("the restarted worker gets the session's initialize and initialized once, before the messages that came meanwhile, which wait in order", async () => {
    await withBus(config, async (bus) => {
      const got = gather(bus)
      await handshake(bus, "A")
      const pid = await killWorker(bus)
      const out = bus.stats().messagesOut
      const [one, two] = await Promise.all([
        bus.request("echo", { n: 1 }, { sessionId: "A" }),
        bus.request("echo", { n: 2 }, { sessionId: "A" }),
        bus.notify("note", undefined, { sessionId: "A" }),
      ])
      expect([one, two]).toMatchObject([
        { echo: { n: 1 }, pid },
        { echo: { n: 2 }, pid },
      ])
      await until(() => seenBy(got, pid).length === 2, "the worker seeing both notifications")
      expect(seenBy(got, pid)).toEqual(["notifications/initialized", "note"])
      expect(bus.stats().messagesOut - out).toBe(5) // initialize, initialized, echo, echo, note: one replay
      expect(bus.stats()).toMatchObject({ lateResponses: 0, routingErrors: 0 })
    })
  }, 30_000)

  test("a session's handshake is forgotten by endSession() and when the socket client it came from disconnects", async () => {
    await withBus(config, async (bus) => {
      const got = gather(bus)
      await handshake(bus, "ended")
      expect(bus.endSession("ended")).toBe(true)
      const path = sockPath()
      await bus.listen(`unix:${path}`)
      const c = await rawClient(`unix:${path}`)
      c.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {}, sessionId: "left" }))
      await c.waitFor((m) => m.id === 1, "the client's initialize answered")
      c.close()
      await until(() => bus.clientCount === 0, "the client gone")
      await handshake(bus, "kept")
      const pid = await killWorker(bus)
      const out = bus.stats().messagesOut
      for (const sessionId of ["ended", "left"]) await bus.request("echo", undefined, { sessionId })
      expect(bus.stats().messagesOut - out).toBe(2) // nothing replayed for either
      await bus.request("echo", undefined, { sessionId: "kept" })
      expect(bus.stats().messagesOut - out).toBe(5)
      await until(() => seenBy(got, pid).length === 1, "the replayed initialized")
    })
  }, 30_000)

  test("at most 10 000 handshakes are kept: past that the oldest session's is forgotten", async () => {
    await withBus(config, async (bus) => {
      for (let i = 0; i <= 10_000; i += 500)
        await Promise.all(
          Array.from({ length: Math.min(500, 10_001 - i) }, (_, k) =>
            bus.request("initialize", {}, { sessionId: `s${i + k}` }),
          ),
        )
      await killWorker(bus)
      const out = bus.stats().messagesOut
      await bus.request("echo", undefined, { sessionId: "s0" })
      expect(bus.stats().messagesOut - out).toBe(1) // forgotten: no replay
      await bus.request("echo", undefined, { sessionId: "s1" })
      expect(bus.stats().messagesOut - out).toBe(3) // kept: initialize replayed (it never sent initialized)
    })
  }, 60_000)

  test("a replayed initialize the worker refuses is logged as a warning, and the session's messages go on to the worker", async () => {
    await withBus(config, async (bus) => {
      const logs: { level: string; line: string }[] = []
      bus.on("log", (l) => logs.push(l))
      await expect(bus.request("initialize", { refuse: true }, { sessionId: "R" })).rejects.toThrow(
        "initialize refused",
      )
      const pid = await killWorker(bus)
      expect(await bus.request("echo", { after: true }, { sessionId: "R" })).toMatchObject({
        echo: { after: true },
        pid,
      })
      expect(logs).toContainEqual(
        expect.objectContaining({ level: "warn", line: expect.stringContaining("replayed initialize was refused") }),
      )
      const out = bus.stats().messagesOut
      await bus.request("echo", undefined, { sessionId: "R" })
      expect(bus.stats().messagesOut - out).toBe(1) // replayed once, not before every message
    })
  }, 30_000)

  test("a replay whose worker dies fails the message waiting for it with WorkerGoneError, and the session's next message replays again", async () => {
    await withBus(config, async (bus) => {
      let restarted = nextEvent(bus, "worker-start")
      await expect(bus.request("initialize", { crash: true }, { sessionId: "C" })).rejects.toBeInstanceOf(
        WorkerGoneError,
      )
      for (let attempt = 0; attempt < 2; attempt++) {
        await restarted
        restarted = nextEvent(bus, "worker-start")
        await expect(bus.request("echo", undefined, { sessionId: "C" })).rejects.toBeInstanceOf(WorkerGoneError)
      }
      await restarted
      expect(bus.stats().restarts).toBe(3)
      expect(await bus.request("echo", { other: true }, { sessionId: "D" })).toMatchObject({ echo: { other: true } })
    })
  }, 30_000)

  test("a request given up while its session's handshake is replayed is never sent to the worker", async () => {
    await withBus(config, async (bus) => {
      const got = gather(bus)
      const holding = () => got.filter((m) => m.message.method === "holding").length
      const init = bus.request("initialize", { hold: true }, { sessionId: "H" })
      await until(() => holding() === 1, "the initialize held")
      await bus.notify("release")
      await init
      const pid = await killWorker(bus)
      const ac = new AbortController()
      const waiting = bus.request("echo", { n: 1 }, { sessionId: "H", signal: ac.signal })
      await until(() => holding() === 2, "the replayed initialize held")
      ac.abort(new Error("gave up"))
      await expect(waiting).rejects.toThrow("gave up")
      const out = bus.stats().messagesOut
      const after = bus.request("echo", { n: 2 }, { sessionId: "H" })
      await bus.notify("release")
      expect(await after).toMatchObject({ echo: { n: 2 }, pid })
      expect(bus.stats().messagesOut - out).toBe(2) // release and the second echo: the first never went
      expect(bus.stats().pools[0]!.instances[0]).toMatchObject({ inFlight: 0, stuck: 0 })
    })
  }, 30_000)
})
