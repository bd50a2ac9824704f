// A subscriber at a record still being written (docs/PROTOCOL.md §8.3, "A publisher killed or stopped mid-write"):
// it waits while the record's writer runs, however long the copy takes, and aborts the record of a writer that died
// or is stopped, then reads on. Real processes: Bun and Node 26 subscribers (test/support/runtime/topic-peer.ts)
// spinning at 16 MiB events copied into a fresh ring, and a publisher process left mid-write (procs/member.ts).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { busName, spawn, stopAll } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const MEMBER = join(import.meta.dir, "procs", "member.ts")
let cleanup: (() => unknown)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
  await stopAll()
})
afterAll(removeNodeBuilds)

for (const runtime of PEER_RUNTIMES) {
  describe.skipIf(peerSkip(runtime) !== null)(`a ${runtime} subscriber spinning`, () => {
    test("at 16 MiB events copied into a fresh 256 MiB ring waits for each copy: nothing aborted, each received once, whole", async () => {
      // failed before: it aborted a record after 1 ms + 1 ns a byte (17.8 ms here) while the live publisher was
      // still copying into pages the ring had never touched, and the publisher copied it again further on
      const name = busName("big")
      const t = await Topic.open(name, { capacity: 256 << 20 })
      cleanup.push(() => t.close())
      const c = await peerChild(runtime, "runtime/topic-peer.ts", [name], { stdin: "pipe" })
      cleanup.push(() => c.kill())
      await c.waitLine(/^ready \d+$/, 30_000)
      c.write("big 1 spin\n")
      await c.waitLine(/^subscribed 1$/, 10_000)
      const data = new Uint8Array((16 << 20) - 64) // the largest event of type "big": 16 MiB − 32 encoded
      const events = 14 // 224 MiB: every copy goes into pages no earlier one touched
      for (let i = 1; i <= events; i++) {
        data.fill(i)
        t.publish({ type: "big", data })
        await c.waitLine(new RegExp(`^big 1 ${i} `), 30_000)
      }
      const got = c.lines.filter((l) => l.startsWith("big 1 "))
      expect(got).toEqual(Array.from({ length: events }, (_, i) => `big 1 ${i + 1} ${data.length} whole`))
      expect(t.stats().abandoned).toBe(0)
    }, 120_000)
  })
}

for (const how of ["SIGSTOP", "SIGKILL"] as const) {
  test(`a publisher left mid-write is waited for while it runs; ${how === "SIGSTOP" ? "stopped (SIGSTOP)" : "killed (kill -9)"}, its record is aborted and later events arrive`, async () => {
    const name = busName("midwrite")
    const t = await Topic.open(name, { capacity: 1 << 20 })
    cleanup.push(() => t.close())
    const sub = t.subscribe({ type: "after" })
    const writer = spawn([process.execPath, MEMBER, "midwrite", name])
    const { claimed } = JSON.parse(await writer.line(0, 30_000)) as { claimed: number }
    const after = t.publish({ type: "after", data: "behind the unfinished record" })
    expect(after).toBe(claimed + 64)
    // it runs: its record is waited for, hundreds of times a small record's patience (1 ms) and more
    // (failed before: aborted after 1 ms, and the event behind it delivered)
    expect(await sub.receive(300)).toBeUndefined()
    expect(t.stats().abandoned).toBe(0)
    if (how === "SIGSTOP") writer.signal("SIGSTOP")
    else await writer.kill()
    expect((await sub.receive(10_000))?.text()).toBe("behind the unfinished record")
    expect(t.stats().abandoned).toBe(1)
  }, 60_000)
}
