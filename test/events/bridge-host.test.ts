// What src/events gives a transport for topics across hosts (the TopicBridgeHost port, docs/PROTOCOL.md §11.4),
// read against a member that moves the ring header's words under it. The transport here is the test's own: it
// keeps the host it is handed, as nats() does, so the port's calls can be made as often as a race needs.
import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import type { TopicBridge, TopicBridgeHost, TopicRemote } from "../../src/events/internal.ts"
import { spawn, stopAll } from "../support/helpers.ts"

const MEMBER = join(import.meta.dir, "procs", "member.ts")
let seq = 0
const fresh = () => `bridge-host-${process.pid}-${seq++}`
const topics: Topic[] = []
afterEach(async () => {
  await stopAll()
  for (const t of topics.splice(0)) t.close()
})

/** A transport that keeps the host it is handed and bridges nothing. */
function keeping(): { remote: TopicRemote; host: () => TopicBridgeHost } {
  let host: TopicBridgeHost | undefined
  const bridge = { close: async () => {} } as unknown as TopicBridge
  return {
    remote: {
      transport: "test",
      openTopicBridge: async (h) => ((host = h), bridge),
    },
    host: () => host!,
  }
}

test("takeBridged reads the tail whole while a member moves it across 2^32 boundaries", async () => {
  // Failed before: the tail was read as two u32 halves, low then high, so a carry between the two reads gave a
  // tail 4 GiB ahead of any value it had.
  const name = fresh()
  const k = keeping()
  const topic = await Topic.open(name, { capacity: 1 << 16, remote: k.remote })
  topics.push(topic)
  const carry = spawn([process.execPath, MEMBER, "carry", name])
  await carry.waitLine(/"ready":true/)
  const host = k.host()
  const torn: number[] = []
  let moved = 0
  // until the tail was seen at 200,000 values: on a loaded machine the member may get little CPU for a while
  for (let i = 1, last = 0; i < 200_000_000 && moved < 200_000 && torn.length < 10; i++) {
    if (i % 1_000_000 === 0) await Bun.sleep(1) // lets the member run where the two share a core
    const { tail } = host.takeBridged()
    const j = Math.floor(tail / 2 ** 32)
    if (tail % 2 ** 32 !== 16 * (j % 2 ** 20)) torn.push(tail)
    if (tail !== last) moved++, (last = tail)
  }
  expect(carry.running).toBe(true)
  expect(torn).toEqual([])
  expect(moved).toBeGreaterThan(1000) // the reads raced the member's stores, or this test could not fail
}, 60_000) // 4 s alone; 5.3 s, past bun's default 5 s, with the NATS tests running beside it
