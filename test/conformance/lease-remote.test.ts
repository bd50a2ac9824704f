// The LeaseRemote conformance suite (src/leases/table.ts): the same tests against every transport of transports.ts,
// through cluster contests (`Contest.open(name, { remote })`). Contenders are contest objects of this process, each
// with a connection of its own, and a holder process on another host (transports.ts's anotherHost) where it must
// die: claim, renew, release, a waiting claim woken by a release, expiry, takeover after kill -9 of the holder, and
// fencing tokens that only ever increase. The holder process runs under Bun, and again under Node 26 (issue 67).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { type ClusterContest, Contest, LeaseLostError } from "../../src/leases/index.ts"
import { busName, observed, outcome, rejection } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { anotherHost, serverPerFile, TRANSPORTS, type Transport } from "./transports.ts"

const S = { kind: 9, label: "leader" } // the subject test/support/conformance/conformance-lease.ts claims
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

afterAll(removeNodeBuilds)

describe.each(TRANSPORTS.map((t) => [t.name, t] as [string, Transport]))("a cluster contest over %s", (name, t) => {
  const skip = t.skip()
  if (skip) console.warn(`skipped: the LeaseRemote conformance suite over ${name} (${skip})`)
  const it = test.skipIf(skip !== null)
  const server = serverPerFile(t, { leases: true })
  let cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const f of cleanup.reverse()) await f()
    cleanup = []
  })
  async function open(contest: string): Promise<ClusterContest> {
    const c = await Contest.open(contest, { remote: t.remote(server.address) })
    cleanup.push(() => c.close())
    return c
  }

  it("a claim holds the subject: another contender yields and sees the holder; released, the other claims it with a larger token", async () => {
    const contest = busName("cl")
    const a = await open(contest)
    const b = await open(contest)
    const r1 = await a.tryClaim(S, { owner: "a", ttlMs: 10_000 })
    if (!r1.claimed) throw new Error("a free subject was not claimed")
    expect(r1.lease.from).toBe("free")
    const r2 = await b.tryClaim(S, { owner: "b", ttlMs: 10_000 })
    if (r2.claimed) throw new Error("a held subject was claimed twice")
    expect(r2.holder).toMatchObject({ owner: "a", token: r1.lease.token, pid: process.pid, ttlMs: 10_000 })
    expect((await b.holders()).map((h) => h.owner)).toEqual(["a"])
    expect(await r1.lease.release()).toBe(true)
    expect(await r1.lease.release()).toBe(false)
    const r3 = await b.tryClaim(S, { owner: "b", ttlMs: 10_000 })
    if (!r3.claimed) throw new Error("a released subject was not claimed")
    expect(r3.lease.token).toBeGreaterThan(r1.lease.token)
    expect(await r3.lease.release()).toBe(true)
    expect(await a.holders()).toEqual([])
  }, 30_000)

  it("renewals keep a claim held past its first TTL; a waiting claim is woken by the release, long before the TTL", async () => {
    const contest = busName("cl")
    const a = await open(contest)
    const b = await open(contest)
    const held = await a.claim(S, { ttlMs: 2000 })
    for (let i = 0; i < 8; i++) {
      await Bun.sleep(400)
      await held.renew(2000)
    }
    // 3.2 s after the claim: held by its renewals alone
    expect(held.held).toBe(true)
    expect((await b.tryClaim(S, { ttlMs: 2000 })).claimed).toBe(false)
    await held.renew(120_000)
    const stop = new AbortController()
    const waiting = observed(b.claim(S, { ttlMs: 10_000, signal: stop.signal }))
    try {
      expect((await outcome(waiting, 300)).state).toBe("hung")
      await held.release()
      const got = await outcome(waiting, 10_000) // without a wake-up it would wait out the 120 s TTL
      if (got.state !== "resolved") throw new Error(`the waiting claim was not woken by the release: ${got.state}`)
      expect(got.value.from).toBe("free")
      expect(got.value.token).toBeGreaterThan(held.token)
      await got.value.release()
    } finally {
      stop.abort()
    }
  }, 30_000)

  it("expiry: the holder's signal aborts before a contender takes over; its lease is lost, renew and release refused", async () => {
    const contest = busName("cl")
    const a = await open(contest)
    const b = await open(contest)
    const events: string[] = []
    const lease = await a.claim(S, { ttlMs: 800 })
    lease.signal.addEventListener("abort", () => events.push("holder lost"))
    const taken = await b.claim(S, { ttlMs: 800, timeoutMs: 10_000 }) // woken by the expiry, not a release
    events.push("contender claimed")
    expect(events).toEqual(["holder lost", "contender claimed"])
    expect(taken.from).toBe("expired")
    expect(taken.token).toBeGreaterThan(lease.token)
    expect(lease.held).toBe(false)
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError)
    expect(await rejection(lease.renew(800))).toBeInstanceOf(LeaseLostError)
    expect(await lease.release()).toBe(false)
    await taken.release()
  }, 30_000)

  // the holder under Bun, and under Node 26 (issue 67; skipped with the install line without it)
  for (const r of PEER_RUNTIMES) if (peerSkip(r)) console.warn(`skipped: the holder under ${r} (${peerSkip(r)})`)
  for (const runtime of PEER_RUNTIMES)
    test.skipIf(skip !== null || peerSkip(runtime) !== null)(
      `a holder on another host, under ${runtime}, killed with kill -9: a waiting contender takes the subject over once its TTL ran out, with a larger token and the holder's trace context as the replaced one`,
      async () => {
        const contest = busName("cl")
        const env = { ...anotherHost(cleanup), TRACEPARENT, TRACESTATE: "vendor=x" }
        const args = [name, server.address, contest, S.label, "1500"]
        const holder = await peerChild(runtime, "conformance/conformance-lease.ts", args, { env })
        cleanup.push(() => holder.kill())
        const token = BigInt((await holder.waitLine(/^claimed (\d+)$/, 20_000))[1]!)
        const b = await open(contest)
        const r = await b.tryClaim(S, { ttlMs: 1500 })
        if (r.claimed) throw new Error("a held subject was claimed twice")
        expect(r.holder).toMatchObject({ token, pid: holder.pid, traceparent: TRACEPARENT, tracestate: "vendor=x" })
        const waiting = observed(b.claim(S, { ttlMs: 1500, timeoutMs: 20_000 }))
        expect((await outcome(waiting, 2000)).state).toBe("hung") // longer than its TTL: the renewals keep it
        await holder.kill("SIGKILL")
        const taken = await waiting
        expect(taken.from).toBe("expired")
        expect(taken.token).toBeGreaterThan(token)
        expect(taken.replacedTraceparent).toBe(TRACEPARENT)
        expect(taken.traceparent).toBeUndefined() // no option, no SDK here: none stored
        await taken.release()
      },
      60_000,
    )

  it("fencing tokens only increase: claim after claim, by contenders in turn, released or expired", async () => {
    const contest = busName("cl")
    const contenders = [await open(contest), await open(contest), await open(contest)]
    const tokens: bigint[] = []
    for (let i = 0; i < 9; i++) {
      const lease = await contenders[i % 3]!.claim(S, { ttlMs: 600, timeoutMs: 10_000 })
      tokens.push(lease.token)
      if (i % 3 !== 2) await lease.release() // every third expires instead
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!)
  }, 60_000)
})
