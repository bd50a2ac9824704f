// Cluster contests (docs/PROTOCOL.md §12) when the link to NATS fails under a waiting claim: a watch whose
// consumer create was lost, a claim's signal or timeoutMs while a request is on the wire, a server killed -9, and
// a close while a claim is in flight. A nats-server with JetStream of the file's own; one contender's link goes
// through a TCP relay (natsRelay) that cuts it. Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import {
  Contest,
  ContestClosedError,
  ContestUnavailableError,
  type ClusterLease,
  TimeoutError,
} from "../../src/leases/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { busName, rejection, until } from "../support/helpers.ts"
import { natsPerFile, natsRelay, natsSkipReason, startNats } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the cluster contest outage tests are skipped: ${skip}`)
const nats = natsPerFile(skip, { jetstream: true })
const S = { kind: 4, label: "leader" }
const TTL = 20_000 // long: a waiter woken only by the holder's expiry would show

/** Whether `p` settles within `ms`: "settled", or "pending" after `ms`. */
const within = (p: Promise<unknown>, ms: number) =>
  Promise.race([
    p.then(
      () => "settled",
      () => "settled",
    ),
    Bun.sleep(ms).then(() => "pending"),
  ])

async function open(name: string, url = nats.url) {
  const c = await Contest.open(name, { remote: viaNats({ servers: url, reconnectTimeWait: 50 }) })
  nats.cleanup.push(() => c.close())
  return c
}

async function held(name: string): Promise<ClusterLease> {
  const r = await (await open(name)).tryClaim(S, { owner: "holder", ttlMs: TTL })
  if (!r.claimed) throw new Error("a free subject was not claimed")
  return r.lease
}

describe.skipIf(skip !== null)("a cluster contest when the link fails", () => {
  test("a watch whose consumer create was lost is made again: the next waiter wakes at the release", async () => {
    const name = busName("cut")
    const lease = await held(name)
    const relay = await natsRelay(nats.url)
    nats.cleanup.push(relay.close)
    const b = await open(name, relay.url)
    const cut = relay.cutOn("$JS.API.CONSUMER.CREATE")
    // the first wait's watch is lost with its link: the claim fails as the server did not answer
    expect(await rejection(b.claim(S, { ttlMs: TTL }))).toBeInstanceOf(ContestUnavailableError)
    await cut
    const waiting = b.claim(S, { owner: "b", ttlMs: TTL })
    nats.cleanup.push(async () => void waiting.then((l) => l.release()).catch(() => {})) // (b's close ends a wait)
    await Bun.sleep(500) // (its watch made)
    expect(await lease.release()).toBe(true)
    // woken by the watch, not at the holder's TTL (20 s)
    expect(await within(waiting, 5_000)).toBe("settled")
    expect((await waiting).owner).toBe("b")
  }, 30_000)

  test("a claim whose signal aborts during its first attempt rejects with its reason at once", async () => {
    const name = busName("abort")
    const lease = await held(name)
    const b = await open(name)
    const ac = new AbortController()
    const waiting = b.claim(S, { owner: "b", ttlMs: TTL, signal: ac.signal })
    const reason = new Error("my abort")
    ac.abort(reason) // while its first tryClaim is on the wire
    expect(await within(waiting, 2_000)).toBe("settled") // not at the holder's TTL (20 s)
    expect(await rejection(waiting)).toBe(reason)
    expect(await lease.release()).toBe(true)
  }, 30_000)

  test("with the server killed -9, claim gives up at its timeoutMs and at its signal, not at the request's 5 s", async () => {
    const own = await startNats({ jetstream: true })
    nats.cleanup.push(async () => void (await own.server.kill()))
    const name = busName("down")
    const b = await open(name, own.url)
    await own.server.kill() // SIGKILL
    const timed = b.claim(S, { ttlMs: TTL, timeoutMs: 500 })
    const reason = new Error("given up")
    const ac = new AbortController()
    const aborted = b.claim(S, { ttlMs: TTL, signal: ac.signal })
    setTimeout(() => ac.abort(reason), 500)
    expect(await within(timed, 1_500)).toBe("settled")
    expect(await within(aborted, 1_000)).toBe("settled")
    const e = await rejection(timed)
    expect(e).toBeInstanceOf(TimeoutError)
    expect((e as Error).message).toContain("500 ms")
    expect(await rejection(aborted)).toBe(reason)
  }, 30_000)

  test("timeoutMs 0 is one try, as in a local contest: a free subject is claimed, a held one is TimeoutError", async () => {
    const name = busName("once")
    const c = await open(name)
    const lease = await c.claim(S, { owner: "once", ttlMs: TTL, timeoutMs: 0 })
    expect(lease.held).toBe(true)
    const other = await open(name)
    const e = await rejection(other.claim(S, { owner: "other", ttlMs: TTL, timeoutMs: 0 }))
    expect(e).toBeInstanceOf(TimeoutError)
    expect((e as Error).message).toContain("is still held by once")
    expect(await lease.release()).toBe(true)
  })

  test("a tryClaim in flight when its contest is closed rejects with ContestClosedError", async () => {
    const name = busName("close")
    const seen = new Set<string>()
    for (let i = 0; i < 10; i++) {
      const c = await Contest.open(name, { remote: viaNats(nats.url) })
      const subject = { kind: 4, label: `g${i}` }
      const claiming = c.tryClaim(subject, { owner: "closer", ttlMs: TTL }).then(
        (r) => (r.claimed ? "claimed" : "held"),
        (e: Error) => e,
      )
      await Bun.sleep(i * 0.2) // the close at different points of the claim's round trip
      await c.close()
      const r = await claiming
      seen.add(typeof r === "string" ? r : r.constructor.name)
      if (typeof r !== "string") expect(r).toBeInstanceOf(ContestClosedError)
    }
    expect(seen.has("ContestClosedError")).toBe(true)
  }, 30_000)

  test("a claim whose write landed but whose answer had not come back at close is let go: no claim held", async () => {
    const name = busName("ghost")
    const watcher = await open(name)
    const relay = await natsRelay(nats.url)
    nats.cleanup.push(relay.close)
    const c = await Contest.open(name, { remote: viaNats(relay.url) })
    const answers = relay.holdAfter("PUB $KV.") // the claim's write (not the read before it) goes through, its answer waits
    const claiming = rejection(c.tryClaim(S, { owner: "closer", ttlMs: TTL }))
    await until(async () => (await watcher.holders()).length === 1, "the claim's write landed")
    const closing = c.close()
    answers.release()
    await closing
    expect(await claiming).toBeInstanceOf(ContestClosedError)
    expect(await watcher.holders()).toEqual([]) // not held for its TTL by a process that left
  }, 30_000)
})
