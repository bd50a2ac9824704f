// examples/c-worker, a worker written in C from docs/PROTOCOL.md, against a SlotBus in this process.
import { beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { RemoteError, SlotBus, WorkerGoneError, type SlotResponse } from "../../src/index.ts"
import { busName, type Child, eventually, FIXTURES, observed, outcome, spawn } from "../support/helpers.ts"

const GUARD_MS = 2_000

let exe = ""

beforeAll(async () => {
  exe = join(await zigBuild("examples"), "c-worker")
}, 180_000)

const decoder = new TextDecoder()
const reversed = (b: Uint8Array) => b.slice().reverse()

async function withCWorker(flags: string[], body: (bus: SlotBus, worker: Child) => Promise<void>) {
  const name = busName("c-worker")
  const bus = await SlotBus.listen(name, { maxBodyBytes: 1 << 20, timeoutMs: 10_000 })
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
  { mode: "eventfd (default)", flags: [] },
  { mode: "futex", flags: ["--futex"] },
  { mode: "spin", flags: ["--spin"] },
]

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
    const hub = spawn([process.execPath, join(FIXTURES, "crash-hub.ts"), name])
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
