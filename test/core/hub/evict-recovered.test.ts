// A worker whose event loop was blocked long enough to hold maxStuckSlots stuck slots gets nothing new
// ("evicting"); if, by the time no caller waits for it, it handed those slots back (it ran again), it serves on
// instead of being disconnected (docs/api.md, "Handlers that hang"); one that still holds them is evicted. The
// attack's setup: slots 4, timeoutMs 1000, one request that waits longer than the block. Against a Bun and a Node
// worker (test/support/core/blocking-worker.ts).
import { afterAll, expect, test } from "bun:test"
import { rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus, TimeoutError } from "../../../src/index.ts"
import { busName, rejection, until } from "../../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterAll(() => removeNodeBuilds())

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `a worker blocked until its slots were stuck serves on once it runs again; one still blocked is evicted (${runtime} worker)`,
    async () => {
      const bus = await SlotBus.listen(busName("evict-recovered"), { slots: 4, timeoutMs: 1000 }) // 2 stuck evict
      const worker = await peerChild(runtime, "core/blocking-worker.ts", [bus.name])
      const file = join(tmpdir(), `${bus.name}.unblock`)
      try {
        await bus.waitForWorkers(1, { timeoutMs: 30_000 })
        const pid = worker.pid
        // a request that waits out the block, and three that time out behind it: stuck 1 s after their deadline
        const blocked = bus.request({ path: `/block?until=${file}` }, { timeoutMs: 120_000 })
        await worker.waitLine(/^blocking /)
        const behind = await Promise.all([1, 2, 3].map(() => rejection(bus.request({ path: "/pid" }))))
        for (const e of behind) expect(e).toBeInstanceOf(TimeoutError)
        await until(() => bus.workers[0]?.state === "evicting", "the blocked worker found stuck", 30_000)
        expect(bus.workers[0]!.stuck).toBeGreaterThanOrEqual(2)

        writeFileSync(file, "") // it runs again, answers the one still waited for, and hands the stuck slots back
        expect((await blocked).text()).toBe("unblocked")
        await until(() => (bus.workers[0]?.inFlight ?? 0) === 0, "its slots handed back, or it gone", 30_000)
        // before: evicted ~5 ms after it answered ("closed hub-closed"), though it had recovered
        expect(bus.workers.map((w) => [w.pid, w.state, w.stuck])).toEqual([[pid, "serving", 0]])
        expect((await bus.request({ path: "/pid" })).text()).toBe(String(pid))
        expect(bus.stats().evictedWorkers).toBe(0)
        expect(worker.output).not.toContain("closed")

        // blocked again, and nobody waits any more: still evicted
        rmSync(file)
        const again = rejection(bus.request({ path: `/block?until=${file}` }))
        await until(() => worker.output.split("blocking").length === 3, "blocked again", 30_000)
        await Promise.all([again, ...[1, 2, 3].map(() => rejection(bus.request({ path: "/pid" })))])
        await until(() => bus.workerCount === 0, "the still blocked worker evicted", 30_000)
        expect(bus.stats().evictedWorkers).toBe(1)
        writeFileSync(file, "")
        await worker.waitLine(/^closed hub-closed$/, 30_000)
      } finally {
        rmSync(file, { force: true })
        await worker.kill()
        await bus.close({ drain: false })
      }
    },
    90_000,
  )
