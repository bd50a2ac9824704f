// A durable topic across two simulated hosts (test/support/hosts.ts, JetStream on both servers, clustered):
// docs/PROTOCOL.md §11.6. Both hosts publish; an id a stream subscriber saw on host A resumes a stream subscriber
// on host B exactly after it: the same events, the same ids, the same order, then live events as they come.
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { busName, FIXTURES, until } from "../support/helpers.ts"
import { numberedPublisher, readStream } from "../support/events/numbered.ts"
import { type HostName, hostsPerFile } from "../support/hosts.ts"
import { nats } from "../../src/nats/index.ts"
import { streamOf } from "../../src/nats/internal.ts"

const on = hostsPerFile("two-host durable topic", { jetstream: true })
const { skip, cleanup } = on

const member = (name: string, ...args: string[]) =>
  on.hosts.spawnOnB([process.execPath, join(FIXTURES, "events/topic-member.ts"), name, on.hosts.b.natsUrl, ...args])

describe.skipIf(skip !== null)("a durable topic across two hosts", () => {
  test("an id seen on host A resumes on host B exactly after it: same events, ids and order, then live ones", async () => {
    const name = busName("dh")
    await using topic = await Topic.open(name, { remote: nats(on.hosts.a.natsUrl), durable: true })
    const onA = await topic.subscribeDurable({}, { from: "oldest" })
    for (let i = 0; i < 10; i++) topic.publish({ type: "t", data: `a${i}` })
    const pub = member(name, "dpub", "10") // host B's own ring; its bridge stores p0 … p9
    cleanup.push(() => pub.kill())
    expect(await pub.exited).toBe(0)

    const seenA: string[] = []
    while (seenA.length < 20) {
      const ev = await onA.receive(20_000)
      if (!ev) throw new Error(`host A's stream subscriber got ${seenA.length} of 20`)
      seenA.push(`ev ${ev.id} ${ev.text()}`)
    }
    expect(seenA.map((l) => Number(l.split(" ")[1]))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(seenA.filter((l) => l.includes(" p")).length).toBe(10) // host B's events are in the one order too
    const k = 7 // the client "disconnects" from host A after the 7th event

    const onB = member(name, "dsub", String(k))
    cleanup.push(() => onB.kill())
    await onB.waitLine(/^ready \d+$/, 20_000)
    const evs = () => onB.lines.filter((l) => l.startsWith("ev "))
    await until(() => evs().length >= 20 - k, "host B replays the events after id 7", 20_000)
    expect(evs()).toEqual(seenA.slice(k))

    // live: published on host A now, reaching both stream subscribers with the same id
    topic.publish({ type: "t", data: "live" })
    const live = await onA.receive(20_000)
    expect(live!.id).toBe(21)
    await until(() => evs().length >= 20 - k + 1, "host B gets the live event", 20_000)
    await Bun.sleep(100)
    expect(evs().slice(20 - k)).toEqual(["ev 21 live"])
  }, 120_000)

  test("the server holding the stream killed with -9 and restarted mid-stream: the stream holds every event published, once", async () => {
    const name = busName("dk")
    await using topic = await Topic.open(name, { remote: nats(on.hosts.a.natsUrl), durable: true })
    const nc = await connect({ servers: on.hosts.a.natsUrl })
    const info = await (await jetstreamManager(nc)).streams.info(streamOf(name))
    await nc.close()
    const holder: HostName = info.cluster?.leader === on.hosts.b.serverName ? "b" : "a"
    const N = 3000
    const p = numberedPublisher(topic, "t", N, 20)
    try {
      await p.publish(() => p.count >= 1000)
      await on.hosts.killNats(holder)
      const killedAt = p.count
      await p.publish(() => p.count >= killedAt + 500) // while the stream has no server
      await on.hosts.restartNats(holder)
    } finally {
      if (!on.hosts.natsRunning(holder)) await on.hosts.restartNats(holder)
    }
    await p.publish(() => false)
    const got = await readStream(topic, N)
    const stats = topic.bridgeStats()!
    // each once; not always in the order published: a message sent as the stream came back may be stored before
    // one sent while it was away, which goes in when sent again (PROTOCOL §11.6)
    expect(got.map(Number).sort((x, y) => x - y)).toEqual(Array.from({ length: N }, (_, k) => k))
    expect({ unsent: stats.unsent, sent: stats.sent }).toEqual({ unsent: 0, sent: N })
    console.log(
      `host ${holder}'s server (the stream's) killed: ${got.length} of ${N} in the stream; ${stats.reasons.at(-1)}`,
    )
  }, 120_000)
})
