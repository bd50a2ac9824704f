// The Endpoint conformance suite (src/core/endpoint/endpoint.ts): the same tests against every kind of worker a bus
// dispatches to, through a real SlotBus and a real worker process (test/support/conformance/conformance-worker.ts): on this host
// over shared memory (SlotEndpoint) and on "another host" through each transport of transports.ts (RemoteEndpoint).
// A kind whose tool is missing is skipped with the line that installs it. The worker process runs under Bun, and again
// under Node 26 (issue 67; that row skips with the install line without it).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import {
  RemoteError,
  SlotBus,
  TimeoutError,
  WorkerGoneError,
  type StreamedResponse,
  type WorkerEvent,
} from "../../src/index.ts"
import { busName, rejection, until, type Child } from "../support/helpers.ts"
import { PEER_RUNTIMES, type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { ENDPOINTS, serverPerFile, type EndpointKind } from "./transports.ts"

afterAll(removeNodeBuilds)

const text = async (r: Promise<{ text(): string }>) => (await r).text()

const rows = ENDPOINTS.flatMap((k) =>
  PEER_RUNTIMES.map((r) => [k.transport, r, k] as [string, PeerRuntime, EndpointKind]),
)
describe.each(rows)("a worker over %s, under %s", (name, runtime, kind) => {
  const skip = kind.skip() ?? peerSkip(runtime)
  if (skip) console.warn(`skipped: the endpoint conformance suite over ${name}, the worker under ${runtime} (${skip})`)
  const server = serverPerFile({ skip: () => skip, start: kind.start })
  let cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const f of cleanup.reverse()) await f()
    cleanup = []
  })

  async function hub(slots = 32): Promise<SlotBus> {
    const bus = await SlotBus.listen(busName("conf"), kind.listen(server.address, slots))
    cleanup.push(() => bus.close({ drain: false }))
    return bus
  }
  /** A worker process of this kind, listed by the bus. */
  async function worker(bus: SlotBus, slots = 32): Promise<Child> {
    const w = await peerChild(runtime, "conformance/conformance-worker.ts", [
      bus.name,
      ...kind.workerArgs(server.address, slots),
    ])
    cleanup.push(() => w.kill())
    await w.waitLine(/^ready \d+$/, 15_000)
    await until(() => bus.workers.some((i) => i.pid === w.pid), "the worker joined", 10_000)
    return w
  }

  const it = test.skipIf(skip !== null)

  it("a request is answered with the handler's status, headers and body; a raw call and bus.fetch reach the same handler", async () => {
    const bus = await hub()
    const w = await worker(bus)
    const res = await bus.request({
      method: "POST",
      path: "/echo",
      headers: { "x-status": "201", "x-reply-headers": JSON.stringify([["x-a", "b"]]) },
      body: "héllo",
    })
    expect(res.status).toBe(201)
    expect(res.headers.get("x-a")).toBe("b")
    expect(res.headers.get("x-pid")).toBe(String(w.pid))
    expect(res.headers.get("x-method")).toBe("POST")
    expect(res.text()).toBe("héllo")
    expect(new TextDecoder().decode(await bus.call("abc"))).toBe("cba")
    const fetched = await bus.fetch(new Request("http://any/echo", { method: "PUT", body: "via fetch" }))
    expect([fetched.status, fetched.headers.get("x-method"), await fetched.text()]).toEqual([200, "PUT", "via fetch"])
    expect(bus.stats()).toMatchObject({ inFlight: 0, errors: 0 })
  }, 30_000)

  it(`bus.workers lists it with transport "${name}"; its join and, after kill -9, its leave are events`, async () => {
    const bus = await hub()
    const events: WorkerEvent[] = []
    bus.onWorker((e) => events.push(e))
    const w = await worker(bus)
    expect(bus.workers).toHaveLength(1)
    expect(bus.workers[0]).toMatchObject({ pid: w.pid, transport: name, state: "serving", inFlight: 0 })
    await w.kill("SIGKILL")
    await until(() => bus.workerCount === 0, "the killed worker left", 10_000)
    expect(events.map((e) => `${e.type} ${e.worker.transport} ${e.worker.pid}`)).toEqual([
      `join ${name} ${w.pid}`,
      `leave ${name} ${w.pid}`,
    ])
  }, 30_000)

  it("an error the handler throws is a RemoteError naming it", async () => {
    const bus = await hub()
    await worker(bus)
    const err = await rejection(bus.request({ path: "/throw" }))
    expect(err).toBeInstanceOf(RemoteError)
    expect((err as RemoteError).remoteName).toBe("RangeError")
    expect((err as Error).message).toContain("thrown on purpose")
    expect(await text(bus.request({ path: "/echo", body: "still serving" }))).toBe("still serving")
  }, 30_000)

  it("a caller's abort rejects with its reason and reaches the handler's req.signal; a timeout does too", async () => {
    const bus = await hub()
    const w = await worker(bus)
    const ac = new AbortController()
    const held = bus.request({ path: "/hold", headers: { "x-id": "by-signal" } }, { signal: ac.signal })
    await w.waitLine(/^holding by-signal$/, 10_000) // its handler runs
    ac.abort(new RangeError("enough"))
    const err = await rejection(held)
    expect(err).toBeInstanceOf(RangeError)
    expect((err as Error).message).toBe("enough")
    await w.waitLine(/^aborted by-signal$/, 10_000)
    const timed = await rejection(
      bus.request({ path: "/hold", headers: { "x-id": "by-timeout" } }, { timeoutMs: 1000 }),
    )
    expect(timed).toBeInstanceOf(TimeoutError)
    await w.waitLine(/^holding by-timeout$/, 10_000) // it ran before its time was up, so its signal is told
    await w.waitLine(/^aborted by-timeout$/, 10_000)
    await until(() => bus.stats().inFlight === 0, "the worker let go of both", 10_000)
    expect(await text(bus.request({ path: "/aborted" }))).toBe("by-signal,by-timeout")
  }, 30_000)

  it("`into`: an answer that fits is copied into the caller's buffer, a longer one comes as a copy of its own, and a request given up never writes it", async () => {
    const bus = await hub()
    const w = await worker(bus)
    const into = new Uint8Array(16).fill(7)
    const raw = await bus.call("abc", { into })
    expect([raw.buffer === into.buffer, raw.byteOffset, new TextDecoder().decode(raw)]).toEqual([true, 0, "cba"])
    const res = await bus.request({ path: "/echo", body: "héllo" }, { into })
    expect([res.body.buffer === into.buffer, res.text()]).toEqual([true, "héllo"])
    const whole = await bus.request({ path: "/stream/2/4" }, { into }) // a stream body, collected whole
    expect([whole.body.buffer === into.buffer, [...whole.body]]).toEqual([true, [0, 0, 0, 0, 1, 1, 1, 1]])
    const before = into.slice()
    const long = await bus.call("x".repeat(17), { into })
    expect([long.buffer === into.buffer, long.length]).toEqual([false, 17])
    expect(into).toEqual(before)
    // given up before its answer: the buffer stays as it was, also once the worker is done with the request
    const late = new Uint8Array(8).fill(9)
    const gated = bus.request({ path: "/gate/ok", headers: { "x-id": "late" } }, { into: late, timeoutMs: 500 })
    await w.waitLine(/^started late$/, 10_000)
    expect(await rejection(gated)).toBeInstanceOf(TimeoutError)
    process.kill(w.pid, "SIGUSR2")
    await until(() => bus.stats().inFlight === 0, "the worker let go of the request", 10_000)
    expect(await text(bus.request({ path: "/gate/ok" }))).toBe("gate")
    expect([...late]).toEqual(Array(8).fill(9))
  }, 30_000)

  it("idempotent requests whose worker dies (kill -9) go to another worker, once each; a plain one fails with WorkerGoneError", async () => {
    const bus = await hub()
    const a = await worker(bus)
    process.kill(a.pid, "SIGSTOP") // listed, but answers nothing
    // retries run one at a time on their worker: the next goes once the one before settles (before, over NATS, it
    // waited for other traffic, and timed out)
    const idem = [1, 2, 3].map((i) => bus.request({ path: "/echo", body: `twice is fine ${i}` }, { idempotent: true }))
    const plain = bus.request({ path: "/echo", body: "once only" })
    plain.catch(() => {})
    await until(() => bus.workers[0]?.inFlight === 4, "the requests are on the stopped worker", 10_000)
    const b = await worker(bus)
    await a.kill("SIGKILL")
    expect(await rejection(plain)).toBeInstanceOf(WorkerGoneError)
    for (const [i, res] of (await Promise.all(idem)).entries()) {
      expect(res.text()).toBe(`twice is fine ${i + 1}`)
      expect(res.headers.get("x-pid")).toBe(String(b.pid))
    }
  }, 30_000)

  it("N slots serve N requests at once; the N+1th queues until one is answered", async () => {
    const N = 3
    const bus = await hub(N)
    const w = await worker(bus, N)
    const gated = (i: number) => bus.request({ path: "/gate/ok", headers: { "x-id": `g${i}` } }, { timeoutMs: 20_000 })
    const first = Array.from({ length: N }, (_, i) => gated(i))
    for (let i = 0; i < N; i++) await w.waitLine(new RegExp(`^started g${i}$`), 10_000) // all N run at once
    expect(bus.workers[0]!.inFlight).toBe(N)
    const last = gated(N)
    expect(bus.stats().queued).toBe(1)
    expect(w.lines.filter((l) => l.startsWith("started "))).toHaveLength(N)
    process.kill(w.pid, "SIGUSR2")
    expect(await Promise.all([...first, last].map(text))).toEqual(Array(N + 1).fill("gate"))
    await w.waitLine(new RegExp(`^started g${N}$`), 10_000) // the N+1th ran once a slot was free
    expect(bus.stats().queued).toBe(0)
  }, 30_000)

  it("a streamed answer arrives chunk by chunk, with back-pressure: the worker makes chunks only as the caller reads", async () => {
    const window = 16384
    const size = 4096
    const chunks = 64
    const bus = await SlotBus.listen(busName("conf"), { ...kind.listen(server.address, 4), streamWindowBytes: window })
    cleanup.push(() => bus.close({ drain: false }))
    await worker(bus, 4)
    const made = async () => Number(await text(bus.request({ path: "/made" })))
    const res = (await bus.request({ path: `/stream/${chunks}/${size}` }, { stream: true })) as StreamedResponse
    expect(res.status).toBe(200)
    // The caller reads nothing yet: the worker is let make what fits the window (and the chunks its stream and the
    // transport hold in between), not the 64 of the answer.
    let most = 0
    for (let i = 0; i < 20; i++) {
      await Bun.sleep(10)
      most = Math.max(most, await made())
    }
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(window / size + 4)
    // It reads: the rest is made as it is taken, never more than that ahead, every byte right.
    const reader = res.body.getReader()
    let taken = 0
    let ahead = 0
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      for (let off = 0; off < r.value.length; off += 1024)
        expect(r.value[off]).toBe(Math.floor((taken + off) / size) & 255)
      taken += r.value.length
      ahead = Math.max(ahead, (await made()) - Math.ceil(taken / size)) // a chunk read in part is the caller's
    }
    expect(taken).toBe(chunks * size)
    expect(ahead).toBeLessThanOrEqual(window / size + 4)
    expect(await made()).toBe(chunks)
    await until(() => bus.stats().inFlight === 0, "the stream's request is over", 10_000)
  }, 60_000)

  // Every way a request ends frees its worker's place for the queue, and the queue is served in arrival order:
  // one worker with one slot holds a first request while three wait, the first ends one way or another, and the
  // three are served, in the order they were made, without a later request to set things going.
  type End = {
    path: string
    opts?: { timeoutMs?: number; signal?: AbortSignal }
    end: (w: Child, abort: AbortController) => void | Promise<void>
    outcome: (r: Promise<unknown>) => Promise<void>
    /** The worker is gone: a new one serves the rest. */
    gone?: true
  }
  const ends: Record<string, (abort: AbortController) => End> = {
    answer: () => ({
      path: "/gate/ok",
      end: (w) => void process.kill(w.pid, "SIGUSR2"),
      outcome: async (r) => expect(((await r) as { text(): string }).text()).toBe("gate"),
    }),
    "error answer": () => ({
      path: "/gate/throw",
      end: (w) => void process.kill(w.pid, "SIGUSR2"),
      outcome: async (r) => expect(await rejection(r)).toBeInstanceOf(RemoteError),
    }),
    "stream END": () => ({
      path: "/gate/stream",
      end: (w) => void process.kill(w.pid, "SIGUSR2"),
      outcome: async (r) => expect(((await r) as { text(): string }).text()).toBe("one two"),
    }),
    cancel: (abort) => ({
      path: "/hold",
      opts: { signal: abort.signal },
      end: (_, a) => a.abort(new RangeError("the caller gave up")),
      outcome: async (r) => expect(await rejection(r)).toBeInstanceOf(RangeError),
    }),
    timeout: () => ({
      path: "/hold",
      opts: { timeoutMs: 400 },
      end: () => {},
      outcome: async (r) => expect(await rejection(r)).toBeInstanceOf(TimeoutError),
    }),
    "worker gone (kill -9)": () => ({
      path: "/hold",
      end: (w) => void process.kill(w.pid, "SIGKILL"),
      outcome: async (r) => expect(await rejection(r)).toBeInstanceOf(WorkerGoneError),
      gone: true,
    }),
  }
  // A stall shows as a TimeoutError of these (the worker is idle meanwhile).
  const id = (bus: SlotBus, n: string) => bus.request({ path: "/id", headers: { "x-id": n } }, { timeoutMs: 5_000 })

  it.each(Object.keys(ends))(
    "one slot: a first request ending by %s lets the queue go on, in arrival order",
    async (how) => {
      const abort = new AbortController()
      const p = ends[how]!(abort)
      const bus = await hub(1)
      let w = await worker(bus, 1)
      const first = bus.request({ path: p.path }, { timeoutMs: 20_000, ...p.opts })
      first.catch(() => {})
      await until(() => bus.workers[0]?.inFlight === 1, "the first request is on the worker")
      const waiting = ["1", "2", "3"].map((n) => id(bus, n))
      expect(bus.stats().queued).toBe(3)
      await p.end(w, abort)
      await p.outcome(first)
      if (p.gone) w = await worker(bus, 1)
      expect(await Promise.all(waiting.map(text))).toEqual(["1", "2", "3"]) // served with nothing more asked of the bus
      expect(await text(id(bus, "4"))).toBe("4")
      expect(await text(bus.request({ path: "/served" }, { timeoutMs: 20_000 }))).toBe("1,2,3,4")
    },
    40_000,
  )
})
