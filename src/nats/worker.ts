// A worker serving its hub from another host over NATS (docs/PROTOCOL.md §10): presence, requests, cancels.
import type { Msg } from "@nats-io/transport-node"
import {
  errorPairs,
  PayloadTooLargeError,
  toBytes,
  type RemoteAnswer,
  type RemoteLink,
  type RemoteRequest,
  type RemoteWorkerHost,
  type SlotBytes,
  type TransportOptions,
} from "../core/index.ts"
import {
  HOST,
  newId,
  openConnection,
  PREFIX,
  readPresence,
  readPrefix,
  StreamFlag,
  subjects,
  writePrefix,
  type WorkerPresence,
} from "./wire.ts"

/** A request running here: the hub that sent it, and for a streamed answer the credit it was given (§10.4). */
interface Running {
  req: RemoteRequest
  hub: string
  taken: number
  wake: (() => void) | null
  /** Stops a streamed answer's body, whatever its handler's stream is waiting for. */
  stop: ((reason: unknown) => void) | null
}
const NO_BYTES: Uint8Array = new Uint8Array(0)

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
  // Requests running now by reply subject; and the hubs heard from, with when.
  const running = new Map<string, Running>()
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
    const window = p.c >= 4096 ? Math.min(p.c, 2 ** 30) : 0 // the hub's stream window (§10.4)
    const req = host.request(p.kindOrFlags, ++served >>> 0, bytes, headLen, request.length - align8(headLen), window)
    const r: Running = { req, hub: rid.split(".")[2] ?? "", taken: 0, wake: null, stop: null }
    running.set(rid, r)
    const started = Bun.nanoseconds()
    stats.num_requests++
    host.serve(req, answer).then(
      (a) => {
        stats.processing_time += Bun.nanoseconds() - started
        arenas.push(arena)
        if (a.stream) return void sendStream(rid, r, a, window)
        if (a.flags & 1) stats.num_errors++
        running.delete(rid)
        writePrefix(arena, a.flags, a.status, a.headLen)
        if (!nc.isClosed()) msg.respond(arena.slice(0, PREFIX + align8(a.headLen) + a.bodyLen))
      },
      () => running.delete(rid), // serve never rejects; nothing to answer
    )
  }

  /** A streamed answer (§10.4): HEAD, DATA while there is credit (the body is read only then), END. */
  const sendStream = async (
    rid: string,
    r: Running,
    a: Extract<RemoteAnswer, { stream: ReadableStream }>,
    window: number,
  ) => {
    let frames = 0
    const frame = (flags: number, status: number, payload: Uint8Array) => {
      const out = new Uint8Array(PREFIX + payload.length)
      writePrefix(out, flags, frames++, status, flags & StreamFlag.DATA ? 0 : payload.length)
      out.set(payload, PREFIX)
      if (!nc.isClosed()) nc.publish(rid, out)
    }
    const reader = a.stream.getReader()
    const stop = (reason: unknown) => void reader.cancel(reason).catch(() => {}) // a pending read ends (done)
    r.stop = stop
    const over = () => r.req.cancelled !== null || nc.isClosed()
    let end: number = StreamFlag.END
    let pairs = NO_BYTES
    let sent = 0
    try {
      if (PREFIX + a.head.length > maxPayload) {
        frame(StreamFlag.HEAD, 500, NO_BYTES)
        throw new PayloadTooLargeError(`the response headers are over the NATS server's max_payload ${maxPayload}`)
      }
      frame(StreamFlag.HEAD, a.status, a.head)
      while (!over()) {
        const { done, value } = await reader.read()
        if (done) break
        const bytes = toBytes(value as never, "a streamed body's chunk")
        for (let off = 0; off < bytes.length && !over(); ) {
          const room = window - (sent - r.taken)
          if (room <= 0) {
            await new Promise<void>((resolve) => (r.wake = resolve)) // a grant, a cancel, or the hub gone
            continue
          }
          const n = Math.min(bytes.length - off, room, maxPayload - PREFIX)
          frame(StreamFlag.DATA, 0, bytes.subarray(off, off + n))
          ;(sent += n), (off += n)
        }
      }
    } catch (e) {
      end |= StreamFlag.FAILED
      pairs = errorPairs(e)
      stats.num_errors++
    }
    if (over()) {
      ;(end = StreamFlag.END | StreamFlag.CANCELLED), (pairs = NO_BYTES)
      stop(r.req.cancelled ?? GIVEN_UP())
    } else if (!(end & StreamFlag.FAILED)) reader.releaseLock()
    frame(end, 0, pairs)
    running.delete(rid)
    a.done()
  }
  const wake = (r: Running) => {
    const w = r.wake
    r.wake = null
    w?.()
  }
  const cancel = (r: Running, reason: DOMException) => {
    r.req.cancel(reason)
    r.stop?.(reason)
    wake(r)
  }

  subs.push(nc.subscribe(s.req(id), { callback: (err, msg) => void (err || onRequest(msg)) }))
  subs.push(
    nc.subscribe(s.cancel(id), {
      callback: (err, msg) => {
        const r = err ? undefined : running.get(new TextDecoder().decode(msg.data))
        if (r) cancel(r, GIVEN_UP())
      },
    }),
  )
  subs.push(
    nc.subscribe(s.credit(id), {
      callback: (err, msg) => {
        const [rid = "", text = ""] = err ? [] : new TextDecoder().decode(msg.data).split(" ")
        const r = running.get(rid)
        const taken = Number(text)
        if (!r || !Number.isSafeInteger(taken) || taken <= r.taken) return // grants are idempotent: the highest wins
        r.taken = taken
        wake(r)
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
        for (const r of running.values()) if (r.hub === hub) cancel(r, HUB_GONE())
      }
  }, opts.heartbeatMs)
  nc.closed().then((e) => {
    clearInterval(timer)
    for (const r of running.values()) cancel(r, HUB_GONE())
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
