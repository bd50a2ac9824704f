// Resuming GET /events on a durable hub (createHub({ nats, eventsDurable }), docs/PROTOCOL.md §11.6) on one host:
// each resuming client reads the stream through a JetStream consumer of its own, so the server's consumers must
// follow the live clients, their number is capped, and an id past the stream's end says so.
// Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Topic } from "../../src/events/index.ts"
import { createHub, type HubHealth } from "../../src/http/index.ts"
import { streamOf } from "../../src/nats/topic-stream.ts"
import { until, type Child } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { nats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the durable hub resume tests are skipped: ${skip}`)

let server: Child | undefined
let url = ""
beforeAll(async () => {
  if (!skip) ({ url, server } = await startNats({ jetstream: true }))
})
afterAll(async () => {
  await server?.kill()
})

/** Opens GET /events with a Last-Event-ID and reads until `until` matches the text so far (or 10 s pass). */
async function resume(base: string, lastId: string, want: RegExp) {
  const ac = new AbortController()
  const res = await fetch(`${base}/events?types=n`, { headers: { "last-event-id": lastId }, signal: ac.signal })
  let text = ""
  if (res.status === 200) {
    const reader = res.body!.getReader()
    const deadline = performance.now() + 10_000
    while (!want.test(text) && performance.now() < deadline) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
  }
  return { res, text, leave: () => ac.abort() }
}

describe.skipIf(skip !== null)("resuming clients of a durable hub", () => {
  test("their JetStream consumers go when they leave, more than maxResumingClients get 503, and an id past the end is from-the-future", async () => {
    await using hub = await createHub({ port: 0, nats: url, eventsDurable: true, maxResumingClients: 3, quiet: true })
    await using topic = await Topic.open(`http.${hub.port}`, { remote: nats(url) })
    for (let i = 1; i <= 5; i++) topic.publish({ type: "n", data: String(i) })
    const nc = await connect({ servers: url })
    try {
      const jsm = await jetstreamManager(nc)
      const info = () => jsm.streams.info(streamOf(`http.${hub.port}`))
      await until(async () => (await info()).state.last_seq >= 5, "the stream stored 5")
      const own = (await info()).state.consumer_count // the hub's live stream reads through one of its own

      for (let round = 0; round < 20; round++) {
        const c = await resume(hub.url, "2", /data: 5/)
        expect(c.text).toContain("id: 3\n")
        c.leave()
      }
      await until(
        async () => (await info()).state.consumer_count === own,
        "no consumer left after 20 clients left",
        10_000,
      )

      const live = [await resume(hub.url, "1", /data: 5/), await resume(hub.url, "1", /data: 5/)]
      const future = await resume(hub.url, "999", /data: 5/)
      live.push(future)
      expect(future.text).toContain('"reason":"from-the-future"')
      expect(future.text).toContain("id: 1\n") // then the oldest kept
      const over = await resume(hub.url, "1", /./)
      expect(over.res.status).toBe(503)
      expect(over.res.headers.get("retry-after")).toBe("1")
      expect(await over.res.text()).toContain("maxResumingClients")
      const health = (await (await fetch(`${hub.url}/health`)).json()) as HubHealth
      expect(health.counters.resumesRefused).toBe(1)
      expect((await info()).state.consumer_count).toBe(own + 3)
      for (const c of live) c.leave()
      await until(async () => (await info()).state.consumer_count === own, "the three consumers gone", 10_000)
      const again = await resume(hub.url, "4", /data: 5/) // room again
      expect(again.res.status).toBe(200)
      again.leave()
    } finally {
      await nc.close()
    }
  }, 60_000)
})
