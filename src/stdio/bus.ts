// StdioBus: supervised pools of NDJSON JSON-RPC worker processes, in the manner of the stdio_bus daemon.
// Every request's id is rewritten to a bus-wide number on the way to a worker and restored on the way back, so
// callers (embedded, socket clients) never collide; sessions stick to one instance until it dies.
// The bus is a facade over the parts it owns, each with its own state: a Router (router.ts: pools, sessions, the
// inbox, routing errors, events), the Books (books.ts: requests out and their ids), the Workers (workers.ts: the
// pools' processes), the Handshakes (handshakes.ts) and the Clients (clients.ts: socket clients and their lines).
// Here: the lifecycle (start/stop), request/notify/send, messages(), sessions, listeners, stats.
import { TimeoutError } from "../core/index.ts"
import { MAX_TIMER_MS, type SupervisedInstance, checkNumber, checkOptions, madeBy, optionNames } from "../kit/index.ts"
import { ago, METRICS, section, STATUS, type MetricFamily, type StatusSection } from "../kit/index.ts"
import { stdioFamilies } from "./metrics.ts"
import { mcpFamilies, mcpTable } from "./mcp-http-metrics.ts"
import { Clients } from "./clients.ts"
import { loadConfig, type LimitsConfig, type StdioBusConfig, type StdioBusConfigInput } from "./config.ts"
import { ReloadError } from "./errors.ts"
import { Handshakes } from "./handshakes.ts"
import { Lifecycle } from "./lifecycle.ts"
import { StdioListener, type ListenOptions } from "./listener.ts"
import { McpHttpHandler } from "./mcp-http.ts"
import type { McpHttpOptions } from "./mcp-http-options.ts"
import { McpHttpListener, type McpHttpListenOptions } from "./mcp-http-listener.ts"
import { Pool, type Instance, type Pending } from "./pool.ts"
import { Books } from "./books.ts"
import { Router } from "./router.ts"
import { Workers } from "./workers.ts"
import type {
  BusClient,
  BusMessage,
  BusState,
  PoolStats,
  StdioBusEvents,
  StdioBusStats,
  StdioReloadOptions,
  StdioRequestOptions,
  StdioStopOptions,
} from "./types.ts"

const FACTORY = Symbol("StdioBus.fromConfig")
const REQUEST_OPTIONS = optionNames<StdioRequestOptions>({ sessionId: true, pool: true, timeoutMs: true, signal: true })
const NOTIFY_OPTIONS = optionNames<Omit<StdioRequestOptions, "timeoutMs" | "signal">>({ sessionId: true, pool: true })
const STOP_OPTIONS = optionNames<StdioStopOptions>({ timeoutMs: true, killAfterMs: true })
const RELOAD_OPTIONS = optionNames<StdioReloadOptions>({ maxSurge: true, readyTimeoutMs: true })

export class StdioBus {
  readonly config: StdioBusConfig
  readonly limits: LimitsConfig
  private readonly lifecycle = new Lifecycle()
  private readonly router: Router
  private readonly books: Books
  private readonly workers: Workers
  private readonly handshakes: Handshakes
  private readonly clients: Clients
  private readonly listenersOpen = new Set<StdioListener | McpHttpListener | McpHttpHandler>()
  private stopping: Promise<void> | null = null

  /** A bus for a stdio_bus configuration: a path to its JSON file, or the object itself. */
  static fromConfig(source: string | StdioBusConfigInput): StdioBus {
    return new StdioBus(FACTORY, loadConfig(source))
  }

  private constructor(key: symbol, config: StdioBusConfig) {
    madeBy(key, FACTORY, "StdioBus", "StdioBus.fromConfig(pathOrConfig)")
    this.config = config
    this.limits = config.limits
    this.router = new Router(
      config.pools.map((p, i) => new Pool(p, i, config.limits)),
      this.lifecycle,
    )
    this.books = new Books(this.router)
    this.handshakes = new Handshakes(this.books, this.router)
    this.workers = new Workers(this.router, this.books, this.handshakes, this.lifecycle, config.limits)
    this.clients = new Clients(this.router, this.books, this.handshakes, this.lifecycle, config.limits)
  }

  get state(): BusState {
    return this.lifecycle.state
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
    this.lifecycle.starting()
    this.stopping = null
    try {
      await this.workers.start()
    } catch (e) {
      this.lifecycle.stopped()
      throw e
    }
    await new Promise<void>((r) => setImmediate(r)) // let the spawns settle: a start() caller sees "starting" until then
    this.lifecycle.started()
  }

  /** Stops taking work, lets in-flight requests finish (bounded), then SIGTERM, then SIGKILL. */
  stop(options: StdioStopOptions = {}): Promise<void> {
    try {
      checkOptions(options, STOP_OPTIONS, "stdio bus.stop")
    } catch (e) {
      return Promise.reject(e)
    }
    if (this.state === "created" || this.state === "stopped") return Promise.resolve()
    if (this.stopping) return this.stopping
    let drainMs: number, killMs: number
    try {
      drainMs = millis(options.timeoutMs, this.limits.drain_timeout_sec * 1000, "timeoutMs", "stdio bus.stop")
      killMs = Math.min(millis(options.killAfterMs, 2000, "killAfterMs", "stdio bus.stop"), MAX_TIMER_MS) // the core's supervisor waits no longer
    } catch (e) {
      return Promise.reject(e)
    }
    this.lifecycle.stopping()
    for (const l of this.listenersOpen) l.stopAccepting()
    this.stopping = (async () => {
      await this.books.drain(drainMs)
      await this.workers.stop(killMs)
      // Every request still open gets its answer (an error) before the clients are disconnected.
      this.books.close()
      this.workers.release()
      await Promise.all([...this.listenersOpen].map((l) => l.close()))
      this.listenersOpen.clear()
      this.router.clearPins()
      this.handshakes.clear()
      this.lifecycle.stopped()
      this.router.endMessages()
    })()
    return this.stopping
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /**
   * Replaces every instance of `pool` (default: every pool, one after another) surge-first: a successor starts, is
   * ready (the pool's `ready` check, then its sessions' handshakes replayed), takes the instance's sessions and new
   * messages, and the old process drains and stops. Rejects with ReloadError (the rest keep serving) when a
   * successor is not ready within `readyTimeoutMs` or exits first. Never counted as a crash.
   */
  async reload(pool?: string, options: StdioReloadOptions = {}): Promise<void> {
    checkOptions(options, RELOAD_OPTIONS, "stdio bus.reload")
    this.lifecycle.assertRunning("reload()")
    const pools = pool === undefined ? [...this.router.pools.values()] : [this.router.pools.get(pool)]
    if (!pools[0])
      throw new ReloadError(String(pool), `no such pool; pools: ${[...this.router.pools.keys()].join(", ")}`)
    for (const p of pools) await this.workers.reload(p!, options)
  }

  /** Sends a JSON-RPC request to a worker; resolves with its result, rejects with JsonRpcError, TimeoutError, WorkerGoneError, … */
  request(method: string, params?: unknown, options: StdioRequestOptions = {}): Promise<unknown> {
    checkOptions(options, REQUEST_OPTIONS, "stdio bus.request")
    this.lifecycle.assertRunning("request()")
    if (typeof method !== "string" || method === "") throw new TypeError("request(): method must be a non-empty string")
    const pool = this.router.poolFor(options.pool)
    if (!pool) return Promise.reject(this.router.unknownPool(options.pool!))
    const signal = options.signal
    const timeoutMs = millis(options.timeoutMs, 30_000, "timeoutMs", "stdio bus.request")
    if (signal?.aborted) return Promise.reject(signal.reason)
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const sessionKey = options.sessionId !== undefined ? this.router.sessionKey(pool, options.sessionId) : null
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity
    const id = this.books.issueId()
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
      const ready = this.handshakes.ready(pool, sessionKey, null, instance, method, params)
      if (!ready) return write(instance)
      // Given up while the handshake was replayed: the worker never gets it.
      return ready.then(() => (entry.abandoned ? void this.books.forget(id) : write(instance)))
    }
    const failed = (e: Error) => {
      this.books.withdraw(id, entry)
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
    this.lifecycle.assertRunning("notify()")
    const pool = this.router.poolFor(options.pool)
    if (!pool) throw this.router.unknownPool(options.pool!)
    const sessionKey = options.sessionId !== undefined ? this.router.sessionKey(pool, options.sessionId) : null
    const message = params === undefined ? { jsonrpc: "2.0", method } : { jsonrpc: "2.0", method, params }
    const instance =
      this.router.routeNow(pool, sessionKey, null) ??
      (await this.router.route(pool, sessionKey, null, performance.now() + this.limits.backpressure_timeout_sec * 1000))
    await this.handshakes.ready(pool, sessionKey, null, instance, method, params)
    await instance.out.write(JSON.stringify(message) + "\n")
  }

  /** Takes one raw NDJSON message as a stdio_bus client would write it; answers come out of messages(). */
  async send(line: string): Promise<void> {
    this.lifecycle.assertRunning("send()")
    await this.clients.ingest(this.router.embedded, line)
  }

  /** Messages workers send unasked (notifications, requests to the client) and answers to send(); ends when the bus stops. */
  messages(): AsyncIterableIterator<BusMessage> {
    const it: AsyncIterableIterator<BusMessage> = {
      next: () => this.router.nextMessage(),
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]: () => it,
    }
    return it
  }

  stats(): StdioBusStats {
    const now = performance.now()
    const pools: PoolStats[] = [...this.router.pools.values()].map((p) => {
      const sup = p.supervisor
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
    const routed = this.router.counters
    const read = this.workers.counters
    const books = this.books.counters
    return {
      state: this.state,
      messagesIn: read.messagesIn,
      bytesIn: read.bytesIn,
      messagesOut,
      bytesOut,
      restarts: this.workers.restarts,
      routingErrors: routed.routingErrors,
      oversizeKills: read.oversizeKills,
      backpressureRejects,
      lateResponses: read.lateResponses,
      stuckDropped: books.stuckDropped,
      cancelsSent: books.cancelsSent,
      droppedMessages: routed.droppedMessages,
      sessionsDropped: routed.sessionsDropped,
      workerCount: this.workerCount,
      clientCount: this.clientCount,
      pools,
    }
  }

  /** What GET /metrics (serveStatus) shows of this bus: slotbus_stdio_* (docs/api.md). */
  [METRICS](): MetricFamily[] {
    return [...stdioFamilies(this.stats()), ...mcpFamilies(this.mcpHandlers())]
  }

  /** The MCP HTTP handlers open now: each listener's, and those of mcpHandler(). */
  private mcpHandlers(): McpHttpHandler[] {
    return [...this.listenersOpen].flatMap((l) =>
      l instanceof McpHttpHandler ? [l] : l instanceof McpHttpListener ? [...l.handlers.values()] : [],
    )
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
    const mcp = this.mcpHandlers()
    if (mcp.length > 0) s.tables.push(mcpTable(mcp))
    for (const p of st.pools) if (p.failure) s.warnings.push(`pool "${p.id}" gave up: ${p.failure}`)
    return s
  }

  /** Resolves once every request `client` sent has been answered (or given up). */
  settled(client: BusClient): Promise<void> {
    return this.books.settled(client)
  }

  /**
   * Accepts NDJSON clients on "unix:/path" or "tcp:host:port" (tcp:0 picks a port), or MCP clients over Streamable
   * HTTP on "http:127.0.0.1:8080" (`/mcp`, and `/mcp/<pool id>` per pool), until the bus stops.
   */
  listen(address: `http:${string}`, options?: McpHttpListenOptions): Promise<McpHttpListener>
  listen(address: string, options?: ListenOptions): Promise<StdioListener>
  async listen(
    address: string,
    options?: ListenOptions | McpHttpListenOptions,
  ): Promise<StdioListener | McpHttpListener> {
    this.lifecycle.assertRunning("listen()")
    const l = address.startsWith("http:")
      ? await McpHttpListener.open(this, address, options as McpHttpListenOptions)
      : await StdioListener.open<BusClient & { close(): void }>(this, address, options as ListenOptions)
    this.listenersOpen.add(l)
    return l
  }

  /** The MCP Streamable HTTP transport for one pool, for a server of your own (Bun.serve, Hono, node:http); closed when the bus stops. */
  mcpHandler(options?: McpHttpOptions): McpHttpHandler {
    const h = new McpHttpHandler(this, options)
    this.listenersOpen.add(h)
    return h
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
    return this.clients.attach(deliver, options)
  }

  /**
   * One NDJSON message from `client`: a request (id rewritten, routed), a notification (routed), or an answer to
   * a request a worker sent earlier. Malformed or unroutable messages are counted and answered when possible.
   */
  ingest(client: BusClient, line: string): Promise<void> {
    return this.clients.ingest(client, line)
  }
}

/** An abort reason as text: an Error's message, else the value itself. */
function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason)
}

/** A delay option in ms: a number ≥ 0 (Infinity allowed), or `dflt` when undefined. */
function millis(v: number | undefined, dflt: number, what: string, where: string): number {
  return checkNumber(v, { what, where, max: Infinity, integer: false, dflt })
}
