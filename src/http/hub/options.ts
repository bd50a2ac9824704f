// The hub's options, checked once, and the small response helpers every hub file uses.
import type { HttpServer as Server } from "../../runtime/index.ts"
import type { IdleStrategy } from "../../core/index.ts"
import { streamWindow, idler } from "../../core/internal.ts"
import { checkNumber, checkOptions, checkPort, MAX_TIMER_MS, optionNames } from "../../kit/index.ts"
import { metricsMaxAge } from "../../status/internal.ts"

export interface HubOptions {
  /** TCP port; 0 picks a free one (read it back from `hub.port`). Default 3200. */
  port?: number
  /** Address to listen on. Default "127.0.0.1". */
  hostname?: string
  /** Token workers must present. Default: a fresh random one per hub. */
  token?: string
  /** Where the token is written (mode 0600). Default `slotbus-hub-<port>.token` in `$XDG_RUNTIME_DIR` (the user's 0700 directory), else in the socket directory (docs/PROTOCOL.md §13.2). */
  tokenFile?: string
  /** How long a worker may take to answer, in ms; then 504. Default 30 000. */
  timeoutMs?: number
  /** Largest request body; larger ones get 413. Default 8 MiB. */
  maxRequestBodyBytes?: number
  /**
   * Bytes of request bodies the hub holds at once, read (or being read) and not yet in a worker's slot: while they
   * are there, bodies are read no further (their clients are held back) until some are let go; one that waited
   * timeoutMs for room gets 503 with Retry-After. At least maxRequestBodyBytes; Infinity: no bound. Default 256 MiB,
   * or 4 × maxRequestBodyBytes if more.
   */
  maxHeldBodyBytes?: number
  /**
   * Ring bytes per slot a worker may stream a response into ahead of the client (docs/PROTOCOL.md §9): a power of
   * two from 4096 to 1 GiB. 0 offers no window, as a hub from before streams did: workers then answer whole and
   * send bodies over `chunkBytes` in chunks the hub pulls. Default 1 MiB.
   */
  streamWindowBytes?: number
  /**
   * Response bodies given as bytes travel whole in the slot up to this size; larger ones stream. Without a
   * stream window (`streamWindowBytes: 0`, or an older worker) it is also the size of the chunks the hub pulls.
   * Default 1 MiB.
   */
  chunkBytes?: number
  /** Requests in flight per worker process. Default 32. */
  slots?: number
  /**
   * How the hub waits for workers' answers (see SlotBus). Default the core's ("adaptive"): its spin gives way to the
   * hub's sockets, and where the hub and its workers outnumber the CPUs it parks (docs/api.md, Idle strategies).
   */
  idle?: IdleStrategy
  /** Comment line sent to idle SSE clients this often, in ms. Default 15 000. */
  heartbeatMs?: number
  /**
   * The `retry:` an SSE client (`GET /events`, SSE routes) is sent first, in ms: how soon a browser's
   * EventSource reconnects after its connection is cut (to another hub behind the same address, with its
   * `Last-Event-ID`). 0 sends none (browsers then wait about 3 s). Default 500.
   */
  sseRetryMs?: number
  /** An SSE client that lets this many bytes queue up is dropped. Default 1 MiB. */
  sseMaxBufferedBytes?: number
  /**
   * An SSE client that has taken nothing for this long while bytes wait for it (an event or a heartbeat) is
   * dropped and its connection closed, in ms. Heartbeats keep a connection alive only while the client reads
   * them. Default 60 000.
   */
  sseIdleTimeoutMs?: number
  /** Leave out the one-line log of worker registrations, restarts and evictions. Default false. */
  quiet?: boolean
  /** Where those lines go. Default: console.log with a "slotbus hub: " prefix. */
  log?: (line: string) => void
  /**
   * The shared-memory topic `app.emit` publishes to and `GET /events` reads from (see slotbus/events). Default
   * `http.<port>`: workers learn the name when they register, and a hub restarted on the same port finds the
   * topic (and the events its workers published meanwhile) again while any worker still holds it.
   */
  eventsTopic?: string
  /** Ring bytes of that topic (a power of two, 64 KiB … 1 GiB): how far back `Last-Event-ID` can replay. Default 1 MiB. */
  eventsCapacity?: number
  /** The liveness reaper pings every worker this often, in ms. Default 5000. */
  pingEveryMs?: number
  /** A worker that misses this many pings in a row is evicted. Default 3. */
  maxMissedPings?: number
  /**
   * Take workers on other hosts too, through this NATS server (docs/PROTOCOL.md §10): a URL or the NATS client's
   * connection options. Workers there pass the same option to `hubWorker`. Default: this host only.
   */
  nats?: string | Record<string, unknown>
  /**
   * With `nats`: the events topic spans hosts and keeps its events in a JetStream stream (docs/PROTOCOL.md §11.6),
   * so `GET /events` ids are the stream's sequence numbers and a client reconnecting to another hub of the cluster
   * resumes with its `Last-Event-ID` there; workers on other hosts can `app.emit`. `true`, or the stream's limits
   * `{ maxBytes, maxAgeMs, replicas }` (as Topic.open's `durable`). Default: events stay on this host.
   */
  eventsDurable?: boolean | { maxBytes?: number; maxAgeMs?: number; replicas?: number }
  /**
   * With `eventsDurable`: clients reading the stream from their `Last-Event-ID` at once, each through a JetStream
   * consumer of its own (deleted when it leaves). More get 503 with `Retry-After: 1`. Default 256.
   */
  maxResumingClients?: number
  /** How long a computed GET /metrics text answers scrapes, in ms (0: only scrapes during its computation). Default 1000. */
  metricsMaxAgeMs?: number
}

const HUB_OPTIONS = optionNames<HubOptions>({
  port: true,
  hostname: true,
  token: true,
  tokenFile: true,
  timeoutMs: true,
  maxRequestBodyBytes: true,
  maxHeldBodyBytes: true,
  streamWindowBytes: true,
  chunkBytes: true,
  slots: true,
  idle: true,
  heartbeatMs: true,
  sseRetryMs: true,
  sseMaxBufferedBytes: true,
  sseIdleTimeoutMs: true,
  quiet: true,
  log: true,
  eventsTopic: true,
  eventsCapacity: true,
  pingEveryMs: true,
  maxMissedPings: true,
  nats: true,
  eventsDurable: true,
  maxResumingClients: true,
  metricsMaxAgeMs: true,
})

export type ResolvedOptions = Required<
  Omit<HubOptions, "token" | "tokenFile" | "idle" | "quiet" | "nats" | "eventsDurable">
> &
  Pick<HubOptions, "tokenFile" | "idle" | "nats" | "eventsDurable">

/** Bun.serve's longest idle timeout, in seconds. */
const MAX_IDLE_SECONDS = 255

/**
 * Seconds a client's connection may sit with nothing sent either way before the hub closes it: `timeoutMs` and 5 s
 * more, so a worker's late answer comes as the hub's 504, not as a cut connection; 10 s at least, 255 at most.
 */
export const idleSecondsFor = (timeoutMs: number) =>
  timeoutMs === 0 ? 10 : Math.min(MAX_IDLE_SECONDS, Math.max(10, Math.ceil(timeoutMs / 1000) + 5))

/** A worker may answer after the connection's idle timeout (`timeoutMs` 0, or over 250 s): its wait is exempt. */
export const outlastsIdle = (timeoutMs: number) => timeoutMs === 0 || Math.ceil(timeoutMs / 1000) + 5 > MAX_IDLE_SECONDS

/** The events topic's name for a hub on `port`, unless `eventsTopic` names one. */
export const eventsTopicFor = (port: number) => `http.${port}`

export const MiB = 1024 * 1024

const int = (v: number | undefined, dflt: number, what: string, min = 0, max?: number) =>
  checkNumber(v, { what, where: "createHub", min, max, dflt })

export function resolveOptions(opts: HubOptions): ResolvedOptions {
  checkOptions(opts, HUB_OPTIONS, "createHub")
  const maxRequestBodyBytes = int(opts.maxRequestBodyBytes, 8 * MiB, "maxRequestBodyBytes")
  idler(opts.idle, "createHub idle") // each worker's bus takes it later: a mistake must not wait for the first worker
  if (opts.nats !== undefined && typeof opts.nats !== "string" && (typeof opts.nats !== "object" || opts.nats === null))
    throw new TypeError("nats must be a NATS URL string or the NATS client's connection options")
  const durable = opts.eventsDurable
  if (durable !== undefined && typeof durable !== "boolean" && (typeof durable !== "object" || durable === null))
    throw new TypeError(`eventsDurable must be true or { maxBytes, maxAgeMs, replicas }, got ${typeof durable}`)
  if (durable && opts.nats === undefined)
    throw new TypeError(
      "eventsDurable needs nats: the events' stream is JetStream's (createHub({ nats, eventsDurable }))",
    )
  return {
    port: checkPort(opts.port, { what: "port", where: "createHub", dflt: 3200 }),
    hostname: opts.hostname ?? "127.0.0.1",
    tokenFile: opts.tokenFile,
    timeoutMs: int(opts.timeoutMs, 30_000, "timeoutMs"),
    maxRequestBodyBytes,
    maxHeldBodyBytes: checkNumber(opts.maxHeldBodyBytes, {
      what: "maxHeldBodyBytes",
      where: "createHub",
      dflt: Math.max(256 * MiB, 4 * maxRequestBodyBytes),
      min: maxRequestBodyBytes,
      infinite: true,
      note: "at least maxRequestBodyBytes, so a body it allows can be held",
    }),
    streamWindowBytes: streamWindow(opts.streamWindowBytes),
    chunkBytes: int(opts.chunkBytes, MiB, "chunkBytes", 1024),
    slots: int(opts.slots, 32, "slots", 1),
    idle: opts.idle,
    heartbeatMs: int(opts.heartbeatMs, 15_000, "heartbeatMs", 1, MAX_TIMER_MS),
    sseRetryMs: int(opts.sseRetryMs, 500, "sseRetryMs", 0, MAX_TIMER_MS),
    sseMaxBufferedBytes: int(opts.sseMaxBufferedBytes, MiB, "sseMaxBufferedBytes", 1),
    sseIdleTimeoutMs: int(opts.sseIdleTimeoutMs, 60_000, "sseIdleTimeoutMs", 1),
    log: opts.quiet ? () => {} : (opts.log ?? ((line) => console.log(`slotbus hub: ${line}`))),
    eventsTopic: opts.eventsTopic ?? "", // "" until the port is known: http.<port>
    eventsCapacity: int(opts.eventsCapacity, MiB, "eventsCapacity", 64 * 1024),
    pingEveryMs: int(opts.pingEveryMs, 5000, "pingEveryMs", 1, MAX_TIMER_MS),
    maxMissedPings: int(opts.maxMissedPings, 3, "maxMissedPings", 1),
    nats: opts.nats,
    eventsDurable: durable || undefined,
    maxResumingClients: int(opts.maxResumingClients, 256, "maxResumingClients", 1),
    metricsMaxAgeMs: metricsMaxAge(opts.metricsMaxAgeMs, "metricsMaxAgeMs", "createHub"),
  }
}

export const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } })

/** Appends the client's address to X-Forwarded-For, as proxies do. */
export function forwardedFor(req: Request, server: Server<undefined>) {
  let ip = server.requestIP(req)?.address
  if (!ip) return
  if (ip.startsWith("::ffff:")) ip = ip.slice(7)
  const prev = req.headers.get("x-forwarded-for")
  req.headers.set("x-forwarded-for", prev ? `${prev}, ${ip}` : ip)
}
