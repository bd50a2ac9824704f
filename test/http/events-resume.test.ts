// `GET /events` resumed with a Last-Event-ID a client really holds: the newest id it saw (or the topic's tail, the
// id the next event gets) waits for new events with nothing replayed and no `lagged`; an id in the middle replays
// from the event after it; an id past the tail is `from-the-future`. A real hub, a worker under Bun and under Node
// publishing over the events topic from its own process, clients over fetch. Ids are ring positions, not 1, 2, 3:
// the event after id n is at n + its record's length, so n + 1 is "never-issued" (test/http/events.test.ts).
// And a hub (under Bun and under Node) whose live stream is behind the id a client resumes from (app.emit's answer,
// or the tail): it sends nothing from before that id (it used to send what its live stream had not yet handed out).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { createHub, type Hub } from "../../src/http/index.ts"
import { type Child, stopAll } from "../support/helpers.ts"
import { SseReader, type SseMessage } from "../support/http/http.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
})

/** Event frames and `lagged` markers (not the `: connected` and heartbeat comments). */
const frames = (sse: SseReader) => sse.received.filter((m) => m.comment === undefined)
const brief = (m: SseMessage) => ({ event: m.event, id: m.id, data: m.data })

for (const runtime of PEER_RUNTIMES)
  describe.skipIf(peerSkip(runtime) !== null)(`events resumed from a ${runtime} worker's ids`, () => {
    let hub: Hub
    let worker: Child
    let dir = ""
    const open: AbortController[] = []

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "events-resume-"))
      const tokenFile = join(dir, "hub.token")
      hub = await createHub({ port: 0, quiet: true, heartbeatMs: 60_000, tokenFile })
      worker = await peerChild(runtime, "runtime/node-hub-worker.ts", [hub.url, "shop", tokenFile])
      await worker.waitLine(/^ready \d+$/, 20_000)
    })
    afterAll(async () => {
      for (const a of open) a.abort()
      await worker?.stop()
      await hub?.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    /** One app.emit in the worker's process (over the topic, not through the hub); its id. */
    const emit = async (type: string, data: unknown) => {
      const res = await fetch(`${hub.url}/emit/${type}`, { method: "POST", body: JSON.stringify(data) })
      expect(res.status).toBe(200)
      return ((await res.json()) as { id: number }).id
    }
    /** A client of /events?types=<type>; the replay is queued before the response comes (sse.ts openEvents). */
    const connect = async (type: string, lastEventId?: string, query = "") => {
      const abort = new AbortController()
      open.push(abort)
      const res = await fetch(`${hub.url}/events?types=${type}${query}`, {
        signal: abort.signal,
        headers: lastEventId === undefined ? {} : { "last-event-id": lastEventId },
      })
      expect(res.status).toBe(200)
      return { sse: new SseReader(res), abort }
    }
    /** `n` events of `type`, then a client that read them all and went; the ids it saw. */
    const seen = async (type: string, n: number) => {
      const first = await connect(type)
      const ids: number[] = []
      for (let i = 0; i < n; i++) ids.push(await emit(type, { i }))
      await first.sse.next((m) => m.id === String(ids.at(-1)))
      expect(frames(first.sse).map((m) => m.id)).toEqual(ids.map(String))
      first.abort.abort()
      await first.sse.close()
      return ids
    }
    /** Emits one more event of `type` and reads `c` up to it: every frame `c` got (its replay, then that event). */
    const upToNext = async (c: { sse: SseReader }, type: string) => {
      const next = await emit(type, { next: true })
      await c.sse.next((m) => m.id === String(next))
      return { next, got: frames(c.sse).map(brief) }
    }

    test("Last-Event-ID = the newest id seen: only the next event, no lagged and nothing replayed", async () => {
      const ids = await seen("newest", 5)
      for (const how of ["header", "?lastEventId="]) {
        const last = String(ids.at(-1))
        const c =
          how === "header" ? await connect("newest", last) : await connect("newest", undefined, `&lastEventId=${last}`)
        const { next, got } = await upToNext(c, "newest")
        expect({ how, got }).toEqual({ how, got: [{ event: "newest", id: String(next), data: '{"next":true}' }] })
        expect(next).toBeGreaterThan(ids.at(-1)!)
        ids.push(next)
        c.abort.abort()
      }
    })

    test("Last-Event-ID = the topic's tail (the id the next event gets): that event, no lagged", async () => {
      await seen("tail", 3)
      const topic = await Topic.open(hub.eventsTopic)
      let tail: number
      try {
        tail = topic.stats().tail
      } finally {
        topic.close()
      }
      const c = await connect("tail", String(tail))
      const { next, got } = await upToNext(c, "tail")
      expect(next).toBe(tail)
      expect(got).toEqual([{ event: "tail", id: String(tail), data: '{"next":true}' }])
      c.abort.abort()
    })

    test("Last-Event-ID in the middle replays from the event after it, each once, then the live stream", async () => {
      const ids = await seen("middle", 5)
      const c = await connect("middle", String(ids[1]))
      const { next, got } = await upToNext(c, "middle")
      expect(got).toEqual([
        ...[2, 3, 4].map((i) => ({ event: "middle", id: String(ids[i]), data: JSON.stringify({ i }) })),
        { event: "middle", id: String(next), data: '{"next":true}' },
      ])
      c.abort.abort()
    })

    test("Last-Event-ID past the tail is `from-the-future`, then the oldest kept (the whole ring here)", async () => {
      const ids = await seen("future", 2)
      const c = await connect("future", "999999999999")
      const { next, got } = await upToNext(c, "future")
      expect(got[0]!.event).toBe("lagged")
      expect(JSON.parse(got[0]!.data)).toMatchObject({ lastEventId: "999999999999", reason: "from-the-future" })
      expect(got.slice(1).map((m) => m.id)).toEqual([...ids, next].map(String))
      c.abort.abort()
    })
  })

for (const runtime of PEER_RUNTIMES)
  test.skipIf(peerSkip(runtime) !== null)(
    `a ${runtime} hub whose live stream is behind the id a client resumes from sends nothing from before it`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "events-resume-"))
      const hub = await peerChild(runtime, "http/http-hub.ts", [
        "--port",
        "0",
        "--token-file",
        join(dir, "t"),
        "--quiet",
      ])
      try {
        const [, url] = (await hub.waitLine(/^slotbus hub listening on (http:\S+)$/, 30_000))!
        const topic = await Topic.open(`http.${new URL(url!).port}`)
        try {
          for (const from of ["newest", "tail", "newest", "tail"]) {
            // The hub stopped: its live stream falls 5,000 events behind (240 KB, under half its 1 MiB ring).
            process.kill(hub.pid, "SIGSTOP")
            let newest = 0
            for (let i = 0; i < 5000; i++) newest = topic.publish({ type: "behind", data: String(i) })
            const lastId = String(from === "newest" ? newest : topic.stats().tail)
            const abort = new AbortController()
            const res = fetch(`${url}/events?types=behind`, {
              signal: abort.signal,
              headers: { "last-event-id": lastId },
            })
            await Bun.sleep(100) // the request waits in the stopped hub's socket as the stream wakes it
            process.kill(hub.pid, "SIGCONT")
            try {
              const sse = new SseReader(await res)
              const next = topic.publish({ type: "behind", data: "next" })
              await sse.next((m) => m.id === String(next), 20_000)
              const got = frames(sse).map(brief)
              expect({ from, got: got.slice(0, 3), count: got.length }).toEqual({
                from,
                got: [{ event: "behind", id: String(next), data: "next" }],
                count: 1,
              })
            } finally {
              abort.abort()
            }
          }
        } finally {
          topic.close()
        }
      } finally {
        await hub.kill()
        rmSync(dir, { recursive: true, force: true })
      }
    },
    90_000,
  )
