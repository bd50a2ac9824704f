// csrc/test/stress.c, the C stress test of the slot state machine, built with the zig from node_modules
// like csrc/test/run-stress.sh does, once plain and once under ThreadSanitizer.
import { afterAll, beforeAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ROOT = join(import.meta.dir, "..", "..")
const ZIG = join(ROOT, "node_modules", "@ryoppippi", "zig-linux-x64", "zig")
const CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-g", "-pthread", `-I${join(ROOT, "csrc")}`]
const SOURCES = [join(ROOT, "csrc", "test", "stress.c"), join(ROOT, "csrc", "slotbus.c")]
// A cold zig cache builds the ThreadSanitizer runtime first, which takes a while on a small machine.
const TIMEOUT_MS = 120_000

let outDir = ""
beforeAll(() => {
  outDir = mkdtempSync(join(tmpdir(), "slotbus-stress-"))
})
afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true })
})

async function run(cmd: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } })
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ])
  return { stdout, stderr, code }
}

function expectSuccess(what: string, result: { code: number; stderr: string }) {
  if (result.code !== 0) throw new Error(`${what} exited with ${result.code}:\n${result.stderr.slice(-4000)}`)
}

async function buildStress(name: string, extraFlags: string[]) {
  const out = join(outDir, name)
  expectSuccess(`zig cc ${extraFlags.join(" ")}`, await run([ZIG, "cc", ...CFLAGS, ...extraFlags, ...SOURCES, "-o", out]))
  return out
}

async function expectStressPasses(binary: string, requests: number, tsan: 0 | 1) {
  // halt_on_error: the first race report ends the run with exit code 66
  const result = await run([binary, String(requests)], { TSAN_OPTIONS: "halt_on_error=1 exitcode=66" })
  expectSuccess(binary, result)
  const summary = result.stdout.match(/^stress ok: requests=(\d+) cancelled=(\d+) .* tsan=(\d)$/m)
  expect(summary).not.toBeNull()
  const [, done, cancelled, built] = summary!
  expect(Number(done)).toBe(requests)
  expect(Number(cancelled)).toBeGreaterThan(0)
  expect(Number(built)).toBe(tsan)
}

test(
  "every request completes exactly once with its own response, through every idle strategy and past peer exits",
  async () => {
    await expectStressPasses(await buildStress("stress", ["-O2"]), 1_000_000, 0)
  },
  TIMEOUT_MS,
)

test(
  "ThreadSanitizer finds no data race between the hub and a worker",
  async () => {
    await expectStressPasses(await buildStress("stress-tsan", ["-O1", "-fsanitize=thread"]), 200_000, 1)
  },
  TIMEOUT_MS,
)
