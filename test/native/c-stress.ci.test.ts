// csrc/test/stress.c, the C stress test of the slot state machine, built by build.zig plain and under
// ThreadSanitizer, AddressSanitizer and UndefinedBehaviorSanitizer (the last two with the system gcc).
import { expect, test } from "bun:test"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { run } from "../support/helpers.ts"
import { SANITIZER_TEST_MS, sayWhySkipped, toolSkipReason } from "../support/tools.ts"

// AddressSanitizer and UBSan come with the system gcc (zig's clang has no ASan runtime).
const gccSkip = toolSkipReason("gcc")
sayWhySkipped("the AddressSanitizer and UBSan stress runs", gccSkip)

const TIMEOUT_MS = SANITIZER_TEST_MS
// Any report ends the run at once with a non-zero exit, whichever sanitizer makes it.
const SANITIZER_ENV = {
  TSAN_OPTIONS: "halt_on_error=1 exitcode=66",
  ASAN_OPTIONS: "halt_on_error=1 abort_on_error=0 exitcode=67 detect_leaks=1",
  UBSAN_OPTIONS: "halt_on_error=1 print_stacktrace=1 exitcode=68",
}

async function expectStressPasses(step: string, requests: number, tsan: 0 | 1) {
  const binary = join(await zigBuild(step), step)
  const result = await run([binary, String(requests)], { env: { ...process.env, ...SANITIZER_ENV } })
  if (result.code !== 0) throw new Error(`${binary} exited with ${result.code}:\n${result.stderr.slice(-4000)}`)
  const summary = result.stdout.match(/^stress ok: requests=(\d+) cancelled=(\d+) .* tsan=(\d)$/m)
  expect(summary).not.toBeNull()
  const [, done, cancelled, built] = summary!
  expect(Number(done)).toBe(requests)
  expect(Number(cancelled)).toBeGreaterThan(0)
  expect(Number(built)).toBe(tsan)
}

test(
  "every request completes exactly once with its own response, through every idle strategy and past peer exits",
  () => expectStressPasses("stress", 1_000_000, 0),
  TIMEOUT_MS,
)

test(
  "ThreadSanitizer finds no data race between the hub and a worker",
  () => expectStressPasses("stress-tsan", 200_000, 1),
  TIMEOUT_MS,
)

test.skipIf(gccSkip !== null)(
  "AddressSanitizer finds no bad access or leak in the stress run",
  () => expectStressPasses("stress-asan", 200_000, 0),
  TIMEOUT_MS,
)

test.skipIf(gccSkip !== null)(
  "UndefinedBehaviorSanitizer finds no undefined behaviour in the stress run",
  () => expectStressPasses("stress-ubsan", 200_000, 0),
  TIMEOUT_MS,
)

// csrc/test/recorder_stress.c: the flight recorder's seqlock (docs/PROTOCOL.md §16.3) against a reader thread that
// copies each record in two halves, so a rewrite often lands inside a copy: every copy it keeps must be whole.
async function expectRecorderStressPasses(step: string, requests: number, tsan: 0 | 1) {
  const binary = join(await zigBuild(step), step)
  const result = await run([binary, String(requests)], { env: { ...process.env, ...SANITIZER_ENV } })
  if (result.code !== 0) throw new Error(`${binary} exited with ${result.code}:\n${result.stderr.slice(-4000)}`)
  const summary = result.stdout.match(/^recorder stress ok: requests=(\d+) checked=(\d+) torn=(\d+) tsan=(\d)$/m)
  expect(summary).not.toBeNull()
  const [, done, checked, , built] = summary!
  expect(Number(done)).toBe(requests)
  expect(Number(checked)).toBeGreaterThan(0)
  expect(Number(built)).toBe(tsan)
}

test(
  "a reader copying flight recorder records while the hub rewrites them keeps only whole ones",
  () => expectRecorderStressPasses("recorder-stress", 300_000, 0),
  TIMEOUT_MS,
)

test(
  "ThreadSanitizer finds no data race between the flight recorder's writer and a reader",
  () => expectRecorderStressPasses("recorder-stress-tsan", 100_000, 1),
  TIMEOUT_MS,
)
