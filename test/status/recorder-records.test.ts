// What the flight recorder (docs/PROTOCOL.md §16) writes for each way a request can end, read from its file as any
// other process would (readRecorder: plain reads, the seqlock checked), with real worker processes.
import { afterEach, describe, expect, test } from "bun:test"
import { existsSync, readdirSync, statSync, unlinkSync } from "node:fs"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { native } from "../../src/native/ffi.ts"
import { recorderDir } from "../../src/native/recorder-layout.ts"
import { type RecorderFile, type RequestRecord, readRecorder } from "../../src/status/host-recorder.ts"
import { busName, REPO, rejection, spawn, spawnWorker, stopAll, until } from "../support/helpers.ts"

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse())
    try {
      await c()
    } catch {}
  await stopAll()
})

const TRACE = "0af7651916cd43dd8448eb211c80319c"

async function busWithWorker(records?: number) {
  const bus = await SlotBus.listen(busName("rec"), { recorder: records, slots: 8 })
  cleanups.push(() => bus.close({ drain: false }))
  const worker = await spawnWorker(bus.name)
  await bus.waitForWorkers(1)
  const file = join(recorderDir(), `${bus.name}.${process.pid}.rec`)
  const read = (): RecorderFile => {
    const r = readRecorder(file)
    if ("malformed" in r) throw new Error(r.malformed)
    return r
  }
  const find = (what: string): RequestRecord | undefined => read().records.find((q) => q.what === what)
  return { bus, worker, file, read, find }
}

describe("the flight recorder's records", () => {
  test("an answer, a handler error, a timeout and an abort each end their record with their own outcome", async () => {
    const { bus, worker, read, find } = await busWithWorker()
    await bus.request({
      method: "POST",
      path: "/ok",
      body: "12345",
      headers: { traceparent: `00-${TRACE}-b7ad6b7169203331-01` },
    })
    expect(find("POST /ok")).toMatchObject({
      phase: "done",
      outcome: "answered",
      kind: "http",
      status: 200,
      workerPid: worker.pid,
      requestBytes: 5,
      answerBytes: 5,
      traceId: TRACE,
    })
    await rejection(bus.request({ method: "GET", path: "/fail" }))
    expect(find("GET /fail")).toMatchObject({ phase: "done", outcome: "error" })

    await rejection(bus.request({ path: "/late", headers: { "x-delay-ms": "300" } }, { timeoutMs: 20 }))
    // given up, but its worker still has it: in flight, outcome timeout, until the late answer comes back
    expect(find("GET /late")).toMatchObject({ phase: "in flight", outcome: "timeout", doneNs: 0 })
    await until(() => find("GET /late")?.phase === "done", "the late answer came back")
    const late = find("GET /late")!
    expect(late.outcome).toBe("timeout")
    expect(late.doneNs).toBeGreaterThan(late.dispatchedNs)

    const ac = new AbortController()
    const aborted = bus.request({ path: "/abort", headers: { "x-delay-ms": "200" } }, { signal: ac.signal })
    await until(() => find("GET /abort") !== undefined, "the request was published")
    ac.abort()
    await rejection(aborted)
    expect(find("GET /abort")?.outcome).toBe("cancelled")
    await until(() => find("GET /abort")?.phase === "done", "the worker handed the aborted request back")

    const raw = await bus.call("raw bytes")
    expect(new TextDecoder().decode(raw)).toBe("raw bytes")
    const r = read()
    expect(r.records[0]).toMatchObject({ kind: "raw", what: "", outcome: "answered", requestBytes: 9 })
    expect(r).toMatchObject({ answered: 2, errors: 1, timeouts: 1, cancelled: 1, requests: 5, inFlight: 0 })
  }, 60_000)

  test("a streamed answer is streaming from its HEAD on, with its status and first byte, until it ends", async () => {
    const { bus, find } = await busWithWorker()
    const res = await bus.fetch(new Request("http://bus/endless"))
    const reader = res.body!.getReader()
    await reader.read()
    const q = find("GET /endless")!
    expect(q).toMatchObject({ phase: "streaming", status: 200, outcome: "" })
    expect(q.firstByteNs).toBeGreaterThanOrEqual(q.dispatchedNs)
    await reader.cancel()
    await until(() => find("GET /endless")?.phase === "done", "the stream ended")
    expect(find("GET /endless")?.outcome).toBe("cancelled")
  }, 60_000)

  test("a small bus.call's clock is read once its worker has it, off its round trip; a larger one's when made", async () => {
    const { bus, read } = await busWithWorker()
    await bus.call("/echo") // warm: the records below are the newest
    const lib = native as { -readonly [K in keyof typeof native]: (typeof native)[K] }
    const publish = lib.sb_hub_publish
    const before: number[] = [] // CLOCK_MONOTONIC, the records' clock, as each publish began
    lib.sb_hub_publish = (...a: Parameters<typeof publish>) => (before.push(lib.sb_rec_now()), publish(...a))
    try {
      await bus.call(new Uint8Array(64))
      await bus.call(new Uint8Array(8192))
    } finally {
      lib.sb_hub_publish = publish
    }
    const [large, small] = read().records.filter((r) => r.kind === "raw") // newest first
    expect([small!.requestBytes, large!.requestBytes]).toEqual([64, 8192])
    // a 30 ns clock read before the publish was that much more of a 64 B round trip (docs/perf/round-nine-cliffs.md)
    expect(small!.dispatchedNs).toBeGreaterThan(before[0]!)
    expect(small!.enqueuedNs).toBe(small!.dispatchedNs)
    expect(large!.enqueuedNs).toBeLessThan(before[1]!) // a copy of its body into the slot counts
    expect(large!.dispatchedNs).toBe(large!.enqueuedNs)
    expect(small!.outcome).toBe("answered")
  })

  test("a malformed traceparent leaves the trace id empty", async () => {
    const { bus, find } = await busWithWorker()
    await bus.request({ path: "/bad-trace", headers: { traceparent: "00-not-hex-at-all" } })
    await bus.request({ path: "/zero-trace", headers: { traceparent: `00-${"0".repeat(32)}-b7ad6b7169203331-01` } })
    expect(find("GET /bad-trace")?.traceId).toBe("")
    expect(find("GET /zero-trace")?.traceId).toBe("")
  }, 60_000)

  test("a ring of 4 records keeps the newest, and never reuses the record of a request still in flight", async () => {
    const { bus, read, find } = await busWithWorker(4)
    const hold = bus.request({ path: "/hold", headers: { "x-delay-ms": "500" } })
    for (let i = 0; i < 10; i++) await bus.request({ path: `/n-${i}` })
    const r = read()
    expect(r.recordCount).toBe(4)
    expect(r.records.map((q) => q.what)).toEqual(["GET /n-9", "GET /n-8", "GET /n-7", "GET /hold"])
    expect(find("GET /hold")).toMatchObject({ phase: "in flight", serial: 1 })
    await hold
    expect(find("GET /hold")?.outcome).toBe("answered")
  }, 60_000)

  test("a path longer than 96 bytes is cut at 96", async () => {
    const { bus, read } = await busWithWorker()
    const path = `/${"x".repeat(200)}`
    await bus.request({ method: "GET", path })
    expect(read().records[0]!.what).toBe(`GET ${path}`.slice(0, 96))
  }, 60_000)

  test("a reader in another process never sees a torn record while the bus answers thousands of requests", async () => {
    const { bus, file } = await busWithWorker(64)
    // with one worker, a record's id and serial are the same number, and its path names it: a torn copy would not
    const checker = spawn([
      process.execPath,
      "-e",
      `import { readRecorder } from "${REPO}/src/status/host-recorder.ts"
       let reads = 0, seen = 0, bad = 0
       process.stdin.on("data", () => {})
       for (;;) {
         const r = readRecorder(${JSON.stringify(file)})
         if ("malformed" in r) { console.log("malformed " + r.malformed); break }
         for (const q of r.records) {
           seen++
           if (q.id !== q.serial || q.what !== "GET /n-" + q.serial || q.workerPid === 0) { bad++; console.log("torn " + JSON.stringify(q)) }
         }
         if (++reads % 200 === 0) console.log("reads " + reads + " seen " + seen + " bad " + bad)
         await Bun.sleep(0)
       }`,
    ])
    cleanups.push(() => checker.kill())
    let n = 0
    const send = async () => {
      while (n < 4000) await bus.request({ path: `/n-${++n}` })
    }
    await send() // one at a time: serial order equals n
    await until(() => checker.lines.some((l) => /^reads \d+/.test(l)), "the checker read a while", 30_000)
    const last = checker.lines.filter((l) => l.startsWith("reads ")).pop()!
    expect(checker.lines.filter((l) => l.startsWith("torn ") || l.startsWith("malformed "))).toEqual([])
    expect(last).toMatch(/bad 0$/)
  }, 120_000)
})

describe("the flight recorder's file", () => {
  const fileOf = (name: string, pid: number) => join(recorderDir(), `${name}.${pid}.rec`)
  const script = (name: string, end: string) =>
    `import { SlotBus } from "${REPO}/src/index.ts"
     await SlotBus.listen(${JSON.stringify(name)})
     console.log("listening")
     ${end}`

  test("is made 0600 in a 0700 directory when the bus listens, and removed when it closes", async () => {
    const bus = await SlotBus.listen(busName("rec-file"))
    const file = fileOf(bus.name, process.pid)
    try {
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(statSync(recorderDir()).mode & 0o777).toBe(0o700)
    } finally {
      await bus.close()
    }
    expect(existsSync(file)).toBe(false)
  })

  test("the last one of the uid to close takes the directory with it; another's file keeps it", async () => {
    const first = await SlotBus.listen(busName("rec-dir-a"))
    const second = await SlotBus.listen(busName("rec-dir-b"))
    await first.close()
    expect(existsSync(recorderDir())).toBe(true) // the second bus's file is in it
    await second.close()
    // gone, or kept by a file of another process's bus: never left empty
    const left = existsSync(recorderDir()) ? readdirSync(recorderDir()) : null
    expect(left === null || left.length > 0).toBe(true)
    const again = await SlotBus.listen(busName("rec-dir-c")) // made again by the next bus
    try {
      expect(existsSync(fileOf(again.name, process.pid))).toBe(true)
    } finally {
      await again.close()
    }
  })

  test("is removed by a process that exits without closing its bus", async () => {
    const name = busName("rec-exit")
    const p = spawn([process.execPath, "-e", script(name, "process.exit(0)")])
    await p.waitLine(/^listening$/)
    expect(await p.exited).toBe(0)
    expect(existsSync(fileOf(name, p.pid))).toBe(false)
  })

  test("of a front killed with kill -9 stays, and the next bus to listen on the host removes it", async () => {
    const name = busName("rec-kill")
    const p = spawn([process.execPath, "-e", script(name, "setInterval(() => {}, 1000)")])
    await p.waitLine(/^listening$/)
    const file = fileOf(name, p.pid)
    cleanups.push(() => existsSync(file) && unlinkSync(file))
    await p.kill("SIGKILL")
    expect(existsSync(file)).toBe(true)
    const next = await SlotBus.listen(busName("rec-next"))
    cleanups.push(() => next.close())
    expect(existsSync(file)).toBe(false)
  })

  test.each([
    [-1, RangeError],
    [65537, RangeError],
    [1.5, RangeError],
    ["64", TypeError],
  ])("recorder: %p is refused with a %p", async (records, type) => {
    const err = await rejection(SlotBus.listen(busName("rec-bad"), { recorder: records as number }))
    expect(err).toBeInstanceOf(type as ErrorConstructor)
    expect(String(err)).toContain("recorder")
  })
})
