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
  runtime,
  sleep,
} from "../../src/runtime/index.ts"

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
