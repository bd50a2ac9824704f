// A hostile NATS peer (docs/PROTOCOL.md §10.6, §11 trust, §12): a plain client of the same server that hears every
// subject the library uses and publishes random and mutated copies of what it hears — requests, answers, frames,
// credit, cancels, presences, topic events, lease KV keys, $SRV — while real traffic flows: a hub here, a worker
// in another process, a topic's bridge, a cluster contest. Nothing may crash, every call settles by its timeout
// with a result or a slotbus error, the hub and the worker keep serving, memory stays bounded, and the refused
// messages are counted. Reproducible: SLOTBUS_FUZZ_SEED=<n> replays a run (the seed is printed).
// Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import { connect, type Msg } from "@nats-io/transport-node"
import { Topic } from "../../src/events/index.ts"
import { SlotBus, SlotBusError } from "../../src/index.ts"
import { Contest } from "../../src/leases/index.ts"
import { bunChild, busName, rng, until } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the hostile NATS peer test is skipped: ${skip}`)

const nats = natsPerFile(skip, { jetstream: true })
const { cleanup } = nats
const FUZZ_MS = Number(process.env.SLOTBUS_FUZZ_MS ?? 5000)

/** Mutations of a heard message, informed by the wire formats: u32 fields at 4, 8, 12 set to edge values, the
 * version byte, flags, lengths cut or grown, bytes flipped, JSON fields replaced. */
function mutate(data: Uint8Array, r: () => number): Uint8Array {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!
  const out = new Uint8Array(data)
  switch (Math.floor(r() * 9)) {
    case 0: {
      const at = pick([4, 8, 12])
      if (out.length >= at + 4)
        new DataView(out.buffer).setUint32(at, pick([0, 1, 2 ** 31 - 4, 2 ** 31, 2 ** 32 - 1, 0xfffffff0]), true)
      return out
    }
    case 1:
      if (out.length > 0) out[0] = pick([0, 2, 255])
      return out
    case 2:
      if (out.length > 1) out[1] = Math.floor(r() * 256)
      return out
    case 3:
      return out.subarray(0, Math.floor(r() * out.length))
    case 4: {
      const grown = new Uint8Array(out.length + Math.floor(r() * 4096))
      grown.set(out)
      return grown
    }
    case 5:
      for (let i = 0; i < 1 + r() * 8 && out.length > 0; i++)
        out[Math.floor(r() * out.length)] ^= 1 << Math.floor(r() * 8)
      return out
    case 6:
      return new Uint8Array(0)
    case 7: {
      const text = new TextDecoder().decode(data)
      if (!text.startsWith("{")) return out
      try {
        const o = JSON.parse(text) as Record<string, unknown>
        const k = pick(Object.keys(o).concat("heartbeatMs", "slots", "token", "hub", "worker"))
        o[k] = pick<unknown>([1, 0, -1, 1e15, 2 ** 53, "x".repeat(100), null, [], {}, "99999999999999999999", true])
        return new TextEncoder().encode(JSON.stringify(o))
      } catch {
        return out
      }
    }
    default:
      return crypto.getRandomValues(new Uint8Array(Math.floor(r() * 64)))
  }
}

describe.skipIf(skip !== null)("a hostile peer on the NATS server", () => {
  test("random and mutated messages on every subject while requests, events and leases flow: nothing crashes, every call settles, memory stays bounded", async () => {
    const seed = Number(process.env.SLOTBUS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
    console.log(`hostile NATS peer: seed ${seed} (SLOTBUS_FUZZ_SEED=${seed} replays it), ${FUZZ_MS} ms`)
    const r = rng(seed)
    const bus = await SlotBus.listen(busName("hostile-peer"), { nats: nats.url, heartbeatMs: 100 })
    cleanup.push(() => bus.close({ drain: false }))
    const worker = bunChild("nats-worker.ts", [bus.name, nats.url, "--heartbeat-ms=100"])
    cleanup.push(async () => void (await worker.kill()))
    await worker.waitLine(/^ready \d+$/, 15_000)
    await bus.waitForWorkers(1, 5000)
    const topic = await Topic.open(busName("hostile-topic"), { nats: nats.url })
    cleanup.push(() => topic[Symbol.asyncDispose]())
    const events = topic.subscribe({ type: "*" })
    const contest = await Contest.open(busName("hostile-lease"), { nats: nats.url })
    cleanup.push(() => contest[Symbol.asyncDispose]())

    // The peer hears everything and publishes mutations of it, with the reply subjects it heard
    const nc = await connect({ servers: nats.url })
    cleanup.push(() => nc.close())
    const heard: { subject: string; data: Uint8Array; reply?: string }[] = []
    const keep = (m: Msg) => {
      const h = { subject: m.subject, data: new Uint8Array(m.data), reply: m.reply }
      if (heard.length < 512) heard.push(h)
      else heard[Math.floor(r() * heard.length)] = h
    }
    for (const s of ["slotbus.>", "$KV.>", "$SRV.>"]) nc.subscribe(s, { callback: (_, m) => keep(m) })
    await nc.flush()

    const rss0 = process.memoryUsage().rss
    const outcomes = { ok: 0, typed: 0, other: [] as string[] }
    const settle = async (p: Promise<unknown>) => {
      try {
        await p
        outcomes.ok++
      } catch (e) {
        if (e instanceof SlotBusError) outcomes.typed++
        else outcomes.other.push(String(e))
      }
    }
    const end = performance.now() + FUZZ_MS
    let sent = 0
    const fuzzing = (async () => {
      while (performance.now() < end) {
        for (let i = 0; i < 50 && heard.length > 0; i++) {
          const h = heard[Math.floor(r() * heard.length)]!
          const reply = r() < 0.5 ? h.reply : undefined
          try {
            nc.publish(h.subject, mutate(h.data, r), reply ? { reply } : undefined)
            sent++
          } catch {}
        }
        await Bun.sleep(1)
      }
    })()
    const calls: Promise<void>[] = []
    let n = 0
    while (performance.now() < end) {
      calls.push(settle(bus.request({ method: "POST", path: "/echo", body: `call ${n++}` }, { timeoutMs: 2000 })))
      calls.push(settle(bus.call(`raw ${n}`, { timeoutMs: 2000 })))
      topic.publish({ type: "tick", data: String(n) })
      events.poll()
      if (n % 20 === 0) await settle(contest.tryClaim({ kind: 1, label: "job" }, { ttlMs: 1000 }))
      await Bun.sleep(5)
    }
    await fuzzing
    await Promise.all(calls) // every call settles: each has a 2 s timeout
    console.log(
      `hostile NATS peer: ${sent} messages sent; ${outcomes.ok} settled with a result, ${outcomes.typed} with a slotbus error; hub refused ${bus.stats().rejectedMessages}, bridge ${JSON.stringify(topic.bridgeStats())}`,
    )
    expect(outcomes.other).toEqual([])
    expect(sent).toBeGreaterThan(0)
    expect(bus.stats().rejectedMessages).toBeGreaterThan(0)

    // after it: the hub, the worker, the bridge and the contest still serve
    await until(() => bus.workerCount >= 1, "the worker is listed", 5000)
    expect((await bus.request({ method: "POST", path: "/echo", body: "after" }, { timeoutMs: 5000 })).text()).toBe(
      "after",
    )
    expect(worker.proc.exitCode).toBeNull()
    expect(topic.bridgeStats()?.bridging).toBe(true)
    const rss = process.memoryUsage().rss
    expect(rss - rss0).toBeLessThan(256 * 1024 * 1024)
  }, 60_000)
})
