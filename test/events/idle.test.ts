// What a topic costs a member that does nothing with it, and who answers a newcomer (PROTOCOL §8.1): each member's
// accept thread answers at once, even while the member's own thread is busy, and an idle topic wakes a member's
// thread about once a second (its housekeeping tick), not 50 times (the 20 ms tick answered newcomers before).
// Members are real processes under Bun and Node 26 (test/support/runtime/topic-peer.ts).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { Topic } from "../../src/events/index.ts"
import { busName, type Child } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

let cleanup: (() => unknown)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
})
afterAll(removeNodeBuilds)

async function member(runtime: "bun" | "node", topic: string): Promise<Child> {
  const c = await peerChild(runtime, "runtime/topic-peer.ts", [topic], { stdin: "pipe" })
  cleanup.push(() => c.kill())
  await c.waitLine(/^ready \d+$/, 30_000)
  return c
}

/** The voluntary context switches of `pid`'s main thread so far: each one a sleep of its event loop. */
function sleeps(pid: number): number {
  const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8"))
  return Number(m![1])
}

for (const runtime of PEER_RUNTIMES) {
  const skip = peerSkip(runtime)
  describe.skipIf(skip !== null)(`a ${runtime} member`, () => {
    test("answers a newcomer while its own thread is busy: its accept thread does", async () => {
      // failed before: the member answered on its 20 ms tick, which a busy thread never ran (TimeoutError)
      const name = busName("busy")
      const c = await member(runtime, name)
      c.write("busy 6000\n")
      await c.waitLine(/^busy$/, 10_000)
      const t = await Topic.open(name, { create: "never", timeoutMs: 3000 })
      cleanup.push(() => t.close())
      expect(t.isKeeper).toBe(false) // joined the member's topic, whose thread is still in its loop:
      expect(c.lines).not.toContain("idle")
    }, 40_000)

    test.skipIf(process.platform !== "linux")(
      "with a topic open and nothing to do, its thread sleeps: about one wake-up a second",
      async () => {
        // failed before: the 20 ms tick woke it ~150 times in 3 s (a process with no topic: ~6)
        const c = await member(runtime, busName("idle"))
        await Bun.sleep(1500) // start-up's own wake-ups (JIT, GC) settle
        const before = sleeps(c.pid)
        await Bun.sleep(3000)
        expect(sleeps(c.pid) - before).toBeLessThan(50)
      },
      40_000,
    )
  })
}
