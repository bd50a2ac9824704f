// csrc/test/topic_stress.c: publisher and filtered subscriber threads on one small topic (lapping, pushes,
// padding, parking, aborts), built by build.zig's topic-stress step, once plain and once under ThreadSanitizer.
import { expect, test } from "bun:test"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { run } from "../support/helpers.ts"
import { SANITIZER_TEST_MS } from "../support/tools.ts"

const TIMEOUT_MS = SANITIZER_TEST_MS

async function runOk(cmd: string[], env: Record<string, string> = {}) {
  const { stdout, stderr, code } = await run(cmd, { env: { ...process.env, ...env } })
  if (code !== 0)
    throw new Error(`${cmd.join(" ")} exited with ${code}:\n${stdout.slice(-2000)}\n${stderr.slice(-4000)}`)
  return stdout
}

async function stress(tsan: boolean, eventsPerPublisher: number) {
  const step = tsan ? "topic-stress-tsan" : "topic-stress"
  const bin = join(await zigBuild(step, { args: ["-Doptimize=ReleaseSafe"] }), step)
  // halt_on_error: the first race report ends the run with exit code 66
  const out = await runOk([bin, String(eventsPerPublisher)], { TSAN_OPTIONS: "halt_on_error=1 exitcode=66" })
  const m = /^topic stress ok: events=(\d+) .* tsan=(\d)$/m.exec(out)
  expect(m).not.toBeNull()
  expect(Number(m![1])).toBe(eventsPerPublisher * 3)
  expect(Number(m![2])).toBe(tsan ? 1 : 0)
  console.log(out.trim())
}

test(
  "three publishers and four filtered subscribers: order kept, filters exact, every event counted",
  () => stress(false, 300_000),
  TIMEOUT_MS,
)

test("ThreadSanitizer finds no data race in the topic ring", () => stress(true, 30_000), TIMEOUT_MS)

// Four publishers stopped at random points (mid-copy included) on a 64 KiB ring: fences keep every
// committed record whole (no foreign byte) and every loss counted (docs/PROTOCOL.md §8.3 P3–P4b).
async function stall(tsan: boolean, eventsPerPublisher: number) {
  const step = tsan ? "topic-stress-tsan" : "topic-stress"
  const bin = join(await zigBuild(step, { args: ["-Doptimize=ReleaseSafe"] }), step)
  const out = await runOk([bin, "stall", String(eventsPerPublisher)], { TSAN_OPTIONS: "halt_on_error=1 exitcode=66" })
  const m = /^topic stall ok: events=(\d+) .* estimates=(\d+) .* fenced=(\d+) stalls=(\d+) tsan=(\d)$/m.exec(out)
  expect(m).not.toBeNull()
  expect(Number(m![1])).toBe(eventsPerPublisher * 4)
  // estimates (a subscriber lapped before a descheduled pusher reached it, +1 each) are allowed: the program
  // fails on any foreign byte, any corrupt record, any loss uncounted, or an over-count beyond them
  expect(Number(m![5])).toBe(tsan ? 1 : 0)
  console.log(out.trim().split("\n").at(-1))
}

test(
  "four publishers stalled at random mid-copy on a 64 KiB ring: no foreign byte, no corrupt record, every loss counted",
  () => stall(false, 20_000),
  TIMEOUT_MS,
)

test("ThreadSanitizer finds no data race with stalled publishers and fences", () => stall(true, 3_000), TIMEOUT_MS)
