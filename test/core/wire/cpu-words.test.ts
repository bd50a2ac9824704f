// docs/PROTOCOL.md §5.1: each side's CPU word, where the TypeScript Channel and libslotbus's sb_idle (the C and
// Python workers' idle loop) publish the CPU they run on, and read the peer's.
import { afterEach, expect, test } from "bun:test"
import { availableParallelism } from "node:os"
import { join } from "node:path"
import { channelPair } from "../../../bench/slots/channel-pair.ts"
import { loadNative } from "../../../src/native/ffi.ts"
import { memoryView } from "../../../src/runtime/index.ts"

const native = await loadNative()
const SB_IDLE_SPIN = 1 // csrc/slotbus.h's sb_idle_mode: polls and yields, never parks
let close = () => {}
afterEach(() => {
  close()
  close = () => {}
})

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

const hasTaskset = Bun.which("taskset") !== null

/** Runs the shared-cpu-pump fixture and a CPU burner, both pinned to CPU 0: its counts with the peer's word `peer`. */
async function pumpBesideBurner(
  peer: "other" | "same",
  which: "ts" | "c",
): Promise<{ cpu: number; polls: number; yields: number }> {
  const pin = ["taskset", "-c", "0", process.execPath]
  const burner = Bun.spawn([...pin, "-e", "const end = Date.now() + 20_000; while (Date.now() < end) {}"])
  try {
    const run = Bun.spawn([...pin, join(import.meta.dir, "../../support/core/shared-cpu-pump.ts"), peer, which], {
      stderr: "inherit",
    })
    const out = await new Response(run.stdout).text()
    expect(await run.exited).toBe(0)
    return JSON.parse(out)
  } finally {
    burner.kill()
    await burner.exited
  }
}

// Before, a connection's first 3 s ignored the word: a fresh worker whose own JIT or GC thread shared its CPU (the
// hub on the other) yielded to that thread after every empty poll, ~10 µs round trips (docs/perf/round-nine-cliffs.md).
test.skipIf(process.platform !== "linux" || availableParallelism() < 2 || !hasTaskset)(
  "a fresh pump and sb_idle heed the peer's word from the start: a yield that ran another thread is no sign while the peer says it runs elsewhere (apt-get install util-linux for taskset)",
  async () => {
    for (const which of ["ts", "c"] as const) {
      const elsewhere = await pumpBesideBurner("other", which)
      const here = await pumpBesideBurner("same", which)
      expect([which, elsewhere.cpu, here.cpu]).toEqual([which, 0, 0])
      // the peer elsewhere: it polls on and yields only every few µs of spinning
      expect([which, elsewhere.polls > 30 * Math.max(1, elsewhere.yields)]).toEqual([which, true])
      // the peer here: each empty poll gives the CPU up, and the burner takes it (a few polls a switched yield,
      // 3–10 with the work on every 10th; a pump that ignored the word would make thousands)
      expect([which, here.yields > 0, here.polls < 25 * here.yields]).toEqual([which, true, true])
    }
  },
  30_000,
)
