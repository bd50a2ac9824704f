import { describe, expect, test } from "bun:test"
import { BusErrorCode, JsonRpcError, WorkerGoneError, type BusMessage } from "../../src/stdio/index.ts"
import { until } from "../support/helpers.ts"
import { nextEvent, withBus, workerConfig } from "../support/stdio/stdio.ts"

type Echo = { pid: number; instance: number; echo: unknown }

async function take(it: AsyncIterator<BusMessage>, pred: (m: BusMessage) => boolean): Promise<BusMessage> {
  for (;;) {
    const r = await it.next()
    if (r.done) throw new Error("messages() ended")
    if (pred(r.value)) return r.value
  }
}

describe("stdio bus routing", () => {
  test("requests resolve with the worker's result; a JSON-RPC error rejects with JsonRpcError carrying code, message and data", async () => {
    await withBus(workerConfig(), async (bus) => {
      expect(await bus.request("ping", { n: 1 })).toMatchObject({ echo: { n: 1 }, method: "ping" })
      const e = await bus.request("fail").catch((x) => x)
      expect(e).toBeInstanceOf(JsonRpcError)
      expect(e).toMatchObject({ code: 42, message: "asked to fail" })
      expect((e as JsonRpcError).data).toMatchObject({ pid: expect.any(Number) })
    })
  })

  test("requests without a session go to the least busy instance", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const slow = bus.request("sleep", { ms: 5000 }).catch(() => {})
      const busy = bus.stats().pools[0]!.instances.find((i) => i.inFlight === 1)!
      for (let i = 0; i < 5; i++) expect(((await bus.request("who")) as Echo).instance).not.toBe(busy.index)
      void slow
    })
  })

  test("a session sticks to one instance; another session may land elsewhere; stats count the sessions", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const a = (await bus.request("who", null, { sessionId: "a" })) as Echo
      const hold = bus.request("sleep", { ms: 200 }, { sessionId: "a" })
      const b = (await bus.request("who", null, { sessionId: "b" })) as Echo
      expect(b.pid).not.toBe(a.pid)
      for (let i = 0; i < 5; i++) expect(((await bus.request("who", null, { sessionId: "a" })) as Echo).pid).toBe(a.pid)
      await hold
      expect(bus.stats().pools[0]!.instances.map((i) => i.sessions)).toEqual([1, 1])
      // a raw message naming the session goes to the same instance as request() with it
      const it = bus.messages()
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "who", sessionId: "a" }))
      expect(((await it.next()).value!.message.result as Echo).pid).toBe(a.pid)
      expect(bus.endSession("a")).toBe(true)
      expect(bus.sessionOf("a")).toBeNull()
      expect(bus.endSession("a")).toBe(false)
    })
  })

  test.skipIf(process.platform !== "linux")(
    "a stopped instance (SIGSTOP) gets no new session while another runs; once continued, it gets them again",
    async () => {
      await withBus(workerConfig("echo", 2), async (bus) => {
        const pids = bus.stats().pools[0]!.instances.map((i) => i.pid!)
        process.kill(pids[0]!, "SIGSTOP")
        try {
          await Bun.sleep(300) // the stopped state is read at most every 250 ms
          const seen = []
          for (let s = 0; s < 6; s++) seen.push(((await bus.request("who", null, { sessionId: `s${s}` })) as Echo).pid)
          expect(seen).toEqual(Array(6).fill(pids[1]))
        } finally {
          process.kill(pids[0]!, "SIGCONT")
        }
        await Bun.sleep(300)
        // equal in flight, fewer sessions: the next one goes to the continued instance
        expect(((await bus.request("who", null, { sessionId: "after" })) as Echo).pid).toBe(pids[0]!)
      })
    },
  )

  test("when a session's instance dies its pending requests reject with WorkerGoneError and the session moves to a live instance", async () => {
    await withBus(workerConfig("echo", 2, { restart_window_sec: 60 }), async (bus) => {
      const first = (await bus.request("who", null, { sessionId: "s" })) as Echo
      const other = (await bus.request("who", null, { sessionId: "t" })) as Echo
      expect(other.pid).not.toBe(first.pid)
      const pending = bus.request("sleep", { ms: 10_000 }, { sessionId: "s" })
      const otherPending = bus.request("sleep", { ms: 100 }, { sessionId: "t" })
      const restarted = nextEvent(bus, "worker-start", (e) => e.instance === first.instance)
      process.kill(first.pid, "SIGKILL")
      await expect(pending).rejects.toBeInstanceOf(WorkerGoneError)
      const next = (await bus.request("who", null, { sessionId: "s" })) as Echo
      expect(next.pid).not.toBe(first.pid)
      expect(await otherPending).toMatchObject({ pid: other.pid })
      await restarted
      expect(bus.stats().restarts).toBe(1)
      expect(bus.stats().pools[0]!.instances[first.instance]!.restarts).toBe(1)
    })
  })

  test("send() takes raw NDJSON: ids are the caller's own, and answers come back on messages() with the id restored", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const it = bus.messages()
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "a" }))
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "b" }))
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: "x", method: "fail" }))
      const answers = [
        await take(it, (m) => "id" in m.message),
        await take(it, (m) => "id" in m.message),
        await take(it, (m) => "id" in m.message),
      ]
      expect(answers.map((a) => a.message.id).sort()).toEqual([7, 7, "x"])
      expect(
        answers
          .filter((a) => a.message.id === 7)
          .map((a) => (a.message.result as { method: string }).method)
          .sort(),
      ).toEqual(["a", "b"])
      expect(answers.find((a) => a.message.id === "x")!.message.error).toMatchObject({ code: 42 })
    })
  })

  test("a worker's request to the client comes out of messages() under a bus id, and the answer sent back reaches that worker", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      const it = bus.messages()
      const asked = bus.request("ask", { q: "colour?" }) as Promise<{ answer: unknown }>
      const question = await take(it, (m) => m.message.method === "client/question")
      expect(question.message.id).toMatch(/^sb-/)
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: question.message.id, result: "blue" }))
      expect(await asked).toEqual({ answer: "blue" })
    })
  })

  test("notifications reach the worker, and a worker's unasked notifications come out of messages()", async () => {
    await withBus(workerConfig(), async (bus) => {
      const it = bus.messages()
      await bus.notify("hello", { x: 1 })
      const seen = await take(it, (m) => m.message.method === "seen")
      expect(seen.message.params).toMatchObject({ method: "hello" })
      expect(seen).toMatchObject({ pool: "w", instance: 0 })
    })
  })

  test("malformed JSON from the caller is answered with a parse error and counted; a bad pool, a method that is no string, an id alone: answered and counted", async () => {
    await withBus(workerConfig(), async (bus) => {
      const it = bus.messages()
      await bus.send("{ not json")
      expect((await it.next()).value!.message).toEqual({
        jsonrpc: "2.0",
        id: null,
        error: { code: BusErrorCode.ParseError, message: expect.stringContaining("Parse error") },
      })
      await bus.send(JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "x" }]))
      expect((await it.next()).value!.message.error!.code).toBe(BusErrorCode.InvalidRequest)
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: 5, method: "x", pool: "nope" }))
      expect((await it.next()).value!.message).toMatchObject({ id: 5, error: { code: BusErrorCode.UnknownPool } })
      await expect(bus.request("x", null, { pool: "nope" })).rejects.toMatchObject({ code: BusErrorCode.UnknownPool })
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: "sb-404", result: 1 }))
      expect(bus.stats().routingErrors).toBe(5)
      // a method that is no string, an id with neither result nor error: Invalid Request under that id (they went
      // unanswered, taken for answers nobody asked for, and the client waited for good)
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: 9, method: 7 }))
      expect((await it.next()).value!.message).toMatchObject({
        id: 9,
        error: { code: BusErrorCode.InvalidRequest, message: expect.stringContaining("method must be a string") },
      })
      await bus.send(JSON.stringify({ jsonrpc: "2.0", id: 8 }))
      expect((await it.next()).value!.message).toMatchObject({ id: 8, error: { code: BusErrorCode.InvalidRequest } })
      expect(bus.stats().routingErrors).toBe(7)
      expect(await bus.request("still")).toMatchObject({ method: "still" })
    })
  })

  test("malformed JSON and answers to nobody from a worker are counted as routing errors, logged, and the worker keeps serving", async () => {
    await withBus(workerConfig(), async (bus) => {
      const warned = nextEvent(bus, "log", (l) => l.level === "warn")
      expect(await bus.request("garbage")).toBe("after garbage")
      expect((await warned).line).toContain("this is not json")
      expect(await bus.request("stray")).toBe("after stray")
      expect(bus.stats().routingErrors).toBe(2)
      expect(bus.stats().restarts).toBe(0)
    })
  })

  test("worker stderr lines become log events with a level", async () => {
    await withBus(workerConfig(), async (bus) => {
      const logs: { level: string; line: string }[] = []
      bus.on("log", (l) => logs.push(l))
      await bus.request("log", { lines: ["ERROR: disk on fire", "warning: low fuel", "debug: x=1", "plain words"] })
      await until(() => logs.length >= 4, "four log lines")
      expect(logs.map((l) => [l.level, l.line])).toEqual([
        ["error", "ERROR: disk on fire"],
        ["warn", "warning: low fuel"],
        ["debug", "debug: x=1"],
        ["info", "plain words"],
      ])
    })
  })

  test("stats count messages and bytes both ways and show each instance", async () => {
    await withBus(workerConfig("echo", 2), async (bus) => {
      await Promise.all([1, 2, 3, 4].map((i) => bus.request("m", { i })))
      const s = bus.stats()
      expect(s).toMatchObject({
        state: "running",
        messagesOut: 4,
        messagesIn: 4,
        workerCount: 2,
        clientCount: 0,
        routingErrors: 0,
      })
      expect(s.bytesOut).toBeGreaterThan(4 * 30)
      expect(s.bytesIn).toBeGreaterThan(s.bytesOut)
      for (const i of s.pools[0]!.instances)
        expect(i).toMatchObject({ state: "running", inFlight: 0, restarts: 0, pid: expect.any(Number) })
    })
  })
})
