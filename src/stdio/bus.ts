// StdioBus: supervised pools of NDJSON JSON-RPC worker processes, in the manner of the stdio_bus daemon.
// Every request's id is rewritten to a bus-wide number on the way to a worker and restored on the way back, so
// callers (embedded, socket clients) never collide; sessions stick to one instance until it dies.
import type { Subprocess } from "bun"
import {
  BusClosedError,
  Emitter,
  MAX_TIMER_MS,
  Supervisor,
  TimeoutError,
  WorkerGoneError,
  longTimeout,
  type LongTimer,
  type SupervisedInstance,
} from "../core/index.ts"
import {
  loadConfig,
  type LimitsConfig,
  type PoolConfig,
  type StdioBusConfig,
  type StdioBusConfigInput,
} from "./config.ts"
import {
  BackpressureError,
  BusErrorCode,
  InvalidStateError,
  JsonRpcError,
  PoolFailedError,
  SpawnError,
} from "./errors.ts"
import { LineSplitter } from "./lines.ts"
import { Outbox } from "./outbox.ts"
import { StdioListener, type ListenOptions } from "./listener.ts"

export type BusState = "created" | "starting" | "running" | "stopping" | "stopped"
/** A JSON-RPC id; a number a JS number cannot hold exactly (past 2^53, a fraction) stays its JSON text, as `JSON.rawJSON`. */
export type JsonRpcId = string | number | null | RawJSON
/** What `JSON.rawJSON` returns: JSON text that `JSON.stringify` writes out as it is. */
export interface RawJSON {
  readonly rawJSON: string
}
export type LogLevel = "error" | "warn" | "info" | "debug"

/** One JSON-RPC message as parsed from a line. */
export type JsonRpcMessage = {
  jsonrpc?: string
  id?: JsonRpcId
  method?: string
  params?: unknown
  result?: unknown
  error?: { code: number; message: string; data?: unknown }
} & Record<string, unknown>

/** What `messages()` yields: a message a worker sent unasked, or an answer to a `send()`. */
export interface BusMessage {
  message: JsonRpcMessage
  pool: string
  /** The instance index it came from (-1 for answers the bus gave itself). */
  instance: number
}

export interface StdioRequestOptions {
  /** Pins this and every later message of the session to one instance. */
  sessionId?: string
  /** Pool id (default: the first pool). */
  pool?: string
  /** Default 30 000; 0 waits forever; past 2^31−1 ms still honoured. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface StdioStopOptions {
  /** How long in-flight requests may finish before SIGTERM (default limits.drain_timeout_sec). */
  timeoutMs?: number
  /** Between SIGTERM and SIGKILL (default 2000). */
  killAfterMs?: number
}

export interface InstanceStats {
  index: number
  pid: number
  state: "running" | "backoff" | "stopped"
  inFlight: number
  restarts: number
  uptimeMs: number
  queuedBytes: number
  sessions: number
  /** Requests given up (timeout, abort, client gone) that the worker has not answered yet; dropped after a grace. */
  stuck: number
}

export interface PoolStats {
  id: string
  state: "running" | "failed" | "stopped"
  failure: string | null
  restarts: number
  instances: InstanceStats[]
}

export interface StdioBusStats {
  state: BusState
  /** Messages and bytes read from workers. */
  messagesIn: number
  bytesIn: number
  /** Messages and bytes written to workers. */
  messagesOut: number
  bytesOut: number
  restarts: number
  routingErrors: number
  /** Workers killed for a line longer than max_input_buffer. */
  oversizeKills: number
  backpressureRejects: number
  /** Answers that came after their caller gave up (timeout, abort, client gone). */
  lateResponses: number
  /** Given-up requests the worker still had not answered a grace (1 s) later: dropped from the books and from its in-flight count. */
  stuckDropped: number
  /** messages() entries dropped because nobody read them (the queue keeps the newest 10 000). */
  droppedMessages: number
  workerCount: number
  clientCount: number
  pools: PoolStats[]
}

export interface StdioBusEvents {
  "worker-start": [{ pool: string; instance: number; pid: number }]
  "worker-exit": [
    { pool: string; instance: number; pid: number; code: number | null; signal: string | null; expected: boolean },
  ]
  "worker-restart": [{ pool: string; instance: number; delayMs: number }]
  "pool-failed": [{ pool: string; reason: string }]
  /** A worker's stderr line, or something the bus noticed about a worker. */
  log: [{ pool: string; instance: number; pid: number; level: LogLevel; line: string }]
  "routing-error": [{ reason: string; pool?: string; instance?: number }]
}

/** Who sent a message into the bus and gets its answers: the embedded API or one socket/stdio client. */
export interface BusClient {
  readonly id: number
  /** A message without a sessionId goes to this client's own session (socket clients: one per connection), which no other client can name. */
  readonly sessionPerClient: boolean
  deliver(message: JsonRpcMessage, pool: string, instance: number): void
}

interface Pending {
  instance: Instance
  /** The instance's generation (process) the request was written to. */
  generation: number
  client: BusClient | null
  originalId: JsonRpcId
  sessionKey: string | null
  resolve?: (result: unknown) => void
  reject?: (error: Error) => void
  /** performance.now() after which an embedded caller gets TimeoutError (Infinity: never). */
  deadline?: number
  timeoutMs?: number
  method?: string
  /** The caller stopped waiting (performance.now() then); the answer is dropped when it comes, the entry after a grace. */
  abandoned: boolean
  abandonedAt: number
}

/** A request a worker sent to a client: answered only by that client, under an id nobody can guess. */
interface Asked {
  instance: Instance
  generation: number
  client: BusClient
  originalId: JsonRpcId
}

class Instance {
  proc: Subprocess<"pipe", "pipe", "pipe"> | null = null
  generation = 0
  /** Settles when the current process's stdout has been read to its end. */
  reading: Promise<void> = Promise.resolve()
  /** Settles once the last process's unanswered requests have been answered with an error. */
  settled: Promise<void> = Promise.resolve()
  inFlight = 0
  readonly out: Outbox
  readonly pending = new Set<number>()
  readonly sessions = new Set<string>()
  /** Ids of the requests this instance sent to clients, oldest first (bounded: ASKED_MAX). */
  readonly asked = new Set<string>()
  stuck = 0
  constructor(
    readonly pool: Pool,
    readonly index: number,
    limits: LimitsConfig,
  ) {
    this.out = new Outbox(
      limits.max_output_queue,
      limits.backpressure_timeout_sec * 1000,
      `pool "${pool.config.id}" instance ${index}`,
    )
  }
  get live(): boolean {
    return this.proc !== null
  }
}

class Pool {
  readonly instances: Instance[]
  supervisor: Supervisor | null = null
  failure: string | null = null
  rotor = 0
  liveWaiters: { resolve: () => void; reject: (e: Error) => void }[] = []
  constructor(
    readonly config: PoolConfig,
    readonly index: number,
    limits: LimitsConfig,
  ) {
    this.instances = Array.from({ length: config.instances }, (_, i) => new Instance(this, i, limits))
  }
}

const MESSAGE_QUEUE_MAX = 10_000
/** Requests one worker may have waiting on clients; past it, its own oldest is forgotten. */
const ASKED_MAX = 10_000
/** How long a given-up request may still be answered (and counted late) before it leaves the books. */
const STUCK_GRACE_MS = 1000
/** How often request deadlines are checked: a timeout fires up to this late. */
const SWEEP_MS = 5
/** How long a dead worker's stdout may still be read for answers it wrote before dying. */
const EXIT_READ_MS = 1000

export class StdioBus {
  readonly config: StdioBusConfig
  readonly limits: LimitsConfig
  private _state: BusState = "created"
  private readonly pools = new Map<string, Pool>()
  private readonly defaultPool: Pool
  private readonly pending = new Map<number, Pending>()
  /** Requests workers sent to clients: the id the client saw → where the answer goes. */
  private readonly asked = new Map<string, Asked>()
  /** sessionKey() → the instance it is pinned to and the client that owns it. */
  private readonly sessions = new Map<string, { instance: Instance; owner: BusClient | null }>()
  private readonly clients = new Set<BusClient>()
  private readonly listenersOpen = new Set<StdioListener>()
  private nextId = 0
  private nextClientId = 1
  private stopping: Promise<void> | null = null
  private sweeper: ReturnType<typeof setInterval> | null = null
  private counters = {
    messagesIn: 0,
    bytesIn: 0,
    routingErrors: 0,
    oversizeKills: 0,
    lateResponses: 0,
    stuckDropped: 0,
    droppedMessages: 0,
  }
  /** Pending entries somebody still waits for (stop() drains these, not the given-up ones). */
  private awaited = 0
  /** Per client: its requests somebody still waits for, and who waits for them to reach 0. */
  private readonly clientLoad = new Map<BusClient, { awaited: number; idle: (() => void)[] }>()
  private restartsBefore = 0
  private readonly inbox: BusMessage[] = []
  private readonly inboxWaiters: ((r: IteratorResult<BusMessage>) => void)[] = []
  private readonly drained: (() => void)[] = []
  private readonly events = new Emitter<StdioBusEvents>()
  /** The embedded caller of send(): its answers and unasked worker messages go to messages(). */
  private readonly embedded: BusClient = {
    id: 0,
    sessionPerClient: false,
    deliver: (message, pool, instance) => this.pushInbox({ message, pool, instance }),
  }

  /** A bus for a stdio_bus configuration: a path to its JSON file, or the object itself. */
  static fromConfig(source: string | StdioBusConfigInput): StdioBus {
    return new StdioBus(loadConfig(source))
  }

  private constructor(config: StdioBusConfig) {
    this.config = config
    this.limits = config.limits
    config.pools.forEach((p, i) => this.pools.set(p.id, new Pool(p, i, config.limits)))
    this.defaultPool = this.pools.get(config.pools[0]!.id)!
  }

  get state(): BusState {
    return this._state
  }
  /** Worker processes running now, over all pools. */
  get workerCount(): number {
    let n = 0
    for (const p of this.pools.values()) for (const i of p.instances) if (i.live) n++
    return n
  }
  /** Socket (and stdio) clients connected now. */
  get clientCount(): number {
    return this.clients.size
  }

  on<K extends keyof StdioBusEvents>(event: K, fn: (...args: StdioBusEvents[K]) => void): () => void {
    return this.events.on(event, fn)
  }

  /** Spawns every pool's instances. Allowed when created or stopped. */
  async start(): Promise<void> {
    if (this._state !== "created" && this._state !== "stopped")
      throw new InvalidStateError("start()", ["created", "stopped"], this._state)
    this._state = "starting"
    this.stopping = null
    const started: Supervisor[] = []
    try {
      for (const pool of this.pools.values()) {
        pool.failure = null
        const sup = this.supervisePool(pool)
        pool.supervisor = sup
        try {
          sup.start()
        } catch (e) {
          throw new SpawnError(
            `pool "${pool.config.id}": cannot spawn ${pool.config.command}: ${(e as Error).message}; check command, args and cwd`,
            { cause: e },
          )
        }
        started.push(sup)
      }
    } catch (e) {
      await Promise.all(started.map((s) => s.stop({ drainTimeoutMs: 0, killGraceMs: 0 })))
      this._state = "stopped"
      throw e
    }
    await new Promise<void>((r) => setImmediate(r)) // let the spawns settle: a start() caller sees "starting" until then
    if (this._state === "starting") this._state = "running"
  }

  /** Stops taking work, lets in-flight requests finish (bounded), then SIGTERM, then SIGKILL. */
  stop(options: StdioStopOptions = {}): Promise<void> {
    if (this._state === "created" || this._state === "stopped") return Promise.resolve()
    if (this.stopping) return this.stopping
    let drainMs: number, killMs: number
    try {
      drainMs = millis("stop(): timeoutMs", options.timeoutMs) ?? this.limits.drain_timeout_sec * 1000
      killMs = Math.min(millis("stop(): killAfterMs", options.killAfterMs) ?? 2000, MAX_TIMER_MS) // the core's supervisor waits no longer
    } catch (e) {
      return Promise.reject(e)
    }
    this._state = "stopping"
    for (const l of this.listenersOpen) l.stopAccepting()
    this.stopping = (async () => {
      if (this.awaited > 0) {
        let timer: LongTimer | undefined
        await Promise.race([
          new Promise<void>((r) => this.drained.push(r)),
          new Promise<void>((r) => (timer = longTimeout(r, drainMs))),
        ])
        timer!.clear()
      }
      await Promise.all(
        [...this.pools.values()].map((p) => p.supervisor?.stop({ drainTimeoutMs: 0, killGraceMs: killMs })),
      )
      // Every request still open gets its answer (an error) before the clients are disconnected.
      await Promise.all([...this.pools.values()].flatMap((p) => p.instances.map((i) => i.settled)))
      for (const [id, p] of this.pending) {
        this.forget(id)
        if (p.abandoned) continue
        const e = new BusClosedError("the stdio bus stopped before the worker answered")
        if (p.reject) p.reject(e)
        else if (p.client) this.answerError(p.client, p.originalId, codeOf(e), e.message, p.instance.pool.config.id)
      }
      this.drained.splice(0)
      if (this.sweeper) clearInterval(this.sweeper)
      this.sweeper = null
      for (const p of this.pools.values()) {
        this.restartsBefore += p.supervisor?.restarts ?? 0
        p.supervisor = null
        for (const w of p.liveWaiters) w.reject(new BusClosedError("the stdio bus stopped"))
        p.liveWaiters = []
      }
      await Promise.all([...this.listenersOpen].map((l) => l.close()))
      this.listenersOpen.clear()
      this.sessions.clear()
      this.asked.clear()
      for (const p of this.pools.values()) for (const i of p.instances) i.asked.clear()
      this._state = "stopped"
      for (const w of this.inboxWaiters.splice(0)) w({ value: undefined, done: true })
    })()
    return this.stopping
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** Sends a JSON-RPC request to a worker; resolves with its result, rejects with JsonRpcError, TimeoutError, WorkerGoneError, … */
  request(method: string, params?: unknown, options: StdioRequestOptions = {}): Promise<unknown> {
    this.assertRunning("request()")
    if (typeof method !== "string" || method === "") throw new TypeError("request(): method must be a non-empty string")
    const pool = this.poolFor(options.pool)
    if (!pool) return Promise.reject(this.unknownPool(options.pool!))
    const signal = options.signal
    const timeoutMs = millis("request(): timeoutMs", options.timeoutMs) ?? 30_000
    if (signal?.aborted) return Promise.reject(signal.reason)
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const sessionKey = options.sessionId !== undefined ? this.sessionKey(pool, options.sessionId) : null
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity
    const id = ++this.nextId
    let settled = false
    const onAbort = signal ? () => giveUp(signal.reason) : null
    const giveUp = (e: Error) => {
      settled = true
      this.abandon(id, entry)
      if (onAbort) signal!.removeEventListener("abort", onAbort)
      reject(e)
    }
    const answered = onAbort ? (v: unknown) => (signal!.removeEventListener("abort", onAbort), resolve(v)) : resolve
    const entry: Pending = {
      instance: null!,
      generation: 0,
      client: null,
      originalId: id,
      sessionKey,
      resolve: answered,
      reject: giveUp,
      deadline,
      timeoutMs,
      method,
      abandoned: false,
      abandonedAt: 0,
    }
    if (onAbort) signal!.addEventListener("abort", onAbort, { once: true })
    const line =
      JSON.stringify(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params }) +
      "\n"
    const dispatch = (instance: Instance): Promise<void> | void => {
      if (settled) return
      entry.instance = instance
      entry.generation = instance.generation
      this.track(id, entry)
      if (deadline !== Infinity) this.armSweeper()
      return instance.out.write(line)
    }
    const failed = (e: Error) => {
      if (this.pending.get(id) === entry) this.forget(id)
      giveUp(e)
    }
    try {
      const now = this.routeNow(pool, sessionKey, null)
      const sent = now ? dispatch(now) : this.route(pool, sessionKey, null, deadline).then(dispatch)
      if (sent) sent.catch(failed)
    } catch (e) {
      failed(e as Error)
    }
    return promise
  }

  /** Sends a JSON-RPC notification (no answer). Resolves once it is queued to a worker. */
  async notify(
    method: string,
    params?: unknown,
    options: Omit<StdioRequestOptions, "timeoutMs" | "signal"> = {},
  ): Promise<void> {
    this.assertRunning("notify()")
    const pool = this.poolFor(options.pool)
    if (!pool) throw this.unknownPool(options.pool!)
    const sessionKey = options.sessionId !== undefined ? this.sessionKey(pool, options.sessionId) : null
    const message = params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params }
    const instance =
      this.routeNow(pool, sessionKey, null) ??
      (await this.route(pool, sessionKey, null, performance.now() + this.limits.backpressure_timeout_sec * 1000))
    await instance.out.write(JSON.stringify(message) + "\n")
  }

  /** Takes one raw NDJSON message as a stdio_bus client would write it; answers come out of messages(). */
  async send(line: string): Promise<void> {
    this.assertRunning("send()")
    await this.ingest(this.embedded, line)
  }

  /** Messages workers send unasked (notifications, requests to the client) and answers to send(); ends when the bus stops. */
  messages(): AsyncIterableIterator<BusMessage> {
    const it: AsyncIterableIterator<BusMessage> = {
      next: () => {
        const value = this.inbox.shift()
        if (value) return Promise.resolve({ value, done: false })
        if (this._state === "stopped" || this._state === "created")
          return Promise.resolve({ value: undefined, done: true })
        return new Promise((r) => this.inboxWaiters.push(r))
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]: () => it,
    }
    return it
  }

  stats(): StdioBusStats {
    const now = performance.now()
    let restarts = this.restartsBefore
    const pools: PoolStats[] = [...this.pools.values()].map((p) => {
      const sup = p.supervisor
      restarts += sup?.restarts ?? 0
      return {
        id: p.config.id,
        state: p.failure ? "failed" : sup ? "running" : "stopped",
        failure: p.failure,
        restarts: sup?.restarts ?? 0,
        instances: p.instances.map((i) => {
          const s: SupervisedInstance | undefined = sup?.instances[i.index]
          return {
            index: i.index,
            pid: i.proc?.pid ?? 0,
            state: s?.state ?? "stopped",
            inFlight: i.inFlight,
            restarts: s?.restarts ?? 0,
            uptimeMs: i.live && s ? Math.round(now - s.startedAt) : 0,
            queuedBytes: i.out.queuedBytes,
            sessions: i.sessions.size,
            stuck: i.stuck,
          }
        }),
      }
    })
    let messagesOut = 0
    let bytesOut = 0
    let backpressureRejects = 0
    for (const p of this.pools.values())
      for (const { out } of p.instances) {
        messagesOut += out.messages
        bytesOut += out.bytes
        backpressureRejects += out.rejects
      }
    return {
      state: this._state,
      ...this.counters,
      messagesOut,
      bytesOut,
      backpressureRejects,
      restarts,
      workerCount: this.workerCount,
      clientCount: this.clientCount,
      pools,
    }
  }

  /** Accepts NDJSON clients on "unix:/path" or "tcp:host:port" (tcp:0 picks a port) until the bus stops. */
  async listen(address: string, options?: ListenOptions): Promise<StdioListener> {
    this.assertRunning("listen()")
    const l = await StdioListener.open<BusClient & { close(): void }>(this, address, options)
    this.listenersOpen.add(l)
    return l
  }

  /** Where an embedded session (a request's sessionId) is pinned now, or null when it is not (yet, or any more). */
  sessionOf(sessionId: string, pool?: string): { pool: string; instance: number; pid: number } | null {
    const p = this.poolFor(pool)
    const s = p && this.sessions.get(this.sessionKey(p, sessionId))
    return s && s.instance.live ? { pool: p.config.id, instance: s.instance.index, pid: s.instance.proc!.pid } : null
  }

  /** Forgets a session's pin (its next message goes to the least busy instance); sessions are otherwise kept until their instance dies or their client leaves. */
  endSession(sessionId: string, pool?: string): boolean {
    const p = this.poolFor(pool)
    const key = p && this.sessionKey(p, sessionId)
    if (!key || !this.sessions.has(key)) return false
    this.unpin(key)
    return true
  }

  /** Registers an external client (a socket connection, the CLI's stdio); its messages go through ingest(). */
  attachClient(
    deliver: BusClient["deliver"],
    options: { sessionPerClient?: boolean } = {},
  ): BusClient & { close(): void } {
    const id = this.nextClientId++
    const client = {
      id,
      sessionPerClient: options.sessionPerClient !== false,
      deliver,
      close: () => {
        if (!this.clients.delete(client)) return
        for (const [key, s] of this.sessions) if (s.owner === client) this.unpin(key)
        for (const [pid, p] of this.pending) if (p.client === client) this.abandon(pid, p)
        for (const [aid, a] of this.asked) if (a.client === client) this.forgetAsked(aid)
      },
    }
    this.clients.add(client)
    return client
  }

  /**
   * One NDJSON message from `client`: a request (id rewritten, routed), a notification (routed), or an answer to
   * a request a worker sent earlier. Malformed or unroutable messages are counted and answered when possible.
   */
  async ingest(client: BusClient, line: string): Promise<void> {
    let msg: JsonRpcMessage
    try {
      msg = parseMessage(line) as JsonRpcMessage
    } catch {
      return this.refuse(
        client,
        null,
        BusErrorCode.ParseError,
        "Parse error: the line is not valid JSON",
        "malformed JSON from a client",
      )
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg))
      return this.refuse(
        client,
        null,
        BusErrorCode.InvalidRequest,
        "Invalid Request: expected one JSON-RPC object per line (batches are not supported)",
        "not a JSON-RPC object",
      )
    const hasId = "id" in msg
    if (this._state !== "running") {
      if (hasId && typeof msg.method === "string")
        this.answerError(
          client,
          msg.id ?? null,
          BusErrorCode.BusStopping,
          `the bus is ${this._state}`,
          this.defaultPool.config.id,
        )
      return
    }
    let pool = this.defaultPool
    let rewritten = false
    if ("pool" in msg) {
      const named = typeof msg.pool === "string" ? this.pools.get(msg.pool) : undefined
      if (!named)
        return this.refuse(
          client,
          hasId && msg.method !== undefined ? (msg.id ?? null) : undefined,
          BusErrorCode.UnknownPool,
          `unknown pool ${JSON.stringify(msg.pool)}; pools: ${[...this.pools.keys()].join(", ")}`,
          "unknown pool",
        )
      pool = named
      delete msg.pool
      rewritten = true
    }
    if (typeof msg.method !== "string") {
      if (!hasId)
        return this.refuse(
          client,
          null,
          BusErrorCode.InvalidRequest,
          "Invalid Request: a message needs a method or an id",
          "neither method nor id",
        )
      const target = typeof msg.id === "string" ? this.asked.get(msg.id) : undefined
      if (!target) return this.routingError("an answer to a request nobody made")
      if (target.client !== client) return this.routingError("an answer from a client the request was not sent to")
      this.forgetAsked(msg.id as string)
      if (target.instance.generation !== target.generation || !target.instance.live)
        return this.routingError("an answer for a worker that has since died", target.instance)
      msg.id = target.originalId
      try {
        await target.instance.out.write(JSON.stringify(msg) + "\n")
      } catch {
        this.routingError("an answer for a worker that stopped reading", target.instance)
      }
      return
    }
    const sessionKey =
      typeof msg.sessionId === "string"
        ? this.sessionKey(pool, msg.sessionId)
        : client.sessionPerClient
          ? `${pool.index}\u0001${client.id}`
          : null
    const originalId = msg.id ?? null
    try {
      const instance =
        this.routeNow(pool, sessionKey, client) ??
        (await this.route(pool, sessionKey, client, performance.now() + this.limits.backpressure_timeout_sec * 1000))
      if (!hasId) return await instance.out.write((rewritten ? JSON.stringify(msg) : line) + "\n")
      const id = ++this.nextId
      const entry: Pending = {
        instance,
        generation: instance.generation,
        client,
        originalId,
        sessionKey,
        abandoned: false,
        abandonedAt: 0,
      }
      this.track(id, entry)
      msg.id = id
      try {
        await instance.out.write(JSON.stringify(msg) + "\n")
      } catch (e) {
        if (this.pending.get(id) === entry) this.forget(id)
        throw e
      }
    } catch (e) {
      if (hasId) this.answerError(client, originalId, codeOf(e as Error), (e as Error).message, pool.config.id)
    }
  }

  // ── routing ────────────────────────────────────────────────────────────────────────────────────────────

  private poolFor(id: string | undefined): Pool | undefined {
    return id === undefined ? this.defaultPool : this.pools.get(id)
  }

  /** A named session's key; a client's own session is `${pool.index}\u0001${client.id}`, which no name can spell. */
  private sessionKey(pool: Pool, session: string): string {
    return `${pool.index}\0${session}`
  }

  /** The instance for the next message: the session's pin if alive, else the least busy live one (pinned from then on). */
  private routeNow(pool: Pool, sessionKey: string | null, owner: BusClient | null): Instance | null {
    if (pool.failure) throw new PoolFailedError(pool.config.id, pool.failure)
    if (this._state !== "running") throw new BusClosedError(`the stdio bus is ${this._state}`)
    if (sessionKey !== null) {
      const pinned = this.sessions.get(sessionKey)
      if (pinned?.instance.live) return pinned.instance
    }
    // Fewest in flight, then fewest sessions; ties rotate so equal instances share the load.
    let best: Instance | null = null
    const n = pool.instances.length
    const from = pool.rotor++ % n
    for (let k = 0; k < n; k++) {
      const i = pool.instances[(from + k) % n]!
      if (
        i.live &&
        (best === null ||
          i.inFlight < best.inFlight ||
          (i.inFlight === best.inFlight && i.sessions.size < best.sessions.size))
      )
        best = i
    }
    if (best && sessionKey !== null) {
      this.sessions.set(sessionKey, { instance: best, owner })
      best.sessions.add(sessionKey)
    }
    return best
  }

  /** routeNow, waiting (until `deadline`) while the pool has no live instance. */
  private async route(
    pool: Pool,
    sessionKey: string | null,
    owner: BusClient | null,
    deadline: number,
  ): Promise<Instance> {
    for (;;) {
      const instance = this.routeNow(pool, sessionKey, owner)
      if (instance) return instance
      await this.waitForLive(pool, deadline)
    }
  }

  private waitForLive(pool: Pool, deadline: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const ms = deadline - performance.now()
    if (ms <= 0)
      return Promise.reject(
        new WorkerGoneError(`pool "${pool.config.id}" has no running worker (it is restarting); try again`),
      )
    const timer = longTimeout(() => {
      pool.liveWaiters = pool.liveWaiters.filter((w) => w !== waiter)
      reject(
        new WorkerGoneError(
          `pool "${pool.config.id}" had no running worker for ${Math.round(ms)} ms (it is restarting)`,
        ),
      )
    }, ms)
    const waiter = {
      resolve: () => {
        timer.clear()
        resolve()
      },
      reject: (e: Error) => {
        timer.clear()
        reject(e)
      },
    }
    pool.liveWaiters.push(waiter)
    return promise
  }

  private unpin(key: string): void {
    const s = this.sessions.get(key)
    if (!s) return
    s.instance.sessions.delete(key)
    this.sessions.delete(key)
  }

  // ── reading from workers ──────────────────────────────────────────────────────────────────────────────

  private supervisePool(pool: Pool): Supervisor {
    const { command, args, instances, cwd, env } = pool.config
    const sup = new Supervisor({
      command: [command, ...args],
      instances,
      cwd,
      env: env ? { ...process.env, ...env } : undefined,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      maxRestarts: this.limits.max_restarts,
      restartWindowMs: Math.round(this.limits.restart_window_sec * 1000),
    })
    const id = pool.config.id
    sup.on("start", (s) => {
      const instance = pool.instances[s.index]!
      const proc = s.proc as Subprocess<"pipe", "pipe", "pipe">
      instance.proc = proc
      instance.generation++
      instance.out.attach(proc.stdin)
      instance.reading = this.readStdout(instance, proc)
      void this.readStderr(instance, proc)
      this.emit("worker-start", { pool: id, instance: s.index, pid: proc.pid })
      for (const w of pool.liveWaiters.splice(0)) w.resolve()
    })
    sup.on("exit", (s, info) => {
      this.workerGone(pool.instances[s.index]!, info.expected)
      this.emit("worker-exit", { pool: id, instance: s.index, ...info })
    })
    sup.on("restart", (s, r) => this.emit("worker-restart", { pool: id, instance: s.index, delayMs: r.delayMs }))
    sup.on("failed", (f) => {
      pool.failure = f.reason
      const error = new PoolFailedError(id, f.reason)
      for (const w of pool.liveWaiters.splice(0)) w.reject(error)
      this.emit("pool-failed", { pool: id, reason: f.reason })
    })
    return sup
  }

  private workerGone(instance: Instance, expected: boolean): void {
    const generation = instance.generation
    instance.proc = null
    instance.generation++
    for (const key of [...instance.sessions]) this.unpin(key)
    const pool = instance.pool
    const error = pool.failure
      ? new PoolFailedError(pool.config.id, pool.failure)
      : expected && this._state !== "running"
        ? new BusClosedError(
            `the stdio bus stopped before pool "${pool.config.id}" instance ${instance.index} answered`,
          )
        : new WorkerGoneError(
            `pool "${pool.config.id}" instance ${instance.index} exited before answering; the request may or may not have run`,
          )
    for (const id of [...instance.asked]) this.forgetAsked(id)
    instance.out.detach(error)
    // Answers the process wrote just before it died may still sit in the pipe: read them first (bounded; a
    // grandchild could hold the pipe open), then whatever is left never got an answer.
    let timer: ReturnType<typeof setTimeout> | undefined
    instance.settled = Promise.race([
      instance.reading,
      new Promise<void>((r) => (timer = setTimeout(r, EXIT_READ_MS))),
    ]).then(() => {
      clearTimeout(timer)
      this.rejectPending(instance, error, generation)
    })
  }

  private rejectPending(instance: Instance, error: Error, generation?: number): void {
    for (const id of [...instance.pending]) {
      if (generation !== undefined && this.pending.get(id)?.generation !== generation) continue
      const p = this.forget(id)
      if (!p || p.abandoned) continue
      if (p.reject) p.reject(error)
      else if (p.client) this.answerError(p.client, p.originalId, codeOf(error), error.message, instance.pool.config.id)
    }
  }

  /** One coarse timer for every request deadline: a setTimeout per request costs more than the routing itself. */
  private armSweeper(): void {
    if (this.sweeper) return
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS)
  }

  /** Times out what is due, drops given-up requests past their grace, and stops when nothing is left to watch. */
  private sweep(): void {
    const now = performance.now()
    let watching = false
    for (const [id, p] of this.pending) {
      if (!p.abandoned && p.deadline !== undefined && p.deadline < now)
        p.reject!(new TimeoutError(`${p.method}: no answer within ${p.timeoutMs} ms`))
      if (p.abandoned && now - p.abandonedAt >= STUCK_GRACE_MS) {
        this.forget(id)
        this.counters.stuckDropped++
      } else if (p.abandoned || (p.deadline !== undefined && p.deadline !== Infinity)) watching = true
    }
    if (!watching) {
      clearInterval(this.sweeper!)
      this.sweeper = null
    }
  }

  /** Puts a request on the books: pending, and in its instance's in-flight count. */
  private track(id: number, p: Pending): void {
    this.pending.set(id, p)
    p.instance.pending.add(id)
    p.instance.inFlight++
    this.awaited++
    if (p.client) {
      const load = this.clientLoad.get(p.client)
      if (load) load.awaited++
      else this.clientLoad.set(p.client, { awaited: 1, idle: [] })
    }
  }

  /** The request is answered or given up: nobody waits for it any more. */
  private unawait(p: Pending): void {
    if (--this.awaited === 0) for (const r of this.drained.splice(0)) r()
    const load = p.client && this.clientLoad.get(p.client)
    if (load && --load.awaited === 0) {
      this.clientLoad.delete(p.client!)
      for (const r of load.idle) r()
    }
  }

  /** Resolves once every request `client` sent has been answered (or given up). */
  settled(client: BusClient): Promise<void> {
    const load = this.clientLoad.get(client)
    return load ? new Promise((r) => load.idle.push(r)) : Promise.resolve()
  }

  /** Nobody waits for this request any more: its answer will be dropped, and its entry after STUCK_GRACE_MS. */
  private abandon(id: number, p: Pending): void {
    if (p.abandoned) return
    p.abandoned = true
    p.abandonedAt = performance.now()
    if (this.pending.get(id) !== p) return
    p.instance.stuck++
    this.armSweeper()
    this.unawait(p)
  }

  /** Drops a pending entry and its in-flight count; tells stop() when nobody waits any more. */
  private forget(id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (!p) return undefined
    this.pending.delete(id)
    p.instance.pending.delete(id)
    p.instance.inFlight--
    if (p.abandoned) p.instance.stuck--
    else this.unawait(p)
    return p
  }

  private forgetAsked(id: string): void {
    const a = this.asked.get(id)
    if (!a) return
    this.asked.delete(id)
    a.instance.asked.delete(id)
  }

  private async readStdout(instance: Instance, proc: Subprocess<"pipe", "pipe", "pipe">): Promise<void> {
    const pool = instance.pool
    const splitter = new LineSplitter(this.limits.max_input_buffer, (line) => this.fromWorker(instance, line))
    try {
      for await (const chunk of proc.stdout) {
        this.counters.bytesIn += chunk.length
        if (!splitter.push(chunk)) {
          this.counters.oversizeKills++
          this.log(
            instance,
            proc.pid,
            "error",
            `stdout line longer than max_input_buffer (${this.limits.max_input_buffer} bytes): killing and restarting the worker`,
          )
          pool.supervisor?.kill(instance.index, "SIGKILL")
          break
        }
      }
    } catch {
      // the pipe broke: the exit handler does the rest
    }
  }

  private async readStderr(instance: Instance, proc: Subprocess<"pipe", "pipe", "pipe">): Promise<void> {
    const max = this.limits.max_input_buffer
    let rest = ""
    const decoder = new TextDecoder()
    try {
      for await (const chunk of proc.stderr) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
        rest = lines.pop()!
        if (rest.length > max) rest = rest.slice(0, max) // a runaway stderr line is cut, never buffered without bound
        for (const line of lines)
          if (line.trim()) this.log(instance, proc.pid, levelOf(line), line.length > max ? line.slice(0, max) : line)
      }
      if (rest.trim()) this.log(instance, proc.pid, levelOf(rest), rest)
    } catch {
      // the pipe broke with the process
    }
  }

  private fromWorker(instance: Instance, line: string): void {
    this.counters.messagesIn++
    let msg: JsonRpcMessage
    try {
      msg = parseMessage(line) as JsonRpcMessage
      if (typeof msg !== "object" || msg === null || Array.isArray(msg)) throw new Error("not an object")
    } catch {
      this.log(
        instance,
        instance.proc?.pid ?? 0,
        "warn",
        `not a JSON-RPC message on stdout (dropped): ${line.slice(0, 200)}`,
      )
      return this.routingError("malformed JSON from a worker", instance)
    }
    const poolId = instance.pool.config.id
    if (typeof msg.method !== "string") {
      const id = msg.id
      const p = typeof id === "number" ? this.pending.get(id) : undefined
      if (!p && typeof id === "number" && Number.isInteger(id) && id > 0 && id <= this.nextId) {
        this.counters.lateResponses++ // given up and dropped from the books already
        return
      }
      if (!p || p.instance !== instance)
        return this.routingError(`an answer to no request (id ${JSON.stringify(id)})`, instance)
      this.forget(id as number)
      if (p.abandoned) {
        this.counters.lateResponses++
        return
      }
      if (p.resolve) {
        if (msg.error && typeof msg.error === "object")
          p.reject!(new JsonRpcError(Number(msg.error.code), String(msg.error.message), msg.error.data))
        else p.resolve(msg.result)
        return
      }
      msg.id = p.originalId
      return p.client!.deliver(msg, poolId, instance.index)
    }
    if ("id" in msg) {
      const client = this.ownersOf(instance, msg)[0] ?? this.embedded
      const busId = `sb-${crypto.randomUUID()}`
      if (instance.asked.size >= ASKED_MAX) this.forgetAsked(instance.asked.values().next().value!) // its own oldest, never another worker's
      this.asked.set(busId, { instance, generation: instance.generation, client, originalId: msg.id ?? null })
      instance.asked.add(busId)
      msg.id = busId
      return client.deliver(msg, poolId, instance.index)
    }
    const owners = this.ownersOf(instance, msg)
    if (owners.length === 0) return this.embedded.deliver(msg, poolId, instance.index)
    for (const c of owners) c.deliver(msg, poolId, instance.index)
  }

  /** Who gets a message a worker sent unasked: the owner of its sessionId, else the clients pinned to that worker. */
  private ownersOf(instance: Instance, msg: JsonRpcMessage): BusClient[] {
    if (typeof msg.sessionId === "string") {
      const s = this.sessions.get(this.sessionKey(instance.pool, msg.sessionId))
      if (s) return [s.owner ?? this.embedded]
    }
    const owners = new Set<BusClient>()
    for (const key of instance.sessions) {
      const owner = this.sessions.get(key)?.owner
      if (owner && owner !== this.embedded) owners.add(owner)
    }
    return [...owners]
  }

  // ── errors, logs, events ──────────────────────────────────────────────────────────────────────────────

  private refuse(client: BusClient, id: JsonRpcId | undefined, code: number, message: string, reason: string): void {
    this.routingError(reason)
    if (id !== undefined) this.answerError(client, id, code, message, this.defaultPool.config.id)
  }

  private answerError(client: BusClient, id: JsonRpcId, code: number, message: string, pool: string): void {
    client.deliver({ jsonrpc: "2.0", id, error: { code, message } }, pool, -1)
  }

  private routingError(reason: string, instance?: Instance): void {
    this.counters.routingErrors++
    this.emit("routing-error", { reason, pool: instance?.pool.config.id, instance: instance?.index })
  }

  private unknownPool(id: string): JsonRpcError {
    this.routingError("unknown pool")
    return new JsonRpcError(
      BusErrorCode.UnknownPool,
      `unknown pool ${JSON.stringify(id)}; pools: ${[...this.pools.keys()].join(", ")}`,
    )
  }

  private assertRunning(operation: string): void {
    if (this._state !== "running") throw new InvalidStateError(operation, ["running"], this._state)
  }

  private log(instance: Instance, pid: number, level: LogLevel, line: string): void {
    this.emit("log", { pool: instance.pool.config.id, instance: instance.index, pid, level, line })
  }

  private pushInbox(m: BusMessage): void {
    const waiter = this.inboxWaiters.shift()
    if (waiter) return waiter({ value: m, done: false })
    if (this.inbox.length >= MESSAGE_QUEUE_MAX) {
      this.inbox.shift()
      this.counters.droppedMessages++
    }
    this.inbox.push(m)
  }

  private emit<K extends keyof StdioBusEvents>(event: K, ...args: StdioBusEvents[K]): void {
    this.events.emit(event, ...args)
  }
}

function codeOf(e: Error): number {
  if (e instanceof WorkerGoneError) return BusErrorCode.WorkerGone
  if (e instanceof PoolFailedError) return BusErrorCode.PoolFailed
  if (e instanceof BackpressureError) return BusErrorCode.Backpressure
  if (e instanceof BusClosedError) return BusErrorCode.BusStopping
  if (e instanceof TimeoutError) return BusErrorCode.Timeout
  if (e instanceof JsonRpcError) return e.code
  return -32603
}

function levelOf(line: string): LogLevel {
  if (/\b(error|fatal|panic|exception)\b/i.test(line)) return "error"
  if (/\bwarn(ing)?\b/i.test(line)) return "warn"
  if (/\b(debug|trace)\b/i.test(line)) return "debug"
  return "info"
}

/** A delay option in ms: undefined, or a non-negative number (Infinity allowed); anything else is a RangeError. */
function millis(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== "number" || Number.isNaN(v) || v < 0)
    throw new RangeError(`${name} must be a non-negative number of milliseconds, got ${String(v)}`)
  return v
}

/** JSON.parse, except that a numeric id a JS number cannot hold exactly keeps its JSON text (as JSON.rawJSON). */
function parseMessage(line: string): unknown {
  const msg = JSON.parse(line)
  const id = msg?.id
  if (typeof id === "number" && (!Number.isSafeInteger(id) || Object.is(id, -0))) msg.id = rawIdOf(line)
  return msg
}

function rawIdOf(line: string): RawJSON {
  const sources = new Map<unknown, string>()
  let top = "null"
  // The reviver sees every member's source text; the top-level "id" is the one whose holder is the root.
  JSON.parse(line, function (this: unknown, key: string, value: unknown, context?: { source?: string }) {
    if (key === "id" && context?.source !== undefined) sources.set(this, context.source)
    else if (key === "" && sources.has(value)) top = sources.get(value)!
    return value
  } as (key: string, value: unknown) => unknown)
  return (JSON as unknown as { rawJSON(text: string): RawJSON }).rawJSON(top)
}
