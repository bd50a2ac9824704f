// core/wire/idle-signals.ts's CpuKeeper and libslotbus's sb_keep_off_cpu: a worker's thread that finds itself on its
// peer's CPU (the sharing sign, and the peer's CPU word naming this CPU) leaves that CPU out of its affinity mask
// until its pump parks for want of work, so that the scheduler cannot put the pair back on one CPU while one of
// their processes' helper threads holds the other (docs/perf/round-nine-cliffs.md).
import { expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { Contention, CpuKeeper } from "../../../src/core/wire/idle-signals.ts"
import { loadNative } from "../../../src/native/ffi.ts"

const MS = 1e6

/** A keeper whose narrowing is a log: it moves the thread to CPU `cpu + 1`, or fails with `fail`. */
function logged(fail?: number) {
  const log: number[] = []
  const keeper = new CpuKeeper((cpu) => {
    log.push(cpu)
    return fail ?? (cpu < 0 ? 0 : cpu + 1)
  })
  return { keeper, log }
}

test("it keeps off the CPU the peer's word names when that is this thread's CPU; otherwise it leaves the mask alone", () => {
  const { keeper, log } = logged()
  const pump = {}
  expect(keeper.sharing(pump, 100 * MS, 0, 1)).toBe(0) // the peer is elsewhere: a helper thread took the yield
  expect(keeper.sharing(pump, 100 * MS, 0, -1)).toBe(0) // the peer did not say
  expect(keeper.sharing(pump, 100 * MS, -1, -1)).toBe(-1) // this thread's CPU unknown (macOS)
  expect(log).toEqual([])
  expect(keeper.sharing(pump, 100 * MS, 0, 0)).toBe(1) // moved off CPU 0, to CPU 1
  expect(log).toEqual([0])
})

test("it narrows again no sooner than 2 ms after the last time, off the CPU the pair shares then", () => {
  const { keeper, log } = logged()
  const pump = {}
  keeper.sharing(pump, 100 * MS, 0, 0)
  expect(keeper.sharing(pump, 101 * MS, 1, 1)).toBe(1) // the peer followed within 2 ms: not yet
  expect(keeper.sharing(pump, 102 * MS, 1, 1)).toBe(2)
  expect(log).toEqual([0, 1])
})

test("parking for want of work puts the mask back, once, and only for the pump that narrowed it", () => {
  const { keeper, log } = logged()
  const worker = {}
  const other = {} // another bus's pump of the same process
  keeper.sharing(worker, 100 * MS, 0, 0)
  keeper.release(other)
  expect(log).toEqual([0])
  keeper.release(worker)
  keeper.release(worker)
  expect(log).toEqual([0, -1])
})

test("starved of a CPU, a kept-off thread is put back only after a second kept off (a JIT's starving passes)", () => {
  const { keeper, log } = logged()
  const pump = {}
  keeper.sharing(pump, 100 * MS, 0, 0)
  keeper.starved(pump, 600 * MS)
  expect(log).toEqual([0])
  keeper.starved(pump, 1100 * MS)
  expect(log).toEqual([0, -1])
})

test("where it cannot (one CPU in the mask, an OS without affinity) it never tries again", () => {
  const { keeper, log } = logged(-22)
  const pump = {}
  expect(keeper.sharing(pump, 100 * MS, 0, 0)).toBe(0)
  expect(keeper.sharing(pump, 200 * MS, 0, 0)).toBe(0)
  keeper.release(pump) // it narrowed nothing: nothing to put back
  expect(log).toEqual([0])
})

test("Contention says whether its spell began on run_delay (starved) or on slow yields", () => {
  const yields = new Contention(() => null)
  for (let i = 1; i <= 3; i++) yields.yielded(i * MS, 60_000)
  expect(yields.until).toBeGreaterThan(0)
  expect(yields.starved).toBe(false)
  let delay = 0
  const runDelay = new Contention(() => delay)
  runDelay.sample(1000 * MS)
  for (let t = 1020; t <= 1040; t += 20) {
    delay += 18 * MS
    runDelay.sample(t * MS)
  }
  expect(runDelay.until).toBeGreaterThan(0)
  expect(runDelay.starved).toBe(true)
})

/** The calling thread's allowed CPUs, as the kernel lists them (/proc/thread-self/status). */
const allowed = () => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync("/proc/thread-self/status", "utf8"))![1]

test.skipIf(process.platform !== "linux" || availableParallelism() < 2)(
  "sb_keep_off_cpu moves the calling thread off a CPU and keeps it off until sb_keep_off_cpu(-1) puts its mask back",
  async () => {
    const native = await loadNative()
    const before = allowed()
    const cpu = native.sb_cpu()
    try {
      const moved = native.sb_keep_off_cpu(cpu)
      expect(moved).toBeGreaterThanOrEqual(0)
      expect(moved).not.toBe(cpu)
      expect(native.sb_cpu()).not.toBe(cpu)
      expect(allowed()).not.toBe(before)
      // again, off the CPU it moved to: narrowed from the mask it had kept, so the first CPU is allowed again
      const back = native.sb_keep_off_cpu(moved)
      expect(back).not.toBe(moved)
      expect(native.sb_cpu()).not.toBe(moved)
    } finally {
      expect(native.sb_keep_off_cpu(-1)).toBe(0)
    }
    expect(allowed()).toBe(before)
    expect(native.sb_keep_off_cpu(-1)).toBe(0) // nothing kept: nothing to do
    expect(native.sb_keep_off_cpu(4095)).toBe(-22) // not in the mask: EINVAL
    expect(allowed()).toBe(before)
  },
)
