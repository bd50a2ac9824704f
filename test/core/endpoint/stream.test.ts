// Streamed answers through the core bus (docs/PROTOCOL.md §9), with the worker in its own process: chunk by chunk
// as produced, every byte intact through a small window, back-pressure, cancel from either side, errors mid-stream,
// kill -9, a reader that stops reading, and what a caller that did not ask for a stream gets.
import { afterEach, describe, expect, test } from "bun:test"
import {
  PayloadTooLargeError,
  RemoteError,
  SlotBus,
  TimeoutError,
  WorkerGoneError,
  type ListenOptions,
  type StreamedResponse,
} from "../../../src/index.ts"
import { bunChild, busName, eventually, pattern, rejection, sha256, until, type Child } from "../../support/helpers.ts"

const decoder = new TextDecoder()
let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
})

async function setup(opts: ListenOptions = {}): Promise<{ bus: SlotBus; worker: Child }> {
  const bus = await SlotBus.listen(busName("stream"), opts)
  cleanup.push(() => bus.close({ drain: false }))
  const worker = bunChild("core/stream-worker.ts", [bus.name])
  cleanup.push(async () => void (await worker.kill()))
  await worker.waitLine(/^ready$/, 10_000)
  await bus.waitForWorkers(1)
  return { bus, worker }
}

const text = async (bus: SlotBus, path: string) => (await bus.request({ path })).text()

/** Every slot of the (one) worker is free again and nothing is in flight. */
const slotsBack = (bus: SlotBus): Promise<boolean> =>
  eventually(() => bus.stats().inFlight === 0 && bus.workers[0]!.slots.every((s) => s === "free"), 5000)

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(body).arrayBuffer())
}

describe("a streamed answer", () => {
  test("reaches the caller chunk by chunk: each chunk arrives before the worker makes the next", async () => {
    // The worker makes chunk i+1 only after the caller, holding chunk i, asks it to: were the answer buffered
    // until its end, the first read would never return.
    const { bus } = await setup()
    const res = (await bus.request({ path: "/steps/4" }, { stream: true })) as StreamedResponse
    expect(res.status).toBe(200)
    expect(res.headers.get("x-stream")).toBe("/steps/4")
    const reader = res.body.getReader()
    const got: string[] = []
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      got.push(decoder.decode(value))
      if (got.length < 4) expect(await text(bus, "/go")).toBe("went")
    }
    expect(got).toEqual(["step 0\n", "step 1\n", "step 2\n", "step 3\n"])
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)

  test("bus.fetch answers with a Response whose body streams the same way", async () => {
    const { bus } = await setup()
    const res = await bus.fetch(new Request("http://any/steps/3"))
    expect(res.status).toBe(200)
    expect(res.headers.get("x-stream")).toBe("/steps/3")
    const reader = res.body!.getReader()
    expect(decoder.decode((await reader.read()).value)).toBe("step 0\n")
    expect(await text(bus, "/go")).toBe("went")
    expect(decoder.decode((await reader.read()).value)).toBe("step 1\n")
    expect(await text(bus, "/go")).toBe("went")
    expect(decoder.decode((await reader.read()).value)).toBe("step 2\n")
    expect((await reader.read()).done).toBe(true)
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)

  test("64 MiB through a 64 KiB window arrive intact, streamed and buffered alike, in odd chunk sizes", async () => {
    const size = 64 * 1024 * 1024
    const { bus } = await setup({ streamWindowBytes: 65536, maxBodyBytes: 65 * 1024 * 1024 })
    const want = sha256(pattern(size))
    for (const chunk of [65536 + 13, 1_000_003]) {
      const streamed = (await bus.request({ path: `/big/${size}/${chunk}` }, { stream: true })) as StreamedResponse
      const got = await readAll(streamed.body)
      expect(got.length).toBe(size)
      expect(sha256(got)).toBe(want)
      const whole = await bus.request({ path: `/big/${size}/${chunk}` })
      expect(whole.body.length).toBe(size)
      expect(sha256(whole.body)).toBe(want)
    }
    expect(await slotsBack(bus)).toBe(true)
  }, 120_000)

  test("a plain request gets the whole body, and a small Response body too", async () => {
    const { bus } = await setup()
    const res = await bus.request({ path: "/big/100000/4096" })
    expect(res.status).toBe(200)
    expect(res.headers.get("x-stream")).toBe("/big/100000/4096")
    expect(sha256(res.body)).toBe(sha256(pattern(100000)))
    expect(await text(bus, "/whole")).toBe("whole answer")
    const raw = await bus.call("anything") // a raw call answered with a Response body
    expect(raw).toBeInstanceOf(Uint8Array)
    expect(decoder.decode(raw)).toBe("no route ")
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)
})

describe("back-pressure", () => {
  test("a caller that does not read holds the worker to the window; reading lets it go on; cancelling stops it", async () => {
    const window = 65536
    const chunk = 4096
    const { bus } = await setup({ streamWindowBytes: window })
    const res = (await bus.request({ path: `/endless/${chunk}` }, { stream: true })) as StreamedResponse
    // Wait until the worker stops: its body has handed out what fits the window (and what its own stream buffers).
    let last = -1
    let count = 0
    for (let i = 0; i < 200 && count !== last; i++) {
      last = count
      await Bun.sleep(25)
      count = Number(await text(bus, "/count"))
    }
    expect(count).toBe(last)
    expect(count).toBeGreaterThan(0)
    expect(count).toBeLessThanOrEqual(window + 4 * chunk)
    const reader = res.body.getReader()
    let read = 0
    while (read < 4 * window) read += (await reader.read()).value!.length
    expect(Number(await text(bus, "/count"))).toBeGreaterThan(count)
    await reader.cancel()
    expect(await eventually(() => bus.stats().inFlight <= 1, 5000)).toBe(true)
    await until(
      async () => (await text(bus, "/aborted")).includes(`/endless/${chunk}`),
      "the worker saw its signal abort",
      5000,
    )
    expect(await slotsBack(bus)).toBe(true)
  }, 30_000)
})

describe("giving a stream up", () => {
  test("a caller that cancels while the handler's stream waits for its next chunk: the stream is cancelled there and the slot comes back", async () => {
    const { bus } = await setup()
    const res = (await bus.request({ path: "/steps/3" }, { stream: true })) as StreamedResponse
    const reader = res.body.getReader()
    expect(decoder.decode((await reader.read()).value)).toBe("step 0\n")
    await reader.cancel() // the worker's body waits in pull() for a /go that never comes
    expect(await slotsBack(bus)).toBe(true)
    expect(await text(bus, "/aborted")).toBe("/steps/3")
  }, 20_000)

  test("the caller's signal errors the body with its reason, aborts the worker's req.signal and returns the slot", async () => {
    const { bus } = await setup({ streamWindowBytes: 65536 })
    const ac = new AbortController()
    const res = (await bus.request({ path: "/endless/1000" }, { stream: true, signal: ac.signal })) as StreamedResponse
    const reader = res.body.getReader()
    expect((await reader.read()).value!.length).toBe(1000)
    const reason = new Error("caller is done")
    ac.abort(reason)
    expect(await rejection(reader.read())).toBe(reason)
    await until(
      async () => (await text(bus, "/aborted")).includes("/endless/1000"),
      "the worker saw its signal abort",
      5000,
    )
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)

  test("a caller that stops reading for streamIdleMs gets TimeoutError and the worker is told", async () => {
    const { bus } = await setup({ streamWindowBytes: 65536, streamIdleMs: 200 })
    const res = (await bus.request({ path: "/endless/4096" }, { stream: true })) as StreamedResponse
    await until(
      async () => (await text(bus, "/aborted")).includes("/endless/4096"),
      "the worker saw its signal abort",
      10_000,
    )
    expect(await rejection(readAll(res.body))).toBeInstanceOf(TimeoutError)
    expect(bus.stats().timeouts).toBe(1)
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)

  test("a caller that reads on, slower than a window of queued chunks lasts, is not cut; once it stops, it is", async () => {
    // before: a pull queues all the worker has published (here 16 chunks); reading those made no pull, so the
    // clock ran from the pull: cut after ~3 reads 150 ms apart, a download at any pace under a window per streamIdleMs
    const { bus } = await setup({ streamWindowBytes: 65536, streamIdleMs: 400 })
    const res = (await bus.request({ path: "/endless/4096" }, { stream: true })) as StreamedResponse
    const reader = res.body.getReader()
    await Bun.sleep(100) // the worker fills the window
    for (let i = 0; i < 30; i++) {
      expect((await reader.read()).done).toBe(false)
      await Bun.sleep(150)
    }
    expect(bus.stats().timeouts).toBe(0)
    // then it stops, chunks still queued: given up all the same
    await until(
      async () => (await text(bus, "/aborted")).includes("/endless/4096"),
      "the worker saw its signal abort",
      10_000,
    )
    expect(bus.stats().timeouts).toBe(1)
    expect(await slotsBack(bus)).toBe(true)
  }, 30_000)

  test("a buffered caller's answer over maxBodyBytes is PayloadTooLargeError, and the worker is told", async () => {
    const { bus } = await setup({ maxBodyBytes: 100_000 })
    expect(await rejection(bus.request({ path: "/endless/4096" }))).toBeInstanceOf(PayloadTooLargeError)
    await until(
      async () => (await text(bus, "/aborted")).includes("/endless/4096"),
      "the worker saw its signal abort",
      5000,
    )
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)

  test("timeoutMs runs until the headers only: a slow stream after them is not cut", async () => {
    const { bus } = await setup({ timeoutMs: 300 })
    const res = (await bus.request({ path: "/steps/2" }, { stream: true })) as StreamedResponse
    const reader = res.body.getReader()
    expect(decoder.decode((await reader.read()).value)).toBe("step 0\n")
    await Bun.sleep(600) // twice the timeout with the second chunk not yet made
    expect(await text(bus, "/go")).toBe("went")
    expect(decoder.decode((await reader.read()).value)).toBe("step 1\n")
    expect((await reader.read()).done).toBe(true)
  }, 20_000)
})

describe("a stream that fails", () => {
  test("a body that throws after its headers errors the caller's stream with RemoteError; a buffered caller is rejected", async () => {
    const { bus } = await setup()
    const res = (await bus.request({ path: "/fail/2" }, { stream: true })) as StreamedResponse
    expect(res.status).toBe(200)
    const reader = res.body.getReader()
    expect(decoder.decode((await reader.read()).value)).toBe("part 0\n")
    expect(decoder.decode((await reader.read()).value)).toBe("part 1\n")
    const err = await rejection(reader.read())
    expect(err).toBeInstanceOf(RemoteError)
    expect((err as RemoteError).message).toBe("Error: boom after 2")
    expect((err as RemoteError).remoteStack).toContain("boom after 2")
    const buffered = await rejection(bus.request({ path: "/fail/3" }))
    expect(buffered).toBeInstanceOf(RemoteError)
    expect((buffered as Error).message).toBe("Error: boom after 3")
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)

  test("a worker killed with SIGKILL mid-stream errors the stream with WorkerGoneError", async () => {
    const { bus, worker } = await setup()
    const res = (await bus.request({ path: "/steps/3" }, { stream: true })) as StreamedResponse
    const reader = res.body.getReader()
    expect(decoder.decode((await reader.read()).value)).toBe("step 0\n")
    process.kill(worker.pid, "SIGKILL")
    expect(await rejection(reader.read())).toBeInstanceOf(WorkerGoneError)
    expect(await eventually(() => bus.workerCount === 0, 5000)).toBe(true)
  }, 20_000)
})

test("a front server's log says a worker killed mid-stream in one line: no stack, no code frame", async () => {
  const front = bunChild("core/fetch-front.ts", [])
  cleanup.push(async () => void (await front.kill()))
  const [, port, workerPid] = await front.waitLine(/^ready (\d+) (\d+)$/)
  const res = await fetch(`http://127.0.0.1:${port}/steps/3`)
  const reader = res.body!.getReader()
  expect(decoder.decode((await reader.read()).value)).toBe("step 0\n")
  process.kill(Number(workerPid), "SIGKILL")
  expect(await rejection(reader.read())).toBeInstanceOf(Error) // the client sees the response cut off
  await until(() => front.stderr.includes("WorkerGoneError"), "the front server logged the worker's death", 5000)
  await Bun.sleep(200) // anything Bun prints after that line
  const log = front.stderr.trim().split("\n")
  expect(log).toHaveLength(1)
  expect(log[0]).toMatch(/^WorkerGoneError: worker pid \d+ of "front-\d+" disconnected or died before answering/)
}, 20_000)

test("a stream body all there when the handler returns is answered whole, its pieces in order", async () => {
  const { bus } = await setup()
  for (const [bytes, chunk] of [
    [3000, 1000],
    [40_000, 16_384],
    [20_000, 7],
  ] as const) {
    const res = await bus.request({ path: `/big/${bytes}/${chunk}` })
    expect([res.body.length, sha256(res.body)]).toEqual([bytes, sha256(pattern(bytes))])
  }
  expect(await slotsBack(bus)).toBe(true)
}, 20_000)

describe("without a stream window", () => {
  test("a hub with streamWindowBytes 0 gets the worker's streams answered whole", async () => {
    const { bus } = await setup({ streamWindowBytes: 0 })
    const res = (await bus.request({ path: "/big/300000/1000" }, { stream: true })) as StreamedResponse
    expect(sha256(await readAll(res.body))).toBe(sha256(pattern(300000)))
    expect(await text(bus, "/whole")).toBe("whole answer")
    expect(await slotsBack(bus)).toBe(true)
  }, 20_000)

  test("streamWindowBytes, stream and streamIdleMs are checked", async () => {
    for (const bad of [1000, 4095, 6000, 2 ** 31, -1, 1.5])
      expect(await rejection(SlotBus.listen(busName("bad"), { streamWindowBytes: bad }))).toBeInstanceOf(RangeError)
    const small = await rejection(SlotBus.listen(busName("bad"), { streamWindowBytes: 2 ** 20, maxBodyBytes: 1000 }))
    expect((small as Error).message).toMatch(
      /^streamWindowBytes must be a power of two in 4096\.\.\d+ \(the slot's arena: maxHeadBytes \+ maxBodyBytes\) or 0, got 1048576$/,
    )
    const { bus } = await setup()
    expect(await rejection(bus.request({}, { stream: "yes" as never }))).toBeInstanceOf(TypeError)
    expect(await rejection(bus.request({}, { stream: true, borrow: true } as never))).toBeInstanceOf(TypeError)
    expect(await rejection(bus.request({}, { streamIdleMs: -1 }))).toBeInstanceOf(RangeError)
    expect(await rejection(bus.request({}, { strem: true } as never))).toBeInstanceOf(TypeError)
  }, 20_000)
})
