// How the hub's answers reach the client's socket: Bun.serve writes a Response resolved after its request's turn,
// over ~16 KiB, in ~15 send calls unless its body is a stream that holds it all (docs/perf/bun-late-write.md).
// Counted with strace on a real hub process: real sockets, no timing.
import { afterEach, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { FIXTURES, pattern, sha256, stopAll } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"
import { sendsPerAnswer, straceSkip, straced, tracees } from "../support/strace.ts"

const cleanup: (() => void)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0)) f()
  await stopAll()
})

test.skipIf(straceSkip !== null)(
  "the hub's 40 KB answers that come after their request's turn reach the socket in at most two sends each",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "hub-late-write-"))
    const log = join(dir, "strace.log")
    const tokenFile = join(dir, "hub.token")
    const hubArgs = ["--port", "0", "--token-file", tokenFile, "--quiet"]
    const strace = straced(log, [process.execPath, join(FIXTURES, "http/http-hub.ts"), ...hubArgs])
    cleanup.push(() => {
      for (const pid of tracees(strace.pid)) process.kill(pid, "SIGKILL") // strace's death leaves them running
      rmSync(dir, { recursive: true, force: true })
    })
    const [, url] = await strace.waitLine(/^slotbus hub listening on (http:\S+)$/, 20_000)
    const worker = await startWorker(url!, "shop", [`--token-file=${tokenFile}`])
    const page = sha256(pattern(40_000, 7))
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${url}/large?bytes=40000&seed=7`)
      expect([res.status, sha256(new Uint8Array(await res.arrayBuffer()))]).toEqual([200, page])
    }
    await worker.kill()
    for (const pid of tracees(strace.pid)) process.kill(pid, "SIGTERM")
    expect(await strace.exited).toBe(0)
    const { answers, sends } = sendsPerAnswer(log)
    expect(answers).toBeGreaterThanOrEqual(20) // and the worker's registration's
    expect(sends).toBeLessThanOrEqual(2 * answers)
  },
  60_000,
)
