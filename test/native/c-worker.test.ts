// examples/c-worker, a worker written in C from docs/PROTOCOL.md, against a SlotBus in this process.
import { beforeAll, describe, expect, test } from "bun:test"
import { dlopen, FFIType } from "bun:ffi"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { type ListenOptions, RemoteError, SlotBus, WorkerGoneError, type SlotResponse } from "../../src/index.ts"
import { busName, type Child, eventually, FIXTURES, observed, outcome, spawn } from "../support/helpers.ts"

const GUARD_MS = 2_000

let exe = ""

beforeAll(async () => {
  exe = join(await zigBuild("examples"), "c-worker")
}, 180_000)

const decoder = new TextDecoder()
const reversed = (b: Uint8Array) => b.slice().reverse()

async function withCWorker(
  flags: string[],
  body: (bus: SlotBus, worker: Child) => Promise<void>,
  listen: ListenOptions = {},
) {
  const name = busName("c-worker")
  const bus = await SlotBus.listen(name, { maxBodyBytes: 1 << 20, timeoutMs: 10_000, ...listen })
  const worker = spawn([exe, name, ...flags])
  try {
    await bus.waitForWorkers(1)
    expect(bus.workers.map((w) => w.pid)).toEqual([worker.pid])
    await body(bus, worker)
  } finally {
    await worker.kill()
    await bus.close({ drain: false })
  }
}

const modes = [
  { mode: "adaptive (default)", flags: [] },
  { mode: "eventfd", flags: ["--eventfd"] },
  { mode: "futex", flags: ["--futex"] },
  { mode: "spin", flags: ["--spin"] },
]

/** The process's state letter from /proc (R running, S sleeping in the kernel, …). */
const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0]

test("the C worker's default mode polls while calls flow, then sleeps in the kernel; a call wakes it", async () => {
  await withCWorker([], async (bus, worker) => {
    for (let i = 0; i < 1000; i++) await bus.call(new Uint8Array([i & 255]))
    // parked on its doorbell once 1 ms passed without a call: a spinning process is never in state S
    expect(await eventually(() => procState(worker.pid) === "S", 5000)).toBe(true)
    expect(Array.from(await bus.call(new Uint8Array([1, 2, 3])))).toEqual([3, 2, 1])
  })
}, 15_000)

test("sb_idle, the idle strategies a C worker polls with, refuses a mode it does not know with -EINVAL", async () => {
  const { symbols } = dlopen(await libraryPath(), {
    sb_idle: { args: [FFIType.ptr, FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  })
  // checked before the channel is looked at, so no channel is needed to see it
  for (const mode of [-1, 4, 99]) expect(symbols.sb_idle(null, mode, 0)).toBe(-22)
})

describe.each(modes)("the C worker in $mode mode", ({ flags }) => {
  test("answers raw calls with the body reversed, whatever the bytes and size", async () => {
    await withCWorker(flags, async (bus) => {
      const bodies = [
        new Uint8Array(0),
        new TextEncoder().encode("hello from bun"),
        Uint8Array.from({ length: 256 }, (_, i) => i),
        Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) & 255),
        new Uint8Array(1 << 20).fill(0xab),
      ]
      for (const b of bodies) expect(Array.from(await bus.call(b))).toEqual(Array.from(reversed(b)))
    })
  }, 15_000)

  test("answers http requests with 200, x-worker: c and the method, path and body length", async () => {
    await withCWorker(flags, async (bus) => {
      const get = (await bus.request({ path: "/x" })) as SlotResponse
      expect([get.status, Object.fromEntries(get.headers), get.text()]).toEqual([200, { "x-worker": "c" }, "GET /x 0"])
      const post = await bus.request({
        method: "POST",
        path: "/a/b?c=d",
        headers: { "x-one": "1", "x-two": "2" },
        body: "hello",
      })
      expect([post.status, Object.fromEntries(post.headers), post.text()]).toEqual([
        200,
        { "x-worker": "c" },
        "POST /a/b?c=d 5",
      ])
      const big = await bus.request({ method: "PUT", path: "/ü/€", body: new Uint8Array(777_777) })
      expect(big.text()).toBe("PUT /ü/€ 777777")
    })
  }, 15_000)

  test("turns its handler error on /fail into a RemoteError carrying its message", async () => {
    await withCWorker(flags, async (bus) => {
      const failed = await outcome(bus.request({ method: "POST", path: "/fail", body: "x" }), GUARD_MS)
      expect(failed.state === "rejected" && failed.error).toBeInstanceOf(RemoteError)
      expect(failed.state === "rejected" && (failed.error as Error).message).toBe("c worker failed on purpose")
      expect(decoder.decode(await bus.call("still alive"))).toBe("evila llits")
    })
  }, 15_000)

  test("gives up a request it holds when the hub's caller aborts or times out (a cancel request), and its slot comes back", async () => {
    await withCWorker(flags, async (bus, worker) => {
      const ac = new AbortController()
      const aborted = observed(bus.request({ path: "/hold" }, { signal: ac.signal }))
      const slot = (await worker.waitLine(/^holding (\d+)$/))[1]
      ac.abort(new Error("caller gave up"))
      expect(await outcome(aborted, GUARD_MS)).toMatchObject({ state: "rejected" })
      await worker.waitLine(new RegExp(`^gave up ${slot}$`))
      const timedOut = observed(bus.request({ path: "/hold" }, { timeoutMs: 200 }))
      await worker.waitLine(/^holding \d+$/)
      const o = await outcome(timedOut, GUARD_MS)
      expect(o.state === "rejected" && (o.error as Error).name).toBe("TimeoutError")
      expect(await eventually(() => worker.lines.filter((l) => l.startsWith("gave up")).length === 2, 5000)).toBe(true)
      expect(await eventually(() => bus.stats().inFlight === 0, 5000)).toBe(true) // the 499 answers came back and were dropped
      expect(decoder.decode(await bus.call("after"))).toBe("retfa")
    })
  }, 15_000)

  test("answers 1000 concurrent raw and http requests, each with its own answer", async () => {
    await withCWorker(flags, async (bus) => {
      const calls = Array.from({ length: 1000 }, (_, i) =>
        i % 3 === 0
          ? bus.request({ method: "PATCH", path: `/n/${i}`, body: "y".repeat(i) }).then((r) => r.text())
          : bus.call(`request-${i}`).then((b) => decoder.decode(b)),
      )
      const got = await Promise.all(calls)
      const want = Array.from({ length: 1000 }, (_, i) =>
        i % 3 === 0 ? `PATCH /n/${i} ${i}` : `request-${i}`.split("").reverse().join(""),
      )
      expect(got).toEqual(want)
      expect(bus.stats()).toMatchObject({ inFlight: 0, queued: 0, errors: 0 })
    })
  }, 15_000)

  test("killed with SIGKILL, fails its in-flight requests with WorkerGoneError at once", async () => {
    await withCWorker(flags, async (bus, worker) => {
      worker.signal("SIGSTOP") // it cannot answer, so the requests stay in flight
      const calls = Array.from({ length: 16 }, (_, i) => observed(bus.call(`stuck-${i}`)))
      expect(bus.stats().inFlight).toBe(16)
      const killedAt = performance.now()
      worker.signal("SIGKILL")
      const outcomes = await Promise.all(calls.map((c) => outcome(c, GUARD_MS, killedAt)))
      console.log(
        `C worker (${flags[0] ?? "eventfd"}) SIGKILL → WorkerGoneError after at most ${Math.max(...outcomes.map((o) => o.ms)).toFixed(1)} ms`,
      )
      for (const o of outcomes) expect(o.state === "rejected" && o.error).toBeInstanceOf(WorkerGoneError)
      expect(bus.workers).toEqual([])
    })
  }, 15_000)

  test("exits 0 on its own when its hub is killed with SIGKILL", async () => {
    const name = busName("c-worker-hub")
    const hub = spawn([process.execPath, join(FIXTURES, "core/crash-hub.ts"), name])
    const worker = spawn([exe, name, ...flags])
    try {
      await hub.waitLine(/^served 16 /) // the C worker answered the hub's 16 raw pings
      hub.signal("SIGKILL")
      expect(await outcome(worker.proc.exited, GUARD_MS)).toMatchObject({ state: "resolved", value: 0 })
    } finally {
      await worker.kill()
      await hub.kill()
    }
  }, 15_000)

  test("exits 0 on its own when the hub closes", async () => {
    await withCWorker(flags, async (bus, worker) => {
      expect(decoder.decode(await bus.call("bye"))).toBe("eyb")
      await bus.close()
      expect(await outcome(worker.proc.exited, GUARD_MS)).toMatchObject({ state: "resolved", value: 0 })
    })
  }, 15_000)
})

// The body the C worker sends on /stream/<n>/<size>: n chunks of size bytes, byte k of chunk i (i * 131 + k) mod 256.
function streamBody(n: number, size: number): Uint8Array {
  const out = new Uint8Array(n * size)
  for (let i = 0; i < n; i++) for (let k = 0; k < size; k++) out[i * size + k] = (i * 131 + k) & 255
  return out
}

/** Every byte as the worker wrote it; on a mismatch, where it starts (a whole-array diff of MiBs is unreadable). */
function expectStreamBody(got: Uint8Array, n: number, size: number) {
  const want = streamBody(n, size)
  expect(got.length).toBe(want.length)
  const at = got.findIndex((b, i) => b !== want[i])
  expect(at === -1 ? "every byte right" : `byte ${at} (chunk ${Math.floor(at / size)}) is ${got[at]}`).toBe(
    "every byte right",
  )
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Reads a stream to its end: the bytes and the largest piece it came in. */
async function readAll(body: ReadableStream<Uint8Array>) {
  const parts: Uint8Array[] = []
  let largest = 0
  for await (const part of body) {
    parts.push(part)
    largest = Math.max(largest, part.length)
  }
  return { bytes: concat(parts), pieces: parts.length, largest }
}

const allFree = (bus: SlotBus) =>
  bus.stats().inFlight === 0 && (bus.stats().workers[0]?.slots.every((s) => s === "free") ?? false)

describe("the C worker streaming an answer (docs/PROTOCOL.md §9)", () => {
  test("streams /stream/<n>/<size> as HEAD, DATA chunks and END: every byte reaches a streaming and a buffered caller", async () => {
    await withCWorker([], async (bus) => {
      const res = await bus.request({ path: "/stream/5/1000" }, { stream: true })
      expect([res.status, Object.fromEntries(res.headers)]).toEqual([200, { "x-worker": "c", "x-stream": "frames" }])
      expectStreamBody((await readAll(res.body)).bytes, 5, 1000)
      // without { stream: true } the frames are collected into one body
      const whole = (await bus.request({ path: "/stream/7/3333" })) as SlotResponse
      expect(Object.fromEntries(whole.headers)).toEqual({ "x-worker": "c", "x-stream": "frames" })
      expectStreamBody(whole.body, 7, 3333)
      const empty = await bus.request({ path: "/stream/0/100" }, { stream: true })
      expect((await readAll(empty.body)).bytes.length).toBe(0)
      expect(await eventually(() => allFree(bus), 5000)).toBe(true)
    })
  }, 15_000)

  test("streams 8 MiB through a 64 KiB window: the worker waits for credit, every byte arrives in order", async () => {
    await withCWorker(
      [],
      async (bus) => {
        const res = await bus.request({ path: "/stream/128/65536" }, { stream: true })
        const { bytes, pieces, largest } = await readAll(res.body)
        expectStreamBody(bytes, 128, 65536)
        // nothing larger than the window can have been in the ring at once
        expect(largest).toBeLessThanOrEqual(65536)
        expect(pieces).toBeGreaterThanOrEqual(128)
        // chunks that straddle the ring's end, and a size that is not a multiple of 8
        const odd = await bus.request({ path: "/stream/50/40001" }, { stream: true })
        expectStreamBody((await readAll(odd.body)).bytes, 50, 40001)
        expect(await eventually(() => allFree(bus), 5000)).toBe(true)
      },
      { streamWindowBytes: 65536 },
    )
  }, 30_000)

  test("bus.fetch answers with a Response whose body is the stream", async () => {
    await withCWorker([], async (bus) => {
      const res = await bus.fetch(new Request("http://c-worker.test/stream/64/4096"))
      expect(res).toBeInstanceOf(Response)
      expect([res.status, res.headers.get("x-worker"), res.headers.get("x-stream")]).toEqual([200, "c", "frames"])
      expectStreamBody(await res.bytes(), 64, 4096)
    })
  }, 15_000)

  test("a body cancelled mid-stream makes the worker end the stream as cancelled, and its slot comes back", async () => {
    await withCWorker(
      [],
      async (bus, worker) => {
        // 64 MiB through a 64 KiB window: the worker is still writing (or waiting for credit) when the reader goes
        const res = await bus.request({ path: "/stream/1024/65536" }, { stream: true })
        const reader = res.body.getReader()
        const got: Uint8Array[] = []
        for (let i = 0; i < 3; i++) {
          const r = await reader.read()
          expect(r.done).toBe(false)
          got.push(r.value!)
        }
        const head = concat(got)
        expect(head).toEqual(streamBody(1024, 65536).subarray(0, head.length))
        await reader.cancel(new Error("enough"))
        const slot = (await worker.waitLine(/^stream cancelled (\d+)$/, 5000))[1]
        expect(Number(slot)).toBeGreaterThanOrEqual(0)
        expect(await eventually(() => allFree(bus), 5000)).toBe(true)
        expect(bus.stats().protocolErrors).toBe(0)
        // the worker goes on serving
        expect(decoder.decode(await bus.call("after"))).toBe("retfa")
        const next = await bus.request({ path: "/stream/3/10" }, { stream: true })
        expectStreamBody((await readAll(next.body)).bytes, 3, 10)
      },
      { streamWindowBytes: 65536 },
    )
  }, 15_000)

  test("an error END after some chunks reaches the caller as RemoteError, streaming or buffered", async () => {
    await withCWorker([], async (bus) => {
      const res = await bus.request({ path: "/stream-fail/3/1000" }, { stream: true })
      expect(res.status).toBe(200)
      const failed = await outcome(readAll(res.body), GUARD_MS)
      expect(failed.state === "rejected" && failed.error).toBeInstanceOf(RemoteError)
      const err = (failed.state === "rejected" ? failed.error : null) as RemoteError
      expect([err.message, err.remoteName]).toEqual(["StreamError: c worker failed mid-stream", "StreamError"])
      const buffered = await outcome(bus.request({ path: "/stream-fail/2/100000" }), GUARD_MS)
      expect(buffered.state === "rejected" && buffered.error).toBeInstanceOf(RemoteError)
      expect(buffered.state === "rejected" && (buffered.error as RemoteError).remoteName).toBe("StreamError")
      expect(await eventually(() => allFree(bus), 5000)).toBe(true)
      expect(decoder.decode(await bus.call("still alive"))).toBe("evila llits")
    })
  }, 15_000)

  test("an error END after far more DATA than the window holds comes after every byte of it", async () => {
    await withCWorker(
      [],
      async (bus) => {
        // 256 KiB through a 4 KiB window: the worker waits for credit over and over, and its END (with pairs, so
        // more than the reserve) may have to wait too
        const res = await bus.request({ path: "/stream-fail/4/65536" }, { stream: true })
        const reader = res.body.getReader()
        let read = 0
        const failed = await outcome(
          (async () => {
            for (;;) {
              const r = await reader.read()
              if (r.done) return read
              read += r.value.length
            }
          })(),
          GUARD_MS * 2,
        )
        expect(failed.state === "rejected" && (failed.error as RemoteError).remoteName).toBe("StreamError")
        expect(read).toBe(4 * 65536) // every DATA frame came before the END
        expect(await eventually(() => allFree(bus), 5000)).toBe(true)
      },
      { streamWindowBytes: 4096 },
    )
  }, 15_000)

  test("a hub that offers no window (streamWindowBytes: 0) gets the same answer whole", async () => {
    await withCWorker(
      [],
      async (bus) => {
        const res = await bus.request({ path: "/stream/16/4096" }, { stream: true })
        expect(Object.fromEntries(res.headers)).toEqual({ "x-worker": "c", "x-stream": "whole" })
        expectStreamBody((await readAll(res.body)).bytes, 16, 4096)
        const whole = (await bus.request({ path: "/stream/9/777" })) as SlotResponse
        expect(Object.fromEntries(whole.headers)).toEqual({ "x-worker": "c", "x-stream": "whole" })
        expectStreamBody(whole.body, 9, 777)
        const fetched = await bus.fetch(new Request("http://c-worker.test/stream/3/5"))
        expectStreamBody(await fetched.bytes(), 3, 5)
        const failed = await outcome(bus.request({ path: "/stream-fail/1/1" }), GUARD_MS)
        expect(failed.state === "rejected" && (failed.error as Error).message).toBe("c worker failed mid-stream")
        // too big for the arena when it cannot stream
        const tooBig = await outcome(bus.request({ path: "/stream/2/1048576" }), GUARD_MS)
        expect(tooBig.state === "rejected" && (tooBig.error as Error).message).toBe("response does not fit the arena")
      },
      { streamWindowBytes: 0 },
    )
  }, 15_000)
})
