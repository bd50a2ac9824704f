// A process that does not run for a while (stopped, starved on a loaded machine, a long GC) reads what its socket
// holds only after its timers fired: the hub's and the worker's detectors (docs/PROTOCOL.md §10.3) must not count
// that time as the other side's silence. Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, describe, expect, test } from "bun:test"
import { SlotBus, SlotWorker, TimeoutError, WorkerGoneError } from "../../src/index.ts"
import { bunChild, busName, rejection, until } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS stall tests are skipped: ${skip}`)

const nats = natsPerFile(skip)
afterAll(() => removeNodeBuilds())
const { cleanup } = nats
// Past every patience here: 4 heartbeats of 100 ms for the worker, the hub's 400 ms peerTimeoutMs
const STALL_MS = 1000

describe.skipIf(skip !== null)("a process that stalls longer than its peers' patience", () => {
  test("a worker stopped (SIGSTOP) past its hub's patience keeps that hub's request when it runs again", async () => {
    const bus = await SlotBus.listen(busName("stall-worker"), {
      remote: viaNats(nats.url),
      heartbeatMs: 100,
      peerTimeoutMs: 60_000, // the hub waits for the stopped worker: only the worker's judgement is tried
    })
    cleanup.push(() => bus.close({ drain: false }))
    const worker = bunChild("nats/nats-worker.ts", [bus.name, nats.url, "--heartbeat-ms=100"])
    cleanup.push(async () => void (await worker.kill()))
    await worker.waitLine(/^ready \d+$/, 15_000)
    await bus.waitForWorkers(1, 5000)
    // /hold answers only when its request is given up: by the hub's timeout, or by the worker giving the hub up
    const call = rejection(bus.request({ path: "/hold" }, { timeoutMs: STALL_MS * 5 }))
    await Bun.sleep(200)
    process.kill(worker.proc.pid, "SIGSTOP")
    cleanup.push(async () => void worker.proc.kill("SIGCONT"))
    await Bun.sleep(STALL_MS)
    process.kill(worker.proc.pid, "SIGCONT")
    expect(String(await call)).not.toContain("stopped announcing")
    expect(await call).toBeInstanceOf(TimeoutError)
  }, 30_000)

  test("a hub and a worker in one process whose event loop is blocked past their patience keep their request", async () => {
    const bus = await SlotBus.listen(busName("stall-both"), { remote: viaNats(nats.url), heartbeatMs: 100 })
    cleanup.push(() => bus.close({ drain: false }))
    let aborted = 0
    const started = Promise.withResolvers<void>()
    const w = await SlotWorker.connect(
      bus.name,
      async (req) => {
        started.resolve()
        await Bun.sleep(STALL_MS)
        if (req.signal.aborted) aborted++
        return "done"
      },
      { remote: viaNats(nats.url), heartbeatMs: 100 },
    )
    cleanup.push(() => w.close())
    await bus.waitForWorkers(1, 5000)
    const call = bus.request({ path: "/" }, { timeoutMs: 10_000 })
    await started.promise
    Bun.sleepSync(STALL_MS) // as a starved process or a long GC pause: no timer, no socket read
    expect((await call).text()).toBe("done")
    expect(aborted).toBe(0)
  }, 30_000)

  for (const runtime of PEER_RUNTIMES)
    test.skipIf(peerSkip(runtime) !== null)(
      `a ${runtime} worker stopped past the hub's peerTimeoutMs: its handlers are cancelled, and it serves again`,
      async () => {
        // before: the hub dropped the stopped worker's calls without a cancel; it came back holding both slots for
        // handlers nobody waited for, listed as serving, and every later request timed out behind them
        const bus = await SlotBus.listen(busName("stall-gone"), {
          remote: viaNats(nats.url),
          heartbeatMs: 100,
          peerTimeoutMs: 400,
        })
        cleanup.push(() => bus.close({ drain: false }))
        const worker = await peerChild(runtime, "nats/nats-worker.ts", [bus.name, nats.url, "--slots=2"])
        cleanup.push(async () => void (await worker.kill()))
        await worker.waitLine(/^ready \d+$/, 15_000)
        await bus.waitForWorkers(1, 5000)
        const held = [0, 1].map(() => rejection(bus.request({ path: "/hold" }, { timeoutMs: 0 })))
        await until(() => worker.lines.filter((l) => l === "holding").length === 2, "both slots held")
        process.kill(worker.proc.pid, "SIGSTOP")
        cleanup.push(async () => void worker.proc.kill("SIGCONT"))
        for (const e of await Promise.all(held)) expect(e).toBeInstanceOf(WorkerGoneError)
        process.kill(worker.proc.pid, "SIGCONT")
        await bus.waitForWorkers(1, 5000)
        expect((await bus.request({ path: "/echo", body: "again" }, { timeoutMs: 5000 })).text()).toBe("again")
        expect((await bus.request({ path: "/aborted" }, { timeoutMs: 5000 })).text()).toContain("/hold")
      },
      30_000,
    )

  for (const runtime of PEER_RUNTIMES)
    test.skipIf(peerSkip(runtime) !== null)(
      `a ${runtime} worker that announces itself every 1 s is not counted gone between two by a hub of 100 ms, nor kept once dead`,
      async () => {
        // before: the hub's own 400 ms patience dropped the worker ~400 ms after each presence and failed its request
        // in flight with WorkerGoneError, though the worker's heartbeatMs promises 4 × 1 s (docs/PROTOCOL.md §10.3)
        const bus = await SlotBus.listen(busName("stall-slow-hb"), { remote: viaNats(nats.url), heartbeatMs: 100 })
        cleanup.push(() => bus.close({ drain: false }))
        const leaves: number[] = []
        bus.onWorker((e) => void (e.type === "leave" && leaves.push(e.worker.pid)))
        const worker = await peerChild(runtime, "nats/nats-worker.ts", [bus.name, nats.url, "--heartbeat-ms=1000"])
        cleanup.push(async () => void (await worker.kill()))
        await worker.waitLine(/^ready \d+$/, 15_000)
        await bus.waitForWorkers(1, 5000)
        const slow = await bus.request({ path: "/slow/2500", body: "kept" }, { timeoutMs: 10_000 })
        expect(slow.text()).toBe("kept")
        expect(leaves).toEqual([])
        expect(bus.workerCount).toBe(1)
        await worker.kill("SIGKILL")
        await until(() => bus.workerCount === 0, "the dead worker counted gone", 12_000) // 4 × 1 s, 3× margin
      },
      30_000,
    )
})
