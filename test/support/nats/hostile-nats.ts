// A hostile NATS peer for the tests (docs/PROTOCOL.md §10.6, §11 trust, §12.6): a plain client of a server that
// hears every subject the library uses and publishes random and mutated copies of what it hears — requests,
// answers, frames, credit, cancels, presences, topic events, lease KV keys, $SRV — with the reply subjects it
// heard, while the test's real traffic flows (underFire). Seeded: a failing run replays from its seed.
import { connect, type Msg } from "@nats-io/transport-node"
import type { Topic } from "../../../src/events/index.ts"
import { type SlotBus, SlotBusError } from "../../../src/index.ts"

/** Mutations of a heard message, informed by the wire formats: u32 fields at 4, 8, 12 set to edge values, the
 * version byte, flags, lengths cut or grown, bytes flipped, JSON fields replaced. */
export function mutate(data: Uint8Array, r: () => number): Uint8Array {
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

export interface UnderFire {
  /** Messages the peers published. */
  sent: number
  /** Calls settled with a result, with a slotbus error, and with anything else (the error's text). */
  ok: number
  typed: number
  other: string[]
  /** The RSS of this process before and after. */
  rss0: number
  rss: number
}

/**
 * For `ms`: a peer on each of `servers` hears `slotbus.>`, `$KV.>`, `$SRV.>` and publishes 50 mutations each ms,
 * while this process calls `bus` (requests and raw calls, 2 s timeouts), publishes on `topic` and reads `events`,
 * and claims on `contest`. Resolves once every call settled.
 */
export async function underFire(o: {
  servers: string[]
  r: () => number
  ms: number
  bus: SlotBus
  topic: Topic
  events: { poll(): unknown }
  contest: { tryClaim(subject: { kind: number; label: string }, o: { ttlMs: number }): unknown }
}): Promise<UnderFire> {
  const { r } = o
  const peers = await Promise.all(o.servers.map((s) => connect({ servers: s })))
  try {
    const heard: { subject: string; data: Uint8Array; reply?: string }[] = []
    const keep = (m: Msg) => {
      const h = { subject: m.subject, data: new Uint8Array(m.data), reply: m.reply }
      if (heard.length < 512) heard.push(h)
      else heard[Math.floor(r() * heard.length)] = h
    }
    for (const nc of peers)
      for (const s of ["slotbus.>", "$KV.>", "$SRV.>"]) nc.subscribe(s, { callback: (_, m) => keep(m) })
    await Promise.all(peers.map((nc) => nc.flush()))

    const out: UnderFire = { sent: 0, ok: 0, typed: 0, other: [], rss0: process.memoryUsage().rss, rss: 0 }
    const settle = async (p: unknown) => {
      try {
        await p
        out.ok++
      } catch (e) {
        if (e instanceof SlotBusError) out.typed++
        else out.other.push(String(e))
      }
    }
    const end = performance.now() + o.ms
    const fuzzing = (async () => {
      while (performance.now() < end) {
        for (let i = 0; i < 50 && heard.length > 0; i++) {
          const h = heard[Math.floor(r() * heard.length)]!
          const reply = r() < 0.5 ? h.reply : undefined
          try {
            peers[Math.floor(r() * peers.length)]!.publish(h.subject, mutate(h.data, r), reply ? { reply } : undefined)
            out.sent++
          } catch {}
        }
        await Bun.sleep(1)
      }
    })()
    const calls: Promise<void>[] = []
    let n = 0
    while (performance.now() < end) {
      calls.push(settle(o.bus.request({ method: "POST", path: "/echo", body: `call ${n++}` }, { timeoutMs: 2000 })))
      calls.push(settle(o.bus.call(`raw ${n}`, { timeoutMs: 2000 })))
      o.topic.publish({ type: "tick", data: String(n) })
      o.events.poll()
      if (n % 20 === 0) await settle(o.contest.tryClaim({ kind: 1, label: "job" }, { ttlMs: 1000 }))
      await Bun.sleep(5)
    }
    await fuzzing
    await Promise.all(calls) // every call settles: each has a 2 s timeout
    out.rss = process.memoryUsage().rss
    return out
  } finally {
    await Promise.all(peers.map((nc) => nc.close()))
  }
}
