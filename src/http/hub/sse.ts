// Server-sent events on the hub: the client connections it holds, and fan-out of workers' events to them.
// `GET /events` reads the hub's events topic (shared memory, see slotbus/events): the hub holds one subscription
// for the live stream and fans it out; a client reconnecting with Last-Event-ID first replays from the ring.
import type { HttpServer as Server } from "../../runtime/index.ts"
import { PayloadTooLargeError } from "../../core/index.ts"
import {
  TopicFullError,
  type DurableSubscription,
  type EventBatch,
  type Routing,
  type Subscription,
  type Topic,
  type TopicEvent,
  type TopicFilter,
} from "../../events/index.ts"
import { pathStart } from "../../runtime/index.ts"
import { parseRoute, type Params } from "../routes.ts"
import type { ControlMessage, EmitItem, PushItem, PushTarget } from "../wire.ts"
import type { HubCounters } from "./counters.ts"
import { forwardedFor, type ResolvedOptions } from "./options.ts"
import type { RequestProxy } from "./proxy.ts"
import { isAttached, type Registry, type RouteEntry, type WorkerInstance } from "./registry.ts"
import { HEARTBEAT, SSE_HEADERS, sseFrame, SseStream } from "./sse-stream.ts"

interface SseClient {
  id: string
  stream: SseStream
  /** The worker instance told about this connection; null for `GET /events` clients. */
  inst: WorkerInstance | null
  path: string
  shape: string
  params: Params
  /** What a `GET /events` client asked for (null for a worker's SSE route). */
  want: EventsFilter | null
  /** Events with ids up to this one already reached the client (its replay); the live stream skips them. */
  after: number
  /** A client resuming on a durable hub reads the stream from its Last-Event-ID on its own (PROTOCOL §11.6). */
  own?: DurableSubscription
  /** Counted in the hub's resuming clients until it closes. */
  resuming?: boolean
  /** Closes the TCP connection within `seconds` unless the response ends first (uWS's per-request timer). */
  closeSocketIn: (seconds: number) => void
}

/** `?types=a,b.*` (exact types or prefixes) and `?routing.<key>=value` of a `GET /events` client. */
interface EventsFilter {
  exact: Set<string> | null
  prefixes: string[]
  routing: [string, string][]
}

/** The marker a client gets where events it should have had are gone (see src/http/README.md). */
const LAGGED = "lagged"
/** A replay reads the ring in one go; this bounds a read, not the replay. */
const REPLAY_QUEUE = 1 << 20
/** The live stream fans out at most this many events per read (the subscription lets the event loop turn between). */
const FANOUT_BATCH = 256

/** Reasons the hub itself ends a client whose socket it must then close: its data stopped flowing. */
const DROPPED = new Set(["slow", "idle"])

export class SseHub {
  private readonly clients = new Map<string, SseClient>()
  /** A durable hub's clients reading the stream from their Last-Event-ID: each holds a JetStream consumer. */
  private resuming = 0
  private readonly timers: ReturnType<typeof setInterval>[] = []
  private nextConn = 1
  private topic: Topic | null = null
  private live: Subscription | DurableSubscription | null = null
  private durable = false
  private liveLagged = 0

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly counters: HubCounters,
    private readonly registry: Registry,
    private readonly proxy: RequestProxy,
    private readonly connTag: string,
  ) {}

  /**
   * Starts heartbeats, the idle sweep, and the live stream of `topic` to `GET /events` clients: from its ring, or,
   * `durable`, from its stream (ids the stream's sequence numbers, the same on every hub of the cluster).
   */
  async start(topic: Topic, durable: boolean) {
    const sweepMs = Math.max(10, Math.min(1000, Math.floor(this.opts.sseIdleTimeoutMs / 4)))
    this.timers.push(
      setInterval(() => this.heartbeat(), this.opts.heartbeatMs),
      setInterval(() => this.sweep(), sweepMs),
    )
    this.topic = topic
    this.durable = durable
    this.live = durable
      ? await topic.subscribeDurable({}, { from: "now", queue: FANOUT_BATCH * 4 })
      : topic.subscribe({}, { queue: REPLAY_QUEUE, idle: this.opts.idle, from: "now" })
    void this.fanOut(this.live)
  }

  /** Publishes an event for `GET /events` clients (the HTTP emit endpoint, for workers without the topic); its id, or 0 if refused. */
  emit(e: EmitItem): number {
    if (!this.topic || typeof e?.type !== "string" || e.type.length === 0 || typeof e.data !== "string") return 0
    try {
      return this.topic.publish({ type: e.type, data: e.data, ...(e.routing && { routing: e.routing }) })
    } catch (err) {
      if (err instanceof TypeError || err instanceof PayloadTooLargeError) return 0 // refused: malformed, or over eventsCapacity / 4
      throw err
    }
  }

  private async fanOut(sub: Subscription | DurableSubscription) {
    try {
      for await (const batch of sub.batches(FANOUT_BATCH)) this.deliverLive(batch, sub.lagged)
    } catch (e) {
      if (!sub.isClosed)
        this.opts.log(`the events stream stopped: ${(e as Error).message}; GET /events clients get nothing more`)
    }
  }

  private deliverLive(batch: EventBatch, lagged: number) {
    if (lagged > this.liveLagged) {
      // The hub itself fell over half a ring behind (publishers pushed it on): every client missed those events.
      const missed = lagged - this.liveLagged
      this.liveLagged = lagged
      const marker = laggedFrame({ missed })
      for (const c of this.clients.values()) if (c.want) this.deliver(c, marker)
    }
    for (const ev of batch) {
      this.counters.emitted++
      let frame: Uint8Array | null = null
      for (const c of this.clients.values()) {
        if (!c.want || ev.id <= c.after || !matches(c.want, ev)) continue
        this.deliver(c, (frame ??= eventFrame(ev)))
      }
    }
  }

  get counts(): { connections: number; eventsClients: number } {
    let eventsClients = 0
    for (const c of this.clients.values()) if (!c.inst) eventsClients++
    return { connections: this.clients.size - eventsClients, eventsClients }
  }

  /**
   * `GET /events[?types=a,b.*][&routing.<key>=v][&from=oldest]`: what workers `emit`. With a `Last-Event-ID`
   * header (or `?lastEventId=`), the events still in the topic's ring after that id come first.
   */
  openEvents(req: Request, server: Server<undefined>, query: string): Response {
    const q = new URLSearchParams(query)
    const want = eventsFilter(q)
    const lastId = req.headers.get("last-event-id") ?? q.get("lastEventId")
    const from =
      lastId !== null && /^\d{1,15}$/.test(lastId.trim())
        ? Number(lastId)
        : q.get("from") === "oldest"
          ? "oldest"
          : null
    if (from !== null && this.durable && this.resuming >= this.opts.maxResumingClients) {
      this.counters.resumesRefused++
      return new Response(
        `this hub already replays to ${this.opts.maxResumingClients} resuming clients (maxResumingClients): retry shortly\n`,
        { status: 503, headers: { "retry-after": "1" } },
      )
    }
    server.timeout(req, 0)
    const client = this.add(req, server, null, "/events", "/events", want)
    if (from !== null && this.durable) {
      this.resuming++
      client.resuming = true
      void this.follow(client, from, lastId)
    } else if (from !== null) this.replay(client, from, lastId)
    req.signal.addEventListener("abort", () => this.close(client, "client"), { once: true })
    return new Response(client.stream.stream, { headers: SSE_HEADERS })
  }

  /**
   * Sends `client` what the ring holds after `from`, synchronously, so the live stream cannot interleave: the
   * replay reads up to the ring's tail, at or past every event the live stream has handed out, and the live stream
   * then skips ids ≤ client.after: what the replay sent, and what the client says it has (an id from app.emit, or
   * the tail, can be ahead of the live stream). So each event arrives once, in order.
   */
  private replay(client: SseClient, from: number | "oldest", lastId: string | null) {
    const want = client.want!
    const tail = typeof from === "number" ? this.topic!.stats().tail : 0 // before the replay opens (see below)
    let sub: Subscription
    try {
      sub = this.topic!.subscribe(typeFilter(want), { queue: REPLAY_QUEUE, idle: "park", from })
    } catch (e) {
      if (!(e instanceof TopicFullError)) throw e
      const reason = "the hub cannot replay now (the topic has no free subscriber entry)"
      this.deliver(client, laggedFrame({ lastEventId: lastId, reason }))
      return
    }
    try {
      if (sub.restarted) this.deliver(client, laggedFrame({ lastEventId: lastId, ...notResumable(from, this.topic!) }))
      // else it starts right after the event at `from` (issued: below `tail`), or at `from` (the tail as it opened)
      else if (typeof from === "number") client.after = from < tail ? from : from - 1
      for (let batch = sub.poll(); batch.count > 0 && client.stream.isOpen; batch = sub.poll()) {
        for (const ev of batch) {
          client.after = ev.id
          if (matches(want, ev)) this.deliver(client, eventFrame(ev))
        }
      }
      if (sub.lagged > 0) this.deliver(client, laggedFrame({ missed: sub.lagged, lastEventId: String(client.after) }))
    } finally {
      sub.close()
    }
  }

  /**
   * A durable hub's resuming client reads the stream from `from` through a subscriber of its own for as long as it
   * stays, so replay and live never interleave (PROTOCOL §11.6); the shared live stream skips it.
   */
  private async follow(client: SseClient, from: number | "oldest", lastId: string | null) {
    client.after = Number.POSITIVE_INFINITY
    let sub: DurableSubscription
    try {
      sub = await this.topic!.subscribeDurable(typeFilter(client.want!), { from, queue: FANOUT_BATCH * 4 })
    } catch (e) {
      client.after = -1 // live from now on, at least
      const reason = `the hub cannot replay now (${(e as Error).message})`
      this.deliver(client, laggedFrame({ lastEventId: lastId, reason }))
      return
    }
    if (!this.clients.has(client.id)) return sub.close()
    client.own = sub
    if (sub.restartReason === "from-the-future")
      this.deliver(
        client,
        laggedFrame({
          lastEventId: lastId,
          reason: "from-the-future",
          message: `no event ${from} was issued yet: it is from an earlier stream of this name; replaying the oldest kept`,
        }),
      )
    else if (sub.restarted)
      this.deliver(
        client,
        laggedFrame({
          lastEventId: lastId,
          reason: "discarded",
          message: "the events after it are no longer in the stream (its limits); replaying the oldest kept",
        }),
      )
    try {
      for await (const batch of sub.batches(FANOUT_BATCH))
        for (const ev of batch) if (matches(client.want!, ev)) this.deliver(client, eventFrame(ev))
    } catch (e) {
      if (this.clients.has(client.id)) {
        this.opts.log(`a resumed events stream stopped: ${(e as Error).message}`)
        this.close(client, "worker-gone")
      }
    }
  }

  /** A worker's SSE route: one of its processes hears of the client and pushes to it. */
  async openRoute(req: Request, server: Server<undefined>, entry: RouteEntry, path: string): Promise<Response> {
    const inst = this.registry.pick(entry, false)
    if (!inst) return this.proxy.unavailable(entry)
    server.timeout(req, 0)
    forwardedFor(req, server)
    // Registered before the worker hears of it, so events it pushes straight away are not lost.
    const client = this.add(req, server, inst, path, entry.route.shape, null)
    const headers = [...req.headers] as [string, string][]
    const open: ControlMessage = {
      op: "sse-open",
      conn: client.id,
      path: req.url.slice(Math.max(0, pathStart(req.url))),
      headers,
    }
    try {
      const reply = JSON.parse(new TextDecoder().decode(await inst.bus.call(JSON.stringify(open)))) as {
        params: Params
      }
      client.params = reply.params
    } catch (e) {
      if (!this.clients.delete(client.id)) this.counters.sseClosed-- // closed meanwhile: its worker went
      this.counters.sseOpened-- // never opened: counted neither opened nor closed
      return this.proxy.failure(e, inst, req)
    }
    if (req.signal.aborted) {
      this.close(client, "client")
      return new Response(null, { status: 499 })
    }
    req.signal.addEventListener("abort", () => this.close(client, "client"), { once: true })
    return new Response(client.stream.stream, { headers: SSE_HEADERS })
  }

  /** Ends the streams `inst` held: its worker is gone, so their clients should reconnect elsewhere. */
  closeFor(inst: WorkerInstance) {
    for (const c of [...this.clients.values()]) if (c.inst === inst) this.close(c, "worker-gone")
  }

  closeAll(reason: string) {
    for (const t of this.timers) clearInterval(t)
    this.live?.close()
    for (const c of [...this.clients.values()]) this.close(c, reason)
  }

  push(p: PushItem): number {
    const targets = this.targets(p?.target)
    this.counters.pushed++
    const frame = p.event && typeof p.event.data === "string" ? sseFrame(p.event) : null
    for (const c of targets) {
      if (frame) this.deliver(c, frame)
      if (p.close) this.close(c, "worker")
    }
    return targets.length
  }

  private add(
    req: Request,
    server: Server<undefined>,
    inst: WorkerInstance | null,
    path: string,
    shape: string,
    want: EventsFilter | null,
  ): SseClient {
    const id = `c${(this.nextConn++).toString(36)}${this.connTag}`
    const client: SseClient = {
      id,
      inst,
      path,
      shape,
      params: {},
      want,
      after: -1,
      closeSocketIn: (seconds) => server.timeout(req, seconds),
      stream: new SseStream(this.opts.sseMaxBufferedBytes, () => this.close(client, "client"), this.opts.sseRetryMs),
    }
    this.clients.set(id, client)
    this.counters.sseOpened++
    return client
  }

  /**
   * Ends a client's stream once and tells its worker why ("client", "slow", "idle", "worker", "hub-closing",
   * "worker-gone"). A dropped client's socket is closed, not just left unwritten: erroring the stream alone
   * leaves the connection (and its fd) open for as long as the client does not read.
   */
  private close(c: SseClient, reason: string) {
    if (!this.clients.delete(c.id)) return
    c.own?.close()
    if (c.resuming) this.resuming--
    this.counters.sseClosed++
    if (DROPPED.has(reason)) {
      if (reason === "slow") this.counters.sseDropped++
      else this.counters.sseIdleClosed++
      c.stream.abort()
      c.closeSocketIn(1)
    } else {
      c.stream.end()
      // A client that stopped reading would hold the ended stream open forever: give it the idle timeout to take it.
      if (reason !== "client" && reason !== "hub-closing") c.closeSocketIn(Math.ceil(this.opts.sseIdleTimeoutMs / 1000))
    }
    if (c.inst && isAttached(c.inst) && reason !== "worker-gone")
      c.inst.bus.call(JSON.stringify({ op: "sse-close", conn: c.id, reason } satisfies ControlMessage)).catch(() => {})
  }

  private deliver(c: SseClient, frame: Uint8Array) {
    if (!c.stream.send(frame)) this.close(c, "slow")
  }

  /** Drops clients that have taken nothing for sseIdleTimeoutMs while something waited for them. */
  private sweep() {
    const now = performance.now()
    for (const c of [...this.clients.values()])
      if (c.stream.stalledMs(now) > this.opts.sseIdleTimeoutMs) this.close(c, "idle")
  }

  private heartbeat() {
    for (const c of [...this.clients.values()]) this.deliver(c, HEARTBEAT)
  }

  private targets(t: PushTarget | undefined): SseClient[] {
    if (!t || typeof t !== "object") return []
    if ("conn" in t) {
      const c = this.clients.get(t.conn)
      return c && c.inst ? [c] : []
    }
    if ("path" in t) return [...this.clients.values()].filter((c) => c.inst && c.path.split("?")[0] === t.path)
    if ("pattern" in t) {
      let shape: string
      try {
        shape = parseRoute("GET", t.pattern).shape
      } catch {
        return []
      }
      const want = Object.entries(t.params ?? {})
      return [...this.clients.values()].filter(
        (c) => c.inst && c.shape === shape && want.every(([k, v]) => c.params[k] === String(v)),
      )
    }
    return []
  }
}

function eventsFilter(q: URLSearchParams): EventsFilter {
  const exact = new Set<string>()
  const prefixes: string[] = []
  const types = (q.get("types") ?? "").split(",").filter(Boolean)
  let any = types.length === 0
  for (const t of types) {
    if (t === "*") any = true
    else if (t.endsWith("*")) prefixes.push(t.slice(0, -1))
    else exact.add(t)
  }
  if (any) prefixes.length = 0
  const routing = [...q]
    .filter(([k]) => k.startsWith("routing.") && k.length > 8)
    .map(([k, v]) => [k.slice(8), v] as [string, string])
  return { exact: any ? null : exact, prefixes: any ? [] : prefixes, routing }
}

/** The topic filter that selects what `w` does, or a superset of it (several types: any; `matches` decides). */
function typeFilter(want: EventsFilter): TopicFilter {
  const filter: TopicFilter = {}
  if (want.routing.length > 0) filter.routing = Object.fromEntries(want.routing)
  if (want.exact?.size === 1 && want.prefixes.length === 0) filter.type = [...want.exact][0]
  else if (want.exact?.size === 0 && want.prefixes.length === 1) filter.type = want.prefixes[0] + "*"
  return filter
}

function matches(w: EventsFilter, ev: TopicEvent): boolean {
  if (w.exact && !w.exact.has(ev.type) && !w.prefixes.some((p) => ev.type.startsWith(p))) return false
  if (w.routing.length === 0) return true
  const r: Routing = ev.routing
  return w.routing.every(([k, v]) => r[k] === v)
}

const eventFrame = (ev: TopicEvent) => sseFrame({ event: ev.type, data: ev.text(), id: String(ev.id) })

/**
 * Why a replay could not start right after `from`: its event was overwritten, it is past every event this topic
 * published (an id from an earlier hub or topic), or no event starts there. The replay starts at the oldest.
 */
function notResumable(from: number | "oldest", topic: Topic): { reason: string; message: string } {
  const { tail, capacity } = topic.stats()
  if (from === "oldest" || tail - from > capacity - capacity / 16)
    return { reason: "overwritten", message: "the events after it were overwritten; replaying the oldest kept" }
  if (from > tail)
    return {
      reason: "from-the-future",
      message: `no event ${from} was issued yet (the newest is below ${tail}): it is from an earlier hub or topic; replaying the oldest kept`,
    }
  return { reason: "never-issued", message: `no event has the id ${from}; replaying the oldest kept` }
}

/** `event: lagged` without an id, so the client's Last-Event-ID stays where it was. */
const laggedFrame = (data: Record<string, unknown>) => sseFrame({ event: LAGGED, data: JSON.stringify(data) })
