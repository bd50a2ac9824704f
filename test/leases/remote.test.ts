// Cluster contests on one host (docs/PROTOCOL.md §12): a nats-server with JetStream of the test's own, contest
// objects with connections of their own (so each is a separate contender), and child processes where a clock or a
// pause must be a process's own. What every transport does (claim, renew, release, wake-ups, expiry, takeover
// after kill -9, fencing tokens) is test/conformance/lease-remote.test.ts; the two-host races, kill -9 and SIGSTOP
// are in test/leases/hosts.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import {
  type ClusterContest,
  Contest,
  ContestModeError,
  type ContestOpenError,
  ContestUnavailableError,
  type ClusterLease,
  InvalidSubjectError,
  LeaseLostError,
  NotFoundError,
  ProtocolError,
} from "../../src/leases/index.ts"
import { FIXTURES, busName, rejection, type Child } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"
import { spawn } from "../../bench/lib/child.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the cluster contest tests are skipped: ${skip}`)

let nats: { url: string; server: Child }
beforeAll(async () => {
  if (!skip) nats = await startNats({ jetstream: true })
}, 30_000)
afterAll(async () => {
  await nats?.server.kill()
})

const open = (name: string, marginMs?: number) =>
  Contest.open(name, { remote: viaNats(nats.url), ...(marginMs === undefined ? {} : { marginMs }) })
const S = { kind: 3, label: "leader" }
const M = { kind: 9, label: "leader" } // the subject of test/support/leases/kv-lease-member.ts
const MEMBER = join(FIXTURES, "leases/kv-lease-member.ts")

/** A fencing storage: takes a write only with a token at least as high as the highest it took. */
function fencingStorage() {
  let highest = -1n
  const log: string[] = []
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const token = BigInt(new URL(req.url).searchParams.get("token")!)
      const ok = token >= highest
      if (ok) highest = token
      log.push(`${ok ? "ok" : "refused"} ${token}`)
      return new Response(ok ? "ok" : "refused", { status: ok ? 200 : 409 })
    },
  })
  return { url: `http://127.0.0.1:${server.port}`, log, stop: () => server.stop(true) }
}

describe.skipIf(skip !== null)("a cluster contest on JetStream KV", () => {
  test("a claim is a KV create: the bucket's first write, the lease as JSON", async () => {
    const name = busName("kv")
    await using a = await open(name)
    const r1 = await a.tryClaim(S, { owner: "a", ttlMs: 10_000 })
    if (!r1.claimed) throw new Error("a free subject was not claimed")
    const entry = await (await new Kvm(await connect({ servers: nats.url })).open(a.bucket)).get("3.bGVhZGVy")
    expect(entry?.revision).toBe(1) // created: the first write of the bucket
    expect(JSON.parse(entry!.string())).toMatchObject({ v: 1, state: "held", owner: "a", ttlMs: 10_000 })
    await r1.lease.release()
  }, 30_000)
  /** S held by a contest of its own, and the bucket's KV through a connection of the test's. */
  async function withHeld(
    fn: (lease: ClusterLease, kv: Awaited<ReturnType<Kvm["open"]>>, name: string) => Promise<void>,
  ): Promise<void> {
    const name = busName("kv")
    await using a = await open(name)
    const lease = await a.claim(S, { ttlMs: 60_000 })
    const nc = await connect({ servers: nats.url })
    try {
      await fn(lease, await new Kvm(nc).open(a.bucket), name)
    } finally {
      await nc.close()
    }
  }

  test(
    "a renewal after someone else wrote the key is refused (the write is on the holder's revision)",
    () =>
      withHeld(async (lease, kv) => {
        const e = (await kv.get("3.bGVhZGVy"))!
        const other = JSON.parse(e.string()) as { token: string }
        other.token = String(BigInt(other.token) + 1n) // another claim's value: someone else wrote
        await kv.update("3.bGVhZGVy", JSON.stringify(other), e.revision)
        const err = await rejection(lease.renew(60_000))
        expect(err).toBeInstanceOf(LeaseLostError)
        expect((err as Error).message).toContain("taken over")
        expect(lease.held).toBe(false)
      }),
    30_000,
  )

  test(
    "a renewal or release of the holder's own that landed late (a partition) is the holder's: the next renew and the release go on its revision",
    () =>
      withHeld(async (lease, kv, name) => {
        const late = async () => {
          const e = (await kv.get("3.bGVhZGVy"))!
          await kv.update("3.bGVhZGVy", e.value, e.revision) // this claim's value again: what a timed-out write leaves
          return e.revision + 1
        }
        const landed = await late()
        await lease.renew(60_000) // was LeaseLostError "taken over", the subject then blocked for a TTL
        expect(lease.held).toBe(true)
        expect((await kv.get("3.bGVhZGVy"))!.revision).toBe(landed + 1)
        await late()
        expect(await lease.release()).toBe(true)
        expect(JSON.parse((await kv.get("3.bGVhZGVy"))!.string())).toMatchObject({ state: "free" })
        await using b = await open(name)
        expect((await b.tryClaim(S, { ttlMs: 10_000 })).claimed).toBe(true) // free at once, not after a TTL
      }),
    30_000,
  )

  test("tokens keep increasing across a re-created bucket", async () => {
    const name = busName("kv")
    let first: bigint
    {
      await using a = await open(name)
      for (let i = 0; i < 3; i++) await (await a.claim(S, { ttlMs: 10_000 })).release()
      const l = await a.claim(S, { ttlMs: 10_000 })
      first = l.token
      await l.release()
      const nc = await connect({ servers: nats.url })
      await (await new Kvm(nc).open(a.bucket)).destroy()
      await nc.close()
    }
    await using b = await open(name)
    const l = await b.claim(S, { ttlMs: 10_000 })
    expect(l.token).toBeGreaterThan(first)
    await l.release()
  }, 30_000)

  test("a value that is not a lease is reported as ProtocolError and never written over", async () => {
    const name = busName("kv")
    await using a = await open(name)
    const nc = await connect({ servers: nats.url })
    try {
      const kv = await new Kvm(nc).open(a.bucket)
      await kv.put("3.bGVhZGVy", "not a lease")
      expect(await rejection(a.tryClaim(S, { ttlMs: 1000 }))).toBeInstanceOf(ProtocolError)
      expect((await kv.get("3.bGVhZGVy"))!.string()).toBe("not a lease")
    } finally {
      await nc.close()
    }
  }, 30_000)

  test("a token past u64 is not a lease, and a claim after token 2^64 - 1 is refused: nobody writes a token a reader cannot take back", async () => {
    const name = busName("kv")
    await using a = await open(name)
    await using b = await open(name)
    const nc = await connect({ servers: nats.url })
    try {
      const kv = await new Kvm(nc).open(a.bucket)
      for (const token of ["99999999999999999999", "18446744073709551616", "18446744073709551615"]) {
        const value = JSON.stringify({ v: 1, state: "free", token })
        await kv.put("3.bGVhZGVy", value)
        for (const c of [a, b]) {
          const err = await rejection(c.tryClaim(S, { ttlMs: 1000 }))
          expect(err).toBeInstanceOf(ProtocolError)
          expect((err as Error).message).toContain("3.bGVhZGVy")
        }
        expect((await kv.get("3.bGVhZGVy"))!.string()).toBe(value) // nothing written over it
      }
      await kv.put("3.bGVhZGVy", JSON.stringify({ v: 1, state: "free", token: "18446744073709551614" }))
      const won = await a.tryClaim(S, { ttlMs: 1000 }) // the last token there is
      if (!won.claimed) throw new Error("a free subject was not claimed")
      expect(won.lease.token).toBe(18446744073709551615n)
      await won.lease.release()
    } finally {
      await nc.close()
    }
  }, 30_000)

  test("a name is local or cluster-wide on a host, never both: ContestModeError either way, nothing left open", async () => {
    const name = busName("kv")
    const local = await Contest.open(name)
    const refused = await rejection(open(name))
    expect(refused).toBeInstanceOf(ContestModeError)
    expect((refused as ContestModeError).reason).toBe("mode")
    local.close()
    const cluster = await open(name)
    try {
      const refusedLocal = await rejection(Contest.open(name))
      expect(refusedLocal).toBeInstanceOf(ContestModeError)
      expect((refusedLocal as ContestModeError).reason).toBe("mode")
      // from another process too (the marker is an abstract socket, §12.5)
      const p = Bun.spawnSync([
        process.execPath,
        "-e",
        `import { Contest } from "${join(import.meta.dir, "..", "..", "src", "leases", "index.ts")}"; Contest.open(${JSON.stringify(name)}).then(() => console.log("opened"), (e) => console.log(e.name))`,
      ])
      expect(p.stdout.toString().trim()).toBe("ContestModeError")
    } finally {
      await cluster.close()
    }
    ;(await Contest.open(name)).close() // the marker went with the last cluster contest of the name
  }, 30_000)

  test("options are checked: ttlMs is required and must exceed twice the margin; create never finds no bucket", async () => {
    const name = busName("kv")
    expect(await rejection(Contest.open(name, { remote: viaNats(nats.url), margnMs: 5 } as never))).toBeInstanceOf(
      TypeError,
    )
    expect(await rejection(Contest.open(name, { remote: viaNats(nats.url), replicas: 0 }))).toBeInstanceOf(RangeError)
    expect(await rejection(Contest.open(name, { remote: viaNats(nats.url), create: "never" }))).toBeInstanceOf(
      NotFoundError,
    )
    const badName = await rejection(Contest.open("no/slash", { remote: viaNats(nats.url) }))
    expect((badName as ContestOpenError).reason).toBe("invalid-name")
    await using a = await open(name)
    expect(await rejection(a.tryClaim(S, {} as never))).toBeInstanceOf(TypeError)
    expect(await rejection(a.tryClaim(S, { ttlMs: 200 }))).toBeInstanceOf(RangeError) // margin 102: 2 × 102 > 200
    expect(await rejection(a.claim(S, { ttlMs: 1000, timout: 5 } as never))).toBeInstanceOf(TypeError)
    expect(await a.holders()).toEqual([])
  }, 30_000)

  test("a label with a lone surrogate is InvalidSubjectError saying why, as on a local contest; an owner's is a TypeError", async () => {
    await using a = await open(busName("kv"))
    for (const label of ["\uD800", "a\uDC00"]) {
      for (const err of [
        await rejection(a.tryClaim({ kind: 1, label }, { ttlMs: 1000 })),
        await rejection(a.claim({ kind: 1, label }, { ttlMs: 1000, timeoutMs: 0 })),
      ]) {
        expect(err).toBeInstanceOf(InvalidSubjectError) // before: TypeError
        expect((err as Error).message).toContain("lone surrogate")
      }
    }
    expect(await rejection(a.tryClaim(S, { ttlMs: 1000, owner: "\uD83D" }))).toBeInstanceOf(TypeError)
    expect(await a.holders()).toEqual([])
  }, 30_000)

  test("slotbus/leases never loads the NATS pieces; slotbus/nats loads its client packages when a cluster contest opens", () => {
    const src = join(import.meta.dir, "..", "..", "src")
    const script = `
      const loaded = () => JSON.stringify(Object.keys(require.cache).filter((k) => k.includes("/src/nats/") || k.includes("@nats-io")).map((k) => k.includes("@nats-io") ? k.match(/@nats-io\\/[a-z-]+/)[0] : "src/nats").filter((k, i, a) => a.indexOf(k) === i).sort())
      const { Contest } = await import(${JSON.stringify(join(src, "leases", "index.ts"))})
      const c = await Contest.open("lazy-" + process.pid)
      c.tryClaim({ kind: 1, label: "x" }).lease?.release()
      c.close()
      console.log(loaded())
      const { nats } = await import(${JSON.stringify(join(src, "nats", "index.ts"))})
      const remote = nats(${JSON.stringify(nats.url)})
      console.log(loaded())
      await Contest.open("lazy-" + process.pid + "-c", { remote }).then((c) => c.close())
      console.log(loaded())`
    const p = Bun.spawnSync([process.execPath, "-e", script])
    const [local, imported, opened] = p.stdout
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as string[])
    expect([local, imported]).toEqual([[], ["src/nats"]])
    expect(opened).toEqual(expect.arrayContaining(["@nats-io/transport-node", "@nats-io/kv", "src/nats"]))
  }, 30_000)

  test("no server: ContestUnavailableError", async () => {
    const err = await rejection(
      Contest.open(busName("kv"), { remote: viaNats({ servers: "nats://127.0.0.1:1", reconnect: false }) }),
    )
    expect(err).toBeInstanceOf(ContestUnavailableError)
    expect(String(err)).toMatch(/no NATS server answers at that address/)
  }, 30_000)

  test("a server without JetStream: ContestUnavailableError saying to start it with -js", async () => {
    const plain = await startNats()
    try {
      const err = await rejection(Contest.open(busName("kv"), { remote: viaNats(plain.url) }))
      expect(err).toBeInstanceOf(ContestUnavailableError)
      expect(String(err)).toMatch(/nats-server -js/)
    } finally {
      await plain.server.kill()
    }
  }, 30_000)

  test("clock rate drift within 1 %: a contender whose clock runs 0.9 % fast still takes over only after the holder's deadline", async () => {
    // marginMs 0: the 1 % of the TTL is the whole margin, so the test is at the edge §12.4 promises
    const name = busName("kv")
    await using a: ClusterContest = await open(name, 0)
    const lease = await a.claim(M, { ttlMs: 1500 })
    const storage = fencingStorage()
    const contender = spawn([process.execPath, MEMBER, "wait", nats.url, name, M.label, "1500", storage.url], {
      env: { ...process.env, KV_CLOCK_RATE: "1.009", KV_MARGIN_MS: "0" },
    })
    try {
      await contender.waitLine(/^waiting$/, 15_000)
      await Bun.sleep(500) // its watch has seen the claim
      await lease.renew(1500) // the revision the contender times, from when its watch delivers it
      // the deadline in ns on the machine's clock, as the contender stamps its claim
      const deadlineNs =
        BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) +
        BigInt(Math.round((lease.expiresAt - Date.now()) * 1e6))
      const m = await contender.waitLine(/^claimed (\d+) (\w+) (\d+)$/, 15_000)
      expect(m[2]).toBe("expired")
      expect(BigInt(m[3]!)).toBeGreaterThan(deadlineNs)
    } finally {
      storage.stop()
      await contender.kill()
    }
  }, 30_000)

  test("a holder cut off from NATS (partition) loses its lease at its deadline, before a contender takes over", async () => {
    const name = busName("kv")
    // the holder reaches the server through a proxy the test can cut without closing anything
    const target = new URL(nats.url)
    let cut = false
    const proxy = Bun.listen<{ peer?: import("bun").Socket; pending: Uint8Array[] }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { pending: [] }
          void Bun.connect({
            hostname: target.hostname,
            port: Number(target.port),
            socket: {
              data: (_, d) => void (cut || s.write(d)),
              close: () => void s.end(),
            },
          }).then((peer) => {
            s.data.peer = peer
            for (const d of s.data.pending) peer.write(d)
          })
        },
        data(s, d) {
          if (cut) return
          if (s.data.peer) s.data.peer.write(d)
          else s.data.pending.push(new Uint8Array(d))
        },
        close(s) {
          s.data.peer?.end()
        },
      },
    })
    const holderSide = await Contest.open(name, {
      remote: viaNats({ servers: `nats://127.0.0.1:${proxy.port}`, timeout: 2000 }),
    })
    await using b = await open(name)
    try {
      const events: string[] = []
      const lease = await holderSide.claim(S, { ttlMs: 1000 })
      lease.signal.addEventListener("abort", () => events.push("holder lost"))
      cut = true
      const renewal = rejection(lease.renew(1000)) // never acknowledged
      const taken = await b.claim(S, { ttlMs: 1000, timeoutMs: 15_000 })
      events.push("contender claimed")
      expect(events).toEqual(["holder lost", "contender claimed"])
      expect(taken.token).toBeGreaterThan(lease.token)
      expect(await renewal).toBeInstanceOf(Error)
      await taken.release()
    } finally {
      cut = false
      proxy.stop(true)
      await holderSide.close().catch(() => {})
    }
  }, 30_000)
})

test("src/leases/README.md's table lists exactly the options Contest.open takes with remote", async () => {
  const readme = readFileSync(join(import.meta.dir, "..", "..", "src", "leases", "README.md"), "utf8")
  const rows = readme
    .split("| `Contest.open(name, options)` with `remote` | |\n|---|---|\n")[1]!
    .split("\n\n")[0]!
    .split("\n")
    .map((r) => /^\| `(\w+)` \|/.exec(r)?.[1])
  const err = await rejection(Contest.open("readme", { remote: viaNats("nats://127.0.0.1:1"), "?": 1 } as never))
  const taken = /the options are (.*)$/.exec((err as Error).message)![1]!.split(", ")
  expect(rows.sort()).toEqual(taken.sort())
})
