// How a front's answers reach its HTTP socket: Bun.serve writes a Response resolved after its request's turn, over
// ~16 KiB, in ~15 send calls unless its body is a stream that holds it all (docs/perf/bun-late-write.md). Counted
// with strace on a real front: real sockets, no timing.
import { afterEach, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { busName, FIXTURES, pattern, sha256, spawnWorker, stopAll } from "../../support/helpers.ts"
import { sendsPerAnswer, straceSkip, straced, tracees } from "../../support/strace.ts"

const cleanup: (() => void)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0)) f()
  await stopAll()
})

test.skipIf(straceSkip !== null)(
  "a 40 KB bus.fetch answer that comes after its request's turn reaches the socket in at most two sends",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "late-write-"))
    const log = join(dir, "strace.log")
    const name = busName("late")
    const strace = straced(log, [process.execPath, join(FIXTURES, "core/late-front.ts"), name])
    cleanup.push(() => {
      for (const pid of tracees(strace.pid)) process.kill(pid, "SIGKILL") // strace's death leaves them running
      rmSync(dir, { recursive: true, force: true })
    })
    const [, port, front] = await strace.waitLine(/^ready (\d+) (\d+)$/, 20_000)
    await spawnWorker(name)
    const page = sha256(pattern(40_000))
    for (let i = 0; i < 20; i++) {
      // the worker answers 5 ms later: always after the request's turn on the front
      const res = await fetch(`http://127.0.0.1:${port}/large?bytes=40000`, { headers: { "x-delay-ms": "5" } })
      expect([res.status, sha256(new Uint8Array(await res.arrayBuffer()))]).toEqual([200, page])
    }
    process.kill(Number(front), "SIGTERM")
    expect(await strace.exited).toBe(0)
    const { answers, sends } = sendsPerAnswer(log)
    expect(answers).toBe(20)
    expect(sends).toBeLessThanOrEqual(2 * answers)
  },
  60_000,
)
