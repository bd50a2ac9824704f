// Shared fronts (docs/PROTOCOL.md §15) on the portable backend (§13), on Linux with SLOTBUS_PLATFORM=posix: a front
// that starts looks whether each address of the name is in use (§13.2's bind check), and that look must never reach
// the front listening there as a worker. Each further front runs under strace, which holds each of its connect calls
// 300 ms, as a loaded machine may hold a process between two syscalls.
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { bunChild, busName, FIXTURES, findTool, spawn, stopAll } from "../support/helpers.ts"
import { straceSkip, tracees } from "../support/strace.ts"

let dir = ""
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slotbus-portable-fronts-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
afterEach(stopAll)

const posix = () => ({ ...process.env, SLOTBUS_PLATFORM: "posix", SLOTBUS_SOCKET_DIR: dir })
const ROUNDS = 4

/** A further shared front of name, its connect calls held 300 ms each; resolves once it listens, then ends it. */
async function frontStartedAndEnded(name: string) {
  const trace = ["-f", "-qq", "-o", "/dev/null", "-e", "trace=connect", "-e", "inject=connect:delay_exit=300000"]
  const member = [process.execPath, join(FIXTURES, "native/portable-member.ts"), "front", name]
  const s = spawn([findTool("strace") ?? "strace", ...trace, ...member], { env: posix() })
  try {
    await s.waitLine(/^ready [1-9]\d*$/, 60_000)
  } finally {
    for (const pid of tracees(s.pid)) process.kill(pid, "SIGKILL") // killing strace would leave it running
    await s.exited
  }
}

test.skipIf(straceSkip !== null)(
  "further shared fronts starting and ending never give front 0 a phantom worker, and no request to it fails",
  async () => {
    const name = busName("probe")
    const front0 = bunChild("native/portable-member.ts", ["front", name], { env: posix() })
    expect((await front0.waitLine(/^ready (\d+)$/))[1]).toBe("0")
    const worker = bunChild("echo-worker.ts", [name, "--wait-for-hub-ms=10000"], { env: posix() })
    await worker.waitLine(/^ready$/)
    await front0.waitLine(/^answered \d+$/)
    for (let i = 0; i < ROUNDS; i++) await frontStartedAndEnded(name)
    // requests still flow to the worker afterwards
    for (let n = front0.lines.length; !/^answered /.test(await front0.line(n, 30_000)); n++) {}
    expect(front0.lines.filter((l) => /^(join|leave|error) /.test(l))).toEqual([`join ${worker.pid}`])
  },
  180_000,
)
