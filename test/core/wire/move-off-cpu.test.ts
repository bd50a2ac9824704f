// libslotbus's sb_move_off_cpu: what a worker's pump calls when it finds its hub on its own CPU while another CPU
// idles (core/wire/idle-signals.ts's CpuMover): the thread runs elsewhere after, with the mask it had.
import { expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { loadNative } from "../../../src/native/ffi.ts"

const native = await loadNative()
const EINVAL = -22
const allowed = () => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync("/proc/thread-self/status", "latin1"))![1]
/** The CPU this thread last ran on, from the kernel's side (field 39 of its stat). */
const lastCpu = () => {
  const stat = readFileSync("/proc/thread-self/stat", "latin1")
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[36])
}

test("sb_move_off_cpu moves the calling thread to another CPU of its mask and puts the mask back", () => {
  const mask = allowed()
  const cpu = native.sb_cpu()
  const moved = native.sb_move_off_cpu(cpu)
  if (availableParallelism() < 2) expect(moved).toBe(EINVAL)
  else {
    expect(moved).toBeGreaterThanOrEqual(0)
    expect(moved).not.toBe(cpu)
    expect(lastCpu()).not.toBe(cpu)
  }
  expect(allowed()).toBe(mask)
})

test("a CPU outside the thread's mask is refused, and the mask is left alone", () => {
  const mask = allowed()
  expect(native.sb_move_off_cpu(-1)).toBe(EINVAL)
  expect(native.sb_move_off_cpu(4095)).toBe(EINVAL)
  expect(allowed()).toBe(mask)
})
