// docs/PROTOCOL.md §5.1: each side's CPU word, where the TypeScript Channel and libslotbus's sb_idle (the C and
// Python workers' idle loop) publish the CPU they run on, and read the peer's.
import { afterEach, expect, test } from "bun:test"
import { availableParallelism } from "node:os"
import { channelPair } from "../../../bench/slots/channel-pair.ts"
import { loadNative } from "../../../src/native/ffi.ts"
import { memoryView } from "../../../src/runtime/index.ts"

const native = await loadNative()
const SB_IDLE_SPIN = 1 // csrc/slotbus.h's sb_idle_mode: polls and yields, never parks
let close = () => {}
afterEach(() => close())

/** The region's u32 at byte `off`, read as a program in another language would. */
const wordAt = (ptr: Parameters<typeof native.sb_region>[0], off: number) =>
  new Uint32Array(memoryView(Number(native.sb_region(ptr)) as never, off, 4))[0]!

test("a side's CPU word is its CPU + 1 at 324 (worker) or 388 (hub); 0 reads as not told", async () => {
  const pair = await channelPair()
  close = pair.close
  expect(pair.hub.peerCpu()).toBe(-1)
  expect(pair.worker.peerCpu()).toBe(-1)
  const cpu = native.sb_cpu()
  expect(cpu).toBeGreaterThanOrEqual(0)
  expect(cpu).toBeLessThan(availableParallelism())
  pair.hub.noteCpu(cpu)
  expect(wordAt(pair.hub.ptr, 388)).toBe(cpu + 1)
  expect(pair.worker.peerCpu()).toBe(cpu)
  pair.worker.noteCpu(cpu === 0 ? 1 : 0)
  expect(wordAt(pair.hub.ptr, 324)).toBe(cpu === 0 ? 2 : 1)
  expect(pair.hub.peerCpu()).toBe(cpu === 0 ? 1 : 0)
  pair.worker.noteCpu(-1) // unknown: the word keeps what it said
  expect(pair.hub.peerCpu()).toBe(cpu === 0 ? 1 : 0)
})

test("sb_idle publishes the CPU its thread yielded on, in its side's word", async () => {
  const pair = await channelPair()
  close = pair.close
  // spin without work for 20 ms: it yields every 5 µs, and publishes where it ran after each yield
  const until = performance.now() + 20
  while (performance.now() < until) native.sb_idle(pair.worker.ptr, SB_IDLE_SPIN, 0)
  const said = wordAt(pair.hub.ptr, 324)
  expect(said).toBeGreaterThanOrEqual(1)
  expect(said).toBeLessThanOrEqual(availableParallelism())
  expect(pair.hub.peerCpu()).toBe(said - 1)
})
