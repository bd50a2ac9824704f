// The hub side: SlotBus listens under a name, maps one region per connected worker, spreads requests.
import { closeSync } from "node:fs"
import type { Pointer } from "bun:ffi"
import {
  native,
  Kind,
  Msg,
  RespFlag,
  E_CORRUPT,
  HUB_CONFIG_WORDS,
  HubConfig,
  FullMask,
  MAX_ALLOW_UIDS,
  State,
  Control,
  Errno,
  loadNative,
  type Chan,
} from "../native/ffi.ts"
import { Channel } from "./channel.ts"
import {
  align8,
  busName,
  EMPTY,
  headerPairs,
  headLength,
  knownOptions,
  pairsToHeaders,
  readHead,
  toBytes,
  utf8,
  writeHead,
} from "./codec.ts"
import type { BodyInit, HeaderInit } from "./codec.ts"
import {
  BusClosedError,
  BusFullError,
  NameInUseError,
  PayloadTooLargeError,
  ProtocolError,
  RemoteError,
  SlotBusError,
  TimeoutError,
  WorkerGoneError,
} from "../errors.ts"
import { Pump, tuning, type IdleStrategy } from "./idle.ts"
import { longTimeout, MAX_TIMER_MS } from "./timers.ts"
import { LatencyHistogram, type LatencySummary } from "./stats.ts"

export interface ListenOptions {
  /** Requests in flight per worker (1..4096). Default 32. */
  slots?: number
  /** Largest request body; responses get at least as much. Default 64 MiB. */
  maxBodyBytes?: number
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
  /** A slot whose request was given up (timeout, abort) and that the worker still holds this long after is stuck. Default 1000. */
  stuckAfterMs?: number
  /** A worker holding this many stuck slots gets no new requests and is disconnected. Default: half its slots (at least 1). */
  maxStuckSlots?: number
  /**
   * Hot reload: a `listen` of a name this process already listens under, with the same options, returns that
   * open bus instead of failing with NameInUseError (what a module re-run by `bun --hot` needs). Default: on when
   * the process runs under `bun --hot`, off otherwise.
   */
  hot?: boolean
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
}

export interface WorkerInfo {
  pid: number
  uid: number
  /** serving; draining (it asked for nothing new); evicting (too many stuck slots, disconnected soon). */
  state: "serving" | "draining" | "evicting"
  /** Slots out: published and not yet returned (answered, given up, stuck or borrowed). */
  inFlight: number
  /** Requests whose callers still wait for this worker. */
  waiting: number
  /** Slots whose request was given up long ago and that the worker still holds (see stuckAfterMs). */
  stuck: number
  requests: number
  /** Each slot's state (docs/PROTOCOL.md §3): free, writing, ready, claimed, done, cancelled. */
  slots: string[]
}

export type WorkerEvent = { type: "join" | "leave"; worker: WorkerInfo }

export interface BusStats {
  name: string
  workers: WorkerInfo[]
  inFlight: number
  queued: number
  requests: number
  responses: number
  errors: number
  timeouts: number
  /** Peers refused for their uid. */
  refusedPeers: number
  /** Peers refused because maxWorkers or maxWorkersPerUid was reached. */
  overCapPeers: number
  /** Workers disconnected for breaking the protocol (bad region state, control bytes, doorbell floods). */
  protocolErrors: number
  /** Workers disconnected for holding maxStuckSlots stuck slots. */
  evictedWorkers: number
  /** Exceptions inside the hub's own machinery, caught so it keeps serving; should stay 0. */
  internalErrors: number
  /** Times reading the accept thread's doorbell failed and was restarted (each is logged); should stay 0. */
  acceptErrors: number
  bytesOut: number
  bytesIn: number
  latency: LatencySummary
}

const NO_HEAD: readonly string[] = Object.freeze([])

/** The answer to `request()`. `body` is a copy: it stays valid after the slot is reused. */
export class SlotResponse {
  private head: readonly string[]
  private h: Headers | null = null

  /** @internal `head`: the response's header pairs as read from the slot. */
  constructor(
    readonly status: number,
    head: readonly string[],
    readonly body: Uint8Array,
  ) {
    this.head = head
  }
  /** Response headers (repeated names such as set-cookie kept apart: `headers.getSetCookie()`). */
  get headers(): Headers {
    return (this.h ??= pairsToHeaders(this.head, 0))
  }
  text(): string {
    return utf8(this.body)
  }
  /** The body parsed as JSON: `unknown` unless you name the type you expect. */
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T
  }
  /** As a Web Response (the body is not copied again). */
  toResponse(): Response {
    return new Response(NULL_BODY_STATUS.has(this.status) ? null : this.body, {
      status: this.status || 200,
      headers: this.headers,
    })
  }
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

/**
 * The answer to a `{ borrow: true }` request: `body` views the slot's response arena, nothing copied. The slot
 * stays out until `release()` (or the end of a `using` block); after that, and after the worker's connection
 * is gone, `body` and every view of it read empty. Forgotten ones are released once their body is collected.
 */
export class BorrowedResponse {
  private view: Uint8Array
  private returnSlot: (() => void) | null
  private head: readonly string[]
  private h: Headers | null = null

  /** @internal */
  constructor(
    readonly status: number,
    head: readonly string[],
    view: Uint8Array,
    returnSlot: (() => void) | null,
  ) {
    this.head = head
    this.view = view
    this.returnSlot = returnSlot
  }
  get headers(): Headers {
    return (this.h ??= pairsToHeaders(this.head, 0))
  }
  get body(): Uint8Array {
    return this.view
  }
  get released(): boolean {
    return this.returnSlot === null
  }
  text(): string {
    return utf8(this.view)
  }
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T
  }
  /** Hands the slot back; the body reads empty from now on. Idempotent. */
  release(): void {
    const give = this.returnSlot
    this.returnSlot = null
    this.view = new Uint8Array(0)
    give?.()
  }
  [Symbol.dispose]() {
    this.release()
  }
}

/**
 * A request's life, named after the slot states of docs/PROTOCOL.md §3: waiting for a slot (`queued`),
 * published in one (`in-slot`), answered or failed while the worker still holds its slot (`settled`: given
 * up, or borrowed), and over (`slot-returned`: its slot is back on the free list, or it never had one).
 */
export type RequestPhase = "queued" | "in-slot" | "settled" | "slot-returned"

type Settle = { resolve: (v: never) => void; reject: (e: unknown) => void }

interface Pending extends Settle {
  phase: RequestPhase
  kind: number
  strings: string[] | null
  body: Uint8Array
  bodyLength: number // as validated by request(): a body detached or shrunk since is refused, not sent short
  borrow: boolean
  timeoutMs: number
  deadline: number
  started: number
  settledAt: number
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  link: Link | null
  slot: number
}

/**
 * A worker connection's life: `serving` takes requests; `draining` asked for nothing new (control byte D);
 * `evicting` holds too many stuck slots and goes once nobody waits for it. Dropped links leave `links`.
 */
type LinkState = WorkerInfo["state"]

interface Link {
  state: LinkState
  chan: Channel
  pump: Pump
  pending: (Pending | null)[] // by slot, until the slot is returned
  lent: (WeakRef<ArrayBuffer> | null)[] // by slot: the buffer under a borrowed body, detached when the slot goes
  inFlight: number // slots out
  waiting: number // in-slot requests whose caller waits
  requests: number
  controlBytes: number
}

const STATE_NAMES = Object.fromEntries(Object.entries(State).map(([k, v]) => [v, k.toLowerCase()]))
// Deadlines and stuck slots are checked on a timer while requests are out; an idle bus has no timer at all.
const TICK_BUSY_MS = 10
// Accept work per event-loop turn; a turn that refused someone waits before the next.
const ACCEPTS_PER_TURN = 8
const REFUSED_PAUSE_MS = 20
const MiB = 1024 * 1024
const LISTEN_OPTIONS = new Set([
  "slots",
  "maxBodyBytes",
  "maxHeadBytes",
  "queue",
  "timeoutMs",
  "idle",
  "allowUids",
  "trimBytes",
  "maxWorkers",
  "maxWorkersPerUid",
  "stuckAfterMs",
  "maxStuckSlots",
  "hot",
])
// Open buses of this process by name, shared by every copy of this module a hot reload may load.
const OPEN_BUSES: Map<string, { bus: SlotBus; options: string }> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("slotbus.openBuses")
] ??= new Map()) as Map<string, { bus: SlotBus; options: string }>

/** The options that shape a bus, in a canonical form: a hot reload may reuse the bus only if they are equal. */
function optionsKey(opts: ListenOptions): string {
  const { hot: _, ...rest } = opts
  return JSON.stringify(
    Object.keys(rest)
      .sort()
      .map((k) => [k, rest[k as keyof typeof rest]]),
  )
}
const REQUEST_OPTIONS = new Set(["timeoutMs", "signal", "borrow"])
const WAIT_OPTIONS = new Set(["timeoutMs", "signal"])
const CLOSE_OPTIONS = new Set(["drain", "timeoutMs"])
const FETCH_OPTIONS = WAIT_OPTIONS
// One monotonic clock in ms for deadlines, ticks and stuck slots: a request reads it once (Bun.nanoseconds).
const nowMs = () => Bun.nanoseconds() / 1e6

function positiveInt(v: number | undefined, dflt: number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < 0 || v > max)
    throw new RangeError(`${what} must be an integer in 0..${max}, got ${v}`)
  return v
}

/** A worker's error answer (docs/PROTOCOL.md §6) as the hub's error: a reply too large for the slot is the hub's PayloadTooLargeError. */
function remoteError(head: string[], message: string, pid: number): SlotBusError {
  let remoteName: string | undefined, remoteStack: string | undefined
  for (let i = 0; i + 1 < head.length; i += 2) {
    if (head[i] === "name") remoteName = head[i + 1]
    else if (head[i] === "stack") remoteStack = head[i + 1]
  }
  if (remoteName === "PayloadTooLargeError") return new PayloadTooLargeError(`worker pid ${pid}: ${message}`)
  return new RemoteError(remoteName ? `${remoteName}: ${message}` : message, { remoteName, remoteStack })
}

// A borrowed body collected without release(): nothing can see the slot any more, so it can go back.
const forgotten = new FinalizationRegistry<() => void>((returnSlot) => returnSlot())

export class SlotBus {
  private readonly links: Link[] = []
  private readonly queue: Pending[] = []
  private readonly config: Uint32Array
  private readonly err = new Int32Array(2)
  private ticker: ReturnType<typeof setTimeout> | undefined
  private tickAt = 0
  private readonly latency = new LatencyHistogram()
  private readonly waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = []
  private readonly listeners = new Set<(e: WorkerEvent) => void>()
  /** @internal Set once close() began. */
  closing: Promise<void> | null = null
  private stopped = false
  private disposed = false
  private readonly createdAt = performance.now()
  private nextId = 1
  private counters = {
    requests: 0,
    responses: 0,
    errors: 0,
    timeouts: 0,
    refusedPeers: 0,
    overCapPeers: 0,
    protocolErrors: 0,
    evictedWorkers: 0,
    internalErrors: 0,
    acceptErrors: 0,
    bytesOut: 0,
    bytesIn: 0,
  }
  private readonly maxBody: number
  private readonly maxHead: number
  private readonly maxQueue: number
  private readonly timeoutMs: number
  private readonly idle: IdleStrategy | undefined
  private readonly maxWorkers: number
  private readonly maxPerUid: number
  private readonly stuckAfterMs: number
  private readonly maxStuck: number
  private readonly uids: number[]
  private acceptWatch: Pointer | null = null
  private acceptReader: { cancel(): Promise<void> } | null = null

  private constructor(
    readonly name: string,
    private readonly listenFd: number,
    opts: ListenOptions,
  ) {
    const slots = positiveInt(opts.slots, 32, "slots", 4096)
    if (slots === 0) throw new RangeError("slots must be at least 1")
    this.maxBody = positiveInt(opts.maxBodyBytes, 64 * MiB, "maxBodyBytes", 2 ** 32 - 1024 * MiB)
    this.maxHead = positiveInt(opts.maxHeadBytes, 16 * 1024, "maxHeadBytes", 16 * MiB)
    this.maxQueue = positiveInt(opts.queue, 4096, "queue")
    this.timeoutMs = positiveInt(opts.timeoutMs, 30_000, "timeoutMs")
    this.maxWorkers = positiveInt(opts.maxWorkers, 256, "maxWorkers")
    this.maxPerUid = positiveInt(opts.maxWorkersPerUid, this.maxWorkers, "maxWorkersPerUid")
    this.stuckAfterMs = positiveInt(opts.stuckAfterMs, 1000, "stuckAfterMs")
    this.maxStuck = positiveInt(opts.maxStuckSlots, Math.max(1, slots >> 1), "maxStuckSlots", 4096)
    if (this.maxStuck === 0) throw new RangeError("maxStuckSlots must be at least 1")
    tuning(opts.idle) // validate now, not on the first connection
    this.idle = opts.idle
    const uids = opts.allowUids ?? []
    if (
      !Array.isArray(uids) ||
      uids.length > MAX_ALLOW_UIDS ||
      !uids.every((u) => Number.isInteger(u) && u >= 0 && u < 2 ** 32)
    )
      throw new RangeError(`allowUids takes at most ${MAX_ALLOW_UIDS} uids`)
    this.uids = uids
    this.config = new Uint32Array(HUB_CONFIG_WORDS)
    this.config.set([
      slots,
      align8(this.maxHead) + this.maxBody,
      positiveInt(opts.trimBytes, MiB, "trimBytes"),
      0,
      uids.length,
      ...uids,
    ])
  }

  /** Start serving `name`: workers connect to it with `SlotWorker.connect(name, handler)`. */
  static async listen(name: string, opts: ListenOptions = {}): Promise<SlotBus> {
    const cname = busName(name)
    if (opts === null || typeof opts !== "object") throw new TypeError("listen(name, options) takes an options object")
    knownOptions(opts, LISTEN_OPTIONS, "SlotBus.listen")
    if (opts.hot !== undefined && typeof opts.hot !== "boolean") throw new TypeError("hot must be a boolean")
    const mine = OPEN_BUSES.get(name)
    if (mine && !mine.bus.closing) {
      const hot = opts.hot ?? process.execArgv.includes("--hot")
      if (!hot)
        throw new NameInUseError(
          `this process already listens as "${name}" (a bus it did not close); reuse that bus, close it first, or pass { hot: true } to get it back`,
        )
      if (mine.options !== optionsKey(opts))
        throw new NameInUseError(
          `this process already listens as "${name}" with other options; a hot reload cannot change them: restart the process`,
        )
      return mine.bus
    }
    await loadNative()
    const fd = native.sb_listen(cname)
    if (fd === Errno.EADDRINUSE)
      throw new NameInUseError(
        `a hub named "${name}" is already listening on this machine; pick another name or close it`,
      )
    if (fd < 0) throw new SlotBusError(`cannot listen as "${name}": errno ${-fd}`)
    let bus: SlotBus
    try {
      bus = new SlotBus(name, fd, opts)
      bus.watchAccept()
    } catch (e) {
      closeSync(fd)
      throw e
    }
    OPEN_BUSES.set(name, { bus, options: optionsKey(opts) })
    bus.tick()
    return bus
  }

  /** Send an HTTP-like request to the least busy worker. */
  request(init: SlotRequestInit, opts: RequestOptions & { borrow: true }): Promise<BorrowedResponse>
  request(init: SlotRequestInit, opts?: RequestOptions & { borrow?: false }): Promise<SlotResponse>
  request(init: SlotRequestInit, opts?: RequestOptions): Promise<SlotResponse | BorrowedResponse>
  request(init: SlotRequestInit, opts?: RequestOptions): Promise<SlotResponse | BorrowedResponse> {
    return this.submit(Kind.HTTP, init, opts) as Promise<SlotResponse>
  }

  /** Send raw bytes; resolves with the worker's raw reply (with `borrow`, a BorrowedResponse over it). */
  call(body: BodyInit, opts: RequestOptions & { borrow: true }): Promise<BorrowedResponse>
  call(body: BodyInit, opts?: RequestOptions & { borrow?: false }): Promise<Uint8Array>
  call(body: BodyInit, opts?: RequestOptions): Promise<Uint8Array | BorrowedResponse>
  call(body: BodyInit, opts?: RequestOptions): Promise<Uint8Array | BorrowedResponse> {
    return this.submit(Kind.RAW, { body }, opts) as Promise<Uint8Array>
  }

  /**
   * Hands a Web Request to the least busy worker and answers with its Response: one line in a `Bun.serve` route
   * (`fetch: (req) => bus.fetch(req)`). The worker sees the path and query, method, headers and body; the request's
   * signal (or `opts.signal`) cancels it. Failures reject as with `request()` (TimeoutError, RemoteError, …).
   */
  async fetch(request: Request, opts: Omit<RequestOptions, "borrow"> = {}): Promise<Response> {
    if (!(request instanceof Request)) throw new TypeError("bus.fetch() takes a Request")
    if (opts === null || typeof opts !== "object")
      throw new TypeError("options must be an object { timeoutMs, signal }")
    knownOptions(opts, FETCH_OPTIONS, "fetch")
    const url = new URL(request.url)
    const body = request.body ? await request.bytes() : undefined
    const signal =
      opts.signal && opts.signal !== request.signal ? AbortSignal.any([opts.signal, request.signal]) : request.signal
    const res = await this.request(
      { method: request.method, path: url.pathname + url.search, headers: request.headers, body },
      { timeoutMs: opts.timeoutMs, signal },
    )
    return res.toResponse()
  }

  private closedError(): BusClosedError {
    return new BusClosedError(
      this.disposed
        ? `bus "${this.name}" is closed: \`await using\` closed it where its scope ended; in a server, keep it in a plain const and close it on SIGTERM/SIGINT`
        : `bus "${this.name}" is closed`,
    )
  }

  /** Tells `listener` each time a worker joins or leaves; returns the unsubscribe function. */
  onWorker(listener: (event: WorkerEvent) => void): () => void {
    if (typeof listener !== "function") throw new TypeError("onWorker takes a function (event) => void")
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  private submit(kind: number, init: SlotRequestInit, opts: RequestOptions = {}): Promise<unknown> {
    try {
      if (this.closing) throw this.closedError()
      if (init === null || typeof init !== "object")
        throw new TypeError("request() takes { method, path, headers, body }")
      if (init.body instanceof Blob) return init.body.bytes().then((body) => this.submit(kind, { ...init, body }, opts))
      if (opts === null || typeof opts !== "object")
        throw new TypeError("options must be an object { timeoutMs, signal, borrow }")
      knownOptions(opts, REQUEST_OPTIONS, kind === Kind.HTTP ? "request" : "call")
      const body = toBytes(init.body, "body")
      let strings: string[] | null = null
      if (kind === Kind.HTTP) {
        const method = init.method ?? "GET"
        const path = init.path ?? "/"
        if (typeof method !== "string" || typeof path !== "string" || /[\0\s]/.test(method) || path.includes("\0"))
          throw new TypeError("method and path must be strings without NUL (method without spaces)")
        strings = [method, path, ...headerPairs(init.headers)]
        const head = headLength(strings)
        if (head > this.maxHead)
          throw new PayloadTooLargeError(`request head is ${head} bytes, over maxHeadBytes ${this.maxHead}`)
      }
      if (body.length > this.maxBody)
        throw new PayloadTooLargeError(
          `request body is ${body.length} bytes, over maxBodyBytes ${this.maxBody}; raise maxBodyBytes on the hub`,
        )
      const timeoutMs = positiveInt(opts.timeoutMs, this.timeoutMs, "timeoutMs")
      const signal = opts.signal
      if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal")
      if (opts.borrow !== undefined && typeof opts.borrow !== "boolean") throw new TypeError("borrow must be a boolean")
      if (signal?.aborted) return Promise.reject(signal.reason)
      if (this.queue.length >= this.maxQueue && !this.pickLink())
        throw new BusFullError(
          `bus "${this.name}": all slots busy and ${this.queue.length} requests queued; raise slots or queue`,
        )

      const { promise, resolve, reject } = Promise.withResolvers<unknown>()
      const started = Bun.nanoseconds()
      const p: Pending = {
        phase: "queued",
        kind,
        strings,
        body,
        bodyLength: body.length,
        borrow: opts.borrow === true,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        timeoutMs,
        deadline: timeoutMs > 0 ? started / 1e6 + timeoutMs : Infinity,
        started,
        settledAt: 0,
        link: null,
        slot: -1,
      }
      if (signal) {
        p.onAbort = () => this.fail(p, signal.reason)
        signal.addEventListener("abort", p.onAbort, { once: true })
      }
      this.counters.requests++
      // An idle bus does not tick: a request starts the ticks, or brings the next one forward to its deadline.
      if (this.tickAt === Infinity) this.scheduleTick(Math.min(TICK_BUSY_MS, timeoutMs || TICK_BUSY_MS))
      else if (p.deadline < this.tickAt) this.scheduleTick(Math.max(0, timeoutMs))
      if (!this.dispatch(p)) this.queue.push(p)
      return promise
    } catch (e) {
      return Promise.reject(e)
    }
  }

  private pickLink(): Link | null {
    let link: Link | null = null
    for (const l of this.links)
      if (l.state === "serving" && l.inFlight < l.chan.slotCount && (!link || l.inFlight < link.inFlight)) link = l
    return link
  }

  /** Publishes p in a slot of the least busy worker. False when no slot is free; p then stays queued. */
  private dispatch(p: Pending): boolean {
    const link = this.pickLink()
    if (!link) return false
    const ptr = link.chan.ptr
    const slot = native.sb_hub_claim(ptr)
    if (slot < 0) return false
    let headLen = 0
    let r: number
    try {
      if (p.body.length !== p.bodyLength)
        throw new TypeError(
          `the request body changed size after request() (${p.bodyLength} → ${p.body.length} bytes: its buffer was transferred or resized); keep a body intact until its request settles`,
        )
      const arena = link.chan.arena(slot, 0)
      headLen = p.strings ? writeHead(arena, p.strings) : 0
      arena.set(p.body, align8(headLen))
      r = native.sb_hub_publish(ptr, slot, p.kind, this.nextId++ >>> 0, headLen, p.body.length)
      if (r < 0)
        throw new PayloadTooLargeError(
          `request of ${headLen} head and ${p.body.length} body bytes does not fit a slot (error ${-r})`,
        )
    } catch (e) {
      native.sb_hub_unclaim(ptr, slot) // nothing was published: the slot goes straight back
      this.fail(p, e)
      return true
    }
    this.counters.bytesOut += p.body.length
    link.pending[slot] = p
    link.inFlight++
    link.waiting++
    link.requests++
    p.phase = "in-slot"
    p.link = link
    p.slot = slot
    p.body = EMPTY // the bytes are in the slot: do not keep the caller's buffer alive
    link.pump.kick()
    return true
  }

  /** The pump's duty: take every answer the worker completed, hand it to its caller, return the slots. */
  private collect(link: Link): number {
    const { chan } = link
    let n = 0
    let now = 0 // read once per pass, at the first answer: every answer of a pass arrived by then
    for (;;) {
      if (!chan.isOpen) break
      const slot = native.sb_hub_poll(chan.ptr)
      if (slot < 0) {
        if (slot === E_CORRUPT) this.cutOff(link, `corrupted its region (${native.sb_error(chan.ptr)})`)
        break
      }
      n++
      const p = link.pending[slot]
      let lent = false
      if (p?.phase === "in-slot") {
        if (now === 0) now = Bun.nanoseconds()
        try {
          lent = this.answer(p, link, slot, now)
        } catch (e) {
          this.fail(
            p,
            new ProtocolError(`could not read the answer of worker pid ${chan.peerPid}: ${(e as Error)?.message}`),
          )
        }
      }
      if (!lent) this.returnSlot(link, slot)
    }
    if (n > 0) this.dispatchQueued()
    if (link.state === "evicting" && link.waiting === 0) this.evict(link)
    return n
  }

  private returnSlot(link: Link, slot: number) {
    const p = link.pending[slot]
    if (p) p.phase = "slot-returned"
    link.pending[slot] = null
    const lent = link.lent[slot]?.deref()
    link.lent[slot] = null
    if (lent && !lent.detached) lent.transfer(0) // stale borrowed views read empty, never the next answer
    if (!link.chan.isOpen) return
    native.sb_hub_release(link.chan.ptr, slot)
    link.inFlight--
  }

  /** Resolves p with the answer in `slot`; true when the slot was lent to the caller (a borrowed response). */
  private answer(p: Pending, link: Link, slot: number, now: number): boolean {
    const { chan } = link
    const m = chan.msg
    const arena = chan.arena(slot, 1)
    const bodyOff = m[Msg.bodyOff]!
    const bodyLen = m[Msg.bodyLen]!
    this.counters.bytesIn += bodyLen
    const flags = m[Msg.flags]!
    if (flags & RespFlag.ERROR) {
      this.fail(
        p,
        remoteError(readHead(arena, m[Msg.headLen]!), utf8(arena.subarray(bodyOff, bodyOff + bodyLen)), chan.peerPid),
      )
      return false
    }
    if (flags & RespFlag.CANCELLED) {
      this.fail(p, new ProtocolError("worker returned a request the hub never cancelled"))
      return false
    }
    const status = m[Msg.status]!
    const headers = p.kind === Kind.RAW ? NO_HEAD : readHead(arena, m[Msg.headLen]!)
    let value: unknown
    let lent = false
    if (p.borrow) {
      // An answer collected while its worker is being dropped cannot keep the slot: it gets a copy.
      if (bodyLen === 0 || !this.links.includes(link))
        value = new BorrowedResponse(status, headers, arena.slice(bodyOff, bodyOff + bodyLen), null)
      else {
        const buf = chan.lend(slot, 1, bodyOff, bodyLen)
        let returned = false
        const give = () => {
          if (returned) return
          returned = true
          forgotten.unregister(give)
          if (link.pending[slot] === p) this.returnSlot(link, slot)
          this.dispatchQueued()
        }
        link.lent[slot] = new WeakRef(buf)
        forgotten.register(buf, give, give)
        value = new BorrowedResponse(status, headers, new Uint8Array(buf), give)
        lent = true
      }
    } else {
      const body = arena.slice(bodyOff, bodyOff + bodyLen)
      value = p.kind === Kind.RAW ? body : new SlotResponse(status, headers, body)
    }
    this.counters.responses++
    this.latency.record(now - p.started)
    this.settle(p)
    p.resolve(value as never)
    return lent
  }

  private settle(p: Pending) {
    if (p.phase === "in-slot") {
      p.phase = "settled"
      p.link!.waiting--
    } else p.phase = "slot-returned" // it never had a slot
    if (p.onAbort) p.signal!.removeEventListener("abort", p.onAbort)
  }

  private fail(p: Pending, err: unknown) {
    if (p.phase !== "queued" && p.phase !== "in-slot") return
    if (p.phase === "queued") {
      const i = this.queue.indexOf(p)
      if (i >= 0) this.queue.splice(i, 1)
    } else if (p.link) {
      // Stays in pending (settled) until the worker hands the slot back; a late answer is then dropped.
      if (p.link.chan.isOpen) native.sb_hub_cancel(p.link.chan.ptr, p.slot)
    }
    this.settle(p)
    p.settledAt = nowMs() // given up: from now on its slot may count as stuck
    if (err instanceof TimeoutError) this.counters.timeouts++
    else this.counters.errors++
    p.body = EMPTY
    p.reject(err)
  }

  private dispatchQueued() {
    while (this.queue.length > 0) {
      const p = this.queue.shift()!
      if (!this.dispatch(p)) {
        this.queue.unshift(p)
        return
      }
    }
  }

  private tick() {
    if (this.stopped) return
    try {
      const t = nowMs()
      const expire = (p: Pending | null) => {
        if (p && (p.phase === "queued" || p.phase === "in-slot") && p.deadline <= t)
          this.fail(
            p,
            new TimeoutError(
              p.phase === "queued" && this.links.length === 0
                ? `request to "${this.name}" timed out after ${p.timeoutMs}ms: 0 workers connected to "${this.name}"; start one (SlotWorker.connect("${this.name}", …)) or await bus.waitForWorkers()`
                : `request to "${this.name}" timed out after ${p.timeoutMs}ms; the worker is overloaded, stuck, or absent`,
            ),
          )
      }
      for (const l of [...this.links]) {
        l.pending.forEach(expire)
        if (l.state === "serving" && this.stuckSlots(l, t) >= this.maxStuck) {
          // Its handlers hang: send it nothing more, and let it go once nobody waits for it any longer.
          l.state = "evicting"
          this.counters.evictedWorkers++
          if (l.waiting === 0) this.evict(l)
          this.dispatchQueued()
        }
      }
      for (const p of [...this.queue]) expire(p)
    } catch {
      this.counters.internalErrors++
    }
    const busy = this.queue.length > 0 || this.links.some((l) => l.inFlight > 0)
    if (busy) this.scheduleTick(TICK_BUSY_MS)
    else {
      clearTimeout(this.ticker)
      this.tickAt = Infinity
    }
  }

  private scheduleTick(ms: number) {
    if (this.stopped) return
    clearTimeout(this.ticker)
    this.tickAt = nowMs() + ms
    this.ticker = setTimeout(() => this.tick(), Math.min(ms, MAX_TIMER_MS)) // a later deadline: the tick re-arms
  }

  private stuckSlots(link: Link, now: number): number {
    let n = 0
    for (let s = 0; s < link.pending.length; s++) {
      const p = link.pending[s]
      if (p?.phase === "settled" && link.lent[s] === null && now - p.settledAt >= this.stuckAfterMs) n++
    }
    return n
  }

  private evict(link: Link) {
    if (!this.links.includes(link)) return
    link.chan.sendControl(Control.HUB_CLOSING)
    this.drop(
      link,
      new WorkerGoneError(
        `worker pid ${link.chan.peerPid} of "${this.name}" was disconnected: its handlers hung on ${this.maxStuck}+ requests`,
      ),
    )
  }

  /** The listening socket is watched by the "slotbus-accept" thread, which rings an eventfd when a peer waits. */
  private watchAccept() {
    const w = native.sb_accept_watch_start(this.listenFd, this.err) as Pointer | null
    if (!w) throw new SlotBusError(`cannot start the accept thread of "${this.name}": errno ${-this.err[0]!}`)
    this.acceptWatch = w
    this.readAccepts(w)
  }

  /** One read of the thread's eventfd per wake-up, for as long as the bus is open. */
  private readAccepts(w: Pointer) {
    const reader = Bun.file(native.sb_accept_watch_fd(w)).stream().getReader()
    this.acceptReader = reader
    const next = (): void => {
      reader.read().then(
        (r) => {
          if (this.closing) return
          if (r.done) return this.acceptFailed(w, new Error("the doorbell stream ended"))
          let refused = false
          try {
            refused = this.acceptSome()
          } catch {
            this.counters.internalErrors++
          }
          const rearm = () => {
            if (this.closing) return
            native.sb_accept_watch_rearm(w)
            next()
          }
          // Whoever floods the socket with refused connections gets ACCEPTS_PER_TURN of them per pause.
          if (refused) setTimeout(rearm, REFUSED_PAUSE_MS)
          else setImmediate(rearm)
        },
        (e) => this.acceptFailed(w, e),
      )
    }
    next()
  }

  /** Reading the accept doorbell failed: say so, count it, and read again on a fresh stream, so accepting never stops in silence. */
  private acceptFailed(w: Pointer, e: unknown) {
    if (this.closing) return
    this.counters.acceptErrors++
    console.warn(
      `slotbus: bus "${this.name}" lost its accept doorbell (${e instanceof Error ? e.message : String(e)}); accepting again in ${REFUSED_PAUSE_MS} ms`,
    )
    setTimeout(() => {
      if (this.closing) return
      native.sb_accept_watch_rearm(w)
      this.readAccepts(w)
    }, REFUSED_PAUSE_MS)
  }

  /** Accepts up to ACCEPTS_PER_TURN waiting peers; true if any was refused. */
  private acceptSome(): boolean {
    let refused = false
    for (let i = 0; i < ACCEPTS_PER_TURN && !this.closing; i++) {
      this.config[HubConfig.fullMask] = this.fullMask()
      const ptr = native.sb_accept(this.listenFd, this.config, this.err, this.err.subarray(1)) as Chan | null
      if (ptr) {
        this.addLink(new Channel(ptr))
        continue
      }
      const e = this.err[0]
      if (e === Errno.EPERM) this.counters.refusedPeers++
      else if (e === Errno.EUSERS) this.counters.overCapPeers++
      else return refused // EAGAIN (nobody else waits), or a failure with this one peer: the watcher looks again
      refused = true
    }
    return refused
  }

  private fullMask(): number {
    if (this.links.length >= this.maxWorkers) return FullMask.ALL
    let mask = 0
    const own = process.getuid?.() ?? -1
    const count = (uid: number) => this.links.reduce((n, l) => n + (l.chan.peerUid === uid ? 1 : 0), 0)
    if (count(own) >= this.maxPerUid) mask |= FullMask.OWN_UID
    this.uids.forEach((u, i) => {
      if (u !== own && count(u) >= this.maxPerUid) mask |= 1 << i
    })
    return mask
  }

  private addLink(chan: Channel) {
    const link: Link = {
      state: "serving",
      chan,
      pump: null as unknown as Pump,
      pending: new Array<Pending | null>(chan.slotCount).fill(null),
      lent: new Array<WeakRef<ArrayBuffer> | null>(chan.slotCount).fill(null),
      inFlight: 0,
      waiting: 0,
      requests: 0,
      controlBytes: 0,
    }
    link.pump = new Pump(chan, this.idle, {
      collect: () => this.collect(link),
      wanted: () => link.waiting > 0, // given-up and borrowed slots need no polling: a late answer rings
      onRingFlood: (rings, parks) => this.cutOff(link, `rang the hub's doorbell ${rings} times for ${parks} parks`),
      onError: () => this.counters.internalErrors++,
    })
    chan.watchPeer(
      (bytes) => {
        // Each control byte is legal once per connection (docs/PROTOCOL.md §1); a worker sends only DRAIN.
        link.controlBytes += bytes.length
        if (link.controlBytes > 1 || bytes[0] !== Control.DRAIN)
          return this.cutOff(link, `sent ${link.controlBytes} control bytes (only one "D" is allowed)`)
        if (link.state === "serving") link.state = "draining"
        chan.sendControl(Control.DRAIN_ACK)
        this.dispatchQueued()
      },
      () =>
        this.drop(
          link,
          new WorkerGoneError(
            `worker pid ${chan.peerPid} of "${this.name}" disconnected or died before answering; retry the request`,
          ),
        ),
    )
    this.links.push(link)
    this.emit("join", link)
    for (const w of [...this.waiters]) if (this.links.length >= w.n) w.resolve()
    this.dispatchQueued()
  }

  private cutOff(link: Link, what: string) {
    if (!this.links.includes(link)) return
    this.counters.protocolErrors++
    this.drop(link, new ProtocolError(`worker pid ${link.chan.peerPid} of "${this.name}" ${what}; it was disconnected`))
  }

  private drop(link: Link, err: Error) {
    const i = this.links.indexOf(link)
    if (i < 0) return
    const info = this.info(link)
    this.links.splice(i, 1)
    link.pump.stop()
    try {
      if (!(err instanceof ProtocolError)) this.collect(link) // answers completed before the worker went
    } catch {
      this.counters.internalErrors++
    }
    for (const p of link.pending) if (p) this.fail(p, err)
    for (let s = 0; s < link.pending.length; s++) {
      const lent = link.lent[s]?.deref()
      if (lent && !lent.detached) lent.transfer(0) // borrowed bodies read empty before the region goes
      if (link.pending[s]) link.pending[s]!.phase = "slot-returned"
      link.pending[s] = null
      link.lent[s] = null
    }
    link.chan.close()
    this.emitInfo("leave", info)
    this.dispatchQueued()
  }

  private emit(type: WorkerEvent["type"], link: Link) {
    if (this.listeners.size > 0) this.emitInfo(type, this.info(link))
  }

  private emitInfo(type: WorkerEvent["type"], worker: WorkerInfo) {
    for (const f of [...this.listeners])
      try {
        f({ type, worker })
      } catch (e) {
        queueMicrotask(() => {
          throw e // the listener's bug, reported as an uncaught error; the bus goes on
        })
      }
  }

  /**
   * Resolves once at least `n` workers are connected. `timeoutMs` (default 10 000; 0 waits forever) rejects with
   * TimeoutError, `signal` with its reason. The old form `waitForWorkers(n, timeoutMs)` still works.
   */
  waitForWorkers(n = 1, opts: number | { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const o = typeof opts === "number" ? { timeoutMs: opts } : opts
    let timeoutMs: number
    try {
      if (o === null || typeof o !== "object")
        throw new TypeError("waitForWorkers(n, { timeoutMs, signal }) takes an options object")
      knownOptions(o, WAIT_OPTIONS, "waitForWorkers")
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be an integer ≥ 0, got ${n}`)
      if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
        throw new TypeError("signal must be an AbortSignal")
      timeoutMs = positiveInt(o.timeoutMs, 10_000, "timeoutMs")
    } catch (e) {
      return Promise.reject(e)
    }
    const signal = o.signal
    if (this.links.length >= n) return Promise.resolve()
    if (this.closing) return Promise.reject(new BusClosedError(`bus "${this.name}" is closed`))
    if (signal?.aborted) return Promise.reject(signal.reason)
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const w = { n, resolve: () => done(resolve), reject: (e: Error) => done(() => reject(e)) }
    const timer =
      timeoutMs > 0
        ? longTimeout(
            () =>
              w.reject(
                new TimeoutError(
                  `${this.links.length} of ${n} workers connected to "${this.name}" after ${timeoutMs}ms`,
                ),
              ),
            timeoutMs,
          )
        : undefined
    const onAbort = () => done(() => reject(signal!.reason))
    signal?.addEventListener("abort", onAbort, { once: true })
    const done = (f: () => void) => {
      timer?.clear()
      signal?.removeEventListener("abort", onAbort)
      const i = this.waiters.indexOf(w)
      if (i >= 0) this.waiters.splice(i, 1)
      f()
    }
    this.waiters.push(w)
    return promise
  }

  /** Workers connected now. */
  get workerCount(): number {
    return this.links.length
  }

  get workers(): WorkerInfo[] {
    return this.links.map((l) => this.info(l))
  }

  private info(link: Link): WorkerInfo {
    const { chan, inFlight, waiting, requests, state } = link
    return {
      pid: chan.peerPid,
      uid: chan.peerUid,
      state,
      inFlight,
      waiting,
      stuck: this.stuckSlots(link, nowMs()),
      requests,
      slots: Array.from({ length: chan.slotCount }, (_, s) =>
        chan.isOpen ? (STATE_NAMES[native.sb_slot_state(chan.ptr, s) & 0xff] ?? "corrupt") : "gone",
      ),
    }
  }

  stats(): BusStats {
    const workers = this.workers
    return {
      name: this.name,
      workers,
      inFlight: workers.reduce((n, w) => n + w.inFlight, 0),
      queued: this.queue.length,
      ...this.counters,
      latency: this.latency.summary(),
    }
  }

  /**
   * Stop accepting requests and workers. With `drain` (default) requests already accepted may finish for
   * up to `timeoutMs` (default 5000); whatever is left is rejected with BusClosedError.
   */
  close(opts: { drain?: boolean; timeoutMs?: number } = {}): Promise<void> {
    let timeoutMs: number
    try {
      if (opts === null || typeof opts !== "object")
        throw new TypeError("close({ drain, timeoutMs }) takes an options object")
      knownOptions(opts, CLOSE_OPTIONS, "close")
      if (opts.drain !== undefined && typeof opts.drain !== "boolean")
        throw new TypeError(`close: drain must be a boolean, got ${typeof opts.drain}`)
      timeoutMs = positiveInt(opts.timeoutMs, 5000, "timeoutMs")
    } catch (e) {
      return Promise.reject(e)
    }
    if (OPEN_BUSES.get(this.name)?.bus === this) OPEN_BUSES.delete(this.name)
    this.closing ??= this.shutdown(opts.drain ?? true, timeoutMs)
    return this.closing
  }

  private async stopAccepting() {
    // Bun lets go of the thread's eventfd first (it never closes it itself), then the thread is joined and
    // its fds closed, then nobody polls the listening socket and it can close.
    await this.acceptReader?.cancel().catch(() => {})
    this.acceptReader = null
    const w = this.acceptWatch
    this.acceptWatch = null
    if (w) native.sb_accept_watch_stop(w)
    closeSync(this.listenFd)
  }

  private async shutdown(drain: boolean, timeoutMs: number) {
    await this.stopAccepting()
    for (const w of [...this.waiters])
      w.reject(new BusClosedError(`bus "${this.name}" closed while waiting for workers`))
    const deadline = performance.now() + timeoutMs
    while (drain && (this.queue.length > 0 || this.links.some((l) => l.waiting > 0)) && performance.now() < deadline)
      await Bun.sleep(1)
    this.stopped = true
    clearTimeout(this.ticker)
    const err = new BusClosedError(`bus "${this.name}" closed before the request finished`)
    for (const p of [...this.queue]) this.fail(p, err)
    for (const l of [...this.links]) {
      l.chan.sendControl(Control.HUB_CLOSING)
      this.drop(l, err)
    }
  }

  /**
   * `await using bus = …` closes the bus where its scope ends. At the top level of a server module that is as soon
   * as the module has loaded, and every request after it fails: a bus disposed soon after listen, before any
   * request, in a process that then keeps running (a Bun.serve, say) gets one warning naming the right pattern.
   */
  [Symbol.asyncDispose]() {
    this.disposed = true
    if (
      this.counters.requests === 0 &&
      performance.now() - this.createdAt < EARLY_DISPOSE_MS &&
      !earlyDisposeWarned &&
      process.env.NODE_ENV !== "test"
    ) {
      // unref'd: it fires only if something else keeps the process alive after the bus is gone
      setTimeout(() => {
        if (earlyDisposeWarned) return
        earlyDisposeWarned = true
        console.warn(
          `slotbus: bus "${this.name}" was closed by \`await using\` before any request, and the process kept running: in a server, keep it in a plain \`const bus = await SlotBus.listen(…)\` and close it on SIGTERM/SIGINT (the first example of slotbus's README)`,
        )
      }, EARLY_DISPOSE_CHECK_MS).unref()
    }
    return this.close()
  }
}

const EARLY_DISPOSE_MS = 5000
const EARLY_DISPOSE_CHECK_MS = 200
let earlyDisposeWarned = false
