// A two-host chaos soak of a cluster contest (docs/PROTOCOL.md §12): 8 processes, 4 on each host, race for one
// subject for 30 s while, one at a time and at random, a member is killed (kill -9, a new one started on its
// host), a member is SIGSTOPped past its TTL and continued, or the network between the hosts is cut (`ip link set
// … down`, 1–3 s: no JetStream quorum on either side) and mended. The witness is an O_APPEND file where each win
// that was still held after its critical section wrote "<token> <start ns> <end ns>": no two overlap, and tokens
// strictly increase in time. Reproducible: SLOTBUS_CHAOS_SEED=<n> replays a run's choices (the seed is printed).
import { describe, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Child, spawn } from "../../bench/lib/child.ts"
import { busName, FIXTURES, rng } from "../support/helpers.ts"
import { type HostName, hostsPerFile } from "../support/hosts.ts"

const on = hostsPerFile("two-host contest chaos", { jetstream: true })
const { skip, cleanup } = on

const SOAK_MS = 30_000
const TTL_MS = 1000

describe.skipIf(skip !== null)("a cluster contest under chaos on two hosts", () => {
  test("8 processes on 2 hosts race while members are killed, SIGSTOPped and cut off: no overlap, tokens strictly increasing", async () => {
    const name = busName("kvc")
    const witness = join(on.hosts.dir, `witness-${name}`)
    writeFileSync(witness, "")
    const seed = Number(process.env.SLOTBUS_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))
    console.log(`contest chaos: seed ${seed} (SLOTBUS_CHAOS_SEED=${seed} replays its choices)`)
    const r = rng(seed)
    const end = Date.now() + SOAK_MS
    const members: { host: HostName; c: Child }[] = []
    const member = (host: HostName) => {
      const cmd = [process.execPath, join(FIXTURES, "leases/kv-lease-member.ts"), "chaos", on.hosts[host].natsUrl, name]
      cmd.push("leader", witness, String(end), String(TTL_MS))
      const c = host === "a" ? spawn(cmd) : on.hosts.spawnOnB(cmd)
      cleanup.push(() => c.kill())
      members.push({ host, c })
    }
    for (let i = 0; i < 8; i++) member(i < 4 ? "a" : "b")
    await Promise.all(members.map((m) => m.c.waitLine(/^ready$/, 30_000)))

    const actions = { kills: 0, stops: 0, cuts: 0 }
    while (Date.now() < end - 4000) {
      await Bun.sleep(500 + r() * 1000)
      const live = members.filter((m) => m.c.running)
      const m = live[Math.floor(r() * live.length)]!
      const what = r()
      if (what < 0.4) {
        await m.c.kill("SIGKILL")
        actions.kills++
        member(m.host)
      } else if (what < 0.8) {
        m.c.signal("SIGSTOP")
        actions.stops++
        await Bun.sleep(TTL_MS * (0.5 + r() * 1.5)) // often past its TTL
        m.c.signal("SIGCONT")
      } else if (actions.cuts < 2) {
        // each cut costs a JetStream leader election after it (about 5 s with nats-server 2.9): two at most
        await Bun.$`ip link set ${on.hosts.veth} down`
        actions.cuts++
        await Bun.sleep(1000 + r() * 2000)
        await Bun.$`ip link set ${on.hosts.veth} up`
      }
    }
    const results = await Promise.all(
      members
        .filter((m) => m.c.running)
        .map(async (m) => {
          const [, wins, lost, unavailable] = (await m.c.waitLine(/^done (\d+) (\d+) (\d+)$/, 60_000)).map(Number)
          return { host: m.host, wins: wins!, lost: lost!, unavailable: unavailable! }
        }),
    )
    for (const m of members) expect(m.c.lines.filter((l) => l.startsWith("error"))).toEqual([])

    const held = readFileSync(witness, "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split(" ").map(BigInt) as [bigint, bigint, bigint])
      .sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0))
    let overlaps = 0
    let regressions = 0
    for (let i = 1; i < held.length; i++) {
      if (held[i]![1] <= held[i - 1]![2]) overlaps++
      if (held[i]![0] <= held[i - 1]![0]) regressions++
    }
    const sum = (k: "wins" | "lost" | "unavailable") => results.reduce((n, x) => n + x[k], 0)
    console.log(
      `contest chaos: ${held.length} holds in the witness (${sum("wins")} by the members that lived to the end, ` +
        `${results.filter((x) => x.host === "b").reduce((n, x) => n + x.wins, 0)} of them on host B), ` +
        `${sum("lost")} leases found lost after a stop, ${sum("unavailable")} claims refused while cut off; ` +
        `${actions.kills} kills, ${actions.stops} stops, ${actions.cuts} cuts; ${overlaps} overlaps, ${regressions} token regressions`,
    )
    expect({ overlaps, regressions }).toEqual({ overlaps: 0, regressions: 0 })
    expect(held.length).toBeGreaterThan(50)
    expect(actions.kills + actions.stops + actions.cuts).toBeGreaterThan(5)
  }, 180_000)
})
