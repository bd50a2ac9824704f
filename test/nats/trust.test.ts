// The trust sentences of docs/PROTOCOL.md §11.7 (topics across hosts) and §12.6 (cluster contests), each tried
// with a NATS user that has just the rights the sentence names (§10.6's are in hardening.test.ts): a nats-server
// with JetStream and users, raw NATS clients as those users. Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Kvm } from "@nats-io/kv"
import { Topic, TopicStreamError } from "../../src/events/index.ts"
import { ProtocolError, RemoteUnavailableError, SlotBus, SlotWorker } from "../../src/index.ts"
import { Contest, ContestUnavailableError, LeaseLostError } from "../../src/leases/index.ts"
import { bucketOf, keyOf, topicSubjects } from "../../src/nats/internal.ts"
import { busName, rejection, until } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS trust tests are skipped: ${skip}`)

// bus: every right; none: only its own inbox; reader: may subscribe on topics' subjects; writer: may publish there
const nats = natsPerFile(skip, {
  jetstream: true,
  config: `authorization {
    users = [
      { user: bus, password: bus }
      { user: none, password: none, permissions: { publish: "_INBOX.>", subscribe: "_INBOX.>" } }
      { user: reader, password: reader, permissions: { publish: "_INBOX.>", subscribe: ["slotbus.ev.>", "_INBOX.>"] } }
      { user: writer, password: writer, permissions: { publish: ["slotbus.ev.>", "_INBOX.>"], subscribe: "_INBOX.>" } }
    ]
  }`,
})
const { cleanup } = nats
const as = (user: string) => ({ servers: nats.url, user, pass: user })
async function client(user: string): Promise<NatsConnection> {
  const nc = await connect(as(user))
  cleanup.push(() => nc.close())
  return nc
}
const enc = new TextEncoder()

describe.skipIf(skip !== null)("§11.7: who may send and read a topic's events", () => {
  test("no right reads and adds nothing; subscribe reads every event; publish adds events, but one message drops none and adds at most 4,095 to lagged", async () => {
    const topic = await Topic.open(busName("trust-topic"), { remote: viaNats(as("bus")) })
    cleanup.push(() => topic[Symbol.asyncDispose]())
    const local = topic.subscribe({ type: "*" }, { queue: 4096 })
    const { root } = topicSubjects(topic.name)
    await until(() => (topic.bridgeStats()?.subjects.length ?? 0) > 0, "the bridge subscribes for the local subscriber")
    const [none, reader, writer] = [await client("none"), await client("reader"), await client("writer")]
    const heard = { none: 0, noneRefused: false, reader: [] as Uint8Array[] }
    none.subscribe(`${root}.>`, {
      callback: (err) => {
        if (err) heard.noneRefused = true
        else heard.none++
      },
    })
    reader.subscribe(`${root}.>`, { callback: (err, m) => void (err || heard.reader.push(new Uint8Array(m.data))) })
    await Promise.all([none.flush(), reader.flush()])

    // what this host's bridge sends: the reader gets all of it, the client without a right nothing
    for (let i = 0; i < 100; i++) topic.publish({ type: "job.n", data: `e${String(i).padStart(4, "0")}` })
    await until(() => heard.reader.length >= 100, "the reader hears the 100 events")
    expect(heard.none).toBe(0)
    expect(heard.noneRefused).toBe(true)

    // messages of another "host", made from one the reader heard: another ring, bridge 7, its own seq and pos
    const template = heard.reader[0]!
    const message = (seq: number, n: number) => {
      const m = new Uint8Array(template)
      const v = new DataView(m.buffer)
      v.setUint32(4, 7, true)
      v.setUint32(8, seq, true)
      v.setUint32(12, n * 64, true)
      v.setBigUint64(16, 0x5eed5eedn, true)
      m.set(enc.encode(`f${String(n).padStart(4, "0")}`), m.length - 5) // the data is last: "e0000" → "f000n"
      return m
    }
    none.publish(`${root}.job.n`, message(1, 1)) // refused by the server
    await none.flush().catch(() => {})
    writer.publish(`${root}.job.n`, message(1, 2))
    writer.publish(`${root}.job.n`, message(4000, 3)) // 3,998 "lost": within 4,095, whenever it comes
    // far away: more than a sender can send in 10 minutes at 5 M/s (§11.3), so a new epoch, nothing lost
    writer.publish(`${root}.job.n`, message(3_100_000_000, 4))
    writer.publish(`${root}.job.n`, message(3_100_000_001, 5))
    await writer.flush()
    const got: string[] = []
    await until(() => {
      for (const ev of local.poll()) if (ev.text().startsWith("f")) got.push(ev.text())
      return got.length >= 4
    }, "the writer's events reach the local subscriber")
    await Bun.sleep(100)
    for (const ev of local.poll()) if (ev.text().startsWith("f")) got.push(ev.text())
    expect(got).toEqual(["f0002", "f0003", "f0004", "f0005"])
    expect(local.lagged).toBe(3998)
    expect(topic.bridgeStats()).toMatchObject({ lost: 3998, resyncs: 1 })
  }, 30_000)

  test("a durable topic without JetStream rights: Topic.open fails with TopicStreamError naming the refused subject", async () => {
    const err = await rejection(Topic.open(busName("trust-durable"), { remote: viaNats(as("writer")), durable: true }))
    expect(err).toBeInstanceOf(TopicStreamError)
    expect((err as Error).message).toMatch(/Permissions Violation .*\$JS\.API/)
  }, 30_000)
})

describe.skipIf(skip !== null)("§12.6: who may contend in a cluster contest", () => {
  test("no JetStream right on the bucket: Contest.open fails with ContestUnavailableError naming the refused subject", async () => {
    const err = await rejection(Contest.open(busName("trust-nokv"), { remote: viaNats(as("writer")) }))
    expect(err).toBeInstanceOf(ContestUnavailableError)
    expect((err as Error).message).toMatch(/Permissions Violation .*\$JS\.API/)
    expect((err as Error).message).not.toContain("running with JetStream")
  }, 30_000)

  test("reads show every holder; a write takes a subject over (the holder's renew fails), tokens keep increasing, and no token past 2^64 − 1 or unreadable value is ever written", async () => {
    const name = busName("trust-kv")
    const contest = await Contest.open(name, { remote: viaNats(as("bus")) })
    cleanup.push(() => contest[Symbol.asyncDispose]())
    const subject = { kind: 1, label: "job" }
    const lease = await contest.claim(subject, { owner: "holder", ttlMs: 5000 })
    const nc = await client("bus")
    const kv = await new Kvm(nc).open(bucketOf(name))
    const key = keyOf(1, enc.encode("job"))
    const read = async () => (await kv.get(key))!

    // reads: the holder, as §12.1 lays it out
    expect((await read()).json()).toMatchObject({
      state: "held",
      token: String(lease.token),
      owner: "holder",
      pid: process.pid,
      ttlMs: 5000,
    })

    // a write: a held value of the writer's own, with a larger token; the holder loses its lease at its next renew
    const forged = lease.token + 1000n
    await kv.put(
      key,
      JSON.stringify({
        v: 1,
        state: "held",
        token: String(forged),
        claim: "x.1",
        owner: "w",
        ttlMs: 300,
        host: "h",
        pid: 1,
      }),
    )
    expect(await rejection(lease.renew(5000))).toBeInstanceOf(LeaseLostError)
    const next = await contest.claim(subject, { owner: "next", ttlMs: 1000, timeoutMs: 10_000 })
    expect(next.token).toBeGreaterThan(forged)
    await next.release()

    // a token that would not read back is never written: the claim is refused
    await kv.put(key, JSON.stringify({ v: 1, state: "free", token: "18446744073709551615" }))
    expect(await rejection(contest.tryClaim(subject, { ttlMs: 1000 }))).toBeInstanceOf(ProtocolError)
    // nor is a value slotbus cannot read written over
    await kv.put(key, "not a lease")
    const revision = (await read()).revision
    const err = await rejection(contest.tryClaim(subject, { ttlMs: 1000 }))
    expect(err).toBeInstanceOf(ProtocolError)
    expect((err as Error).message).toContain(key)
    expect((await read()).revision).toBe(revision)
  }, 30_000)
})

describe.skipIf(skip !== null)("credentials in a server URL", () => {
  // before: the NATS client reads none in a URL, so nats("nats://bus:bus@…") failed with "Authorization Violation:
  // is the address right…", its password in the message (and `slotbus hub --nats`'s log), and no flag could help
  const withUser = (info: string) => nats.url.replace("://", `://${info}@`)
  test("nats://user:pass@host reaches a server with users: a worker over it answers", async () => {
    const bus = await SlotBus.listen(busName("url-creds"), { remote: viaNats(withUser("bus:bus")) })
    cleanup.push(() => bus.close({ drain: false }))
    const w = await SlotWorker.connect(bus.name, (req) => `got ${req.text()}`, { remote: viaNats(withUser("bus:bus")) })
    cleanup.push(() => w.close())
    await bus.waitForWorkers(1, 5000)
    expect(new TextDecoder().decode(await bus.call("x", { timeoutMs: 5000 }))).toBe("got x")
  }, 30_000)

  test("a wrong password: RemoteUnavailableError that says the server refused the credentials, and shows none", async () => {
    const e = (await rejection(
      SlotBus.listen(busName("url-creds"), { remote: viaNats(withUser("bus:hunter2")) }),
    )) as Error
    expect(e).toBeInstanceOf(RemoteUnavailableError)
    expect(e.message).toContain("the server refused these credentials")
    expect(e.message).not.toContain("hunter2")
    expect(String(viaNats(withUser("bus:hunter2")))).not.toContain("hunter2")
  }, 30_000)

  test("credentials in the URL and in the options both: a TypeError saying to give them once", async () => {
    const e = await rejection(
      SlotBus.listen(busName("url-creds"), { remote: viaNats({ servers: withUser("bus:bus"), token: "t" }) }),
    )
    expect(e).toBeInstanceOf(TypeError)
    expect((e as Error).message).toContain("give them once")
  }, 30_000)
})
