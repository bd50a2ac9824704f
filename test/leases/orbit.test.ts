// The Orbit contest behaviours, and the lease API around them. Two Contest handles in one process are two
// members (two member records, two claimants), so these run the same table code that processes share.
import { afterEach, describe, expect, test } from "bun:test"
import { readdirSync } from "node:fs"
import {
  Contest,
  ContestClosedError,
  ContestFrameTooLargeError,
  InvalidSubjectError,
  LeaseLostError,
  TimeoutError,
  type Lease,
} from "../../src/leases/index.ts"
import { busName } from "../support/helpers.ts"

const open: Contest[] = []
async function contest(name: string): Promise<Contest> {
  const c = await Contest.open(name, { capacity: 64 })
  open.push(c)
  return c
}
afterEach(() => {
  for (const c of open.splice(0)) c.close()
})

function claimed(r: ReturnType<Contest["tryClaim"]>): Lease {
  if (!r.claimed) throw new Error(`expected a claim, yielded to ${r.holder.owner}`)
  return r.lease
}

describe("the Orbit contest model", () => {
  test("the first claim is claimed and the second yields to it, naming the first owner", async () => {
    const name = busName("orbit")
    const [a, b] = [await contest(name), await contest(name)]
    const subject = { kind: 1, label: "session:x" }
    const first = claimed(a.tryClaim(subject, { owner: "alpha", ttlMs: 10_000 }))
    const second = b.tryClaim(subject, { owner: "beta" })
    expect(second.claimed).toBe(false)
    if (second.claimed) return
    expect(second.holder.owner).toBe("alpha")
    expect(second.holder.subject).toEqual(subject)
    expect(second.holder.claimId).toBe(first.claimId)
    expect(second.holder.token).toBe(first.token)
    expect(second.holder.claimedAt).toBe(first.claimedAt)
    expect(second.holder.expiresAt).toBe(first.expiresAt)
    expect(second.holder.pid).toBe(process.pid)
  })

  test("different labels do not compete", async () => {
    const name = busName("orbit")
    const [a, b] = [await contest(name), await contest(name)]
    claimed(a.tryClaim({ kind: 1, label: "origin:tcp_1" }))
    expect(b.tryClaim({ kind: 1, label: "origin:tcp_2" }).claimed).toBe(true)
  })

  test("the same label under different kinds does not compete", async () => {
    const name = busName("orbit")
    const [a, b] = [await contest(name), await contest(name)]
    claimed(a.tryClaim({ kind: 1, label: "x" }))
    expect(b.tryClaim({ kind: 2, label: "x" }).claimed).toBe(true)
    expect(b.tryClaim({ kind: 1, label: "x" }).claimed).toBe(false)
  })

  test("release lets the next claim through", async () => {
    const name = busName("orbit")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 3, label: "job" }
    const lease = claimed(a.tryClaim(s, { owner: "a" }))
    expect(b.tryClaim(s).claimed).toBe(false)
    expect(lease.release()).toBe(true)
    const next = claimed(b.tryClaim(s, { owner: "b" }))
    expect(next.token).toBeGreaterThan(lease.token)
    expect(next.from).toBe("free")
  })

  test("an expired claim (5 ms TTL, explicit clock) does not block the next", async () => {
    const name = busName("orbit")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "ttl" }
    const t0 = 1_000_000
    const first = claimed(a.tryClaimAt(s, { owner: "a", ttlMs: 5 }, t0))
    expect(first.expiresAt).toBe(t0 + 5)
    expect(b.tryClaimAt(s, { owner: "b" }, t0 + 4).claimed).toBe(false)
    const second = claimed(b.tryClaimAt(s, { owner: "b" }, t0 + 5))
    expect(second.from).toBe("expired")
    expect(second.token).toBeGreaterThan(first.token)
    expect(first.release()).toBe(false) // it was lost, so releasing it cannot free b's claim
    expect(a.tryClaimAt(s, {}, t0 + 6).claimed).toBe(false)
    expect(b.stats().expiries).toBe(1)
  })

  test("a yielding claim leaves nothing behind: after the holder releases, a third claimant gets it", async () => {
    const name = busName("orbit")
    const [a, b, c] = [await contest(name), await contest(name), await contest(name)]
    const s = { kind: 1, label: "leftovers" }
    const held = claimed(a.tryClaim(s, { owner: "a" }))
    for (let i = 0; i < 5; i++) expect(b.tryClaim(s, { owner: "b", ttlMs: 60_000 }).claimed).toBe(false)
    held.release()
    const third = claimed(c.tryClaim(s, { owner: "c" }))
    expect(third.owner).toBe("c")
    expect(a.holders().map((h) => h.owner)).toEqual(["c"])
  })
})

describe("guards", () => {
  test("`using` releases the lease at the end of the block", async () => {
    const name = busName("using")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "scoped" }
    {
      using lease = claimed(a.tryClaim(s))
      expect(lease.held).toBe(true)
      expect(b.tryClaim(s).claimed).toBe(false)
    }
    expect(b.tryClaim(s).claimed).toBe(true)
  })

  test("guardHolder turns an observed holder that is our own into a lease; another member's stays theirs", async () => {
    const name = busName("guard")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "reentrant" }
    const original = claimed(a.tryClaim(s, { owner: "a" }))
    const seenByA = a.tryClaim(s)
    const seenByB = b.tryClaim(s)
    if (seenByA.claimed || seenByB.claimed) throw new Error("the subject is held")
    expect(b.guardHolder(seenByB.holder)).toBeUndefined()
    const again = a.guardHolder(seenByA.holder)
    expect(again?.token).toBe(original.token)
    expect(again!.release()).toBe(true)
    expect(original.held).toBe(false)
    expect(b.tryClaim(s).claimed).toBe(true)
  })

  test("releaseHolder releases an observed claim only while it is the current one", async () => {
    const name = busName("relholder")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "stuck" }
    const lease = claimed(a.tryClaim(s, { owner: "a" }))
    const seen = b.tryClaim(s)
    if (seen.claimed) throw new Error("the subject is held")
    expect(b.releaseHolder(seen.holder)).toBe(true)
    expect(lease.held).toBe(false)
    const mine = claimed(b.tryClaim(s, { owner: "b" }))
    expect(b.releaseHolder(seen.holder)).toBe(false) // stale observation: b's new claim is untouched
    expect(mine.held).toBe(true)
  })

  test("reset clears one subject, or all of them, and their leases are lost", async () => {
    const name = busName("reset")
    const [a, b] = [await contest(name), await contest(name)]
    const l1 = claimed(a.tryClaim({ kind: 1, label: "one" }))
    const l2 = claimed(a.tryClaim({ kind: 1, label: "two" }))
    expect(b.reset({ kind: 1, label: "one" })).toBe(1)
    expect(l1.held).toBe(false)
    expect(l2.held).toBe(true)
    expect(b.reset({ kind: 1, label: "never-claimed" })).toBe(0)
    expect(b.reset()).toBe(1)
    expect(l2.held).toBe(false)
    expect(b.holders()).toEqual([])
  })
})

describe("limits and bad input", () => {
  test.each([
    ["a 97-byte label", { kind: 1, label: "x".repeat(97) }, {}, "label", 96],
    ["a label of 33 two-byte characters over 96 bytes", { kind: 1, label: "é".repeat(49) }, {}, "label", 96],
    ["a 65-byte owner", { kind: 1, label: "ok" }, { owner: "o".repeat(65) }, "owner", 64],
  ] as const)("%s is a ContestFrameTooLargeError naming the limit", async (_what, subject, opts, field, limit) => {
    const c = await contest(busName("limits"))
    let error: unknown
    try {
      c.tryClaim(subject, opts)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ContestFrameTooLargeError)
    const e = error as ContestFrameTooLargeError
    expect(e.field).toBe(field)
    expect(e.limit).toBe(limit)
    expect(e.message).toContain(String(limit))
    expect(c.stats().subjects).toBe(0) // nothing was inserted
  })

  test("labels and owners exactly at the limit are fine", async () => {
    const c = await contest(busName("limits"))
    const r = c.tryClaim({ kind: 1, label: "x".repeat(96) }, { owner: "o".repeat(64) })
    expect(r.claimed).toBe(true)
    expect(c.holders()[0]?.owner).toBe("o".repeat(64))
  })

  test.each([
    ["a negative kind", { kind: -1, label: "x" }],
    ["a fractional kind", { kind: 1.5, label: "x" }],
    ["a kind above 2^32-1", { kind: 2 ** 32, label: "x" }],
    ["a label that is not a string", { kind: 1, label: 42 as unknown as string }],
  ])("%s is an InvalidSubjectError", async (_what, subject) => {
    const c = await contest(busName("subject"))
    expect(() => c.tryClaim(subject)).toThrow(InvalidSubjectError)
  })

  test("a closed contest refuses calls with ContestClosedError", async () => {
    const c = await Contest.open(busName("closed"), { capacity: 64 })
    c.close()
    expect(() => c.tryClaim({ kind: 1, label: "x" })).toThrow(ContestClosedError)
    expect(() => c.stats()).toThrow(ContestClosedError)
  })
})

describe("fencing tokens, renew and the lost signal", () => {
  test("tokens strictly increase per subject, also after every member left and the contest was created again", async () => {
    const name = busName("fence")
    const s = { kind: 9, label: "fenced" }
    const tokens: bigint[] = []
    for (let round = 0; round < 3; round++) {
      const c = await Contest.open(name, { capacity: 64 })
      expect(c.stats().claims).toBe(0) // a new table each round
      for (let i = 0; i < 3; i++) {
        const l = claimed(c.tryClaim(s))
        tokens.push(l.token)
        l.release()
      }
      c.close()
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!)
  })

  test("renew extends a held lease and fails with LeaseLostError once it was lost", async () => {
    const name = busName("renew")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "renewed" }
    const t0 = 5_000_000
    const lease = claimed(a.tryClaimAt(s, { ttlMs: 10 }, t0))
    lease.renew(100, t0 + 8)
    expect(lease.expiresAt).toBe(t0 + 108)
    expect(b.tryClaimAt(s, {}, t0 + 50).claimed).toBe(false) // would have expired at t0 + 10 without the renew
    const taker = claimed(b.tryClaimAt(s, {}, t0 + 108))
    expect(taker.from).toBe("expired")
    expect(() => lease.renew(100, t0 + 109)).toThrow(LeaseLostError)
    expect(() => lease.renew(100, t0 + 110)).toThrow(LeaseLostError) // and stays lost
  })

  test("renew of an expired lease nobody took over is still a loss", async () => {
    const c = await contest(busName("renew"))
    const lease = claimed(c.tryClaimAt({ kind: 1, label: "late" }, { ttlMs: 5 }, 1000))
    expect(() => lease.renew(5, 1005)).toThrow(LeaseLostError)
  })

  test("the signal aborts on release, on expiry and on a takeover by reset", async () => {
    const name = busName("signal")
    const [a, b] = [await contest(name), await contest(name)]
    const released = claimed(a.tryClaim({ kind: 1, label: "r" }))
    const s1 = released.signal
    released.release()
    expect(s1.aborted).toBe(true)
    expect(s1.reason).toBeInstanceOf(LeaseLostError)

    const expiring = claimed(a.tryClaim({ kind: 1, label: "e" }, { ttlMs: 30 }))
    const s2 = expiring.signal
    expect(s2.aborted).toBe(false)
    await new Promise((resolve) => s2.addEventListener("abort", resolve, { once: true }))
    expect(expiring.held).toBe(false)

    const taken = claimed(a.tryClaim({ kind: 1, label: "t" }))
    const s3 = taken.signal
    b.reset({ kind: 1, label: "t" })
    await new Promise((resolve) => s3.addEventListener("abort", resolve, { once: true }))
    expect(s3.reason).toBeInstanceOf(LeaseLostError)
  })
})

describe("waiting claims in one process", () => {
  test("claim() resolves when the holder releases", async () => {
    const name = busName("wait")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "queue" }
    const first = claimed(a.tryClaim(s))
    const waiting = b.claim(s, { owner: "b" })
    await Bun.sleep(20)
    first.release()
    const got = await waiting
    expect(got.owner).toBe("b")
    expect(got.token).toBeGreaterThan(first.token)
  })

  test("claim() rejects with TimeoutError after timeoutMs, and with the abort reason when aborted", async () => {
    const name = busName("wait")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "busy" }
    claimed(a.tryClaim(s))
    expect(b.claim(s, { timeoutMs: 30 })).rejects.toBeInstanceOf(TimeoutError)
    const ac = new AbortController()
    const aborted = b.claim(s, { signal: ac.signal })
    setTimeout(() => ac.abort(new Error("stop")), 20)
    expect(aborted).rejects.toThrow("stop")
  })

  test("a claim waiting on an expiring claim gets it once the TTL passes", async () => {
    const name = busName("wait")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "ttl-wait" }
    claimed(a.tryClaim(s, { ttlMs: 40 }))
    const got = await b.claim(s, { timeoutMs: 5000 })
    expect(got.from).toBe("expired")
  })

  test("every wait gives its thread and eventfd back once the claim is made (cleanup runs after the claim)", async () => {
    const name = busName("wait")
    const [a, b] = [await contest(name), await contest(name)]
    const s = { kind: 1, label: "ping-pong" }
    const fds = () => readdirSync("/proc/self/fd").length
    const threads = () => readdirSync("/proc/self/task").length
    const before = { fds: fds(), threads: threads() }
    let held = claimed(a.tryClaim(s))
    for (let i = 0; i < 30; i++) {
      const next = (i % 2 ? a : b).claim(s, { owner: `round ${i}` })
      await Bun.sleep(1)
      held.release()
      held = await next
      expect(held.owner).toBe(`round ${i}`)
    }
    held.release()
    // each leaked wait would keep a thread and an eventfd: 30 of each
    for (let i = 0; i < 200 && (fds() > before.fds + 5 || threads() > before.threads + 5); i++) await Bun.sleep(10)
    expect(fds()).toBeLessThanOrEqual(before.fds + 5)
    expect(threads()).toBeLessThanOrEqual(before.threads + 5)
  })

  test("closing the contest releases its leases and ends its waits", async () => {
    const name = busName("wait")
    const [a, b] = [await contest(name), await Contest.open(name, { capacity: 64 })]
    const s = { kind: 1, label: "closing" }
    const held = claimed(a.tryClaim(s))
    const waiting = b.claim(s)
    await Bun.sleep(10)
    b.close()
    expect(waiting).rejects.toBeInstanceOf(ContestClosedError)
    held.release()
  })
})

describe("leaving", () => {
  test("close() ends this member's leases at once: others claim their subjects, the leases say lost", async () => {
    const name = busName("leave")
    const a = await Contest.open(name, { capacity: 64 })
    const b = await contest(name)
    const s = { kind: 1, label: "left" }
    const lease = claimed(a.tryClaim(s))
    const signal = lease.signal
    const waiting = b.claim(s, { timeoutMs: 10_000 })
    await Bun.sleep(10)
    a.close()
    expect(signal.aborted).toBe(true)
    expect(lease.held).toBe(false)
    expect(() => lease.renew(1000)).toThrow(LeaseLostError)
    expect((await waiting).from).toBe("holder-gone") // a stale claim: its member record is gone
  })
})

describe("observability", () => {
  test("holders() lists every active claim with its owner, and no expired or released one", async () => {
    const name = busName("holders")
    const [a, b] = [await contest(name), await contest(name)]
    const t = Date.now()
    claimed(a.tryClaim({ kind: 1, label: "one" }, { owner: "a" }))
    const two = claimed(b.tryClaim({ kind: 2, label: "two" }, { owner: "b" }))
    claimed(b.tryClaimAt({ kind: 3, label: "expired" }, { owner: "b", ttlMs: 5 }, t - 1000))
    const gone = claimed(a.tryClaim({ kind: 4, label: "released" }, { owner: "a" }))
    gone.release()
    const seen = a
      .holders()
      .map((h) => `${h.subject.kind}/${h.subject.label}:${h.owner}`)
      .sort()
    expect(seen).toEqual(["1/one:a", "2/two:b"])
    expect(a.holders().find((h) => h.owner === "b")?.token).toBe(two.token)
  })

  test("stats count claims, yields, expiries and releases across members, and keep a leaver's counts", async () => {
    const name = busName("stats")
    const a = await contest(name)
    const b = await Contest.open(name, { capacity: 64 })
    const s = { kind: 1, label: "counted" }
    const first = claimed(a.tryClaimAt(s, { ttlMs: 5 }, 100))
    expect(b.tryClaimAt(s, {}, 101).claimed).toBe(false)
    expect(b.tryClaimAt(s, {}, 102).claimed).toBe(false)
    const second = claimed(b.tryClaimAt(s, {}, 200)) // a's claim expired
    second.release()
    expect(first.release()).toBe(false)
    expect(a.stats()).toMatchObject({
      claims: 2,
      yields: 2,
      expiries: 1,
      takeovers: 0,
      releases: 1,
      members: 2,
      subjects: 1,
    })
    b.close()
    expect(a.stats()).toMatchObject({ claims: 2, yields: 2, expiries: 1, releases: 1, members: 1 })
  })
})
