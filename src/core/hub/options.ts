// What SlotBus.listen, request, call, fetch, remote, invoke, waitForWorkers and close accept, and the checks they share.
// Separate so the options a user can pass read in one place, apart from the machinery that uses them. listen's are
// resolved once, in resolveOptions, into the ListenSettings the bus and its parts read.
import { HUB_CONFIG_WORDS, HubConfig, MAX_ALLOW_UIDS } from "../../native/ffi.ts"
import { align8, type BodyInit, type HeaderInit } from "../wire/codec.ts"
import { idler, type IdleStrategy } from "../wire/idle-strategy.ts"
import { HUB_PORT, type RemoteTransport } from "../wire/remote.ts"
import { DEFAULT_RECORDS, MAX_RECORDS } from "../probe/recorder.ts"
import { checkNumber, checkOptions, checkRemote, checkTraceOptions, optionNames } from "../../kit/index.ts"

export interface ListenOptions {
  /**
   * One of several fronts of this name (a `Bun.serve({ reusePort: true })` or node:cluster server's processes):
   * every worker of the name serves all of them, each over shared memory (docs/PROTOCOL.md §15). Every front of
   * the name must pass it. Default false.
   */
  shared?: boolean
  /** Requests in flight per worker (1..4096). Default 32. */
  slots?: number
  /** Largest request body; responses get at least as much. Default 64 MiB. */
  maxBodyBytes?: number
  /**
   * Bytes of request bodies `bus.fetch` holds at once, read (or being read) and waiting for a slot: while they are
   * there, bodies are read no further (their clients are held back) until some are let go; one that waited its
   * timeoutMs for room fails with BusFullError (503). At least maxBodyBytes; Infinity: no bound. Default 256 MiB, or
   * 4 × maxBodyBytes if more.
   */
  maxHeldBodyBytes?: number
  /** Largest encoded method + path + headers. Default 16 KiB. */
  maxHeadBytes?: number
  /** Requests that may wait for a free slot before `request()` rejects with BusFullError. Default 4096. */
  queue?: number
  /** Default timeout of each request in ms; 0 waits forever. Default 30 000. */
  timeoutMs?: number
  /** How the hub waits for responses. Default "adaptive". */
  idle?: IdleStrategy
  /** uids allowed to connect besides the hub's own (which always is). At most 8. */
  allowUids?: number[]
  /** Arena bytes kept resident per slot after a large message; the rest is returned to the kernel. Default 1 MiB. */
  trimBytes?: number
  /** Workers connected at once; more are refused (they get PeerRefusedError). Default 256. */
  maxWorkers?: number
  /** Workers of one uid connected at once. Default: maxWorkers. */
  maxWorkersPerUid?: number
  /**
   * A slot the worker still holds this long past its request's deadline (timeoutMs) is stuck; one given up later than
   * that (a stream), or with no timeout, this long past its giving up. Default 1000.
   */
  stuckAfterMs?: number
  /** A worker holding this many stuck slots gets no new requests and is disconnected. Default: half its slots (at least 1). */
  maxStuckSlots?: number
  /**
   * Hot reload: a `listen` of a name this process already listens under, with the same options, returns that
   * open bus instead of failing with NameInUseError (what a module re-run by `bun --hot` needs). Default: on when
   * the process runs under `bun --hot`, off otherwise.
   */
  hot?: boolean
  /**
   * Ring bytes per slot a worker may stream an answer into ahead of its reader (docs/PROTOCOL.md §9): a power of
   * two from 4096, at most the slot's arena; 0 answers every request whole. Default 1 MiB (less if the arena is).
   */
  streamWindowBytes?: number
  /** A streaming caller that stops reading for this long gives its request up (TimeoutError); 0: never. Default 30 000. */
  streamIdleMs?: number
  /**
   * Take workers on other hosts too, through a transport passed in: `remote: nats(url)` (`import { nats } from
   * "slotbus/nats"`, docs/PROTOCOL.md §10). Only the transport given here is loaded.
   */
  remote?: RemoteTransport
  /**
   * When a worker on another host gets a request: "overflow" (default) only when no local worker has a free
   * slot; "balance" to whichever has the lowest share of its slots in use; "never".
   */
  remotePolicy?: "overflow" | "balance" | "never"
  /** With `remote`: how often the hub announces itself. Default 500. */
  heartbeatMs?: number
  /**
   * With `remote`: a worker on another host is counted gone at most this long after its last heartbeat (a kill -9
   * included), and its requests fail with WorkerGoneError; or 4 × the worker's own heartbeatMs, if it announces that
   * and it is longer. Default 4 × heartbeatMs (2000); at least 2 × heartbeatMs.
   */
  peerTimeoutMs?: number
  /**
   * GET /metrics (serveStatus) shows request durations per route (method and the request's `route` pattern,
   * "GET /items/:id", or the method alone without one) or RPC method, for up to this many routes (patterns, requests
   * without one, RPC methods); the rest count as "other". A route has a series per method (at most 10: RFC 9110's,
   * PATCH, _OTHER), so at most 10 × this many series and "other". Default 64; 0: not per route.
   */
  metricsRoutes?: number
  /**
   * The flight recorder (docs/PROTOCOL.md §16): how many recent requests its file in /dev/shm keeps for `slotbus ls`,
   * `slotbus top` and `slotbus requests` to read from another process (1 … 65536); false or 0: no file. Default 1024.
   */
  recorder?: number | false
}

export interface SlotRequestInit {
  method?: string
  path?: string
  headers?: HeaderInit
  body?: BodyInit
}

export interface RequestOptions {
  /** Overrides the bus's timeoutMs; 0 waits forever. */
  timeoutMs?: number
  signal?: AbortSignal
  /**
   * Answer with a BorrowedResponse whose body views the slot instead of a copy: the slot stays the caller's
   * until `release()` (or `using`). For large responses: nothing is copied and nothing grows the heap.
   */
  borrow?: boolean
  /**
   * Resolve at the worker's status and headers with a StreamedResponse whose `body` streams as the worker produces
   * it, instead of after the whole body. `timeoutMs` then runs until the headers.
   */
  stream?: boolean
  /** Overrides the bus's streamIdleMs for this request. */
  streamIdleMs?: number
  /**
   * Copy the answer's body into this buffer and resolve with `into.subarray(0, n)`, not a new buffer; an answer
   * longer than it comes as a fresh copy. Never written after the request settled. Not with borrow or stream.
   */
  into?: Uint8Array
  /**
   * Running this request twice is harmless: if its worker is gone before answering (WorkerGoneError), it is sent
   * once more, to another worker. Without it a request is never sent twice.
   */
  idempotent?: boolean
  /**
   * The caller's W3C trace context, sent with the request (docs/PROTOCOL.md §6.2). Default: the active
   * OpenTelemetry span's, when an SDK is registered; the worker sees it as `req.traceparent`.
   */
  traceparent?: string
  /** The `tracestate` that goes with `traceparent`. */
  tracestate?: string
  /**
   * The route's pattern ("/items/:id"), the label GET /metrics counts this request under ("GET /items/:id"), never
   * its path. Without it a request counts under its method alone ("GET"). Bun.serve's request does not say which
   * of its `routes` matched: pass that key here.
   */
  route?: string
}

/** The options of RPC calls: `bus.remote(options)` (every call through it) and `bus.invoke(method, args, options)`. */
export interface RemoteOptions {
  /** Overrides the bus's timeoutMs; 0 waits forever. When it passes, the call's signal aborts on the worker. */
  timeoutMs?: number
  /** Aborting it rejects the calls made under it with its reason and aborts their signals on the worker. */
  signal?: AbortSignal
  /**
   * Running the call twice is harmless: if its worker is gone before answering (WorkerGoneError), it is sent
   * once more, to another worker. Without it a call is never sent twice.
   */
  idempotent?: boolean
  /**
   * The caller's W3C trace context, sent with the request (docs/PROTOCOL.md §6.2). Default: the active
   * OpenTelemetry span's, when an SDK is registered; the worker sees it as `req.traceparent`.
   */
  traceparent?: string
  /** The `tracestate` that goes with `traceparent`. */
  tracestate?: string
}

export const MiB = 1024 * 1024
export interface WaitOptions {
  timeoutMs?: number
  signal?: AbortSignal
}

export interface CloseOptions {
  drain?: boolean
  timeoutMs?: number
}

export const LISTEN_OPTIONS = optionNames<ListenOptions>({
  shared: true,
  slots: true,
  maxBodyBytes: true,
  maxHeldBodyBytes: true,
  maxHeadBytes: true,
  queue: true,
  timeoutMs: true,
  idle: true,
  allowUids: true,
  trimBytes: true,
  maxWorkers: true,
  maxWorkersPerUid: true,
  stuckAfterMs: true,
  maxStuckSlots: true,
  hot: true,
  streamWindowBytes: true,
  streamIdleMs: true,
  remote: true,
  remotePolicy: true,
  heartbeatMs: true,
  peerTimeoutMs: true,
  metricsRoutes: true,
  recorder: true,
})
export const REQUEST_INIT = optionNames<SlotRequestInit>({ method: true, path: true, headers: true, body: true })
export const REQUEST_OPTIONS = optionNames<RequestOptions>({
  timeoutMs: true,
  signal: true,
  borrow: true,
  stream: true,
  streamIdleMs: true,
  idempotent: true,
  traceparent: true,
  tracestate: true,
  into: true,
  route: true,
})
/** A request's options that need no bus to check: their types, and the ones that cannot go together. */
export function checkRequestOptions(opts: RequestOptions) {
  const { signal, borrow, stream, into, idempotent } = opts
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal")
  if (borrow !== undefined && typeof borrow !== "boolean") throw new TypeError("borrow must be a boolean")
  if (stream !== undefined && typeof stream !== "boolean") throw new TypeError("stream must be a boolean")
  if (stream && borrow) throw new TypeError("stream and borrow cannot be combined: pick one")
  if (into != null && !(into instanceof Uint8Array)) throw new TypeError("into must be a Uint8Array")
  if (into != null && (borrow || stream))
    throw new TypeError(`into cannot be combined with ${borrow ? "borrow" : "stream"}: pick one`)
  if (idempotent !== undefined && typeof idempotent !== "boolean") throw new TypeError("idempotent must be a boolean")
  if (opts.route !== undefined && (typeof opts.route !== "string" || opts.route.length > MAX_ROUTE))
    throw new TypeError(
      `route must be a string of at most ${MAX_ROUTE} characters: the route's pattern ("/items/:id"), not its path`,
    )
}
/**
 * bus.fetch's options checked as its requests check them, once (nodeHandler's `fetch`, before any request): the
 * options it knows, their types and ranges, a traceparent's format.
 */
export function checkFetchOptions(opts: FetchOptions | undefined, where: string): FetchOptions {
  const o = checkOptions(opts, FETCH_OPTIONS, where)
  positiveInt(o.timeoutMs, 0, `${where}: timeoutMs`)
  positiveInt(o.streamIdleMs, 0, `${where}: streamIdleMs`)
  checkRequestOptions(o)
  checkTraceOptions(o, where)
  return o
}
/** The longest `route` a request may name. */
const MAX_ROUTE = 256
export const WAIT_OPTIONS = optionNames<WaitOptions>({ timeoutMs: true, signal: true })
export const CLOSE_OPTIONS = optionNames<CloseOptions>({ drain: true, timeoutMs: true })
export const REMOTE_OPTIONS = optionNames<RemoteOptions>({
  timeoutMs: true,
  signal: true,
  idempotent: true,
  traceparent: true,
  tracestate: true,
})
export type FetchOptions = Omit<RequestOptions, "borrow" | "stream" | "into">
export const FETCH_OPTIONS = optionNames<FetchOptions>({
  timeoutMs: true,
  signal: true,
  streamIdleMs: true,
  idempotent: true,
  traceparent: true,
  tracestate: true,
  route: true,
})

/** bus.waitForWorkers()'s count and options checked (the old form's number is its timeoutMs), its defaults applied. */
export function waitSettings(n: number, opts: number | WaitOptions): { timeoutMs: number; signal?: AbortSignal } {
  const o = typeof opts === "number" ? { timeoutMs: opts } : opts
  checkOptions(o, WAIT_OPTIONS, "bus.waitForWorkers")
  positiveInt(n, 0, "bus.waitForWorkers: n")
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal")
  return { timeoutMs: positiveInt(o.timeoutMs, 10_000, "timeoutMs"), signal: o.signal }
}

/** bus.close()'s options checked: whether requests accepted may finish, and for how long. */
export function closeSettings(opts: CloseOptions): { drain: boolean; timeoutMs: number } {
  checkOptions(opts, CLOSE_OPTIONS, "bus.close")
  if (opts.drain !== undefined && typeof opts.drain !== "boolean")
    throw new TypeError(`close: drain must be a boolean, got ${typeof opts.drain}`)
  return { drain: opts.drain ?? true, timeoutMs: positiveInt(opts.timeoutMs, 5000, "timeoutMs") }
}

/** A whole-number option of the core, through the kit's one number check: `dflt` when undefined, else min..max. */
export function positiveInt(v: number | undefined, dflt: number, what: string, min = 0, max?: number): number {
  return checkNumber(v, { what, dflt, min, max })
}

/**
 * The stream window to offer (docs/PROTOCOL.md §9.1): as asked (0, or a power of two from 4096 the arena holds),
 * or 1 MiB, or the largest power of two the arena holds. The hub checks its `streamWindowBytes` here too.
 */
export function streamWindow(asked: number | undefined, arena = 2 ** 30): number {
  if (asked === undefined) {
    let w = MiB
    while (w > arena) w /= 2
    return w >= 4096 ? w : 0
  }
  const max = Math.min(arena, 2 ** 30)
  const note = max < 2 ** 30 ? "the slot's arena: maxHeadBytes + maxBodyBytes" : undefined
  return checkNumber(asked, { what: "streamWindowBytes", min: 4096, max, powerOfTwo: true, zero: true, note })
}

/** SlotBus.listen's options with every default applied and every value checked (resolveOptions). */
export type ListenSettings = Required<
  Omit<ListenOptions, "shared" | "hot" | "idle" | "remote" | "heartbeatMs" | "peerTimeoutMs" | "recorder">
> & {
  idle: IdleStrategy | undefined
  /** The transport for workers on other hosts and its timing; null without `remote`. */
  remote: { transport: RemoteTransport; heartbeatMs: number; peerTimeoutMs: number } | null
  /** The flight recorder's records; 0: no recorder. */
  recorder: number
}

const POLICIES = ["overflow", "balance", "never"]

/** Checks SlotBus.listen's options in one place and resolves their defaults (the names are checked by listen). */
export function resolveOptions(opts: ListenOptions): ListenSettings {
  const slots = positiveInt(opts.slots, 32, "slots", 1, 4096)
  const maxBodyBytes = positiveInt(opts.maxBodyBytes, 64 * MiB, "maxBodyBytes", 0, 2 ** 32 - 1024 * MiB)
  const maxHeadBytes = positiveInt(opts.maxHeadBytes, 16 * 1024, "maxHeadBytes", 64, 16 * MiB) // a method and a path
  const maxHeldBodyBytes = checkNumber(opts.maxHeldBodyBytes, {
    what: "maxHeldBodyBytes",
    dflt: Math.max(256 * MiB, 4 * maxBodyBytes),
    min: maxBodyBytes,
    infinite: true,
    note: "at least maxBodyBytes, so a body it allows can be held",
  })
  const queue = positiveInt(opts.queue, 4096, "queue")
  const timeoutMs = positiveInt(opts.timeoutMs, 30_000, "timeoutMs")
  const streamIdleMs = positiveInt(opts.streamIdleMs, 30_000, "streamIdleMs")
  const policy = opts.remotePolicy
  if (policy !== undefined && !POLICIES.includes(policy))
    throw new TypeError(`remotePolicy must be "overflow", "balance" or "never", got ${JSON.stringify(policy)}`)
  if (typeof opts.remote === "string" && POLICIES.includes(opts.remote))
    throw new TypeError(`SlotBus.listen: the policy is now remotePolicy: "${opts.remote}"; remote takes a transport`)
  const transport =
    opts.remote === undefined ? null : checkRemote<RemoteTransport>(opts.remote, HUB_PORT, "SlotBus.listen")
  const maxWorkers = positiveInt(opts.maxWorkers, 256, "maxWorkers")
  const maxWorkersPerUid = positiveInt(opts.maxWorkersPerUid, maxWorkers, "maxWorkersPerUid")
  const stuckAfterMs = positiveInt(opts.stuckAfterMs, 1000, "stuckAfterMs")
  const maxStuckSlots = positiveInt(opts.maxStuckSlots, Math.max(1, slots >> 1), "maxStuckSlots", 1, 4096)
  idler(opts.idle, "SlotBus.listen idle") // validate now, not on the first connection
  const allowUids = opts.allowUids ?? []
  if (!Array.isArray(allowUids))
    throw new TypeError(`SlotBus.listen: allowUids must be an array of uids, got ${typeof allowUids}`)
  if (allowUids.length > MAX_ALLOW_UIDS)
    throw new RangeError(`SlotBus.listen: allowUids takes at most ${MAX_ALLOW_UIDS} uids, got ${allowUids.length}`)
  allowUids.forEach((u, i) => checkNumber(u, { what: `allowUids[${i}]`, where: "SlotBus.listen", max: 2 ** 32 - 1 }))
  const trimBytes = positiveInt(opts.trimBytes, MiB, "trimBytes")
  const arena = arenaBytes(maxHeadBytes, maxBodyBytes)
  const streamWindowBytes = streamWindow(opts.streamWindowBytes, Math.ceil(arena / 4096) * 4096)
  const metricsRoutes = positiveInt(opts.metricsRoutes, 64, "metricsRoutes", 0, 10_000)
  const recorder = opts.recorder === false ? 0 : positiveInt(opts.recorder, DEFAULT_RECORDS, "recorder", 0, MAX_RECORDS)
  return {
    slots,
    maxBodyBytes,
    maxHeldBodyBytes,
    maxHeadBytes,
    queue,
    timeoutMs,
    streamIdleMs,
    remotePolicy: policy ?? "overflow",
    remote: transport && { transport, ...remoteTiming(opts) },
    maxWorkers,
    maxWorkersPerUid,
    stuckAfterMs,
    maxStuckSlots,
    idle: opts.idle,
    allowUids,
    trimBytes,
    streamWindowBytes,
    metricsRoutes,
    recorder,
  }
}

/** With `remote`: how often the hub announces itself, and how long a silent worker on another host counts as there. */
function remoteTiming(opts: ListenOptions) {
  const heartbeatMs = positiveInt(opts.heartbeatMs, 500, "heartbeatMs", 1, 60_000)
  const peerTimeoutMs = positiveInt(opts.peerTimeoutMs, 4 * heartbeatMs, "peerTimeoutMs", 0, 600_000)
  if (peerTimeoutMs < 2 * heartbeatMs)
    throw new RangeError(
      `peerTimeoutMs must be at least 2 × heartbeatMs (${2 * heartbeatMs}), got ${peerTimeoutMs}: a worker would be counted gone between two of its heartbeats`,
    )
  return { heartbeatMs, peerTimeoutMs }
}

/** A slot's arena: one direction's bytes, the head (8-aligned) then the body. */
const arenaBytes = (maxHeadBytes: number, maxBodyBytes: number) => align8(maxHeadBytes) + maxBodyBytes

/** What sb_accept reads (struct sb_hub_config), each word set by its name; full_mask is the Acceptor's to set. */
export function hubConfig(s: ListenSettings): Uint32Array {
  const words = new Uint32Array(HUB_CONFIG_WORDS)
  words[HubConfig.slotCount] = s.slots
  words[HubConfig.arenaSize] = arenaBytes(s.maxHeadBytes, s.maxBodyBytes)
  words[HubConfig.trimBytes] = s.trimBytes
  words[HubConfig.allowUidCount] = s.allowUids.length
  words[HubConfig.streamWindow] = s.streamWindowBytes
  words.set(s.allowUids, HubConfig.allowUids)
  return words
}

/** bus.remote's and bus.invoke's options, checked, as the one object every call made under them shares. */
export function remoteOptions(opts: RemoteOptions, where: string): RemoteOptions {
  checkOptions(opts, REMOTE_OPTIONS, where)
  positiveInt(opts.timeoutMs, 0, "timeoutMs")
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal))
    throw new TypeError("signal must be an AbortSignal")
  if (opts.idempotent !== undefined && typeof opts.idempotent !== "boolean")
    throw new TypeError(`idempotent must be a boolean, got ${typeof opts.idempotent}`)
  const { timeoutMs, signal, idempotent, traceparent, tracestate } = opts
  return { timeoutMs, signal, idempotent, traceparent, tracestate }
}
