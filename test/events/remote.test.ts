// Topics across hosts on NATS, on this host (docs/PROTOCOL.md §11): the subjects, the wire, no echo, duplicates and
// gaps, the one bridge per host and its takeover after kill -9. A raw NATS client plays the other hosts' bridges.
// What every transport does (events both ways, once, in order, filters, losses counted) is
// test/conformance/topic-remote.test.ts; test/events/hosts.ci.test.ts runs topics across two simulated hosts. Needs
// `nats-server` (apt-get install -y nats-server).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Topic } from "../../src/events/index.ts"
import { encodeEvent } from "../../src/events/codec.ts"
import { cover, topicSubjects, typeOfSubject } from "../../src/nats/internal.ts"
import type { TopicBridgeHost } from "../../src/events/internal.ts"
import { bunChild, busName, REPO, run, until, type Child } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the topic-over-NATS tests are skipped: ${skip}`)

let server: Child | undefined
let url = ""
beforeAll(async () => {
  if (skip) return
  ;({ url, server } = await startNats())
})
afterAll(async () => {
  await server?.kill()
})

let cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
})

const utf8 = new TextDecoder()
const OTHER_RING = 0x0123456789abcdefn // the ring id the raw client claims as its host's

/** A raw NATS client playing another host: what it hears on the topic's subjects, and what it sends as a bridge. */
async function otherHost(topic: string) {
  const nc: NatsConnection = await connect({ servers: url })
  cleanup.push(() => nc.close())
  const heard: {
    subject: string
    bridge: number
    seq: number
    pos: number
    ring: bigint
    type: string
    data: string
  }[] = []
  nc.subscribe(`${topicSubjects(topic).root}.>`, {
    callback: (_e, m) => {
      const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.length)
      if (m.data.length < 40 || v.getBigUint64(16, true) === OTHER_RING) return // its own, echoed by NATS
      const typeLen = v.getUint16(24 + 4, true)
      const keys = m.data[24 + 6]!
      const dataLen = v.getUint32(24 + 8, true)
      heard.push({
        subject: m.subject,
        bridge: v.getUint32(4, true),
        seq: v.getUint32(8, true),
        pos: v.getUint32(12, true),
        ring: v.getBigUint64(16, true),
        type: utf8.decode(m.data.subarray(40, 40 + typeLen)),
        data: keys === 0 ? utf8.decode(m.data.subarray(m.data.length - dataLen)) : "?",
      })
    },
  })
  await nc.flush()
  /** Sends an event as bridge `bridge` would, with its seq on the subject (§11.2), from position `pos` of its ring. */
  const send = (bridge: number, seq: number, type: string, data: string, routing?: Record<string, string>, pos = 0) => {
    const buf = new Uint8Array(4096)
    const n = encodeEvent(buf.subarray(24), new DataView(buf.buffer, 24), type, routing, data)
    const v = new DataView(buf.buffer)
    v.setUint32(0, 1 | (1 << 8), true)
    v.setUint32(4, bridge, true)
    v.setUint32(8, seq, true)
    v.setUint32(12, pos, true)
    v.setBigUint64(16, OTHER_RING, true)
    nc.publish(topicSubjects(topic).event(type), buf.slice(0, 24 + n))
  }
  return { nc, heard, send }
}

async function openTopic(tag: string, nats = true): Promise<Topic> {
  const t = await Topic.open(busName(tag), nats ? { remote: viaNats(url) } : {})
  cleanup.push(() => t[Symbol.asyncDispose]())
  return t
}

describe("subjects (§11.1)", () => {
  test("a type's parts are subject tokens; other bytes are escaped, so no type is a wildcard", () => {
    const s = topicSubjects("app.audit")
    expect(s.event("job.done")).toBe("slotbus.ev.app~audit.job.done")
    expect(s.event("we ird..*>")).toBe("slotbus.ev.app~audit.we~20ird.~.~2A~3E")
    expect(s.event(".é~")).toBe("slotbus.ev.app~audit.~.~C3~A9~7E")
    expect(s.event("a_b-C9")).toBe("slotbus.ev.app~audit.a_b-C9")
  })

  test.each([
    ["any", "", "slotbus.ev.t.>"],
    ["exact", "job.done", "slotbus.ev.t.job.done"],
    ["exact", "job.", "slotbus.ev.t.job.~"],
    ["prefix", "job.", "slotbus.ev.t.job.>"],
    ["prefix", "job.do", "slotbus.ev.t.job.>"],
    ["prefix", "jo", "slotbus.ev.t.>"],
    ["prefix", "a b.*", "slotbus.ev.t.a~20b.>"],
  ] as const)("a filter %s %j is carried by %s", (mode, type, subject) => {
    expect(topicSubjects("t").filter(mode, type)).toBe(subject)
  })

  test.each(["job.done", "we ird..*>", ".é~", "a", "a."])("the subject of type %j gives the type back", (type) => {
    const s = topicSubjects("t.x")
    expect(new TextDecoder().decode(typeOfSubject(s.root, s.event(type))!)).toBe(type)
  })

  test("the bridge's subjects cover the filters with none covering another (a message matches one)", () => {
    expect(cover(["t.a.b", "t.a.>", "t.c", "t.a.>", "t.c.d", "t.ab"])).toEqual(["t.a.>", "t.ab", "t.c", "t.c.d"])
    expect(cover(["t.a.b", "t.>"])).toEqual(["t.>"])
  })
})

describe.skipIf(skip !== null)("a topic bridged to NATS on this host", () => {
  test("a local event goes out once on its subject; one from another host reaches the local subscriber and is never sent back", async () => {
    const topic = await openTopic("tb")
    const other = await otherHost(topic.name)
    const sub = topic.subscribe({ type: "job.*" })
    await until(() => topic.bridgeStats()!.subjects.length === 1, "the bridge subscribes for job.*")
    expect(topic.bridgeStats()).toMatchObject({ bridging: true, subjects: [`slotbus.ev.${topic.name}.job.>`] })

    topic.publish({ type: "job.done", data: "local-1" })
    await until(() => other.heard.length === 1, "the local event is on NATS")
    other.send(7, 1, "job.done", "remote-1")
    expect((await sub.receive(10_000))?.text()).toBe("local-1")
    expect((await sub.receive(10_000))?.text()).toBe("remote-1")
    topic.publish({ type: "job.done", data: "local-2" })
    await until(() => other.heard.length >= 2, "the second local event is on NATS")
    await Bun.sleep(50)
    // remote-1 was in the ring before local-2: sent back, it would have gone out before it
    expect(other.heard.map((h) => h.data)).toEqual(["local-1", "local-2"])
    expect(other.heard[0]).toMatchObject({ subject: `slotbus.ev.${topic.name}.job.done`, seq: 1, type: "job.done" })
    expect(other.heard[1]).toMatchObject({ seq: 2, bridge: other.heard[0]!.bridge })
    expect(other.heard[0]!.ring).not.toBe(0n)
    expect(other.heard[1]!.ring).toBe(other.heard[0]!.ring)
    expect(topic.bridgeStats()).toMatchObject({ sent: 2, received: 1, duplicates: 0, lost: 0, refused: 0 })
  }, 30_000)

  test("a message sent twice is taken once; a gap in a sender's numbers is counted as lost, with where, and in the lagged of the subscribers it concerns", async () => {
    const topic = await openTopic("tb")
    const other = await otherHost(topic.name)
    const sub = topic.subscribe({ type: "job.*" })
    const keyed = topic.subscribe({ type: "job.done", routing: { user: "u1" } })
    const elsewhere = topic.subscribe({ type: "zzz" })
    await until(() => topic.bridgeStats()!.subjects.length === 2, "the bridge subscribes for job.* and zzz")
    // The bridge lists a subject when it subscribes; the server may take the SUB after another client's PUB (a
    // loaded machine showed it): probe, as another bridge (99), until one is heard, before the messages that count.
    for (let n = 1; ; n++) {
      other.send(99, n, "job.probe", "probe")
      if ((await sub.receive(100))?.text() === "probe") break
    }
    other.send(9, 1, "job.done", "one")
    other.send(9, 1, "job.done", "one") // the same message again: two of the bridge's subscriptions matched it
    other.send(9, 2, "other.x", "not wanted here") // no subscriber of this host wants it: it does not arrive
    other.send(9, 4, "job.done", "four")
    other.send(10, 1, "job.done", "another bridge")
    const got: string[] = []
    for (let i = 0; i < 3; i++) got.push((await sub.receive(10_000))!.text())
    expect(got).toEqual(["one", "four", "another bridge"])
    const s = topic.bridgeStats()!
    expect(s).toMatchObject({ received: 4, duplicates: 1, lost: 2, refused: 0 }) // and the probe heard
    expect(s.reasons.join("\n")).toContain(`slotbus.ev.${topic.name}.job.done from bridge 9: seq jumped from 1 to 4`)
    // the two lost job.done events: exact for a filter by type, an upper bound (an estimate) for one with keys
    expect([sub.received, sub.lagged, sub.estimates]).toEqual([4, 2, 0])
    keyed.poll()
    expect([keyed.received, keyed.lagged, keyed.estimates]).toEqual([0, 2, 1])
    elsewhere.poll()
    expect([elsewhere.received, elsewhere.lagged]).toEqual([0, 0])
  }, 30_000)

  test("one forged message cannot silence a sender or inflate loss: a seq far ahead or behind starts a new epoch, counted; a forged copy of a taken seq is no duplicate", async () => {
    const topic = await openTopic("tf")
    const other = await otherHost(topic.name)
    const sub = topic.subscribe({ type: "job.*" })
    await until(() => topic.bridgeStats()!.subjects.length === 1, "the bridge subscribes for job.*")
    for (let seq = 1; seq <= 10; seq++) other.send(7, seq, "job.done", `real ${seq}`)
    other.send(7, 0xffffffff, "job.done", "forged far ahead") // host B's bridge number, the last seq there is
    for (let seq = 11; seq <= 60; seq++) other.send(7, seq, "job.done", `real ${seq}`)
    other.send(7, 61, "job.done", "forged with the next seq") // taken; the real 61 is other bytes: taken too
    other.send(7, 61, "job.done", "real 61")
    other.send(7, 62, "job.done", "real 62")
    const got: string[] = []
    for (let i = 0; i < 64; i++) got.push((await sub.receive(10_000))!.text())
    const real = got.filter((t) => t.startsWith("real "))
    expect(real).toEqual(Array.from({ length: 62 }, (_, i) => `real ${i + 1}`))
    expect(got.filter((t) => t.startsWith("forged"))).toHaveLength(2)
    const s = topic.bridgeStats()!
    expect(s).toMatchObject({ received: 64, duplicates: 0, lost: 0, resyncs: 2 })
    expect(sub.lagged).toBe(0)
    expect(s.reasons.join("\n")).toContain("its books start afresh")
  }, 30_000)

  test("a loss record is never delivered; a subscriber counts it in lagged when it reads past it or is pushed past it", async () => {
    const topic = await Topic.open(busName("tb"), { capacity: 1 << 16 })
    cleanup.push(() => topic[Symbol.asyncDispose]())
    const host = (topic as unknown as { bridgeHost(): TopicBridgeHost }).bridgeHost()
    const reader = topic.subscribe({ type: "job.*" })
    const sleeper = topic.subscribe({ type: "job.*" }, { queue: 1 << 16 }) // never reads: pushed by the publishers
    const other = topic.subscribe({ type: "other" })
    topic.publish({ type: "job.a", data: "before" })
    host.publishLost(new TextEncoder().encode("job.a"), 5)
    topic.publish({ type: "job.a", data: "after" })
    const got = [...reader.poll()].map((e) => e.text())
    expect(got).toEqual(["before", "after"])
    expect([reader.received, reader.lagged, reader.estimates]).toEqual([2, 5, 0])
    // a whole ring of events behind it: a publisher walks the sleeper's records, the loss record counting 5
    const data = "x".repeat(200)
    for (let i = 0; i < 1000; i++) topic.publish({ type: "job.b", data })
    sleeper.poll()
    expect(sleeper.received + sleeper.lagged).toBe(2 + 5 + 1000)
    expect(sleeper.estimates).toBe(0)
    expect(sleeper.lagged).toBeGreaterThanOrEqual(5)
    other.poll()
    expect([other.received, other.lagged]).toEqual([0, 0])
  })

  // the bridge's own reader of the ring, lapped by the events it wrote in, counted them as this host's unsent
  test("a flood from another host that laps the ring is never this host's unsent: only its own events count", async () => {
    const topic = await Topic.open(busName("tf"), { remote: viaNats(url), capacity: 1 << 16 })
    cleanup.push(() => topic[Symbol.asyncDispose]())
    const other = await otherHost(topic.name)
    const sub = topic.subscribe({ type: "job.*" }, { queue: 1 << 16 })
    await until(() => topic.bridgeStats()!.subjects.length === 1, "the bridge subscribes for job.*")
    const data = "y".repeat(900)
    const N = 3000 // ~3 MB through a 64 KiB ring
    for (let i = 1; i <= N; i++) other.send(9, i, "job.in", data, undefined, i * 1024)
    await other.nc.flush()
    await until(() => topic.bridgeStats()!.received === N, "every event bridged in", 20_000)
    topic.publish({ type: "job.out", data: "mine" })
    await until(() => topic.bridgeStats()!.sent === 1, "this host's one event sent")
    await until(() => other.heard.length === 1, "this host's one event on NATS")
    expect(other.heard.map((h) => h.data)).toEqual(["mine"])
    const stats = topic.bridgeStats()!
    expect({ received: stats.received, lost: stats.lost, unsent: stats.unsent, sent: stats.sent }).toEqual({
      received: N,
      lost: 0,
      unsent: 0,
      sent: 1,
    })
    expect(sub.lagged).toBeGreaterThan(0) // the ring did lap: this subscriber, reading nothing, was pushed past them
  }, 60_000)

  test("late binding is per host: an event bridged in records a binding in this host's ring and gets keys filled in", async () => {
    const topic = await openTopic("tb")
    const other = await otherHost(topic.name)
    topic.bind({ type: "session.registered", keys: ["connector", "session"], fill: "scroll" })
    const sub = topic.subscribe({ type: "session.*", routing: { scroll: "S1" } })
    await until(() => topic.bridgeStats()!.subjects.length === 1, "the bridge subscribes for session.*")
    other.send(4, 1, "session.registered", "bound", { connector: "c", session: "s", scroll: "S1" })
    other.send(4, 1, "session.msg", "filled here", { connector: "c", session: "s" }) // its own subject: seq 1
    const got = [await sub.receive(10_000), await sub.receive(10_000)]
    expect(got.map((e) => e?.text())).toEqual(["bound", "filled here"])
    expect(got[1]!.routing).toEqual({ connector: "c", session: "s", scroll: "S1" })
  }, 30_000)

  test("a message that is not a slotbus event is refused and counted, and the bridge goes on", async () => {
    const topic = await openTopic("tb")
    const other = await otherHost(topic.name)
    const sub = topic.subscribe({})
    await until(() => topic.bridgeStats()!.subjects.length === 1, "the bridge subscribes")
    other.nc.publish(topicSubjects(topic.name).event("job.done"), "hello")
    other.send(3, 1, "job.done", "after")
    expect((await sub.receive(10_000))?.text()).toBe("after")
    expect(topic.bridgeStats()).toMatchObject({ received: 1, refused: 1 })
  }, 30_000)

  test("of three processes with the topic open, one bridges; killed with SIGKILL, another takes over: every event goes out, what it sends again is a resend", async () => {
    const topic = await openTopic("tb", false) // this process publishes only
    const other = await otherHost(topic.name)
    const members: Child[] = []
    for (let i = 0; i < 3; i++) {
      const m = bunChild("events/topic-member.ts", [topic.name, url, "bridge"])
      cleanup.push(() => m.kill())
      members.push(m)
    }
    for (const m of members) await m.waitLine(/^ready \d+$/, 20_000)
    const bridging = () => members.filter((m) => m.lines.some((l) => l.startsWith("bridging")))
    await until(() => bridging().length === 1, "one member bridges", 20_000)
    // an event any host subscribes to: the other host here is the raw client, so publish what goes out anyway
    const burst = async (tag: string, n: number) => {
      for (let i = 0; i < n; i++) topic.publish({ type: "job.done", data: `${tag}-${i}` })
      await until(() => other.heard.filter((h) => h.data.startsWith(`${tag}-`)).length >= n, `${tag} is on NATS`)
    }
    await burst("a", 200)
    const first = bridging()[0]!
    await first.kill("SIGKILL")
    // the kernel frees the dead holder's name once it is done with it: seconds on a loaded machine (§11.4)
    await until(() => bridging().length === 2, "another member takes the bridge over", 30_000).catch((e) => {
      // what each member last said (its election and its NATS connection show in stats and on stderr)
      for (const m of members)
        console.log(
          `member ${m.pid} ${m.running ? "running" : "gone"}: ${m.lines.findLast((l) => l.startsWith("stats ")) ?? "(no stats)"}; stderr: ${m.stderr.slice(-600)}`,
        )
      throw e
    })
    await burst("b", 200)
    await Bun.sleep(100)
    const data = other.heard.map((h) => h.data)
    expect(new Set(data).size).toBe(400)
    expect(new Set(other.heard.map((h) => h.bridge)).size).toBe(2)
    // The successor sends again what its server had not confirmed when the first was killed (§11.5, at most
    // 1,024): each a copy of an "a" event from offset 12 on (ring, pos), so a receiving bridge drops it as a resend.
    const once = new Map<string, (typeof other.heard)[number]>()
    const again = other.heard.filter((h) => (once.has(h.data) ? true : (once.set(h.data, h), false)))
    for (const h of again) {
      const was = once.get(h.data)!
      expect(h.data.startsWith("a-")).toBe(true)
      expect([h.ring, h.pos, h.type]).toEqual([was.ring, was.pos, was.type])
      expect(h.bridge).not.toBe(was.bridge)
    }
    expect(again.length).toBeLessThanOrEqual(1024)
  }, 90_000)

  test("the remote option is checked before anything opens", async () => {
    const name = busName("tb")
    expect(() => viaNats(5 as never)).toThrow(/nats\(\) takes a URL string/)
    expect(() => viaNats("")).toThrow(/the URL is empty/)
    await expect(Topic.open(name, { remote: 5 } as never)).rejects.toThrow(TypeError)
    await expect(Topic.open(name, { remote: url } as never)).rejects.toThrow(
      /remote must be a transport such as nats\(url\)/,
    )
    await expect(Topic.open(name, { remote: {} } as never)).rejects.toThrow(/an object without openTopicBridge/)
    await expect(Topic.open(name, { nats: url } as never)).rejects.toThrow(
      /the option "nats" is now remote: nats\(url\)/,
    )
    await expect(Topic.open(name, { remot: viaNats(url) } as never)).rejects.toThrow(/did you mean "remote"/)
    await expect(Topic.open(name, { create: "never" })).rejects.toThrow(/does not exist/) // and the checks above opened nothing
  })

  test("a topic without the remote option loads neither src/nats nor the NATS client", async () => {
    const script = `
      const { Topic } = await import(${JSON.stringify(`${REPO}/src/events/index.ts`)})
      const t = await Topic.open(${JSON.stringify(busName("tb"))})
      t.publish({ type: "x" })
      t.close()
      console.log(JSON.stringify(Object.keys(require.cache).filter((k) => k.includes("/src/nats/") || k.includes("@nats-io"))))`
    const r = await run([process.execPath, "-e", script], { timeoutMs: 20_000 })
    expect(r.stdout.trim()).toBe("[]")
  })
})

describe.skipIf(skip !== null)("another host's event carrying a trace context (§8.3)", () => {
  test("a version-ff traceparent with ESC in it reaches a subscriber process as no context, and as no routing key", async () => {
    const topic = await openTopic("tbtrace")
    const other = await otherHost(topic.name)
    const sub = bunChild("core/trace-subscriber.ts", [topic.name])
    cleanup.push(() => sub.kill())
    await sub.waitLine(/^ready$/, 15_000)
    await until(() => topic.bridgeStats()!.subjects.length === 1, "the bridge subscribes for the subscriber's type")
    const bad = `ff-${"ab".repeat(16)}-${"cd".repeat(8)}-01-${"\x1b[2J".repeat(37)}\x1b]0`
    expect(bad.length).toBe(207)
    // The bridge lists a subject when it subscribes; the server may take the SUB after another client's PUB (a
    // CI run lost the first event so): send it again until it is processed, the copies dropped as duplicates.
    const states = () => sub.lines.filter((l) => l.startsWith("state ")).length
    for (let tries = 0; states() === 0 && tries < 150; tries++) {
      other.send(7, 1, "seen", "bad", { traceparent: bad, tracestate: "congo=\x1b]0;title\x07" })
      await until(() => states() > 0, "the first event processed", 100).catch(() => {})
    }
    const good = `00-${"ab".repeat(16)}-${"cd".repeat(8)}-01`
    other.send(7, 2, "seen", "good", { traceparent: good, tracestate: "congo=1" })
    await until(() => states() === 2, "both events processed", 15_000)
    const seen = sub.lines.filter((l) => l.startsWith("event ") || l.startsWith("state "))
    expect(seen).toEqual([
      "event none {}",
      "state none no-link",
      `event ${good} {}`,
      `state congo=1 ${"ab".repeat(16)}`,
    ])
  }, 60_000)
})
