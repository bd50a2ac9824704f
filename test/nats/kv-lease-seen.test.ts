// What a cluster contest object remembers of its bucket's keys (src/nats/kv-lease.ts, docs/PROTOCOL.md §12.4) stays
// near what it needs: the keys held (their seen times judge expiry), waited on or watched, and a few free ones to
// claim again in one write; not one entry per subject it ever claimed. Needs `nats-server`.
import { describe, expect, test } from "bun:test"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { Contest, type ClusterContest } from "../../src/leases/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { busName, until } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the cluster contest tests are skipped: ${skip}`)
const nats = natsPerFile(skip, { jetstream: true })

async function open(name: string): Promise<ClusterContest> {
  const c = await Contest.open(name, { remote: viaNats(nats.url) })
  nats.cleanup.push(() => c.close())
  return c
}
type Seen = Map<string, { value: { state: string } | null }>
const seen = (c: ClusterContest) => (c as unknown as { table: { seen: Seen } }).table.seen

describe.skipIf(skip !== null)("a cluster contest's view of its keys", () => {
  test("claims and releases on 20,000 distinct subjects leave it near the live count, not one entry each", async () => {
    const c = await open(busName("kvseen"))
    const held = []
    for (let i = 0; i < 5; i++) {
      const r = await c.tryClaim({ kind: 2, label: `kept-${i}` }, { ttlMs: 60_000 })
      if (!r.claimed) throw new Error("not claimed")
      held.push(r.lease)
    }
    const N = 20_000
    let next = 0
    const worker = async () => {
      for (let i = next++; i < N; i = next++) {
        const r = await c.tryClaim({ kind: 1, label: `user-${i}` }, { ttlMs: 60_000 })
        if (!r.claimed) throw new Error(`user-${i} not claimed`)
        await r.lease.release()
      }
    }
    await Promise.all(Array.from({ length: 32 }, worker))
    const size = seen(c).size
    // before: 20,005 (one per subject ever claimed); after: the 5 held, and at most 2 × 256 free ones
    expect(size).toBeLessThan(1000)
    expect([...seen(c).entries()].filter(([, o]) => o.value?.state === "held").length).toBe(5)
    // the held ones are still ours and renew, and a free subject is claimed again
    for (const l of held) await l.renew(60_000)
    const again = await c.tryClaim({ kind: 1, label: "user-7" }, { ttlMs: 60_000 })
    expect(again.claimed).toBe(true)
    if (again.claimed) await again.lease.release()
    for (const l of held) await l.release()
  }, 60_000)

  test("a key deleted or purged by hand is forgotten once nobody here waits on it or watches it", async () => {
    const name = busName("kvdel")
    const a = await open(name)
    const b = await open(name)
    const nc = await connect({ servers: nats.url })
    nats.cleanup.push(() => nc.close())
    const kv = await new Kvm(nc).open(a.bucket, { bindOnly: true })
    for (let i = 0; i < 4; i++) {
      const s = { kind: 4, label: `gone-${i}` }
      const r = await b.tryClaim(s, { ttlMs: 60_000 })
      if (!r.claimed) throw new Error("not claimed")
      // a waits on it and gives up: its watch lingers 2 s (§12.3)
      expect(await a.claim(s, { ttlMs: 60_000, timeoutMs: 50 }).catch((e: Error) => e.name)).toBe("TimeoutError")
    }
    const keys = [...seen(a).keys()]
    expect(keys.length).toBe(4)
    // the operator deletes two keys and purges two while a still watches them: a sees the DEL and PURGE
    await kv.delete(keys[0]!)
    await kv.delete(keys[1]!)
    await kv.purge(keys[2]!)
    await kv.purge(keys[3]!)
    await until(() => [...seen(a).values()].every((o) => o.value === null), "a saw the deletions")
    // once the watches stop, a forgets them (before: four entries of absent keys, kept for good)
    await until(() => seen(a).size === 0, "a forgot the deleted keys", 5000)
  }, 30_000)
})
