// A durable topic's stream on this host (docs/PROTOCOL.md §11.6): the stream the bridges fill, stream subscribers
// with stream-sequence ids, `from` resuming exactly after an id, replay after every ring of the topic is gone,
// discarded history, foreign messages, and the mistakes refused. test/events/hosts.ci.test.ts resumes on another host.
// Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { type DurableSubscription, Topic, TopicStreamError } from "../../src/events/index.ts"
import { streamOf, topicSubjects } from "../../src/nats/internal.ts"
import { join } from "node:path"
import { busName, FIXTURES, rejection, run, spawn, until, type Child } from "../support/helpers.ts"
import { encodeEvent } from "../../src/events/codec.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { nats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the durable topic tests are skipped: ${skip}`)

let js: Child | undefined // a server with JetStream
let plain: Child | undefined // one without
let url = ""
let plainUrl = ""
beforeAll(async () => {
  if (skip) return
  ;({ url, server: js } = await startNats({ jetstream: true }))
  ;({ url: plainUrl, server: plain } = await startNats())
})
afterAll(async () => {
  await js?.kill()
  await plain?.kill()
})

let cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
})

async function openDurable(name: string, durable: Parameters<typeof Topic.open>[1] = {}): Promise<Topic> {
  const t = await Topic.open(name, { remote: nats(url), durable: true, ...durable })
  cleanup.push(() => t[Symbol.asyncDispose]())
  return t
}

async function take(sub: DurableSubscription, n: number): Promise<{ id: number; type: string; text: string }[]> {
  const out: { id: number; type: string; text: string }[] = []
  while (out.length < n) {
    const ev = await sub.receive(10_000)
    if (!ev) throw new Error(`only ${out.length} of ${n} events came`)
    out.push({ id: ev.id, type: ev.type, text: ev.text() })
  }
  return out
}

/** Waits until the topic's stream has stored `n` messages so far (its last sequence). */
async function stored(name: string, n: number) {
  const nc = await connect({ servers: url })
  try {
    const jsm = await jetstreamManager(nc)
    await until(async () => (await jsm.streams.info(streamOf(name))).state.last_seq >= n, `the stream stored ${n}`)
  } finally {
    await nc.close()
  }
}

describe.skipIf(skip !== null)("a durable topic's stream", () => {
  test("every event is stored once, numbered by the stream; a stream subscriber reads them filtered, and `from: id` resumes exactly after id", async () => {
    const name = busName("dur")
    const topic = await openDurable(name)
    const all = await topic.subscribeDurable({}, { from: "oldest" })
    const jobs = await topic.subscribeDurable({ type: "job.*" }, { from: "oldest" })
    const u1 = await topic.subscribeDurable({ type: "job.done", routing: { user: "u1" } }, { from: "oldest" })
    for (let i = 0; i < 30; i++)
      topic.publish({ type: i % 3 === 0 ? "note" : "job.done", data: `e${i}`, routing: { user: `u${i % 2}` } })
    const got = await take(all, 30)
    expect(got.map((e) => e.text)).toEqual(Array.from({ length: 30 }, (_, i) => `e${i}`))
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1)) // the stream's sequence
    const jobTexts = got.filter((e) => e.type === "job.done").map((e) => e.text)
    expect((await take(jobs, jobTexts.length)).map((e) => e.text)).toEqual(jobTexts)
    const u1Texts = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 !== 0 && i % 2 === 1)
    expect((await take(u1, u1Texts.length)).map((e) => e.text)).toEqual(u1Texts.map((i) => `e${i}`))
    expect(await all.receive({ timeoutMs: 100 })).toBeUndefined() // nothing twice
    expect(all.received).toBe(30)
    expect(all.lagged).toBe(0)
    expect(all.restarted).toBe(false)

    for (const after of [0, 1, 17, 29]) {
      const again = await topic.subscribeDurable({}, { from: after })
      const rest = await take(again, 30 - after)
      expect(rest.map((e) => e.id)).toEqual(Array.from({ length: 30 - after }, (_, i) => after + 1 + i))
      expect(await again.receive(50)).toBeUndefined()
      again.close()
    }
    // from "now" sees only what comes after it
    const now = await topic.subscribeDurable({}, { from: "now" })
    topic.publish({ type: "note", data: "late" })
    expect(await take(now, 1)).toEqual([{ id: 31, type: "note", text: "late" }])
  }, 30_000)

  test("the stream outlives every ring of the topic: a new ring on this host replays what the old one had", async () => {
    const name = busName("dur")
    // another process publishes 10 events and exits: with it the ring goes (nobody else holds the topic)
    const out = await run([process.execPath, join(FIXTURES, "events/topic-member.ts"), name, url, "dpub", "10"], {
      timeoutMs: 20_000,
    })
    expect(out.stderr).toBe("")
    expect(out.code).toBe(0)
    await stored(name, 10)
    const topic = await openDurable(name)
    const sub = await topic.subscribeDurable({}, { from: "oldest" })
    expect((await take(sub, 10)).map((e) => e.text)).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`))
    // the ring itself is new and empty: ring replay cannot give them
    expect(topic.subscribe({}, { from: "oldest" }).poll().count).toBe(0)
  }, 30_000)

  test("events published while no process bridges wait in the ring: the next bridge sends them, in order and once, and no event bridged in from another host goes back", async () => {
    const name = busName("dur")
    const bridge = () => spawn([process.execPath, join(FIXTURES, "events/topic-member.ts"), name, url, "dbridge"])
    const first = bridge()
    cleanup.push(() => first.kill())
    await first.waitLine(/^bridging \d+$/)
    const local = await Topic.open(name) // a plain member, as an HTTP hub's worker is: it never bridges
    cleanup.push(() => local[Symbol.asyncDispose]())
    const watch = local.subscribe({ type: "t" }) // so the bridge takes events of type t from other hosts
    await first.waitLine(/^stats .*"subjects":\["slotbus/)
    for (let i = 0; i < 5; i++) local.publish({ type: "t", data: `e${i}` })
    // an event of another host: the bridge takes it into the ring and must never send it back
    const nc = await connect({ servers: url })
    cleanup.push(() => nc.close())
    const buf = new Uint8Array(256)
    const n = encodeEvent(buf.subarray(24), new DataView(buf.buffer, 24), "t", undefined, "from-b")
    const v = new DataView(buf.buffer)
    v.setUint32(0, 1 | (1 << 8), true)
    v.setUint32(4, 77, true)
    v.setUint32(8, 1, true)
    v.setBigUint64(16, 0x0123_4567_89ab_cdefn, true)
    nc.publish(topicSubjects(name).event("t"), buf.slice(0, 24 + n))
    await nc.flush()
    const seen: string[] = []
    await until(() => {
      for (const ev of watch.poll()) seen.push(ev.text())
      return seen.length === 6
    }, "the other host's event is in the ring")
    expect(seen).toContain("from-b")
    await stored(name, 6)
    first.proc.kill("SIGKILL")
    await first.proc.exited
    // the hub is down: its host goes on publishing into the ring
    for (let i = 5; i < 10; i++) local.publish({ type: "t", data: `e${i}` })
    const second = bridge()
    cleanup.push(() => second.kill())
    await second.waitLine(/^bridging \d+$/)
    await stored(name, 11)
    const reader = await openDurable(name)
    const sub = await reader.subscribeDurable({}, { from: "oldest" })
    const texts = (await take(sub, 11)).map((e) => e.text)
    expect(texts.filter((t) => t !== "from-b")).toEqual(Array.from({ length: 10 }, (_, i) => `e${i}`))
    expect(texts.filter((t) => t === "from-b").length).toBe(1)
    expect(await sub.receive(300)).toBeUndefined() // nothing twice
  }, 60_000)

  test("an id the stream's limits discarded restarts at the oldest it holds (`restarted`), and the events after come once", async () => {
    const name = busName("dur")
    const topic = await openDurable(name, { durable: { maxBytes: 4096 } })
    for (let i = 0; i < 100; i++) topic.publish({ type: "t", data: `x${i}`.padEnd(64, ".") })
    await stored(name, 100)
    const sub = await topic.subscribeDurable({}, { from: 3 })
    expect(sub.restarted).toBe(true)
    const first = await sub.receive(10_000)
    expect(first!.id).toBeGreaterThan(4)
    const rest = await take(sub, 100 - first!.id)
    expect(rest.at(-1)!.id).toBe(100)
    // an id past the stream's last (another stream's, since deleted) starts at the oldest too
    const future = await topic.subscribeDurable({}, { from: 1_000_000 })
    expect(future.restarted).toBe(true)
    expect((await future.receive(10_000))!.id).toBe(first!.id)
  }, 30_000)

  test("messages on the stream's subjects that are no events are skipped and counted, never handed out", async () => {
    const name = busName("dur")
    const topic = await openDurable(name)
    const sub = await topic.subscribeDurable({}, { from: "oldest" })
    const nc = await connect({ servers: url })
    cleanup.push(() => nc.close())
    const subject = topicSubjects(name).event("t")
    nc.publish(subject, new TextEncoder().encode("hello, not an event"))
    const junk = new Uint8Array(24 + 40)
    junk[0] = 1
    junk[1] = 1
    junk[24 + 4] = 200 // a type longer than the message
    nc.publish(subject, junk)
    nc.publish(subject, new Uint8Array(0))
    await stored(name, 3) // the bridge's connection is another: the real event must come after
    topic.publish({ type: "t", data: "real" })
    const [ev] = await take(sub, 1)
    expect(ev).toMatchObject({ type: "t", text: "real", id: 4 })
    expect(sub.corrupt).toBe(3)
  }, 30_000)

  test("a stream deleted under a reader: the events read before it come first, then receive() throws TopicStreamError once and the subscription is closed", async () => {
    const name = busName("dur")
    const topic = await openDurable(name)
    const sub = await topic.subscribeDurable({}, { from: "oldest" })
    for (let i = 0; i < 3; i++) topic.publish({ type: "t", data: `d${i}` })
    await stored(name, 3)
    const nc = await connect({ servers: url })
    cleanup.push(() => nc.close())
    expect((await take(sub, 3)).map((e) => e.text)).toEqual(["d0", "d1", "d2"])
    await (await jetstreamManager(nc)).streams.delete(streamOf(name))
    const e = await rejection(sub.receive(20_000))
    expect(e).toBeInstanceOf(TopicStreamError)
    expect(sub.isClosed).toBe(true)
    expect(await sub.receive(10)).toBeUndefined()
    // the topic itself goes on: its ring serves, and the stream comes back when a process opens it durable again
    const ring = topic.subscribe()
    topic.publish({ type: "t", data: "after" })
    expect(ring.poll().count).toBe(1)
  }, 60_000)

  test("closing the topic ends its stream subscribers: a waiting receive() resolves undefined", async () => {
    const topic = await Topic.open(busName("dur"), { remote: nats(url), durable: true })
    const sub = await topic.subscribeDurable()
    const waiting = sub.receive()
    await topic[Symbol.asyncDispose]()
    expect(await waiting).toBeUndefined()
    expect(sub.isClosed).toBe(true)
  }, 30_000)

  test("mistakes are refused with a typed error before anything is made", async () => {
    const name = busName("dur")
    await expect(Topic.open(name, { durable: true })).rejects.toThrow(/durable needs remote/)
    await expect(Topic.open(name, { remote: nats(url), durable: { maxByte: 1 } as never })).rejects.toThrow(
      /maxByte.*did you mean "maxBytes"/,
    )
    await expect(Topic.open(name, { remote: nats(url), durable: { maxBytes: -1 } })).rejects.toThrow(RangeError)
    await expect(Topic.open(name, { remote: nats(url), durable: "yes" as never })).rejects.toThrow(TypeError)
    // a server without JetStream
    const e = await rejection(Topic.open(name, { remote: nats(plainUrl), durable: true }))
    expect(e).toBeInstanceOf(TopicStreamError)
    expect(String(e)).toMatch(/cannot be durable.*nats-server -js/)
    // a stream of that name that is not this topic's
    const nc = await connect({ servers: url })
    cleanup.push(() => nc.close())
    const jsm = await jetstreamManager(nc)
    const taken = busName("dur")
    await jsm.streams.add({ name: streamOf(taken), subjects: ["elsewhere.>"] })
    const m = await rejection(Topic.open(taken, { remote: nats(url), durable: true }))
    expect(m).toBeInstanceOf(TopicStreamError)
    expect(String(m)).toMatch(/not this topic's/)
    // a topic that is not durable has no stream to subscribe to
    const local = await Topic.open(busName("dur"), { remote: nats(url) })
    cleanup.push(() => local[Symbol.asyncDispose]())
    await expect(local.subscribeDurable()).rejects.toThrow(TopicStreamError)
    const topic = await openDurable(busName("dur"))
    await expect(topic.subscribeDurable({}, { from: -1 })).rejects.toThrow(RangeError)
    await expect(topic.subscribeDurable({}, { idle: "spin" } as never)).rejects.toThrow(/idle/)
    await expect(topic.subscribeDurable({ typ: "x" } as never)).rejects.toThrow(/typ/)
  }, 30_000)
})
