// The runtime room's contract (src/runtime/runtime.ts), as any runtime must keep it: the functions work called
// bare (they are exported as references, never wrappers), sleep takes any delay, an fd reader wakes on bytes.
import { expect, test } from "bun:test"
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  crc32,
  deepEquals,
  fdReader,
  inspect,
  nanoseconds,
  promiseState,
  promiseValue,
  quirks,
  runtime,
  sleep,
} from "../../src/runtime/index.ts"
import { heldLate } from "../../src/core/endpoint/response.ts"
import { BUN_QUIRKS, LATE_WRITE } from "../../src/runtime/bun/quirks.ts"

test("the clock, the hash and the promise peeks work called bare, off their module", async () => {
  const { nanoseconds: now } = runtime
  const a = now()
  const b = nanoseconds()
  expect(b).toBeGreaterThanOrEqual(a)
  expect(crc32("123456789")).toBe(0xcbf43926)
  expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926)
  const done = Promise.resolve(7)
  await null
  expect([promiseState(done), promiseValue(done)]).toEqual(["fulfilled", 7])
  expect(promiseState(new Promise(() => {}))).toBe("pending")
  expect([deepEquals({ a: [1] }, { a: [1] }, true), deepEquals({ a: undefined }, {}, true)]).toEqual([true, false])
  expect(inspect({ a: 1 })).toContain("a: 1")
})

test("Bun's late write is its adapter's data: the core holds a late answer of 15–64 KiB, no other size", () => {
  expect([runtime.name, quirks.lateWrite, quirks.all]).toEqual(["bun", LATE_WRITE, BUN_QUIRKS])
  expect(LATE_WRITE).toEqual({ minBytes: 15 * 1024, maxBytes: 64 * 1024 })
  const late = Number.NaN // a turn no answer is collected in
  const sizes = [15 * 1024, 15 * 1024 + 1, 64 * 1024, 64 * 1024 + 1]
  expect(sizes.map((n) => heldLate(n, late))).toEqual([false, true, true, false])
})

test("sleep takes a delay past 2^31−1 ms without firing at once (setTimeout would: TIMER_OVERFLOW)", async () => {
  let slept = false
  void sleep(2 ** 31).then(() => (slept = true))
  await new Promise((r) => setTimeout(r, 200))
  expect(slept).toBe(false)
})

test("an fd reader settles a read when bytes arrive on the fd, and leaves the fd open", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-fd-"))
  const fifo = join(dir, "bell")
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0)
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK) // one fd for both ends, as an eventfd is
  try {
    const reader = fdReader(fd)
    const read = reader.read()
    writeSync(fd, "ring")
    const { value } = await read
    expect(new TextDecoder().decode(value)).toBe("ring")
    await reader.cancel()
    expect(writeSync(fd, "again")).toBe(5) // still ours and open
  } finally {
    closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  }
})
