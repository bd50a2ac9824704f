// The worker SDK: declare routes with Web-standard handlers, join a hub, serve its requests over slotbus.
import { SlotWorker, type IdleStrategy, type SlotReply, type SlotRequest } from "../core/index.ts"
import { HubAuthError, HubRequestError, RouteConflictError } from "./errors.ts"
import { parseRoute, RouteTable, type Params } from "./routes.ts"
import { readTokenFile, defaultTokenFile, TOKEN_ENV, TOKEN_FILE_ENV } from "./token.ts"
import {
  COOKIES_HEADER, INTERNAL_PREFIX, STREAM_HEADER,
  type ControlMessage, type DeliveryReply, type PingReply, type PushItem, type PushTarget, type RegisterReply,
  type RegisterRequest, type RouteDecl, type SseEvent,
} from "./wire.ts"

export type ReplyBody = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array> | null
/** What a route handler returns: a Response, or its parts. */
export type HeadersLike = Headers | Record<string, string> | [string, string][]
export type HubReply = Response | { status?: number; headers?: HeadersLike; body?: ReplyBody }
export type HubHandler = (req: HubRequest) => HubReply | Promise<HubReply>
/** Called when an SSE client connects; may return a function called when it disconnects. */
export type SseHandler = (conn: SseConnection) => void | (() => void) | Promise<void | (() => void)>
/** Where `push` sends an event: an exact path ("/sessions/42/events") or a pattern with some of its params. */
export type PushTo = string | { pattern: string; params?: Params } | { conn: string }

export interface HubWorkerOptions {
  /** The hub's token. Default: $SLOTBUS_HUB_TOKEN, else the token file. */
  token?: string
  /** Default: $SLOTBUS_HUB_TOKEN_FILE, else the hub's default file for its port. */
  tokenFile?: string
  /** Identity of this replica: a restarted replica with the same instance replaces its old entry. Default: the pid. */
  instance?: string
  /** Longest wait between attempts to reach the hub, in ms. Default 5000. */
  maxBackoffMs?: number
  /** How this worker waits for requests (see SlotWorker). Default "adaptive". */
  idle?: IdleStrategy
  /** Where the SDK reports a handler's error or a lost hub. Default: console.error. */
  log?: (message: string, error?: unknown) => void
}

export interface HubAppClosed {
  reason: "closed" | "replaced"
}

/**
 * The request a handler gets, shaped like the Web `Request` plus `params` and `query`.
 * The body is read from shared memory: read it (`bytes()`, `text()`, …) before the handler returns.
 */
export class HubRequest {
  readonly method: string
  /** Absolute URL as the client asked for it (host from the Host header). */
  readonly url: string
  /** The path without the query. */
  readonly path: string
  private _headers: Headers | null = null
  private _query: URLSearchParams | null = null
  private readonly raw: SlotRequest
  private readonly pathAndQuery: string
  private readonly rawHeaders: Record<string, string>

  constructor(raw: SlotRequest, readonly params: Params, headers: Record<string, string>) {
    this.raw = raw
    this.method = raw.method
    this.pathAndQuery = raw.path
    const q = raw.path.indexOf("?")
    this.path = q < 0 ? raw.path : raw.path.slice(0, q)
    this.url = `http://${headers.host ?? "hub"}${raw.path}`
    this.rawHeaders = headers
  }

  get headers(): Headers {
    return (this._headers ??= new Headers(this.rawHeaders))
  }
  get query(): URLSearchParams {
    const q = this.pathAndQuery.indexOf("?")
    return (this._query ??= new URLSearchParams(q < 0 ? "" : this.pathAndQuery.slice(q + 1)))
  }
  get body(): ReadableStream<Uint8Array> | null {
    if (this.raw.body.length === 0) return null
    const bytes = this.raw.body.slice()
    return new ReadableStream({ start: (c) => (c.enqueue(bytes), c.close()) })
  }
  async bytes(): Promise<Uint8Array> {
    return this.raw.body.slice()
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.raw.body.slice().buffer
  }
  async text(): Promise<string> {
    return this.raw.text()
  }
  async json<T = unknown>(): Promise<T> {
    return this.raw.json<T>()
  }
  async blob(): Promise<Blob> {
    return new Blob([this.raw.body.slice()], { type: this.rawHeaders["content-type"] ?? "" })
  }
  formData(): ReturnType<Request["formData"]> {
    return this.toRequest().formData()
  }
  /** A real `Request` with the same method, URL, headers and (copied) body. */
  toRequest(): Request {
    const hasBody = this.method !== "GET" && this.method !== "HEAD"
    return new Request(this.url, { method: this.method, headers: this.headers, body: hasBody ? this.raw.body.slice() : null })
  }
}

/** One SSE client connected to the hub on one of this worker's `sse` routes. */
export class SseConnection {
  private readonly abort = new AbortController()
  private cleanups: (() => void)[] = []

  constructor(
    private readonly app: HubApp,
    /** The hub's id for this connection; `push({ conn: id }, …)` reaches it alone. */
    readonly id: string,
    readonly path: string,
    readonly params: Params,
    readonly query: URLSearchParams,
    readonly headers: Headers,
  ) {}

  /** Aborted when the client goes away; `signal.reason` says why ("client", "slow", "hub-gone", …). */
  get signal(): AbortSignal {
    return this.abort.signal
  }

  /** Sends one event to this client; resolves with 1 if the hub still had it, 0 if not. */
  send(data: unknown, opts: { event?: string; id?: string } = {}): Promise<number> {
    return this.app.push({ conn: this.id }, data, opts)
  }

  /** Ends the client's stream (an EventSource will reconnect). */
  async close(): Promise<void> {
    await this.app.send("push", { target: { conn: this.id }, close: true } satisfies PushItem)
  }

  /** @internal */
  onClose(f: () => void) {
    if (this.abort.signal.aborted) f()
    else this.cleanups.push(f)
  }

  /** @internal */
  closed(reason: string) {
    if (this.abort.signal.aborted) return
    this.abort.abort(reason)
    for (const f of this.cleanups.splice(0)) {
      try {
        f()
      } catch (e) {
        console.error(`slotbus: SSE close handler for ${this.path} threw`, e)
      }
    }
  }
}

interface BodyStream {
  reader: { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(): Promise<unknown> } | null
  rest: Uint8Array | null
  touched: number
}

const EMPTY = new Uint8Array(0)
const MIN_BACKOFF_MS = 100
const STREAM_IDLE_MS = 5 * 60_000
const encoder = new TextEncoder()
const ERROR_REPLY = { status: 500, headers: { "content-type": "application/json" }, body: '{"error":"worker-error","message":"the handler failed"}' }

/** A worker for the hub at `hubUrl`, serving under `name`. Add routes, then `await app.run()`. */
export function hubWorker(hubUrl: string, name: string, opts: HubWorkerOptions = {}): HubApp {
  return new HubApp(hubUrl, name, opts)
}

export class HubApp {
  private readonly http = new RouteTable<HubHandler>()
  private readonly sseRoutes = new RouteTable<SseHandler>()
  private readonly decls: RouteDecl[] = []
  private readonly streams = new Map<number, BodyStream>()
  private readonly conns = new Map<string, SseConnection>()
  private readonly outbox: { path: "emit" | "push"; item: unknown; done: PromiseWithResolvers<number> }[] = []
  private readonly hub: URL
  private readonly instance: string
  private readonly log: (message: string, error?: unknown) => void
  private worker: SlotWorker | null = null
  private token = ""
  private bus: string | undefined
  private chunkBytes = 1024 * 1024
  private nextStream = 1
  private served = 0
  private flushing = false
  private running: Promise<void> | null = null
  private stopping: Promise<void> | null = null
  private wake: (() => void) | null = null
  private sweeper: ReturnType<typeof setInterval> | null = null
  private readonly done = Promise.withResolvers<HubAppClosed>()
  /** Settles when the app stops: `close()`, or a newer registration of the same instance replaced it. */
  readonly closed: Promise<HubAppClosed> = this.done.promise

  constructor(hubUrl: string, readonly name: string, private readonly opts: HubWorkerOptions = {}) {
    this.hub = new URL(hubUrl)
    if (this.hub.protocol !== "http:") throw new TypeError(`hub URL must be http://host:port, got ${hubUrl}`)
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) throw new TypeError(`worker name must match [A-Za-z0-9_-]{1,40}, got ${JSON.stringify(name)}`)
    this.instance = opts.instance ?? String(process.pid)
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(this.instance)) throw new TypeError(`instance must match [A-Za-z0-9._-]{1,64}, got ${JSON.stringify(this.instance)}`)
    this.log = opts.log ?? ((m, e) => (e === undefined ? console.error(`slotbus: ${m}`) : console.error(`slotbus: ${m}`, e)))
  }

  get(pattern: string, handler: HubHandler): this {
    return this.route("GET", pattern, handler)
  }
  post(pattern: string, handler: HubHandler): this {
    return this.route("POST", pattern, handler)
  }
  put(pattern: string, handler: HubHandler): this {
    return this.route("PUT", pattern, handler)
  }
  patch(pattern: string, handler: HubHandler): this {
    return this.route("PATCH", pattern, handler)
  }
  delete(pattern: string, handler: HubHandler): this {
    return this.route("DELETE", pattern, handler)
  }
  options(pattern: string, handler: HubHandler): this {
    return this.route("OPTIONS", pattern, handler)
  }
  /** Every method on `pattern` (routes with an exact method win). */
  all(pattern: string, handler: HubHandler): this {
    return this.route("*", pattern, handler)
  }

  route(method: string, pattern: string, handler: HubHandler): this {
    if (typeof handler !== "function") throw new TypeError("handler must be a function (req) => Response")
    this.declare(method, pattern, false)
    this.http.add(parseRoute(method, pattern), handler)
    return this
  }

  /** An SSE endpoint: the hub holds each client; `handler` hears of its arrival, `push` reaches it. */
  sse(pattern: string, handler: SseHandler): this {
    if (typeof handler !== "function") throw new TypeError("handler must be a function (conn) => cleanup?")
    this.declare("GET", pattern, true)
    this.sseRoutes.add(parseRoute("GET", pattern), handler)
    return this
  }

  private declare(method: string, pattern: string, sse: boolean) {
    if (this.running) throw new TypeError("add routes before run()")
    const route = parseRoute(method, pattern)
    const dup = this.decls.find((d) => { const r = parseRoute(d.method, d.pattern); return r.method === route.method && r.shape === route.shape })
    if (dup) throw new TypeError(`route ${route.method} ${pattern} is declared twice (as ${dup.pattern})`)
    this.decls.push({ method: route.method, pattern, sse })
  }

  /** Whether the app is registered and connected to the hub right now. */
  get connected(): boolean {
    return this.worker?.connected ?? false
  }

  stats() {
    return { served: this.served, streams: this.streams.size, sseConnections: this.conns.size, connected: this.connected }
  }

  /**
   * Registers with the hub and starts serving. Resolves once connected; if the hub is not up yet it keeps
   * trying (capped exponential backoff). Rejects on what retrying cannot fix: a route conflict or a bad token.
   * Later, whenever the hub goes away, the app rejoins the next one on its own.
   */
  run(): Promise<void> {
    this.running ??= new Promise<void>((resolve, reject) => void this.loop(resolve, reject))
    return this.running
  }

  private async loop(joined: () => void, failed: (e: Error) => void) {
    let backoff = MIN_BACKOFF_MS
    let everJoined = false
    let lastProblem = ""
    this.sweeper = setInterval(() => this.sweepStreams(), 30_000)
    while (!this.stopping) {
      let problem: Error
      try {
        const reg = await this.register()
        const worker = await SlotWorker.connect(reg.bus, this.serve, { idle: this.opts.idle, waitForHubMs: 5000 })
        this.bus = reg.bus
        this.chunkBytes = reg.chunkBytes
        this.worker = worker
        if (this.stopping) await worker.close()
        if (!everJoined) joined()
        else this.log(`rejoined the hub at ${this.hub.origin} as "${this.name}"`)
        everJoined = true
        backoff = MIN_BACKOFF_MS
        lastProblem = ""
        const closed = await worker.closed
        this.worker = null
        this.dropAll("hub-gone")
        if (this.stopping) break
        this.log(`lost the hub at ${this.hub.origin} (${closed.reason}); rejoining`)
        continue
      } catch (e) {
        problem = e as Error
      }
      if (problem instanceof HubRequestError && problem.status === 409) {
        this.log(problem.message)
        return this.finish({ reason: "replaced" }) // another replica took this instance's place
      }
      // Before the first join, fail fast on what waiting cannot fix; afterwards keep trying (and say so once).
      const permanent = problem instanceof RouteConflictError || problem instanceof HubAuthError || (problem instanceof HubRequestError && problem.status < 500)
      if (permanent && !everJoined) {
        clearInterval(this.sweeper)
        this.running = null
        return failed(problem)
      }
      if (problem.message !== lastProblem) this.log(`cannot join the hub at ${this.hub.origin}: ${problem.message}; retrying`)
      lastProblem = problem.message
      await this.sleep(backoff * (0.5 + Math.random() / 2))
      backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 5000)
    }
    this.finish({ reason: "closed" })
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => ((this.wake = null), resolve()), ms)
      this.wake = () => (clearTimeout(t), (this.wake = null), resolve())
    })
  }

  private finish(c: HubAppClosed) {
    if (this.sweeper) clearInterval(this.sweeper)
    this.done.resolve(c)
  }

  private readToken(): string {
    const t = this.opts.token ?? process.env[TOKEN_ENV]
    if (t) return t
    return readTokenFile(this.opts.tokenFile ?? process.env[TOKEN_FILE_ENV] ?? defaultTokenFile(Number(this.hub.port || 80)))
  }

  private async register(): Promise<RegisterReply> {
    this.token = this.readToken()
    const body: RegisterRequest = { name: this.name, instance: this.instance, pid: process.pid, routes: this.decls, previousBus: this.bus }
    const res = await this.call("register", body)
    return (await res.json()) as RegisterReply
  }

  private async call(op: string, body: unknown): Promise<Response> {
    const res = await fetch(new URL(INTERNAL_PREFIX + op, this.hub), {
      method: "POST",
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
    if (res.ok) return res
    const detail = (await res.json().catch(() => ({}))) as { message?: string; conflicts?: { route: string; owner: string }[] }
    const message = detail.message ?? `hub answered ${res.status}`
    if (res.status === 401 || res.status === 403) throw new HubAuthError(`hub refused ${op} (${res.status}): ${message}`)
    if (res.status === 409 && detail.conflicts) throw new RouteConflictError(message, detail.conflicts)
    throw new HubRequestError(`hub refused ${op} (${res.status}): ${message}`, res.status)
  }

  // --- serving --------------------------------------------------------------------------------------

  private serve = (req: SlotRequest): SlotReply | Promise<SlotReply> => {
    if (req.kind === "raw") return this.control(req.json<ControlMessage>())
    return this.serveHttp(req)
  }

  // Stays synchronous as long as the handler and its reply are: a promise per request is measurable here.
  private serveHttp(raw: SlotRequest): SlotReply | Promise<SlotReply> {
    const path = raw.path
    const q = path.indexOf("?")
    const m = this.http.match(raw.method, q < 0 ? path : path.slice(0, q))
    if (!m || "allow" in m) return { status: 404, headers: { "content-type": "application/json" }, body: `{"error":"not-found","message":"worker ${this.name} has no such route"}` }
    this.served++
    const failed = (e: unknown) => {
      this.log(`handler for ${raw.method} ${m.route.pattern} failed`, e)
      return ERROR_REPLY
    }
    try {
      const out = m.value(new HubRequest(raw, m.params, raw.headers))
      const reply = out instanceof Promise ? out.then((o) => this.toReply(o)) : this.toReply(out)
      return reply instanceof Promise ? reply.catch(failed) : reply
    } catch (e) {
      return failed(e)
    }
  }

  private toReply(out: HubReply): SlotReply | Promise<SlotReply> {
    if (out instanceof Response) return this.withBody(out.status, headerPairs(out.headers), out.body)
    if (out === null || typeof out !== "object") throw new TypeError(`a handler must return a Response or { status, headers, body }, got ${out === null ? "null" : typeof out}`)
    const h = out.headers
    const headers = !h ? [] : h.constructor === Object ? Object.entries(h as Record<string, string>) : headerPairs(new Headers(h))
    return this.withBody(out.status ?? 200, headers, out.body ?? null)
  }

  private withBody(status: number, headers: [string, string][], body: ReplyBody): SlotReply | Promise<SlotReply> {
    if (body === null) return { status, headers }
    if (typeof body === "string") body = encoder.encode(body)
    else if (body instanceof ArrayBuffer) body = new Uint8Array(body)
    else if (body instanceof Blob) body = body.stream()
    if (body instanceof Uint8Array) {
      if (body.length <= this.chunkBytes) return { status, headers, body }
      return this.startStream(status, headers, { reader: null, rest: body, touched: Date.now() })
    }
    return this.readStream(status, headers, body.getReader())
  }

  /** A stream body: inlined if it ends within one chunk, otherwise the hub pulls the rest. */
  private async readStream(status: number, headers: [string, string][], reader: NonNullable<BodyStream["reader"]>): Promise<SlotReply> {
    const parts: Uint8Array[] = []
    let size = 0
    for (;;) {
      const r = await reader.read()
      if (r.done || !r.value) return { status, headers, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) }
      parts.push(r.value)
      size += r.value.length
      if (size > this.chunkBytes) break
    }
    return this.startStream(status, headers, { reader, rest: Buffer.concat(parts, size), touched: Date.now() })
  }

  private startStream(status: number, headers: [string, string][], s: BodyStream): SlotReply {
    const id = this.nextStream++
    const first = this.take(s)
    this.streams.set(id, s)
    headers.push([STREAM_HEADER, String(id)])
    return { status, headers, body: first }
  }

  /** Up to chunkBytes from what is already buffered. */
  private take(s: BodyStream): Uint8Array {
    const rest = s.rest!
    if (rest.length <= this.chunkBytes) {
      s.rest = null
      return rest
    }
    s.rest = rest.subarray(this.chunkBytes)
    return rest.subarray(0, this.chunkBytes)
  }

  private async pull(id: number): Promise<Uint8Array> {
    const s = this.streams.get(id)
    if (!s) throw new Error(`response stream ${id} is unknown: it finished, was cancelled or expired`)
    s.touched = Date.now()
    if (s.rest) return this.take(s)
    for (;;) {
      const r = s.reader ? await s.reader.read() : { done: true }
      if (r.done || !r.value) {
        this.streams.delete(id)
        return EMPTY
      }
      if (r.value.length === 0) continue
      s.rest = r.value
      return this.take(s)
    }
  }

  private control(msg: ControlMessage): SlotReply | Promise<SlotReply> {
    switch (msg.op) {
      case "ping":
        return JSON.stringify({ pid: process.pid, instance: this.instance, served: this.served, active: this.streams.size } satisfies PingReply)
      case "pull":
        return this.pull(msg.stream)
      case "cancel": {
        const s = this.streams.get(msg.stream)
        this.streams.delete(msg.stream)
        s?.reader?.cancel().catch(() => {})
        return EMPTY
      }
      case "sse-open":
        return this.openSse(msg.conn, msg.path, msg.headers)
      case "sse-close":
        this.conns.get(msg.conn)?.closed(msg.reason)
        this.conns.delete(msg.conn)
        return EMPTY
    }
  }

  private openSse(id: string, pathAndQuery: string, headers: [string, string][]): string {
    const q = pathAndQuery.indexOf("?")
    const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q)
    const m = this.sseRoutes.match("GET", path)
    if (!m || "allow" in m) throw new Error(`worker ${this.name} has no SSE route for ${path}`)
    const conn = new SseConnection(this, id, path, m.params, new URLSearchParams(q < 0 ? "" : pathAndQuery.slice(q + 1)), new Headers(headers))
    this.conns.set(id, conn)
    conn.onClose(() => this.conns.delete(id))
    const out = m.value(conn) // sync throw: the hub answers the client 500
    const keep = (cleanup: void | (() => void)) => typeof cleanup === "function" && conn.onClose(cleanup)
    if (out instanceof Promise) {
      out.then(keep, (e) => {
        this.log(`SSE handler for ${m.route.pattern} failed`, e)
        void conn.close().catch(() => {})
      })
    } else keep(out)
    return JSON.stringify({ params: m.params })
  }

  private dropAll(reason: string) {
    for (const s of this.streams.values()) s.reader?.cancel().catch(() => {})
    this.streams.clear()
    for (const c of [...this.conns.values()]) c.closed(reason)
    this.conns.clear()
  }

  private sweepStreams() {
    const old = Date.now() - STREAM_IDLE_MS
    for (const [id, s] of this.streams) if (s.touched < old) {
      this.streams.delete(id)
      s.reader?.cancel().catch(() => {})
    }
  }

  // --- worker → hub ---------------------------------------------------------------------------------

  /** Sends an event to every `GET /events` client of the hub; resolves with how many got it. */
  emit(type: string, data: unknown): Promise<number> {
    if (typeof type !== "string" || type.length === 0 || /[\r\n]/.test(type)) return Promise.reject(new TypeError("event type must be a non-empty single-line string"))
    return this.send("emit", { type, data: serialize(data) })
  }

  /** Sends an SSE event to the connections at a path, on a pattern (filtered by params), or to one connection. */
  push(to: PushTo, data: unknown, opts: { event?: string; id?: string } = {}): Promise<number> {
    const target: PushTarget = typeof to === "string" ? { path: to } : to
    const event: SseEvent = { data: serialize(data), ...(opts.event !== undefined && { event: opts.event }), ...(opts.id !== undefined && { id: opts.id }) }
    return this.send("push", { target, event } satisfies PushItem)
  }

  /** @internal Queues one item for the hub; items go out in order, batched while a request is in flight. */
  send(path: "emit" | "push", item: unknown): Promise<number> {
    const done = Promise.withResolvers<number>()
    this.outbox.push({ path, item, done })
    if (!this.flushing) void this.flush()
    return done.promise
  }

  private async flush() {
    this.flushing = true
    while (this.outbox.length > 0) {
      const path = this.outbox[0]!.path
      let n = 0
      while (n < this.outbox.length && n < 256 && this.outbox[n]!.path === path) n++
      const batch = this.outbox.splice(0, n)
      try {
        if (!this.token) this.token = this.readToken()
        const items = batch.map((b) => b.item)
        const res = await this.call(path, items).catch((e) => {
          if (!(e instanceof HubAuthError)) throw e
          this.token = this.readToken() // a restarted hub has a new token
          return this.call(path, items)
        })
        const reply = (await res.json()) as DeliveryReply
        batch.forEach((b, i) => b.done.resolve(reply.delivered[i] ?? 0))
      } catch (e) {
        for (const b of batch) b.done.reject(e)
      }
    }
    this.flushing = false
  }

  /** Leaves the hub: deregisters (so no new requests come), lets running handlers finish, disconnects. */
  close(): Promise<void> {
    this.stopping ??= (async () => {
      this.wake?.()
      if (this.worker?.connected) await this.call("deregister", { name: this.name, instance: this.instance }).catch(() => {})
      await this.worker?.close()
      this.dropAll("closed")
      if (!this.running) this.finish({ reason: "closed" })
      await this.closed
    })()
    return this.stopping
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}

/** Response headers for a slot: one value per name, so several Set-Cookie travel as one JSON list. */
function headerPairs(h: Headers): [string, string][] {
  const out: [string, string][] = []
  for (const [k, v] of h) if (k !== "content-length" && k !== "set-cookie" && k !== "transfer-encoding") out.push([k, v])
  const cookies = h.getSetCookie()
  if (cookies.length === 1) out.push(["set-cookie", cookies[0]!])
  else if (cookies.length > 1) out.push([COOKIES_HEADER, JSON.stringify(cookies)])
  return out
}

function serialize(data: unknown): string {
  return typeof data === "string" ? data : JSON.stringify(data) ?? "null"
}
