// A worker serving its hub from another host over NATS (docs/PROTOCOL.md §10): presence, requests, cancels.
import type { Msg } from "@nats-io/transport-node"
import type { RemoteLink, RemoteRequest, TransportOptions, RemoteWorkerHost, SlotBytes } from "../core/index.ts"
import {
  HOST,
  newId,
  openConnection,
  PREFIX,
  readPresence,
  readPrefix,
  subjects,
  writePrefix,
  type WorkerPresence,
} from "./wire.ts"

const align8 = (n: number) => (n + 7) & ~7
const VERSION = "1.0.0" // of this service's protocol (docs/PROTOCOL.md §10), as ADR-32 wants a semver
/** The bus as an ADR-32 service name ([A-Za-z0-9_-]+). */
const microName = (bus: string) => `slotbus-${bus.replace(/[^A-Za-z0-9_-]/g, "_")}`
const HUB_GONE = () => new DOMException("the hub that sent this request stopped announcing itself", "AbortError")
const GIVEN_UP = () => new DOMException("the hub gave this request up: its caller aborted or timed out", "AbortError")

export async function serveWorker(
  host: RemoteWorkerHost,
  connection: unknown,
  opts: TransportOptions,
): Promise<RemoteLink> {
  const { nc, owned } = await openConnection(connection)
  const s = subjects(host.name)
  const id = newId()
  const slots = opts.slots ?? 32
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024
  let state: WorkerPresence["state"] = "serving"
  let closed = false
  // Requests running now by reply subject, with the hub that sent them; and the hubs heard from, with when.
  const running = new Map<string, { req: RemoteRequest; hub: string }>()
  const hubs = new Map<string, { seen: number; heartbeatMs: number }>()
  // Response arenas, reused: one per request running at once (the answer sent is a copy of its used part).
  const arenas: Uint8Array[] = []
  const subs: { unsubscribe(): void }[] = []
  let served = 0

  const announce = () => {
    const p: WorkerPresence = { v: 1, worker: id, host: HOST, pid: process.pid, slots, state }
    if (!nc.isClosed()) nc.publish(s.hb, JSON.stringify(p))
  }

  const onRequest = (msg: Msg) => {
    if (!msg.reply) return
    const rid = msg.reply // names the request: a cancel quotes it (§10.3)
    const data = msg.data.slice() // the client's buffer is its own: a handler may keep views past this turn
    const p = readPrefix(data)
    const headLen = p ? p.a : 0
    const request = data.subarray(PREFIX) // as a request arena: head, padding, body
    if (state !== "serving" || !p || p.kindOrFlags > 1 || align8(headLen) > request.length) {
      const why = new TextEncoder().encode(
        state !== "serving" ? "the worker is leaving" : "a request that is not slotbus protocol (§10.2)",
      )
      const out = new Uint8Array(PREFIX + why.length)
      writePrefix(out, 1, 500, 0)
      out.set(why, PREFIX)
      return void msg.respond(out)
    }
    const arena = arenas.pop() ?? new Uint8Array(maxPayload)
    const answer = arena.subarray(PREFIX)
    const bytes: SlotBytes & { copies: true } = {
      copies: true,
      arena: (_slot, response) => (response ? answer : request),
      lend: (_slot, response, off, len) => {
        const src = response ? answer : request
        return src.buffer.slice(src.byteOffset + off, src.byteOffset + off + len) as ArrayBuffer
      },
    }
    const req = host.request(p.kindOrFlags, ++served >>> 0, bytes, headLen, request.length - align8(headLen))
    running.set(rid, { req, hub: rid.split(".")[2] ?? "" })
    const started = Bun.nanoseconds()
    stats.num_requests++
    host.serve(req, answer).then(
      (a) => {
        stats.processing_time += Bun.nanoseconds() - started
        if (a.flags & 1) stats.num_errors++
        running.delete(rid)
        writePrefix(arena, a.flags, a.status, a.headLen)
        if (!nc.isClosed()) msg.respond(arena.slice(0, PREFIX + align8(a.headLen) + a.bodyLen))
        arenas.push(arena)
      },
      () => running.delete(rid), // serve never rejects; nothing to answer
    )
  }

  subs.push(nc.subscribe(s.req(id), { callback: (err, msg) => void (err || onRequest(msg)) }))
  subs.push(
    nc.subscribe(s.cancel(id), {
      callback: (err, msg) => {
        if (err) return
        running.get(new TextDecoder().decode(msg.data))?.req.cancel(GIVEN_UP())
      },
    }),
  )
  subs.push(
    nc.subscribe(s.hub, {
      callback: (err, msg) => {
        const p = err ? null : readPresence(msg.data)
        if (!p || typeof p.hub !== "string" || typeof p.heartbeatMs !== "number") return
        const known = hubs.has(p.hub)
        hubs.set(p.hub, { seen: performance.now(), heartbeatMs: Math.max(1, p.heartbeatMs) })
        if (!known) announce() // a new hub hears of this worker at once, not a heartbeat later
      },
    }),
  )
  // Discovery the NATS way (ADR-32, the "micro" Service API): `nats micro ls` and friends list this worker.
  const service = microName(host.name)
  const stats = { num_requests: 0, num_errors: 0, last_error: "", processing_time: 0 }
  const startedAt = new Date().toISOString()
  const base = () => ({
    name: service,
    id,
    version: VERSION,
    metadata: { bus: host.name, host: HOST, pid: String(process.pid) },
  })
  const endpoint = { name: "requests", subject: s.req(id), queue_group: "", metadata: null }
  const answers: Record<string, () => object> = {
    PING: () => ({ type: "io.nats.micro.v1.ping_response", ...base() }),
    INFO: () => ({
      type: "io.nats.micro.v1.info_response",
      ...base(),
      description: `slotbus worker of "${host.name}" (docs/PROTOCOL.md §10)`,
      endpoints: [endpoint],
    }),
    STATS: () => ({
      type: "io.nats.micro.v1.stats_response",
      ...base(),
      started: startedAt,
      endpoints: [
        {
          ...endpoint,
          ...stats,
          average_processing_time: stats.num_requests ? Math.round(stats.processing_time / stats.num_requests) : 0,
        },
      ],
    }),
  }
  for (const verb of Object.keys(answers))
    for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${service}`, `$SRV.${verb}.${service}.${id}`])
      subs.push(
        nc.subscribe(subject, { callback: (err, msg) => void (err || msg.respond(JSON.stringify(answers[verb]!()))) }),
      )
  await nc.flush() // subscribed before anyone is told this worker exists
  announce()
  const timer = setInterval(() => {
    announce()
    const now = performance.now()
    for (const [hub, h] of hubs)
      if (now - h.seen > 4 * h.heartbeatMs) {
        hubs.delete(hub)
        for (const r of running.values()) if (r.hub === hub) r.req.cancel(HUB_GONE())
      }
  }, opts.heartbeatMs)
  nc.closed().then((e) => {
    clearInterval(timer)
    for (const r of running.values()) r.req.cancel(HUB_GONE())
    if (!closed) host.lost("hub-gone", e instanceof Error ? e : undefined)
  })

  return {
    get connected() {
      return !nc.isClosed()
    },
    async close(timeoutMs: number) {
      if (closed) return
      closed = true
      state = "leaving"
      announce()
      const deadline = performance.now() + timeoutMs
      while (running.size > 0 && performance.now() < deadline) await Bun.sleep(1)
      clearInterval(timer)
      for (const sub of subs) sub.unsubscribe()
      if (owned) await nc.drain().catch(() => nc.close())
      else await nc.flush().catch(() => {})
    },
  }
}
