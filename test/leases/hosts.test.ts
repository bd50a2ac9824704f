// Cluster contests (docs/PROTOCOL.md §12) on two hosts: host B a network namespace of its own
// (test/support/hosts.ts), each host with its nats-server, clustered, JetStream on. Members are processes of
// test/support/leases/kv-lease-member.ts, each talking to its own host's server. A race of 4 processes with a witness
// file, a holder killed with SIGKILL, and a holder SIGSTOPped past its TTL.
import { describe, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { spawn, type Child } from "../../bench/lib/child.ts"
import { busName, FIXTURES } from "../support/helpers.ts"
import { hostsPerFile } from "../support/hosts.ts"

const on = hostsPerFile("two-host cluster contest", { jetstream: true })
const { skip } = on

const MEMBER = join(FIXTURES, "leases/kv-lease-member.ts")
const LABEL = "leader"

/** A member process on host A or B, talking to that host's nats-server. */
function member(host: "a" | "b", ...args: string[]): Child {
  return memberWith({}, host, ...args)
}
/** member, with more environment (TRACEPARENT: its claims' trace context). */
function memberWith(env: Record<string, string>, host: "a" | "b", ...args: string[]): Child {
  const cmd = [process.execPath, MEMBER, args[0]!, on.hosts[host].natsUrl, ...args.slice(1)]
  const opts = { env: { ...process.env, ...env } }
  return host === "a" ? spawn(cmd, opts) : on.hosts.spawnOnB(cmd, opts)
}

/** A fencing storage on host A's address (host B reaches it over the veth): it refuses a token lower than the highest it took. */
function fencingStorage() {
  let highest = -1n
  const log: string[] = []
  const server = Bun.serve({
    hostname: on.hosts.a.addr,
    port: 0,
    fetch(req) {
      const q = new URL(req.url).searchParams
      const token = BigInt(q.get("token")!)
      const ok = token >= highest
      if (ok) highest = token
      log.push(`${ok ? "ok" : "refused"} ${token} ${q.get("who")}`)
      return new Response(ok ? "ok" : "refused", { status: ok ? 200 : 409 })
    },
  })
  return { url: `http://${on.hosts.a.addr}:${server.port}`, log, stop: () => server.stop(true) }
}

describe.skipIf(skip !== null)("a cluster contest across two hosts", () => {
  test("4 processes on 2 hosts race for one subject for 8 s: the witness shows no overlap and strictly increasing tokens", async () => {
    const name = busName("kvh")
    const witness = join(on.hosts.dir, `witness-${name}`)
    writeFileSync(witness, "")
    const racers = [
      member("a", "race", name, LABEL, witness, "8", "5000"),
      member("a", "race", name, LABEL, witness, "8", "5000"),
      member("b", "race", name, LABEL, witness, "8", "5000"),
      member("b", "race", name, LABEL, witness, "8", "5000"),
    ]
    try {
      const wins = await Promise.all(racers.map(async (r) => Number((await r.waitLine(/^done (\d+)$/, 60_000))[1])))
      const held = readFileSync(witness, "utf8")
        .trim()
        .split("\n")
        .map((l) => l.split(" ").map(BigInt) as [bigint, bigint, bigint])
        .sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0))
      expect(held.length).toBe(wins.reduce((s, n) => s + n, 0))
      let overlaps = 0
      let regressions = 0
      for (let i = 1; i < held.length; i++) {
        if (held[i]![1] <= held[i - 1]![2]) overlaps++
        if (held[i]![0] <= held[i - 1]![0]) regressions++
      }
      expect({ overlaps, regressions }).toEqual({ overlaps: 0, regressions: 0 })
      expect(held.length).toBeGreaterThan(20)
      // both hosts won: the contest really spans them
      expect(wins[0]! + wins[1]!).toBeGreaterThan(0)
      expect(wins[2]! + wins[3]!).toBeGreaterThan(0)
    } finally {
      await Promise.all(racers.map((r) => r.kill()))
    }
  }, 90_000)

  test("kill -9 of the holder on host A: a waiting process on host B claims within TTL + 1 s, with a larger token and the holder's trace context as the replaced one", async () => {
    const name = busName("kvh")
    const storage = fencingStorage()
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    const holder = memberWith({ TRACEPARENT: traceparent }, "a", "hold", name, LABEL, "2000", "400", storage.url)
    let contender: Child | undefined
    try {
      const held = BigInt((await holder.waitLine(/^claimed (\d+)$/, 20_000))[1]!)
      contender = member("b", "wait", name, LABEL, "2000", storage.url)
      await contender.waitLine(/^waiting$/, 20_000)
      await Bun.sleep(1000) // a few renewals: the contender sees the holder alive
      expect(contender.lines.some((l) => l.startsWith("claimed"))).toBe(false)
      process.kill(holder.pid, "SIGKILL")
      const m = await contender.waitLine(/^claimed (\d+) (\w+)/, 2000 + 1000)
      expect(m[2]).toBe("expired")
      expect(BigInt(m[1]!)).toBeGreaterThan(held)
      expect((await contender.waitLine(/^replaced (\S+)$/, 5000))[1]).toBe(traceparent)
      await contender.waitLine(/^storage ok$/, 5000)
    } finally {
      storage.stop()
      await holder.kill()
      await contender?.kill()
    }
  }, 60_000)

  test("a holder SIGSTOPped past its TTL: another host takes over; continued, its renew throws LeaseLostError and the storage refuses its token", async () => {
    const name = busName("kvh")
    const storage = fencingStorage()
    const holder = member("a", "hold", name, LABEL, "1000", "200", storage.url)
    let contender: Child | undefined
    try {
      const held = BigInt((await holder.waitLine(/^claimed (\d+)$/, 20_000))[1]!)
      await holder.waitLine(/^storage ok$/, 5000)
      contender = member("b", "wait", name, LABEL, "1000", storage.url)
      await contender.waitLine(/^waiting$/, 20_000)
      process.kill(holder.pid, "SIGSTOP")
      const m = await contender.waitLine(/^claimed (\d+) (\w+)/, 1000 + 5000)
      expect(BigInt(m[1]!)).toBeGreaterThan(held)
      await contender.waitLine(/^storage ok$/, 5000)
      process.kill(holder.pid, "SIGCONT")
      await holder.waitLine(/^lost LeaseLostError$/, 10_000)
      await holder.waitLine(/^storage refused$/, 5000)
      expect(storage.log.filter((l) => l.startsWith("refused"))).toEqual([`refused ${held} ${holder.pid}`])
    } finally {
      storage.stop()
      try {
        process.kill(holder.pid, "SIGCONT")
      } catch {} // gone already
      await holder.kill()
      await contender?.kill()
    }
  }, 60_000)
})
