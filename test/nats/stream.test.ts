// Streamed answers over NATS (docs/PROTOCOL.md §10.4), beyond the back-pressure every kind of worker keeps
// (test/conformance/endpoint.test.ts): chunk by chunk as the worker produces them, past max_payload; cancels both
// ways, failures after the HEAD, a worker killed mid-stream, and a hostile worker's frames (a gap, a first frame that is no HEAD, data past its credit).
// Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import type { NatsConnection } from "@nats-io/transport-node"
import {
  ProtocolError,
  RemoteError,
  SlotBus,
  WorkerGoneError,
  type ListenOptions,
  type StreamedResponse,
} from "../../src/index.ts"
import { bunChild, busName, rejection, until, type Child } from "../support/helpers.ts"
import { hostileNatsWorker, natsPerFile, natsSkipReason } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS stream tests are skipped: ${skip}`)

const nats = natsPerFile(skip)
const { cleanup } = nats

async function hub(opts: ListenOptions = {}): Promise<SlotBus> {
  const bus = await SlotBus.listen(busName("nats-stream"), { remote: viaNats(nats.url), heartbeatMs: 100, ...opts })
  cleanup.push(() => bus.close({ drain: false }))
  return bus
}
async function remoteWorker(bus: SlotBus): Promise<Child> {
  const w = bunChild("nats/nats-worker.ts", [bus.name, nats.url])
  cleanup.push(async () => void (await w.kill()))
  await w.waitLine(/^ready \d+$/, 15_000)
  await bus.waitForWorkers(1)
  return w
}
const stream = (bus: SlotBus, path: string) => bus.request({ path }, { stream: true }) as Promise<StreamedResponse>

describe.skipIf(skip !== null)("streamed answers over NATS", () => {
  test("the HEAD and the first chunk reach the caller while the handler still waits to make the second", async () => {
    const bus = await hub()
    await remoteWorker(bus)
    const res = await stream(bus, "/gated")
    expect(res.status).toBe(200)
    const reader = res.body.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first")
    // the second chunk is made only after this request: the first could not have waited for it
    expect((await bus.request({ path: "/open" })).text()).toBe("opened")
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("second")
    expect((await reader.read()).done).toBe(true)
    expect(bus.stats().inFlight).toBe(0)
  }, 30_000)

  test("a caller that does not ask for a stream gets a streamed answer whole, even one over the server's max_payload", async () => {
    const bus = await hub()
    await remoteWorker(bus)
    const res = await bus.request({ path: "/stream/48/65536" }) // 3 MiB: three times max_payload
    expect(res.body.length).toBe(48 * 65536)
    expect(res.body[47 * 65536]).toBe(47)
  }, 30_000)

  test("the caller cancels the body: the handler's stream is cancelled, and the request counts as given up", async () => {
    const bus = await hub()
    await remoteWorker(bus)
    const res = await stream(bus, "/stream-hold")
    const reader = res.body.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("one")
    await reader.cancel(new Error("enough"))
    await until(
      async () => (await bus.request({ path: "/aborted" })).text() === "/stream-hold",
      "cancelled there",
      10_000,
    )
    expect(bus.stats().inFlight).toBe(0)
  }, 30_000)

  test("a stream that fails after the HEAD: the chunks sent before it are read, then a RemoteError", async () => {
    const bus = await hub()
    await remoteWorker(bus)
    const res = await stream(bus, "/stream-fail/3")
    const reader = res.body.getReader()
    let text = ""
    let err: unknown = null
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value)
    } catch (e) {
      err = e
    }
    expect(text).toBe("chunk 0\nchunk 1\nchunk 2\n")
    expect(err).toBeInstanceOf(RemoteError)
    expect((err as RemoteError).message).toContain("failed after 3")
    // a buffered caller gets the error itself
    expect(await rejection(bus.request({ path: "/stream-fail/2" }))).toBeInstanceOf(RemoteError)
  }, 30_000)

  test("a worker killed with SIGKILL mid-stream fails the reader with WorkerGoneError", async () => {
    const bus = await hub()
    const w = await remoteWorker(bus)
    const res = await stream(bus, "/stream-hold")
    const reader = res.body.getReader()
    await reader.read()
    process.kill(w.pid, "SIGKILL")
    expect(await rejection(reader.read())).toBeInstanceOf(WorkerGoneError)
    expect(bus.stats().inFlight).toBe(0)
  }, 30_000)
})

// ---- a hostile worker: a NATS client of the test's own that announces itself and answers with crafted frames ----

/** §10.4's frame prefix: version 1, flags, frame number, status, head length. */
function frame(flags: number, n: number, payload: Uint8Array | string = "", status = 0) {
  const body = typeof payload === "string" ? new TextEncoder().encode(payload) : payload
  const out = new Uint8Array(16 + body.length)
  const v = new DataView(out.buffer)
  v.setUint32(0, 1 | (flags << 8), true)
  v.setUint32(4, n, true)
  v.setUint32(8, status, true)
  v.setUint32(12, flags & 4 ? 0 : body.length, true)
  out.set(body, 16)
  return out
}
const HEAD = 2
const DATA = 4
const END = 8

/** Reads the body to its end; the error that ended it, or null. */
async function readError(res: StreamedResponse): Promise<unknown> {
  const reader = res.body.getReader()
  try {
    while (!(await reader.read()).done) {}
    return null
  } catch (e) {
    return e
  }
}

async function hostileWorker(bus: SlotBus, answer: (reply: string, nc: NatsConnection) => void) {
  const w = await hostileNatsWorker(nats.url, bus.name, answer)
  cleanup.push(() => w.stop())
  await bus.waitForWorkers(1)
  return w.cancels
}

describe.skipIf(skip !== null)("a hostile worker's streamed answers over NATS", () => {
  test("a lost frame fails the stream with WorkerGoneError and cancels it there; a first frame that is no HEAD, or data past the credit, is a ProtocolError", async () => {
    const bus = await hub({ streamWindowBytes: 4096 })
    let mode = "gap"
    const cancels = await hostileWorker(bus, (reply, nc) => {
      if (mode === "gap") {
        nc.publish(reply, frame(HEAD, 0, "", 200))
        nc.publish(reply, frame(DATA, 1, "a"))
        nc.publish(reply, frame(DATA, 3, "c")) // frame 2 never came
      } else if (mode === "no-head") {
        nc.publish(reply, frame(DATA, 0, "a"))
      } else {
        nc.publish(reply, frame(HEAD, 0, "", 200))
        for (let i = 1; i <= 3; i++) nc.publish(reply, frame(DATA, i, new Uint8Array(4096))) // one window of credit
      }
    })
    const gap = await readError(await stream(bus, "/x"))
    expect(gap).toBeInstanceOf(WorkerGoneError)
    expect((gap as Error).message).toContain("lost frame 2")
    await until(() => cancels.length === 1, "the stream cancelled on the worker", 5000)
    mode = "no-head"
    expect(await rejection(stream(bus, "/x"))).toBeInstanceOf(ProtocolError)
    // a caller that reads nothing yet: a window's worth is all the hub holds for it
    mode = "past-credit"
    const res = await stream(bus, "/x")
    await until(() => bus.stats().inFlight === 0, "the stream refused", 5000)
    expect(await readError(res)).toBeInstanceOf(ProtocolError)
    await until(() => cancels.length === 3, "each refused stream cancelled on the worker", 5000)
    expect(bus.workerCount).toBe(1) // refused, not dropped: its heartbeats still say it serves
  }, 30_000)

  test("an empty DATA frame or unknown flags are a ProtocolError, counted; tiny frames cost 64 bytes of credit each, so a hub holds at most window / 64 of them", async () => {
    const bus = await hub({ streamWindowBytes: 4096 })
    const max = 4096 / 64
    let mode = "empty"
    const cancels = await hostileWorker(bus, (reply, nc) => {
      nc.publish(reply, frame(HEAD, 0, "", 200))
      let n = 1
      if (mode === "empty") for (; n <= 1000; n++) nc.publish(reply, frame(DATA, n, ""))
      else if (mode === "flags") nc.publish(reply, frame(DATA | 64, n++, "a"))
      else for (const last = mode === "tiny" ? max + 1 : max; n <= last; n++) nc.publish(reply, frame(DATA, n, "a"))
      nc.publish(reply, frame(END, n))
    })
    for (const m of ["empty", "flags", "tiny"]) {
      mode = m
      const before = bus.stats().rejectedMessages
      const res = await stream(bus, "/x") // nothing read until every frame came: all of them are held
      await until(() => bus.stats().inFlight === 0, `the ${m} stream refused`, 5000)
      expect(await readError(res)).toBeInstanceOf(ProtocolError)
      expect(bus.stats().rejectedMessages).toBe(before + 1)
    }
    await until(() => cancels.length === 3, "each refused stream cancelled on the worker", 5000)
    mode = "within" // window / 64 one-byte frames unread: exactly the credit
    const res = await stream(bus, "/x")
    let read = 0
    for await (const chunk of res.body) read += chunk.length
    expect(read).toBe(max)
  }, 30_000)

  test("an END after the HEAD without data is an empty body; a whole answer after frames is refused", async () => {
    const bus = await hub()
    let mode = "empty"
    await hostileWorker(bus, (reply, nc) => {
      nc.publish(reply, frame(HEAD, 0, "", 204))
      if (mode === "empty") nc.publish(reply, frame(END, 1))
      else nc.publish(reply, frame(0, 200)) // a whole answer's prefix: status 200, no head, no body
    })
    const res = await bus.request({ path: "/x" })
    expect(res.status).toBe(204)
    expect(res.body.length).toBe(0)
    mode = "whole"
    expect(await rejection(bus.request({ path: "/x" }))).toBeInstanceOf(WorkerGoneError)
  }, 30_000)
})
