// A worker serving its hub from another host over NATS (docs/PROTOCOL.md §10): presence, requests, cancels,
// streamed answers (§10.4).
import type { Msg } from "@nats-io/transport-node"
import { PayloadTooLargeError } from "../core/index.ts"
import {
  align8,
  chunkBytes,
  errorPairs,
  frameCharge,
  type Answer,
  type RemoteAnswerSink,
  type RemoteLink,
  type RemoteRequest,
  type RemoteStream,
  type RemoteWorkerHost,
  type SlotBytes,
  type TransportOptions,
} from "../core/internal.ts"
import {
  clampHeartbeat,
  guarded,
  HOST,
  hubOfReply,
  ID,
  newId,
  PREFIX,
  readPresence,
  readPrefix,
  stallMeter,
  StreamFlag,
  subjects,
  writePrefix,
  type WorkerPresence,
} from "./wire.ts"
import type { NatsUse, SharedConnection } from "./shared.ts"
import { nanoseconds, sleep } from "../runtime/index.ts"

const VERSION = "1.0.0" // of this service's protocol (docs/PROTOCOL.md §10), as ADR-32 wants a semver
/** The bus as an ADR-32 service name ([A-Za-z0-9_-]+). */
const microName = (bus: string) => `slotbus-${bus.replace(/[^A-Za-z0-9_-]/g, "_")}`
const HUB_GONE = () => new DOMException("the hub that sent this request stopped announcing itself", "AbortError")
const GIVEN_UP = () => new DOMException("the hub gave this request up: its caller aborted or timed out", "AbortError")
const RECONNECTED = () =>
  new DOMException("the worker's NATS connection was down: its hubs gave this request up", "AbortError")
const WORKER_CLOSED = () => new DOMException("the worker closed before this request finished", "AbortError")
const NO_BYTES: Uint8Array = new Uint8Array(0)
/** How long a leaving worker keeps refusing requests at least, rather than let them go unheard (§10.3). */
const LEAVING_LINGER_MS = 100
/** Hubs a worker keeps at once (the one heard from longest ago goes), and how often a new one gets a presence (§10.1). */
const MAX_HUBS = 1024
const EAGER_PRESENCE_MS = 100

export async function serveWorker(
  host: RemoteWorkerHost,
  shared: SharedConnection,
  opts: TransportOptions,
): Promise<RemoteLink> {
  const use = await shared.use()
  try {
    return await serve(host, use, opts)
  } catch (e) {
    await use.release()
    throw e
  }
}

async function serve(host: RemoteWorkerHost, use: NatsUse, opts: TransportOptions): Promise<RemoteLink> {
  const { nc } = use
  const s = subjects(host.name)
  const id = newId()
  const slots = opts.slots ?? 32
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024
  let state: WorkerPresence["state"] = "serving"
  /** Changed each time the connection comes back: a hub then gives up what it had sent here (§10.3). */
  let epoch = 0
  let closed = false
  // Requests running now by reply subject (a handler that returns at once is never in it); the hubs heard from.
  const running = new Map<string, Call>()
  /** Of those, the ones a hub still waits for: at most `slots` (§10.2), as the hubs count them. */
  let busy = 0
  const hubs = new Map<string, { seen: number; heartbeatMs: number }>()
  let everHeard = false
  let lastEager = Number.NEGATIVE_INFINITY
  // An answer is encoded into `scratch` and copied out in the same turn, so one arena serves every request. A
  // request whose handler calls req.reply() (its head written before the answer) takes an arena of its own.
  const scratch = new Uint8Array(maxPayload)
  const scratchAnswer = scratch.subarray(PREFIX)
  const arenas: Uint8Array[] = [] // those of their own, reused
  const subs: { unsubscribe(): void }[] = []
  let served = 0
  /** Messages refused as not slotbus protocol (§10.1): in $SRV.STATS's data. */
  let rejected = 0
  const refused = () => void rejected++

  const announce = () => {
    const p: WorkerPresence = {
      v: 1,
      worker: id,
      host: opts.host ?? HOST,
      pid: process.pid,
      slots,
      state,
      epoch,
      heartbeatMs: opts.heartbeatMs,
    }
    if (!nc.isClosed()) nc.publish(s.hb, JSON.stringify(p))
  }

  /** One request: where its bytes live (SlotBytes), and where its answer goes (RemoteAnswerSink). */
  class Call implements SlotBytes, RemoteAnswerSink {
    readonly copies = true
    req: RemoteRequest | null = null
    /** A streamed answer's credit (§10.4): DATA bytes the hub's caller took; who waits for more; its body's stop. */
    taken = 0
    wake: (() => void) | null = null
    stop: ((reason: unknown) => void) | null = null
    /** A response arena of its own (req.reply()), and its part after the prefix. */
    private own: Uint8Array | null = null
    private ownAnswer: Uint8Array | null = null
    /** In `running` (its handler did not return at once), or answered. */
    running = false
    answered = false
    /** In `busy`: running, and not given up. */
    counted = false
    /** Out of `busy`: answered, or given up (its hub counts it no more either). */
    uncount() {
      if (this.counted) (this.counted = false), busy--
    }
    readonly started = nanoseconds()
    constructor(
      private readonly msg: Msg,
      readonly rid: string,
      private readonly request: Uint8Array,
      readonly window: number,
    ) {}
    private ownArena(): Uint8Array {
      if (this.ownAnswer === null) {
        this.own = arenas.pop() ?? new Uint8Array(maxPayload)
        this.ownAnswer = this.own.subarray(PREFIX)
      }
      return this.ownAnswer
    }
    arena(_slot: number, response: 0 | 1): Uint8Array {
      return response ? this.ownArena() : this.request
    }
    get arenaSize() {
      return maxPayload - PREFIX
    }
    lend(_slot: number, response: 0 | 1, off: number, len: number): ArrayBuffer {
      const src = response ? this.ownArena() : this.request
      return src.buffer.slice(src.byteOffset + off, src.byteOffset + off + len) as ArrayBuffer
    }
    /** Its own arena back to the pool, if it took one. */
    private giveBack() {
      if (this.own) arenas.push(this.own)
      this.own = this.ownAnswer = null
    }
    answerArena(): Uint8Array {
      return this.ownAnswer ?? scratchAnswer
    }
    done(a: Answer) {
      this.answered = true
      stats.processing_time += nanoseconds() - this.started
      if (a.flags & 1) stats.num_errors++
      if (this.running) running.delete(this.rid)
      this.uncount()
      const out = this.own ?? scratch
      writePrefix(out, a.flags, a.status, a.headLen)
      try {
        // A copy: nats.js keeps what it is given until its next flush, and `out` is written again before that.
        if (!nc.isClosed()) this.msg.respond(out.slice(0, PREFIX + align8(a.headLen) + a.bodyLen))
      } catch {
        // the connection failed under it: nobody is left to answer
      }
      this.giveBack()
    }
    stream(rs: RemoteStream) {
      // not `answered`: it stays in `running` (for cancels and credit) until the stream is over
      this.giveBack()
      void sendStream(this, rs).finally(() => {
        running.delete(this.rid)
        this.uncount()
        rs.over()
      })
    }
    /** The hub gave it up, or is gone: its signal aborts, a streamed answer stops. */
    cancel(reason: DOMException) {
      this.uncount()
      this.req?.cancel(reason)
      this.stop?.(reason)
      this.credited()
    }
    /** Credit came, or the stream should look again whether it is over. */
    credited() {
      const w = this.wake
      this.wake = null
      w?.()
    }
  }

  /** A streamed answer (§10.4): HEAD, DATA while there is credit (the body is read only then), END. */
  const sendStream = async (call: Call, rs: RemoteStream) => {
    let frames = 0
    const frame = (flags: number, status: number, payload: Uint8Array) => {
      const out = new Uint8Array(PREFIX + payload.length)
      writePrefix(out, flags, frames++, status, flags & StreamFlag.DATA ? 0 : payload.length)
      out.set(payload, PREFIX)
      if (!nc.isClosed()) nc.publish(call.rid, out)
    }
    const reader = rs.body.getReader()
    const stop = (reason: unknown) => void reader.cancel(reason).catch(() => {}) // a pending read ends (done)
    call.stop = stop
    const over = () => call.req!.cancelled !== null || nc.isClosed()
    let end: number = StreamFlag.END
    let pairs = NO_BYTES
    let sent = 0
    try {
      if (PREFIX + rs.head.length > maxPayload) {
        frame(StreamFlag.HEAD, 500, NO_BYTES)
        throw new PayloadTooLargeError(`the response headers are over the NATS server's max_payload ${maxPayload}`)
      }
      frame(StreamFlag.HEAD, rs.status, rs.head)
      while (!over()) {
        const { done, value } = await reader.read()
        if (done) break
        const got = chunkBytes(value)
        const bytes = got instanceof Promise ? await got : got
        for (let off = 0; off < bytes.length && !over(); ) {
          const room = call.window - (sent - call.taken)
          if (room < frameCharge(0)) {
            await new Promise<void>((resolve) => (call.wake = resolve)) // a grant, a cancel, or the hub gone
            continue
          }
          const n = Math.min(bytes.length - off, room, maxPayload - PREFIX)
          frame(StreamFlag.DATA, 0, bytes.subarray(off, off + n))
          ;(sent += frameCharge(n)), (off += n)
        }
      }
    } catch (e) {
      end |= StreamFlag.FAILED
      pairs = errorPairs(e)
      stats.num_errors++
    }
    if (over()) {
      ;(end = StreamFlag.END | StreamFlag.CANCELLED), (pairs = NO_BYTES)
      stop(call.req!.cancelled ?? GIVEN_UP())
    } else if (!(end & StreamFlag.FAILED)) reader.releaseLock()
    frame(end, 0, pairs)
  }

  const onRequest = (msg: Msg) => {
    const rid = msg.reply // names the request: a cancel quotes it (§10.3)
    if (!rid) return refused()
    // A second request on a reply subject still running: an answer would land on the first one's (§10.2)
    if (running.has(rid)) return refused()
    // A view, not a copy: nats.js hands out each message from a socket read of its own, never reused (one split
    // over reads is gathered in a buffer of its own), so a handler may keep views of it past its turn. A plain
    // Uint8Array, not the client's Buffer: Buffer's subarray and slice cost more, and its slice is no copy.
    const d = msg.data
    const data = new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
    const p = readPrefix(data)
    const headLen = p ? p.a : 0
    const request = data.subarray(PREFIX) // as a request arena: head, padding, body
    // Not run (503, §10.3): the worker is leaving, or runs its slots already (each hub counts only its own, §10.2)
    const unrun =
      state !== "serving"
        ? "the worker is leaving"
        : busy >= slots
          ? `the worker runs its ${slots} slots already`
          : null
    if (unrun !== null || !p || p.kindOrFlags > 1 || align8(headLen) > request.length) {
      if (unrun === null) refused()
      const why = new TextEncoder().encode(unrun ?? "a request that is not slotbus protocol (§10.2)")
      const out = new Uint8Array(PREFIX + why.length)
      writePrefix(out, 1, unrun !== null ? 503 : 500, 0) // 503: not run, so a hub may send it elsewhere (§10.3)
      out.set(why, PREFIX)
      return void msg.respond(out)
    }
    const window = p.c >= 4096 ? Math.min(p.c, 2 ** 30) : 0 // the hub's stream window (§10.4)
    const call = new Call(msg, rid, request, window)
    const bodyLen = request.length - align8(headLen)
    const req = (call.req = host.request(p.kindOrFlags, ++served >>> 0, call, headLen, bodyLen, window))
    stats.num_requests++
    host.serve(req, call)
    if (!call.answered) {
      call.running = true
      running.set(rid, call)
      ;(call.counted = true), busy++
    }
  }

  subs.push(nc.subscribe(s.req(id), { callback: guarded(onRequest, refused) }))
  subs.push(
    nc.subscribe(s.cancel(id), {
      callback: guarded((msg) => running.get(new TextDecoder().decode(msg.data))?.cancel(GIVEN_UP()), refused),
    }),
  )
  subs.push(
    nc.subscribe(s.credit(id), {
      callback: guarded((msg) => {
        const [rid = "", text = ""] = new TextDecoder().decode(msg.data).split(" ")
        const call = running.get(rid)
        const taken = Number(text)
        if (!call || !Number.isSafeInteger(taken) || taken <= call.taken) return // idempotent: the highest wins
        call.taken = taken
        call.credited()
      }, refused),
    }),
  )
  subs.push(
    nc.subscribe(s.hub, {
      callback: guarded((msg) => {
        const p = readPresence(msg.data)
        const hb = p?.heartbeatMs
        if (!p || typeof p.hub !== "string" || !ID.test(p.hub) || typeof hb !== "number" || !(hb > 0)) return refused()
        const now = performance.now()
        const known = hubs.get(p.hub)
        // A presence never shortens a hub's patience: a forged one with a live hub's id cannot expire its requests
        const heartbeatMs = Math.max(known?.heartbeatMs ?? 0, clampHeartbeat(hb))
        hubs.delete(p.hub) // kept in the order last heard from: the first is the one to drop
        if (!known && hubs.size >= MAX_HUBS) hubs.delete(hubs.keys().next().value!)
        hubs.set(p.hub, { seen: now, heartbeatMs })
        everHeard = true
        // a new hub hears of this worker at once, not a heartbeat later; however many there are, once per 100 ms
        if (!known && now - lastEager >= EAGER_PRESENCE_MS) {
          lastEager = now
          announce()
        }
      }, refused),
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
    metadata: { bus: host.name, host: opts.host ?? HOST, pid: String(process.pid) },
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
          data: { rejected },
        },
      ],
    }),
  }
  for (const verb of Object.keys(answers))
    for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${service}`, `$SRV.${verb}.${service}.${id}`])
      subs.push(
        nc.subscribe(subject, {
          callback: guarded((msg) => void msg.respond(JSON.stringify(answers[verb]!())), refused),
        }),
      )
  try {
    await nc.flush() // subscribed before anyone is told this worker exists
  } catch (e) {
    for (const sub of subs) sub.unsubscribe()
    throw e
  }
  announce()
  // While the connection is down nothing can be heard: hubs are judged again from when it came back (§10.3). An
  // answer made meanwhile may be lost, so hubs give up what they sent before they hear the new epoch, and the
  // handlers still running are told: their answers would reach nobody.
  let offline = false
  use.onStatus((st) => {
    if (st.type === "disconnect") offline = true
    else if (st.type === "reconnect") {
      offline = false
      for (const h of hubs.values()) h.seen = performance.now()
      epoch++
      announce()
      for (const call of running.values()) call.cancel(RECONNECTED())
    }
  })
  const stalled = stallMeter(opts.heartbeatMs)
  const timer = setInterval(() => {
    announce()
    const late = stalled()
    if (offline) return
    const now = performance.now()
    for (const [hub, h] of hubs)
      if (now - (h.seen = Math.min(now, h.seen + late)) > 4 * h.heartbeatMs) {
        hubs.delete(hub)
        for (const [rid, call] of running) if (hubOfReply(rid) === hub) call.cancel(HUB_GONE())
      }
    // Every hub it heard went silent: when asked (hubWorker does), the worker closes with "hub-gone" as on one
    // host (§10.3), so it registers again and finds the hub that took over
    if (opts.closeWhenHubsGone && everHeard && hubs.size === 0 && !closed)
      void link.close(0).then(() => host.lost("hub-gone"))
  }, opts.heartbeatMs)
  use.onClosed((e) => {
    clearInterval(timer)
    for (const call of running.values()) call.cancel(HUB_GONE())
    if (!closed) host.lost("hub-gone", e instanceof Error ? e : undefined)
  })

  const link: RemoteLink = {
    get connected() {
      return !closed && use.up
    },
    server: () => use.server(),
    async close(timeoutMs: number) {
      if (closed) return
      closed = true
      state = "leaving"
      announce()
      const deadline = performance.now() + timeoutMs
      // what a hub sent before it heard "leaving" is refused (503), not lost: the subject is kept a while (§10.3)
      const lingered = Math.min(deadline, performance.now() + LEAVING_LINGER_MS)
      while (performance.now() < deadline && (running.size > 0 || performance.now() < lingered)) await sleep(1)
      clearInterval(timer)
      for (const sub of subs) sub.unsubscribe()
      // what a closing connection did to them before it was shared: they end now, not with the connection
      for (const call of running.values()) call.cancel(WORKER_CLOSED())
      await use.release()
    },
  }
  return link
}
