// JavaScriptCore counts an ArrayBuffer's whole length as heap, external views of shared memory included, and the
// larger it thinks the heap is the less often it collects. Views of whole 64 MiB arenas made every worker and hub
// look like gigabytes of heap, so they collected a few times a minute while their garbage grew to hundreds of MB
// (docs/perf/real-work.md). These tests read what the engine counts, after a full collection, on both sides.
import { heapStats } from "bun:jsc"
import { afterEach, expect, test } from "bun:test"
import { stopAll, withHub } from "../../support/helpers.ts"
import type { SlotBus } from "../../../src/index.ts"

afterEach(stopAll)

const MiB = 1024 * 1024
// What the engine may count for a bus's views of 32 slots both ways: far below one 64 MiB arena, and far above what
// 64 views of 64 KiB take (4 MiB), so the bound holds with other test code's buffers alive.
const BOUND = 48 * MiB

async function workerHeap(bus: SlotBus): Promise<{ heapSize: number; extraMemorySize: number }> {
  return (await bus.request({ path: "/heap" })).json()
}

function hubExtraMemory(): number {
  Bun.gc(true)
  return heapStats().extraMemorySize
}

test("every slot used both ways: neither side counts its arenas as heap (64 MiB each by default)", () =>
  withHub({ slots: 32 }, [{}], async (bus) => {
    const body = new Uint8Array(40_000).fill(7)
    for (let round = 0; round < 3; round++)
      await Promise.all(Array.from({ length: 64 }, () => bus.request({ path: "/echo", body })))
    const worker = await workerHeap(bus)
    expect(worker.extraMemorySize).toBeLessThan(BOUND)
    expect(worker.heapSize).toBeLessThan(BOUND)
    expect(hubExtraMemory()).toBeLessThan(BOUND)
  }))

test("a message of several MiB goes through whole, and the views it needed are not kept", () =>
  withHub({ slots: 4 }, [{}], async (bus) => {
    const big = new Uint8Array(12 * MiB).map((_, i) => (i * 13) & 0xff)
    for (let i = 0; i < 8; i++) {
      const back = await bus.request({ path: "/echo", body: big })
      expect(back.body.length).toBe(big.length)
      expect(back.body[12345]).toBe(big[12345]!)
      expect(back.body[big.length - 1]).toBe(big[big.length - 1]!)
    }
    expect((await workerHeap(bus)).extraMemorySize).toBeLessThan(BOUND)
    expect(hubExtraMemory()).toBeLessThan(BOUND)
  }))
