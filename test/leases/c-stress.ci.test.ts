// csrc/test/lease-stress.c, the C stress test of the contest table, built by build.zig (`zig build lease-stress`,
// `lease-stress-tsan`), once plain and once under ThreadSanitizer.
import { expect, test } from "bun:test"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { run } from "../support/helpers.ts"
import { SANITIZER_TEST_MS } from "../support/tools.ts"

const TIMEOUT_MS = SANITIZER_TEST_MS

async function buildAndRun(step: string, iterations: number, tsan: 0 | 1) {
  const out = join(await zigBuild(step), step)
  const result = await run([out, String(iterations)], {
    env: { ...process.env, TSAN_OPTIONS: "halt_on_error=1 exitcode=66" },
  })
  if (result.code !== 0) throw new Error(`${step} exited with ${result.code}:\n${result.stderr.slice(-4000)}`)
  const m = result.stdout.match(/^lease stress ok: claims=(\d+) yields=(\d+) waits=(\d+) renews=(\d+) tsan=(\d)$/m)
  expect(m).not.toBeNull()
  const [, claims, yields, waits, renews, built_] = m!.map(Number)
  expect(claims! + yields!).toBe(4 * iterations) // every attempt either claimed or yielded
  expect(claims!).toBeGreaterThan(0)
  expect(yields!).toBeGreaterThan(0) // members really contended
  expect(waits! + renews!).toBeGreaterThan(0)
  expect(built_).toBe(tsan)
}

test(
  "four members claiming three subjects never overlap, tokens grow per subject, counts add up",
  () => buildAndRun("lease-stress", 50_000, 0),
  TIMEOUT_MS,
)

test(
  "ThreadSanitizer finds no data race in the contest table (claims, releases, renews, waits, scans)",
  () => buildAndRun("lease-stress-tsan", 5_000, 1),
  TIMEOUT_MS,
)
