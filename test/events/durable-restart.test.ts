// A durable topic's only nats-server killed with -9 and restarted on its store while events are published
// (docs/PROTOCOL.md §11.4, "A connection that drops"; §11.6): the bridge sends again what the dead server had not
// confirmed, and the stream holds every event once. Before, every event sent without a confirmation when
// the server died was missing from the stream, and no count said so. Needs `nats-server` (apt-get install -y
// nats-server).
import { afterAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { nats } from "../../src/nats/index.ts"
import { busName, type Child } from "../support/helpers.ts"
import { numberedPublisher, readStream } from "../support/events/numbered.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the durable restart test is skipped: ${skip}`)

const store = mkdtempSync(join(tmpdir(), "slotbus-nats-store-"))
let server: Child | undefined
afterAll(async () => {
  await server?.kill()
  rmSync(store, { recursive: true, force: true })
})

test.skipIf(skip !== null)(
  "the server killed with -9 and restarted mid-stream: the stream holds every event published, once",
  async () => {
    const started = await startNats({ jetstream: true, store })
    server = started.server
    const name = busName("drs")
    await using topic = await Topic.open(name, { remote: nats(started.url), durable: true })
    const N = 3000
    const p = numberedPublisher(topic, "job", N, 20)
    await p.publish(() => p.count >= 1000)
    await server.kill() // -9, mid-stream
    const killedAt = p.count
    await p.publish(() => p.count >= killedAt + 200) // into the ring while no server is there
    server = (await startNats({ jetstream: true, store, port: started.port })).server
    const back = performance.now()
    await p.publish(() => false)
    const got = await readStream(topic, N)
    const tookS = ((performance.now() - back) / 1000).toFixed(1)
    const stats = topic.bridgeStats()!
    // each once; not always in the order published: a message sent as the stream came back may be stored before
    // one sent while it was away, which goes in when sent again (PROTOCOL §11.6)
    expect(got.map(Number).sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, k) => k))
    expect(stats.unsent).toBe(0)
    expect(stats.sent).toBe(N) // each event counted once, however often a dial failed and it went out again
    console.log(
      `the server killed at event ${killedAt}: ${got.length} of ${N} in the stream ${tookS} s after it was back; ${stats.reasons.at(-1)}`,
    )
  },
  120_000,
)
