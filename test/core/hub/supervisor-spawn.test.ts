// A command whose file is away for a moment (a deploy swapping it) when the Supervisor must start it: after a
// kill() or an eviction, on resize(), on reload(). It counts as a crash (restarted after a backoff) or fails the
// reload with a ReplaceError; before, it was an unhandled rejection (the end of a Node front) and the instance stayed
// down for good. The front runs under Bun and under Node 26.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterAll(() => removeNodeBuilds())

describe.each(["bun", "node"] as PeerRuntime[])("a Supervisor under %s whose command is gone a moment", (runtime) => {
  const skip = peerSkip(runtime)
  test.skipIf(skip !== null)(
    "kill() and resize() restart it after a backoff; reload() rejects with a ReplaceError; the front lives on",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "sup-spawn-"))
      const front = await peerChild(runtime, "runtime/supervise-gone.ts", [dir])
      try {
        await front.waitLine(/^killed back$/, 30_000)
        await front.waitLine(/^resized back$/, 30_000)
        const [reload] = await front.waitLine(/^reload .*$/, 30_000)
        expect(reload).toMatch(/^reload ReplaceError reload: instance \d's successor \(pid 0\) could not be spawned: /)
        await front.waitLine(/^done$/, 30_000)
        expect(await front.proc.exited).toBe(0)
      } finally {
        await front.kill()
        rmSync(dir, { recursive: true, force: true })
      }
    },
    60_000,
  )
})
