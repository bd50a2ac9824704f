// How a front's answers reach its HTTP socket: Bun.serve writes a Response resolved after its request's turn, over
// ~16 KiB, in ~15 send calls unless its body is a stream that holds it all (docs/perf/bun-late-write.md). Counted
// with strace on a real front: real sockets, no timing.
import { afterEach, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { busName, FIXTURES, pattern, sha256, spawnWorker, stopAll, textPage } from "../../support/helpers.ts"
import { sendsPerAnswer, straceSkip, straced, tracees } from "../../support/strace.ts"

const cleanup: (() => void)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0)) f()
  await stopAll()
})

/** 20 answers of the late front (core/late-front.ts) on `path`, each checked by `check`; the front's sends. */
async function lateAnswers(path: string, check: (res: Response) => Promise<void>) {
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
  for (let i = 0; i < 20; i++) {
    // the worker answers 5 ms later: always after the request's turn on the front
    await check(await fetch(`http://127.0.0.1:${port}${path}`, { headers: { "x-delay-ms": "5" } }))
  }
  process.kill(Number(front), "SIGTERM")
  expect(await strace.exited).toBe(0)
  return sendsPerAnswer(log)
}

test.skipIf(straceSkip !== null)(
  "a 40 KB bus.fetch answer that comes after its request's turn reaches the socket in at most two sends",
  async () => {
    const page = sha256(pattern(40_000))
    const { answers, sends } = await lateAnswers("/large?bytes=40000", async (res) => {
      expect([res.status, sha256(new Uint8Array(await res.arrayBuffer()))]).toEqual([200, page])
    })
    expect(answers).toBe(20)
    expect(sends).toBeLessThanOrEqual(2 * answers)
  },
  60_000,
)

test.skipIf(straceSkip !== null)(
  "a 40 KB string respond() gets late goes as itself, UTF-8, in at most two sends",
  async () => {
    // (one the front's pump caught in the route's own turn goes as bytes, in one send: either way at most two)
    const { answers, sends } = await lateAnswers("/text?chars=40000", async (res) => {
      expect([res.status, await res.text()]).toEqual([200, textPage(40_000)])
    })
    expect(answers).toBe(20)
    expect(sends).toBeLessThanOrEqual(2 * answers)
  },
  60_000,
)
