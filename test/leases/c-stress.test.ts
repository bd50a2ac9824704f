// csrc/test/lease-stress.c, the C stress test of the contest table, built with the zig from node_modules
// (as `zig build lease-stress [-Dtsan=true]` does), once plain and once under ThreadSanitizer.
import { afterAll, beforeAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ROOT = join(import.meta.dir, "..", "..")
const ZIG = join(ROOT, "node_modules", "@ryoppippi", "zig-linux-x64", "zig")
const CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-g", "-pthread", `-I${join(ROOT, "csrc")}`]
const SOURCES = [join(ROOT, "csrc", "test", "lease-stress.c"), join(ROOT, "csrc", "lease.c")]
const TIMEOUT_MS = 180_000 // a cold zig cache builds the TSan runtime first

let outDir = ""
beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), "slotbus-lease-stress-"))
})
afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true })
})

async function run(cmd: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { stdout, stderr, code }
}

async function buildAndRun(name: string, flags: string[], iterations: number, tsan: 0 | 1) {
  const out = join(outDir, name)
  const built = await run([ZIG, "cc", ...CFLAGS, ...flags, ...SOURCES, "-o", out])
  if (built.code !== 0) throw new Error(`zig cc failed:\n${built.stderr.slice(-4000)}`)
  const result = await run([out, String(iterations)], { TSAN_OPTIONS: "halt_on_error=1 exitcode=66" })
  if (result.code !== 0) throw new Error(`${name} exited with ${result.code}:\n${result.stderr.slice(-4000)}`)
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
  () => buildAndRun("lease-stress", ["-O2"], 50_000, 0),
  TIMEOUT_MS,
)

test(
  "ThreadSanitizer finds no data race in the contest table (claims, releases, renews, waits, scans)",
  () => buildAndRun("lease-stress-tsan", ["-O1", "-fsanitize=thread"], 5_000, 1),
  TIMEOUT_MS,
)
