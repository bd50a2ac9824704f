// A two-host chaos soak of a topic's bridges (docs/PROTOCOL.md §11.3–11.5): both hosts publish (each a process
// that opened the topic without nats, so never a bridge) and subscribe, while the bridges of both hosts are
// killed (kill -9, a new candidate started) and SIGSTOPped (0.3–1.2 s) at random, one at a time. The witness is
// each subscriber's own record of what it got: every event of the other host arrives at most once, in publish
// order, and what did not arrive is in its `lagged` (a receiving bridge's successor counts what reached the host
// while no process received, §11.4 books; it may count one event too many per such takeover, never too few).
// One action at a time, each takeover done before the next: the new bridge's subscriptions confirmed and the other
// host taking its events. The books count exactly for a (sender bridge, subject) they hold; a sender's first
// messages heard only after a takeover of the receiving bridge are not in them (§11.5, both hosts at once).
// Reproducible: SLOTBUS_CHAOS_SEED=<n> replays a run's choices (the seed is printed).
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { type Child, spawn } from "../../bench/lib/child.ts"
import { busName, FIXTURES, rng, until } from "../support/helpers.ts"
import { type HostName, hostsPerFile } from "../support/hosts.ts"

const on = hostsPerFile("two-host topic chaos")
const { skip, cleanup } = on

const N = 16_000 // events each host publishes during the chaos, 2 a ms
const TAIL = 200 // and after it: a loss shows when its sender's next message arrives (§11.5), so the last ones too
const CAPACITY = 1 << 24 // room for everything published while no bridge runs (a stop lasts at most 1.2 s)

describe.skipIf(skip !== null)("a topic's bridges under chaos on two hosts", () => {
  test("bridges killed and SIGSTOPped at random on both hosts: every event arrives at most once, in order, and received + lagged is what was published", async () => {
    const name = busName("tc")
    const seed = Number(process.env.SLOTBUS_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))
    console.log(`topic chaos: seed ${seed} (SLOTBUS_CHAOS_SEED=${seed} replays its choices)`)
    const r = rng(seed)
    const env = { ...process.env, TOPIC_CAPACITY: String(CAPACITY) }
    const run = (host: HostName, ...args: string[]): Child => {
      const cmd = [process.execPath, join(FIXTURES, "events/topic-member.ts"), name, on.hosts[host].natsUrl, ...args]
      const c = host === "a" ? spawn(cmd, { env }) : on.hosts.spawnOnB(cmd, { env })
      cleanup.push(() => c.kill())
      return c
    }
    const other = (h: HostName): HostName => (h === "a" ? "b" : "a")
    // each host subscribes to the other's events; its subscriber opened the ring first
    const subs = { a: run("a", "lsub", "b.*"), b: run("b", "lsub", "a.*") }
    await Promise.all([subs.a.waitLine(/^ready/, 20_000), subs.b.waitLine(/^ready/, 20_000)])
    const candidates: Record<HostName, Child[]> = { a: [], b: [] }
    const everyCandidate: Child[] = []
    const candidate = (h: HostName) => {
      const c = run(h, "bridge")
      candidates[h].push(c)
      everyCandidate.push(c)
      return c
    }
    for (const h of ["a", "b"] as const) for (let i = 0; i < 2; i++) candidate(h)
    const lastStats = (c: Child) => {
      const l = c.lines.findLast((l) => l.startsWith("stats "))
      type Stats = { bridging: boolean; subjects: string[]; resends: number; lost: number; sent: number }
      return l ? (JSON.parse(l.slice(6)) as Stats) : null
    }
    const bridgeOf = (h: HostName) => candidates[h].find((c) => c.running && lastStats(c)?.bridging)
    for (const h of ["a", "b"] as const) await until(() => bridgeOf(h) !== undefined, `host ${h} has a bridge`, 20_000)
    // interest across: a probe from each host until the other's subscriber has it
    for (const h of ["a", "b"] as const) {
      const heard = () => subs[other(h)].lines.some((l) => l.startsWith("ev probe"))
      await until(
        () => {
          if (!heard()) run(h, "lpub", `${h}.probe`, "1", "probe", "1")
          return heard()
        },
        `a probe from host ${h} reaches host ${other(h)}`,
        30_000,
        300,
      )
    }

    // what each subscriber took of the other host's events, and its counts
    const got = (h: HostName) => {
      const from = other(h)
      const re = new RegExp(`^ev ${from}(\\d+)$`)
      return subs[h].lines.flatMap((l) => {
        const m = re.exec(l)
        return m ? [Number(m[1])] : []
      })
    }
    const count = (h: HostName) => {
      const l = subs[h].lines.findLast((l) => l.startsWith("count "))!
      const [, received, lagged] = l.split(" ").map(Number)
      return { received: received!, lagged: lagged! }
    }
    const pubs = { a: run("a", "lpub", "a.n", String(N), "a", "2"), b: run("b", "lpub", "b.n", String(N), "b", "2") }
    const done = () => pubs.a.lines.includes("published") && pubs.b.lines.includes("published")
    // host h's events flow: the other host's subscriber took 50 more of them than it had (or h published all)
    const flowing = async (h: HostName, what: string) => {
      const from = got(other(h)).length
      await until(() => got(other(h)).length >= from + 50 || pubs[h].lines.includes("published"), what, 30_000, 20)
    }
    // before any action, each host's receiving bridge has the other's chaos events in its books
    for (const h of ["a", "b"] as const) await flowing(h, `host ${h}'s events reach host ${other(h)}`)
    const actions = { kills: { a: 0, b: 0 }, stops: { a: 0, b: 0 } }
    while (!done()) {
      await Bun.sleep(300 + r() * 500)
      const h: HostName = r() < 0.5 ? "a" : "b"
      const bridge = bridgeOf(h)
      if (!bridge) continue // a takeover still under way there
      if (actions.kills.a + actions.kills.b === 0 || r() < 0.5) {
        // the first action is a kill -9: every run has a takeover
        await bridge.kill("SIGKILL")
        actions.kills[h]++
        candidate(h)
        const elected = () => {
          const b = bridgeOf(h)
          return b !== undefined && lastStats(b)!.subjects.length > 0
        }
        await until(elected, `a new bridge on host ${h}, subscribed, after a kill -9`, 20_000)
        await flowing(h, `host ${h}'s new bridge sends, and host ${other(h)} takes it`)
      } else {
        bridge.signal("SIGSTOP")
        actions.stops[h]++
        await Bun.sleep(300 + r() * 900)
        bridge.signal("SIGCONT")
        await flowing(h, `host ${h}'s bridge sends again after SIGCONT`)
      }
    }

    // a last few from each host, so a loss at the end of the chaos shows too (a jump in the next seq)
    const tails = {
      a: run("a", "lpub", "a.n", String(TAIL), "a", "2", String(N)),
      b: run("b", "lpub", "b.n", String(TAIL), "b", "2", String(N)),
    }
    await until(
      () => tails.a.lines.includes("published") && tails.b.lines.includes("published"),
      "the tails are published",
      30_000,
    )
    const total = N + TAIL

    // what each process last said, printed when the accounting times out: which bridge stalled, and where
    const seen = () => {
      for (const h of ["a", "b"] as const) {
        console.log(`host ${h} subscriber: ${subs[h].lines.findLast((l) => l.startsWith("count ")) ?? "(no count)"}`)
        console.log(`host ${h} subscriber: events of host ${other(h)} not received: ${gaps(got(h), total)}`)
        for (const c of candidates[h]) {
          const l = c.lines.findLast((l) => l.startsWith("stats ")) ?? "(no stats)"
          console.log(`host ${h} candidate ${c.pid} ${c.running ? "running" : "gone"}: ${l}`)
        }
      }
    }
    for (const h of ["a", "b"] as const)
      await until(
        () => got(h).length + count(h).lagged >= total,
        `host ${h}'s subscriber accounts for all ${total} events of host ${other(h)} (so far ${got(h).length} received, lagged ${count(h).lagged}; kills ${JSON.stringify(actions.kills)}, stops ${JSON.stringify(actions.stops)})`,
        60_000,
        100,
      ).catch((e) => {
        seen()
        throw e
      })
    await Bun.sleep(500) // anything late, or twice, would show now

    const resends = everyCandidate.reduce((n, c) => n + (lastStats(c)?.resends ?? 0), 0)
    for (const h of ["a", "b"] as const) {
      const ids = got(h)
      const { lagged } = count(h)
      const unique = new Set(ids).size
      const inOrder = ids.every((id, i) => i === 0 || id > ids[i - 1]!)
      const missing = total - unique
      const receivingKills = actions.kills[h]
      console.log(
        `host ${h} got ${unique} of ${total} events of host ${other(h)}, lagged ${lagged}, missing ${missing}; ` +
          `kills here ${actions.kills[h]}, stops here ${actions.stops[h]}, kills there ${actions.kills[other(h)]}, stops there ${actions.stops[other(h)]}`,
      )
      expect({ twice: ids.length - unique, inOrder }).toEqual({ twice: 0, inOrder: true })
      // nothing lost uncounted; at most one counted too many per takeover of this host's receiving bridge
      expect(lagged).toBeGreaterThanOrEqual(missing)
      expect(lagged).toBeLessThanOrEqual(missing + receivingKills)
    }
    console.log(`topic chaos: ${resends} resends dropped by the receivers`)
    expect(actions.kills.a + actions.kills.b).toBeGreaterThan(0)
  }, 180_000)
})

/** The runs of ids in 0 … total − 1 missing from ids, as "a–b (n)", at most 20 of them. */
function gaps(ids: number[], total: number): string {
  const have = new Set(ids)
  const runs: string[] = []
  for (let i = 0; i < total; i++) {
    if (have.has(i)) continue
    let j = i
    while (j + 1 < total && !have.has(j + 1)) j++
    runs.push(`${i}–${j} (${j - i + 1})`)
    i = j
  }
  return runs.length === 0
    ? "none"
    : runs.slice(0, 20).join(", ") + (runs.length > 20 ? ` and ${runs.length - 20} more` : "")
}
