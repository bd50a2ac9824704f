// StdioBus: supervised pools of NDJSON JSON-RPC worker processes, in the manner of the stdio_bus daemon.
// Every request's id is rewritten to a bus-wide number on the way to a worker and restored on the way back, so
// callers (embedded, socket clients) never collide; sessions stick to one instance until it dies.
// The bus is a facade over three parts it owns, each with its own state: a Router (router.ts: pools, sessions, the
// inbox, counters, events), the Books (books.ts: requests out) and the Workers (workers.ts: the pools' processes).
// Here: lifecycle, request/notify/send, clients, stats.
import { BusClosedError, TimeoutError } from "../core/index.ts"
import { MAX_TIMER_MS, type Supervisor, longTimeout, type LongTimer, type SupervisedInstance } from "../kit/index.ts"
import { ago, checkOptions, madeBy, optionNames, section, STATUS, type StatusSection } from "../kit/index.ts"
import { loadConfig, type LimitsConfig, type StdioBusConfig, type StdioBusConfigInput } from "./config.ts"
import { BusErrorCode, InvalidStateError, JsonRpcError, SpawnError } from "./errors.ts"
import { type Handshake, Handshakes } from "./handshakes.ts"
import { StdioListener, type ListenOptions } from "./listener.ts"
import { codeOf, idKey, inexact, parseMessage, rawMemberOf } from "./jsonrpc.ts"
import { Pool, type Instance, type Pending } from "./pool.ts"
import { Books } from "./books.ts"
import { Router } from "./router.ts"
import { Workers } from "./workers.ts"
import type {
  BusClient,
  BusMessage,
  BusState,
  JsonRpcMessage,
  PoolStats,
  StdioBusEvents,
  StdioBusStats,
  StdioRequestOptions,
  StdioStopOptions,
} from "./types.ts"

const FACTORY = Symbol("StdioBus.fromConfig")
const REQUEST_OPTIONS = optionNames<StdioRequestOptions>({ sessionId: true, pool: true, timeoutMs: true, signal: true })
const NOTIFY_OPTIONS = optionNames<Omit<StdioRequestOptions, "timeoutMs" | "signal">>({ sessionId: true, pool: true })
const STOP_OPTIONS = optionNames<StdioStopOptions>({ timeoutMs: true, killAfterMs: true })
const CLIENT_OPTIONS = optionNames<{ sessionPerClient?: boolean }>({ sessionPerClient: true })
/** How long a restarted worker may take to answer a session's replayed initialize. */
const REPLAY_TIMEOUT_MS = 30_000
const INITIALIZED_LINE = `${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`

export class StdioBus {
  readonly config: StdioBusConfig
  readonly limits: LimitsConfig
  private readonly router: Router
  private readonly books: Books
  private readonly workers: Workers
  private readonly clients = new Set<BusClient>()
  private readonly listenersOpen = new Set<StdioListener>()
  private nextClientId = 1
  private stopping: Promise<void> | null = null
  private restartsBefore = 0
  private readonly handshakes = new Handshakes()

  /** A bus for a stdio_bus configuration: a path to its JSON file, or the object itself. */
  static fromConfig(source: string | StdioBusConfigInput): StdioBus {
    return new StdioBus(FACTORY, loadConfig(source))
  }

  private constructor(key: symbol, config: StdioBusConfig) {
    madeBy(key, FACTORY, "StdioBus", "StdioBus.fromConfig(pathOrConfig)")
    this.config = config
    this.limits = config.limits
    this.router = new Router(config.pools.map((p, i) => new Pool(p, i, config.limits)))
    this.books = new Books(this.router)
    this.workers = new Workers(this.router, this.books, config.limits)
  }

  get state(): BusState {
    return this.router.state
  }
  /** Worker processes running now, over all pools. */
  get workerCount(): number {
    let n = 0
    for (const p of this.router.pools.values()) for (const i of p.instances) if (i.live) n++
    return n
  }
  /** Socket (and stdio) clients connected now. */
  get clientCount(): number {
    return this.clients.size
  }

  on<K extends keyof StdioBusEvents>(event: K, fn: (...args: StdioBusEvents[K]) => void): () => void {
    return this.router.events.on(event, fn)
  }

  /** Spawns every pool's instances. Allowed when created or stopped. */
  async start(): Promise<void> {
    if (this.router.state !== "created" && this.router.state !== "stopped")
      throw new InvalidStateError("start()", ["created", "stopped"], this.router.state)
    this.router.state = "starting"
    this.stopping = null
    const started: Supervisor[] = []
    try {
      for (const pool of this.router.pools.values()) {
        pool.failure = null
        const sup = this.workers.supervisePool(pool)
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
      this.router.state = "stopped"
      throw e
    }
    await new Promise<void>((r) => setImmediate(r)) // let the spawns settle: a start() caller sees "starting" until then
    if (this.router.state === "starting") this.router.state = "running"
  }

  /** Stops taking work, lets in-flight requests finish (bounded), then SIGTERM, then SIGKILL. */
  stop(options: StdioStopOptions = {}): Promise<void> {
    try {
      checkOptions(options, STOP_OPTIONS, "stdio bus.stop")
    } catch (e) {
      return Promise.reject(e)
    }
    if (this.router.state === "created" || this.router.state === "stopped") return Promise.resolve()
    if (this.stopping) return this.stopping
    let drainMs: number, killMs: number
    try {
      drainMs = millis("stop(): timeoutMs", options.timeoutMs) ?? this.limits.drain_timeout_sec * 1000
      killMs = Math.min(millis("stop(): killAfterMs", options.killAfterMs) ?? 2000, MAX_TIMER_MS) // the core's supervisor waits no longer
    } catch (e) {
      return Promise.reject(e)
    }
    this.router.state = "stopping"
    for (const l of this.listenersOpen) l.stopAccepting()
    this.stopping = (async () => {
      if (this.books.awaited > 0) {
        let timer: LongTimer | undefined
        await Promise.race([
          new Promise<void>((r) => this.books.drained.push(r)),
          new Promise<void>((r) => (timer = longTimeout(r, drainMs))),
        ])
        timer!.clear()
      }
      await Promise.all(
        [...this.router.pools.values()].map((p) => p.supervisor?.stop({ drainTimeoutMs: 0, killGraceMs: killMs })),
      )
      // Every request still open gets its answer (an error) before the clients are disconnected.
      await Promise.all([...this.router.pools.values()].flatMap((p) => p.instances.map((i) => i.settled)))
      for (const [id, p] of this.books.pending) {
        this.books.forget(id)
        if (p.abandoned) continue
        const e = new BusClosedError("the stdio bus stopped before the worker answered")
        if (p.reject) p.reject(e)
        else if (p.client)
          this.router.answerError(p.client, p.originalId, codeOf(e), e.message, p.instance.pool.config.id)
      }
      this.books.drained.splice(0)
      if (this.books.sweeper) clearInterval(this.books.sweeper)
      this.books.sweeper = null
      for (const p of this.router.pools.values()) {
        this.restartsBefore += p.supervisor?.restarts ?? 0
        p.supervisor = null
        for (const w of p.liveWaiters) w.reject(new BusClosedError("the stdio bus stopped"))
        p.liveWaiters = []
      }
      await Promise.all([...this.listenersOpen].map((l) => l.close()))
      this.listenersOpen.clear()
      this.router.clearPins()
      this.handshakes.clear()
      this.books.asked.clear()
      for (const p of this.router.pools.values()) for (const i of p.instances) i.asked.clear()
      this.router.state = "stopped"
      for (const w of this.router.inboxWaiters.splice(0)) w({ value: undefined, done: true })
    })()
    return this.stopping
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** Sends a JSON-RPC request to a worker; resolves with its result, rejects with JsonRpcError, TimeoutError, WorkerGoneError, … */
  request(method: string, params?: unknown, options: StdioRequestOptions = {}): Promise<unknown> {
    checkOptions(options, REQUEST_OPTIONS, "stdio bus.request")
    this.router.assertRunning("request()")
    if (typeof method !== "string" || method === "") throw new TypeError("request(): method must be a non-empty string")
    const pool = this.router.poolFor(options.pool)
    if (!pool) return Promise.reject(this.router.unknownPool(options.pool!))
    const signal = options.signal
    const timeoutMs = millis("request(): timeoutMs", options.timeoutMs) ?? 30_000
    if (signal?.aborted) return Promise.reject(signal.reason)
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const sessionKey = options.sessionId !== undefined ? this.router.sessionKey(pool, options.sessionId) : null
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity
    const id = ++this.books.nextId
    let settled = false
    const onAbort = signal ? () => giveUp(signal.reason) : null
    const giveUp = (e: Error) => {
      settled = true
      this.books.abandon(id, entry, e instanceof TimeoutError ? e.message : `aborted by the caller: ${reasonText(e)}`)
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
      written: false,
    }
    if (onAbort) signal!.addEventListener("abort", onAbort, { once: true })
    const line =
      JSON.stringify(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params }) +
      "\n"
    const write = (instance: Instance): Promise<void> | void => {
      const queued = instance.out.write(line)
      if (!queued) return this.books.markWritten(id, entry)
      return queued.then(() => this.books.markWritten(id, entry))
    }
    const dispatch = (instance: Instance): Promise<void> | void => {
      if (settled) return
      entry.instance = instance
      entry.generation = instance.generation
      this.books.track(id, entry)
      if (deadline !== Infinity) this.books.armSweeper()
      const ready = this.handshaken(pool, sessionKey, null, instance, method, params)
      if (!ready) return write(instance)
      // Given up while the handshake was replayed: the worker never gets it.
      return ready.then(() => (entry.abandoned ? void this.books.forget(id) : write(instance)))
    }
    const failed = (e: Error) => {
      if (this.books.pending.get(id) === entry) this.books.forget(id)
      giveUp(e)
    }
    try {
      const now = this.router.routeNow(pool, sessionKey, null)
      const sent = now ? dispatch(now) : this.router.route(pool, sessionKey, null, deadline).then(dispatch)
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
    checkOptions(options, NOTIFY_OPTIONS, "stdio bus.notify")
    this.router.assertRunning("notify()")
    const pool = this.router.poolFor(options.pool)
    if (!pool) throw this.router.unknownPool(options.pool!)
    const sessionKey = options.sessionId !== undefined ? this.router.sessionKey(pool, options.sessionId) : null
    const message = params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params }
    const instance =
      this.router.routeNow(pool, sessionKey, null) ??
      (await this.router.route(pool, sessionKey, null, performance.now() + this.limits.backpressure_timeout_sec * 1000))
    await this.handshaken(pool, sessionKey, null, instance, method, params)
    await instance.out.write(JSON.stringify(message) + "\n")
  }

  /** Takes one raw NDJSON message as a stdio_bus client would write it; answers come out of messages(). */
  async send(line: string): Promise<void> {
    this.router.assertRunning("send()")
    await this.ingest(this.router.embedded, line)
  }

  /** Messages workers send unasked (notifications, requests to the client) and answers to send(); ends when the bus stops. */
  messages(): AsyncIterableIterator<BusMessage> {
    const it: AsyncIterableIterator<BusMessage> = {
      next: () => {
        const value = this.router.inbox.shift()
        if (value) return Promise.resolve({ value, done: false })
        if (this.router.state === "stopped" || this.router.state === "created")
          return Promise.resolve({ value: undefined, done: true })
        return new Promise((r) => this.router.inboxWaiters.push(r))
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]: () => it,
    }
    return it
  }

  stats(): StdioBusStats {
    const now = performance.now()
    let restarts = this.restartsBefore
    const pools: PoolStats[] = [...this.router.pools.values()].map((p) => {
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
    for (const p of this.router.pools.values())
      for (const { out } of p.instances) {
        messagesOut += out.messages
        bytesOut += out.bytes
        backpressureRejects += out.rejects
      }
    return {
      state: this.router.state,
      ...this.router.counters,
      messagesOut,
      bytesOut,
      backpressureRejects,
      restarts,
      workerCount: this.workerCount,
      clientCount: this.clientCount,
      pools,
    }
  }

  /** What `serveStatus` shows of this bus: each pool's worker processes, their load and restarts, the traffic. */
  [STATUS](): StatusSection {
    const st = this.stats()
    const s = section("stdio", "stdio bus")
    s.facts.push(
      ["state", st.state],
      ["workers / clients", `${st.workerCount} / ${st.clientCount}`],
      ["messages in / out", `${st.messagesIn} / ${st.messagesOut}`],
      ["restarts", st.restarts],
      ["routing errors / backpressure rejects", `${st.routingErrors} / ${st.backpressureRejects}`],
      ["late answers / stuck dropped", `${st.lateResponses} / ${st.stuckDropped}`],
    )
    s.tables.push({
      title: "worker processes",
      columns: ["pool", "#", "pid", "state", "in flight", "sessions", "stuck", "restarts", "up", "queued bytes"],
      rows: st.pools.flatMap((p) =>
        p.instances.map((i) => [
          p.id,
          i.index,
          i.pid || "-",
          p.state === "failed" ? "failed" : i.state,
          i.inFlight,
          i.sessions,
          i.stuck,
          i.restarts,
          i.uptimeMs > 0 ? ago(i.uptimeMs) : "-",
          i.queuedBytes,
        ]),
      ),
    })
    for (const p of st.pools) if (p.failure) s.warnings.push(`pool "${p.id}" gave up: ${p.failure}`)
    return s
  }

  /** Resolves once every request `client` sent has been answered (or given up). */
  settled(client: BusClient): Promise<void> {
    return this.books.settled(client)
  }

  /** Accepts NDJSON clients on "unix:/path" or "tcp:host:port" (tcp:0 picks a port) until the bus stops. */
  async listen(address: string, options?: ListenOptions): Promise<StdioListener> {
    this.router.assertRunning("listen()")
    const l = await StdioListener.open<BusClient & { close(): void }>(this, address, options)
    this.listenersOpen.add(l)
    return l
  }

  /** Where an embedded session (a request's sessionId) is pinned now, or null when it is not (yet, or any more). */
  sessionOf(sessionId: string, pool?: string): { pool: string; instance: number; pid: number } | null {
    const p = this.router.poolFor(pool)
    const s = p && this.router.sessions.get(this.router.sessionKey(p, sessionId))
    return s && s.instance.live ? { pool: p.config.id, instance: s.instance.index, pid: s.instance.proc!.pid } : null
  }

  /** Forgets a session's pin (its next message goes to the least busy instance); sessions are otherwise kept until their instance dies or their client leaves. */
  endSession(sessionId: string, pool?: string): boolean {
    const p = this.router.poolFor(pool)
    const key = p && this.router.sessionKey(p, sessionId)
    if (!key || (!this.router.sessions.has(key) && !this.handshakes.has(key))) return false
    this.router.unpin(key)
    this.handshakes.forget(key)
    return true
  }

  /** Registers an external client (a socket connection, the CLI's stdio); its messages go through ingest(). */
  attachClient(
    deliver: BusClient["deliver"],
    options: { sessionPerClient?: boolean } = {},
  ): BusClient & { close(): void } {
    checkOptions(options, CLIENT_OPTIONS, "stdio bus.attachClient")
    const id = this.nextClientId++
    const client = {
      id,
      sessionPerClient: options.sessionPerClient !== false,
      deliver,
      close: () => {
        if (!this.clients.delete(client)) return
        this.router.leave(client)
        this.handshakes.forgetOwner(client)
        for (const [pid, p] of this.books.pending)
          if (p.client === client) this.books.abandon(pid, p, "the client disconnected")
        for (const [aid, a] of this.books.asked) if (a.client === client) this.books.forgetAsked(aid)
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
    // Lines a client sent before it went away may still wait their turn (Inbound): nobody is left to answer them.
    if (this.gone(client)) return
    let msg: JsonRpcMessage
    try {
      msg = parseMessage(line) as JsonRpcMessage
    } catch {
      return this.router.refuse(
        client,
        null,
        BusErrorCode.ParseError,
        "Parse error: the line is not valid JSON",
        "malformed JSON from a client",
      )
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg))
      return this.router.refuse(
        client,
        null,
        BusErrorCode.InvalidRequest,
        "Invalid Request: expected one JSON-RPC object per line (batches are not supported)",
        "not a JSON-RPC object",
      )
    const hasId = "id" in msg
    if (this.router.state !== "running") {
      if (hasId && typeof msg.method === "string")
        this.router.answerError(
          client,
          msg.id ?? null,
          BusErrorCode.BusStopping,
          `the bus is ${this.router.state}`,
          this.router.defaultPool.config.id,
        )
      return
    }
    let pool = this.router.defaultPool
    let rewritten = false
    if ("pool" in msg) {
      const named = typeof msg.pool === "string" ? this.router.pools.get(msg.pool) : undefined
      if (!named)
        return this.router.refuse(
          client,
          hasId && msg.method !== undefined ? (msg.id ?? null) : undefined,
          BusErrorCode.UnknownPool,
          `unknown pool ${JSON.stringify(msg.pool)}; pools: ${[...this.router.pools.keys()].join(", ")}`,
          "unknown pool",
        )
      pool = named
      delete msg.pool
      rewritten = true
    }
    if (typeof msg.method !== "string") {
      if (!hasId)
        return this.router.refuse(
          client,
          null,
          BusErrorCode.InvalidRequest,
          "Invalid Request: a message needs a method or an id",
          "neither method nor id",
        )
      const target = typeof msg.id === "string" ? this.books.asked.get(msg.id) : undefined
      if (!target) return this.router.routingError("an answer to a request nobody made")
      if (target.client !== client)
        return this.router.routingError("an answer from a client the request was not sent to")
      this.books.forgetAsked(msg.id as string)
      if (target.instance.generation !== target.generation || !target.instance.live)
        return this.router.routingError("an answer for a worker that has since died", target.instance)
      msg.id = target.originalId
      try {
        await target.instance.out.write(JSON.stringify(msg) + "\n")
      } catch {
        this.router.routingError("an answer for a worker that stopped reading", target.instance)
      }
      return
    }
    if (!hasId && (msg.method === "notifications/cancelled" || msg.method === "$/cancelRequest"))
      return this.passCancel(client, msg, line)
    const sessionKey =
      typeof msg.sessionId === "string"
        ? this.router.sessionKey(pool, msg.sessionId)
        : client.sessionPerClient
          ? `${pool.index}\u0001${client.id}`
          : null
    const originalId = msg.id ?? null
    try {
      const instance =
        this.router.routeNow(pool, sessionKey, client) ??
        (await this.router.route(
          pool,
          sessionKey,
          client,
          performance.now() + this.limits.backpressure_timeout_sec * 1000,
        ))
      if (this.gone(client)) return // it left while its message waited for an instance: nobody to send it for
      const ready = this.handshaken(pool, sessionKey, client, instance, msg.method, msg.params)
      if (!hasId) {
        if (ready) await ready
        if (this.gone(client)) return
        return await instance.out.write((rewritten ? JSON.stringify(msg) : line) + "\n")
      }
      const id = ++this.books.nextId
      const entry: Pending = {
        instance,
        generation: instance.generation,
        client,
        originalId,
        sessionKey,
        method: msg.method,
        abandoned: false,
        abandonedAt: 0,
        written: false,
      }
      this.books.track(id, entry)
      msg.id = id
      try {
        if (ready) {
          await ready
          if (entry.abandoned) return void this.books.forget(id) // the client left while the handshake was replayed
        }
        await instance.out.write(JSON.stringify(msg) + "\n")
        this.books.markWritten(id, entry)
      } catch (e) {
        if (this.books.pending.get(id) === entry) this.books.forget(id)
        throw e
      }
    } catch (e) {
      if (hasId) this.router.answerError(client, originalId, codeOf(e as Error), (e as Error).message, pool.config.id)
    }
  }

  /** A socket or stdio client that has disconnected (the embedded caller never does). */
  private gone(client: BusClient): boolean {
    return client !== this.router.embedded && !this.clients.has(client)
  }

  /**
   * A client's own cancel (MCP notifications/cancelled, LSP $/cancelRequest) goes to the worker its request went
   * to, under the id that worker saw. One naming nothing this client has in flight is dropped (a race with the
   * answer, or another client's id): passed on as written it would name whatever that worker has under that id.
   */
  private async passCancel(client: BusClient, msg: JsonRpcMessage, line: string): Promise<void> {
    const mcp = msg.method === "notifications/cancelled"
    const params = msg.params
    if (typeof params !== "object" || params === null || Array.isArray(params)) return
    const field = mcp ? "requestId" : "id"
    const named = (params as Record<string, unknown>)[field]
    // Read as exactly as the request's own id was (parseMessage), so 12345678901234567890 or 1.5 finds it.
    const key = idKey(inexact(named) ? rawMemberOf(line, ["params"], field) : named)
    if (key === undefined) return
    const id = this.books.clientRequests.get(client)?.get(key)
    const p = id === undefined ? undefined : this.books.pending.get(id)
    if (!p || p.abandoned || !p.instance.live || p.instance.generation !== p.generation) return
    // MCP: the answer is not wanted any more (the client ignores it). LSP: the server still answers, and the
    // client waits for that answer.
    if (mcp) this.books.abandon(id!, p, null)
    const out = { ...msg, params: { ...params, [mcp ? "requestId" : "id"]: id } }
    try {
      await p.instance.out.write(`${JSON.stringify(out)}\n`)
    } catch {
      // the worker is gone, and the request with it
    }
  }

  // ── replayed handshakes (pools[].initialize: "replay") ─────────────────────────────────────────────────

  /**
   * Notes a session's handshake messages and, before any other message of a session whose worker process has not
   * seen its handshake (a restarted or another instance), replays it there; resolves when the message may go.
   */
  private handshaken(
    pool: Pool,
    sessionKey: string | null,
    owner: BusClient | null,
    instance: Instance,
    method: string,
    params: unknown,
  ): Promise<void> | undefined {
    if (sessionKey === null || pool.config.initialize !== "replay") return undefined
    const h = method === "initialize" ? undefined : this.handshakes.unseen(sessionKey, instance)
    if (!h) return void this.handshakes.note(sessionKey, owner, instance, method, params)
    let replay = h.replay
    if (!replay || replay.instance !== instance || replay.generation !== instance.generation) {
      const r = { instance, generation: instance.generation, done: this.replay(h, instance) }
      const done = () => {
        if (h.replay === r) h.replay = null
      }
      r.done.then(done, done)
      h.replay = replay = r
    }
    return replay.done.then(() => this.handshakes.note(sessionKey, owner, instance, method, params))
  }

  /** Sends a session's initialize (its answer swallowed) and, if the session had sent it, notifications/initialized. */
  private async replay(h: Handshake, instance: Instance): Promise<void> {
    const generation = instance.generation
    try {
      await this.requestOn(instance, "initialize", h.params, REPLAY_TIMEOUT_MS)
    } catch (e) {
      if (!(e instanceof JsonRpcError)) throw e
      this.router.log(
        instance,
        instance.proc?.pid ?? 0,
        "warn",
        `the replayed initialize was refused (${e.message}); the session's messages go on to the worker`,
      )
    }
    if (h.initialized) await instance.out.write(INITIALIZED_LINE)
    h.instance = instance
    h.generation = generation
  }

  /** A request of the bus's own to one worker process: resolves with its result, which nobody else sees. */
  private requestOn(instance: Instance, method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const id = ++this.books.nextId
    const entry: Pending = {
      instance,
      generation: instance.generation,
      client: null,
      originalId: id,
      sessionKey: null,
      resolve,
      reject: (e: Error) => {
        this.books.abandon(id, entry, e.message)
        reject(e)
      },
      deadline: performance.now() + timeoutMs,
      timeoutMs,
      method,
      abandoned: false,
      abandonedAt: 0,
      written: false,
    }
    this.books.track(id, entry)
    this.books.armSweeper()
    const failed = (e: Error) => {
      if (this.books.pending.get(id) === entry) this.books.forget(id)
      entry.reject!(e)
    }
    try {
      const queued = instance.out.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`)
      if (queued) queued.then(() => this.books.markWritten(id, entry), failed)
      else this.books.markWritten(id, entry)
    } catch (e) {
      failed(e as Error)
    }
    return promise
  }
}

/** An abort reason as text: an Error's message, else the value itself. */
function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason)
}

/** A delay option in ms: undefined, or a non-negative number (Infinity allowed); anything else is a RangeError. */
function millis(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== "number" || Number.isNaN(v) || v < 0)
    throw new RangeError(`${name} must be a non-negative number of milliseconds, got ${String(v)}`)
  return v
}
