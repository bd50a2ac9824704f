import { expect, test } from "bun:test"
import { longTimeout, MAX_TIMER_MS, sleep } from "../../../src/kit/basics/timers.ts"

test("a delay past 2^31-1 ms does not fire at once, where a bare setTimeout does", async () => {
  let bare = false
  const t = setTimeout(() => (bare = true), 1e10)
  let long = false
  const lt = longTimeout(() => (long = true), 1e10)
  await sleep(30)
  clearTimeout(t)
  lt.clear()
  expect(bare).toBe(true) // the platform's overflow this helper exists for
  expect(long).toBe(false)
})

test("a short delay fires once, after its time; clear() cancels; Infinity never fires", async () => {
  const fired: string[] = []
  const start = performance.now()
  let at = 0
  longTimeout(() => (fired.push("short"), (at = performance.now())), 20)
  longTimeout(() => fired.push("cleared"), 10).clear()
  longTimeout(() => fired.push("never"), Infinity)
  longTimeout(() => fired.push("negative"), -5)
  longTimeout(() => fired.push("nan"), NaN)
  await sleep(60)
  expect(fired.sort()).toEqual(["nan", "negative", "short"])
  expect(at - start).toBeGreaterThanOrEqual(19)
  expect(MAX_TIMER_MS).toBe(2147483647)
})
