// Every way a request ends frees its worker's place for the queue, on this host and over NATS, and the queue is served
// in arrival order: one worker with one slot holds a first request while three wait, the first ends one way or
// another, and the three are served, in the order they were made, without a later request to set things going.
import { describe, expect, test } from "bun:test"
import { RemoteError, SlotBus, TimeoutError, WorkerGoneError, type ListenOptions } from "../../src/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { bunChild, busName, rejection, until, type Child } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"

const skip = natsSkipReason()
const nats = natsPerFile(skip)
const { cleanup } = nats

type Over = "shared memory" | "NATS"

async function hub(over: Over): Promise<SlotBus> {
  const opts: ListenOptions = over === "NATS" ? { remote: viaNats(nats.url), heartbeatMs: 100 } : { slots: 1 }
  const bus = await SlotBus.listen(busName("queue"), opts)
  cleanup.push(() => bus.close({ drain: false }))
  return bus
}

async function worker(bus: SlotBus, over: Over): Promise<Child> {
  const w = bunChild("queue-worker.ts", over === "NATS" ? [bus.name, nats.url] : [bus.name])
  cleanup.push(async () => void (await w.kill()))
  await w.waitLine(/^ready \d+$/, 15_000)
  await until(() => bus.workers.some((i) => i.pid === w.pid), "the worker joined", 10_000)
  return w
}

// A stall shows as a TimeoutError of these (the worker is idle meanwhile).
const id = (bus: SlotBus, n: string) => bus.request({ path: "/id", headers: { "x-id": n } }, { timeoutMs: 5_000 })
const texts = async (rs: Promise<{ text(): string }>[]) => (await Promise.all(rs)).map((r) => r.text())

// How the first request ends: started on the worker, then ended by `end` once three more wait behind it.
type Path = {
  path: string
  opts?: { timeoutMs?: number; signal?: AbortSignal }
  end: (w: Child, abort: AbortController) => void | Promise<void>
  outcome: (r: Promise<unknown>) => Promise<void>
  /** The worker that serves the rest (a new one when the first is gone). */
  gone?: true
}

const paths: Record<string, (abort: AbortController) => Path> = {
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
  "worker gone": () => ({
    path: "/hold",
    end: (w) => void process.kill(w.pid, "SIGKILL"),
    outcome: async (r) => expect(await rejection(r)).toBeInstanceOf(WorkerGoneError),
    gone: true,
  }),
}

describe.each(["shared memory", "NATS"] as Over[])("one worker with one slot, over %s", (over) => {
  test.skipIf(over === "NATS" && skip !== null).each(Object.keys(paths))(
    "a first request ending by %s lets the queue go on, in arrival order",
    async (how) => {
      const abort = new AbortController()
      const p = paths[how]!(abort)
      const bus = await hub(over)
      let w = await worker(bus, over)
      const first = bus.request({ path: p.path }, { timeoutMs: 20_000, ...p.opts })
      first.catch(() => {})
      await until(() => bus.workers[0]?.inFlight === 1, "the first request is on the worker")
      const waiting = ["1", "2", "3"].map((n) => id(bus, n))
      expect(bus.stats().queued).toBe(3)
      await p.end(w, abort)
      await p.outcome(first)
      if (p.gone) w = await worker(bus, over)
      expect(await texts(waiting)).toEqual(["1", "2", "3"]) // served with nothing more asked of the bus
      expect(await texts([id(bus, "4")])).toEqual(["4"])
      expect((await bus.request({ path: "/served" }, { timeoutMs: 20_000 })).text()).toBe("1,2,3,4")
    },
    40_000,
  )
})
