// The MCP Streamable HTTP transport (spec revision 2025-11-25) in front of one pool of the stdio bus: each HTTP
// session is one client of the bus (clients.ts), so its ids are rewritten, it is pinned to one instance (router.ts)
// and its handshake is replayed after a crash restart or a reload (handshakes.ts) exactly as for an NDJSON client.
// POST carries one JSON-RPC message (its answer as JSON or as an SSE stream, with the progress of that request);
// GET opens the session's stream for what the server sends unasked; DELETE ends the session.
import { randomBytes } from "node:crypto"
import { longTimeout, type LongTimer } from "../kit/index.ts"
import { requestListener } from "../runtime/index.ts"
import {
  accepts,
  corsHeaders,
  MEMBERS,
  notJsonRpc,
  preflight,
  readBody,
  refusal,
  refuseSource,
  refuseToken,
  refuseVersion,
} from "./mcp-http-checks.ts"
import { mcpHttpSettings, type McpHttpHost, type McpHttpOptions, type McpHttpSettings } from "./mcp-http-options.ts"
import { idKey, idOf, parseMessage } from "./jsonrpc.ts"
import { McpHttpCounts } from "./mcp-http-metrics.ts"
import { mcpSpan } from "./mcp-http-span.ts"
import { SessionEvents, SseSink, type EventStream } from "./mcp-http-sse.ts"
import type { BusClient, JsonRpcMessage } from "./types.ts"

interface Waiter {
  answered: (message: JsonRpcMessage) => void
  /** The SSE stream its answer (and its progress) goes to; null for a JSON answer. */
  stream: EventStream | null
  initialize: boolean
  /** Set while its connection is broken: when it fires unresumed, the request is given up. */
  resume?: ReturnType<typeof setTimeout>
  /** The progressToken the client gave, and the one the worker was given in its place (unique over the bus). */
  progressToken?: unknown
  busToken?: string
}

interface Session {
  readonly id: string
  readonly client: BusClient & { close(): void }
  /** The requests waiting for their answer, by idKey of the id the client wrote. */
  readonly waiting: Map<string | number, Waiter>
  /** Its SSE streams and their newest events, for a resumption. */
  readonly events: SessionEvents
  /** The GET stream, if the client opened one (kept while its connection is broken, for a resumption). */
  stream: EventStream | null
  /** The instance index the session's last answer came from (-1: none yet). */
  instance: number
  idle: LongTimer | null
}

const SESSION_HEADER = "mcp-session-id"

/** The transport for one pool: `fetch` answers a Request (Bun.serve, Hono, any fetch-style server). */
export class McpHttpHandler {
  private readonly sessions = new Map<string, Session>()
  private readonly settings: McpHttpSettings
  private readonly host: McpHttpHost
  private closed = false

  /** Where a client finds the token, for the 401's message. */
  private readonly tokenFrom: string

  constructor(host: McpHttpHost, options: McpHttpOptions = {}, tokenFrom = "the server was given (bearerToken)") {
    this.host = host
    this.settings = mcpHttpSettings(host, options)
    this.tokenFrom = tokenFrom
  }

  /** Sessions open now. */
  get sessionCount(): number {
    return this.sessions.size
  }

  /** What it counted (GET /metrics: slotbus_mcp_*). */
  readonly counts = new McpHttpCounts()

  /** The pool served. */
  get pool(): string {
    return this.settings.poolId
  }

  /** Where a session is: its pool and the instance its last answer came from (-1 before any), or null if unknown. */
  sessionInfo(sessionId: string): { pool: string; instance: number } | null {
    const s = this.sessions.get(sessionId)
    return s ? { pool: this.settings.poolId, instance: s.instance } : null
  }

  /**
   * The transport: POST, GET and DELETE on the MCP endpoint. Given the server (Bun.serve's, or serveHttp's), a request
   * whose body is in and an SSE stream are exempt from its idleTimeout (10 s by default), which cuts a stream however
   * often it is written to; a body that stalls is cut by it.
   */
  readonly fetch = async (
    request: Request,
    server?: { timeout(request: Request, seconds: number): void },
  ): Promise<Response> => {
    const response = await this.serve(request, server)
    if (response.status >= 400) this.counts.refused(response.status)
    const cors = corsHeaders(request, this.settings.guards)
    if (cors) for (const [name, value] of Object.entries(cors)) response.headers.set(name, value)
    return response
  }

  private async serve(
    request: Request,
    server?: { timeout(request: Request, seconds: number): void },
  ): Promise<Response> {
    const source = refuseSource(request, this.settings.guards)
    if (source) return source
    // a browser's preflight carries no Authorization: it is answered before the token is asked for
    if (request.method === "OPTIONS") return preflight(request, this.settings.guards)
    const refused = refuseToken(request, this.settings.token, this.tokenFrom)
    if (refused) return refused
    if (this.closed || this.host.state !== "running")
      return refusal(503, -32005, `Service Unavailable: the stdio bus is ${this.closed ? "closed" : this.host.state}`)
    switch (request.method) {
      case "POST":
        return this.post(request, server)
      case "GET":
        return this.get(request, server)
      case "DELETE":
        return this.delete(request)
      default:
        return refusal(405, -32000, "Method Not Allowed: use POST, GET or DELETE", {
          allow: "GET, POST, DELETE, OPTIONS",
        })
    }
  }

  /** The same transport as a node:http request listener (`http.createServer(handler.nodeListener())`). */
  nodeListener(): ReturnType<typeof requestListener> {
    return requestListener((request) => this.fetch(request))
  }

  /** New requests get a 503 from now on (the bus is stopping); the sessions stay until close(). */
  stopAccepting(): void {
    this.closed = true
  }

  /** Ends every session (their requests are given up, their streams closed); later requests get a 503. */
  close(): void {
    this.closed = true
    for (const s of [...this.sessions.values()]) this.end(s, "the server is closing")
  }

  /** The session the request names, or the 400 / 404 refusal. */
  private sessionOf(request: Request): Session | Response {
    const id = request.headers.get(SESSION_HEADER)
    if (id === null)
      return refusal(400, -32000, "Bad Request: Mcp-Session-Id header is required; send initialize first to get one")
    const s = this.sessions.get(id)
    if (!s) return refusal(404, -32001, "Session not found: it ended or never existed; send initialize again")
    // the map's order is the order of last use, so endIdlest() finds the session unused longest first
    this.sessions.delete(id)
    this.sessions.set(id, s)
    return s
  }

  /**
   * At the session cap, ends the session unused longest of those with nothing in flight and no GET stream open (a
   * client that left without DELETE, as the SDK client's close() does); false when every session is busy.
   */
  private endIdlest(): boolean {
    for (const s of this.sessions.values())
      if (s.waiting.size === 0 && !s.stream?.sink) {
        this.end(s, `the session cap (${this.settings.maxSessions}) was reached and it was the one idle longest`)
        return true
      }
    return false
  }

  private async post(
    request: Request,
    server?: { timeout(request: Request, seconds: number): void },
  ): Promise<Response> {
    const sse = !this.settings.jsonOnly && accepts(request, "text/event-stream")
    if (!sse && !accepts(request, "application/json"))
      return refusal(406, -32000, "Not Acceptable: Accept must include application/json and text/event-stream")
    const type = request.headers.get("content-type") ?? ""
    if (!/^application\/json\s*(;|$)/i.test(type))
      return refusal(415, -32000, "Unsupported Media Type: Content-Type must be application/json")
    const body = await readBody(request, this.settings.maxBody)
    if (body instanceof Response) return body
    server?.timeout(request, 0) // the body is in: the answer may take as long as its tool does
    let msg: JsonRpcMessage
    try {
      const parsed = parseMessage(body)
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return refusal(400, -32600, BATCHES)
      msg = parsed as JsonRpcMessage
    } catch {
      return refusal(400, -32700, "Parse error: the body is not valid JSON")
    }
    const isRequest = typeof msg.method === "string" && "id" in msg
    const invalid = notJsonRpc(msg)
    if (invalid !== null) return refusal(400, -32600, `Invalid Request: ${invalid}`)
    const key = isRequest ? idKey(msg.id) : undefined
    // before a session is opened for it: a refused initialize must not hold a place under the session cap
    if (isRequest && key === undefined)
      return refusal(400, -32600, "Invalid Request: a request's id must be a string or a number")
    let session: Session
    if (isRequest && msg.method === "initialize") {
      if (this.sessions.size >= this.settings.maxSessions && !this.endIdlest())
        return refusal(
          503,
          -32000,
          `Service Unavailable: pool "${this.settings.poolId}" has ${this.settings.maxSessions} sessions already (maxSessionsPerInstance × instances), each with a request in flight or its GET stream open; try again later`,
          { "retry-after": "1" },
        )
      session = this.open()
    } else {
      const refused = refuseVersion(request)
      if (refused) return refused
      const s = this.sessionOf(request)
      if (s instanceof Response) return s
      session = s
    }
    this.arm(session)
    this.counts.message(msg.method)
    // the session is the connection's own: a member naming another would join it to a session it does not own; any
    // other member JSON-RPC has not would make a strict server drop the message unanswered
    for (const member of Object.keys(msg)) if (!MEMBERS.has(member)) delete msg[member as keyof JsonRpcMessage]
    if (this.settings.pool !== undefined) msg.pool = this.settings.pool
    if (key === undefined) {
      if (msg.method === "notifications/cancelled") this.cancelled(session, msg)
      await this.host.ingest(session.client, JSON.stringify(msg))
      return new Response(null, { status: 202 })
    }
    if (session.waiting.has(key))
      return refusal(400, -32600, `Invalid Request: a request with id ${JSON.stringify(msg.id)} is in flight already`)
    const headers: Record<string, string> = { [SESSION_HEADER]: session.id }
    const answered = Promise.withResolvers<JsonRpcMessage>()
    const initialize = msg.method === "initialize"
    const span = mcpSpan(request, msg, session.id, this.settings.poolId)
    const waiter: Waiter = {
      answered: (m) => {
        if (m.error) this.counts.error(msg.method)
        span?.end(m, session.instance)
        answered.resolve(m)
      },
      stream: null,
      initialize,
    }
    // Sessions pinned to one worker share its progress (the bus sends a worker's unasked messages to every client
    // pinned to it), and two clients may both use token 1: each request's token is made one no other request of the
    // bus has, nor any client can guess; the client's comes back as written (1.50 and 12345678901234567890 too).
    const meta = (msg.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta
    if (meta && typeof meta === "object" && meta.progressToken !== undefined) {
      waiter.progressToken = meta.progressToken
      meta.progressToken = waiter.busToken = `slotbus-progress-${crypto.randomUUID()}`
    }
    session.waiting.set(key, waiter)
    // a JSON answer's client that hangs up is gone; an SSE one may come back with Last-Event-ID (dropped()). An
    // initialize is answered whole once its answer is in: a failed one ended its session, and its id is not sent.
    const sink = sse && !initialize ? this.sinkFor(session) : null
    const gone = sink ? () => this.dropped(session, sink) : () => this.gone(session, key, waiter)
    request.signal.addEventListener("abort", gone, { once: true })
    if (initialize)
      void answered.promise.then((m) => (m.error ? this.end(session, "its initialize failed") : this.counts.opened++))
    void this.host.ingest(session.client, JSON.stringify(msg))
    if (!sink) {
      const answer = await answered.promise
      request.signal.removeEventListener("abort", gone)
      const own = initialize && answer.error ? {} : headers
      if (!sse) return Response.json(answer, { headers: own })
      const whole = this.sinkFor(session)
      session.events.whole(whole, answer)
      return new Response(whole.body, { headers: { ...own, ...SSE_HEADERS } })
    }
    const stream = session.events.open(sink)
    waiter.stream = stream
    void answered.promise.then((m) => {
      request.signal.removeEventListener("abort", gone)
      session.events.send(stream, m)
      session.events.finish(stream)
    })
    return new Response(sink.body, { headers: { ...headers, ...SSE_HEADERS } })
  }

  /** The session's stream of what the server sends unasked (one per session; a second one gets a 409). */
  private get(request: Request, server?: { timeout(request: Request, seconds: number): void }): Response {
    if (!accepts(request, "text/event-stream"))
      return refusal(406, -32000, "Not Acceptable: a GET must accept text/event-stream")
    const refused = refuseVersion(request)
    if (refused) return refused
    const s = this.sessionOf(request)
    if (s instanceof Response) return s
    const headers = { [SESSION_HEADER]: s.id, ...SSE_HEADERS }
    const last = request.headers.get("last-event-id")
    if (last !== null) {
      const resumed = s.events.resume(last, () => this.sinkFor(s))
      if (resumed instanceof Response) return resumed
      this.counts.resumed++
      server?.timeout(request, 0)
      for (const w of s.waiting.values()) if (w.stream === resumed.stream) clearTimeout(w.resume)
      return new Response(resumed.sink.body, { headers })
    }
    if (s.stream?.sink) return refusal(409, -32000, "Conflict: this session has its GET stream open already")
    this.closeStream(s)
    const sink = this.sinkFor(s)
    s.stream = s.events.open(sink)
    server?.timeout(request, 0)
    return new Response(sink.body, { headers })
  }

  private delete(request: Request): Response {
    const refused = refuseVersion(request)
    if (refused) return refused
    const s = this.sessionOf(request)
    if (s instanceof Response) return s
    this.end(s, "the client ended it (DELETE)")
    return new Response(null, { status: 200 })
  }

  private open(): Session {
    const id = randomBytes(24).toString("base64url")
    const session: Session = {
      id,
      client: this.host.attachClient((message, _pool, instance) => this.deliver(session, message, instance)),
      waiting: new Map(),
      events: new SessionEvents(this.settings.replayBytes),
      stream: null,
      instance: -1,
      idle: null,
    }
    this.sessions.set(id, session)
    return session
  }

  /** What the bus hands this session: an answer to its waiter, else on a stream; why not when it has none open. */
  private deliver(s: Session, message: JsonRpcMessage, instance: number): string | void {
    if (instance >= 0) s.instance = instance
    if (message.method === undefined) {
      const key = idKey(message.id)
      const w = key === undefined ? undefined : s.waiting.get(key)
      if (!w) return
      s.waiting.delete(key!)
      clearTimeout(w.resume)
      this.arm(s)
      return w.answered(message)
    }
    if (message.method === "notifications/progress") {
      // only to the request it is about, under the client's own token; another session's (or a late one) is dropped
      const params = message.params as { progressToken?: unknown } | undefined
      for (const w of s.waiting.values())
        if (w.busToken !== undefined && w.busToken === params?.progressToken && w.stream)
          return s.events.send(w.stream, { ...message, params: { ...params, progressToken: w.progressToken } })
      return
    }
    if (s.stream) return s.events.send(s.stream, message)
    let latest: Waiter | undefined
    for (const w of s.waiting.values()) if (w.stream && !w.stream.finished) latest = w
    // no GET stream: on the stream of a request in flight, the one it most likely comes of (a log line, sampling)
    if (latest) return s.events.send(latest.stream!, message)
    return "the client has no SSE stream open to receive server requests (no GET stream, no request of its answered as SSE in flight)"
  }

  /** A new SSE connection of session `s`. */
  private sinkFor(s: Session): SseSink {
    const sink: SseSink = new SseSink(this.settings.keepAliveMs, this.settings.maxQueued, () => this.dropped(s, sink))
    return sink
  }

  /**
   * An SSE connection broke. The spec's client resumes it with Last-Event-ID rather than cancel: a request whose
   * stream it was is given up only if no resumption comes within resumeWindowMs; the GET stream is kept meanwhile.
   */
  private dropped(s: Session, sink: SseSink): void {
    for (const [key, w] of s.waiting)
      if (w.stream?.sink === sink) {
        s.events.detach(w.stream, sink)
        clearTimeout(w.resume)
        w.resume = setTimeout(() => w.stream!.sink || this.gone(s, key, w), this.settings.resumeMs)
        w.resume.unref?.()
        return
      }
    if (s.stream) s.events.detach(s.stream, sink)
  }

  /** The client went away before its answer: the worker is told to cancel it (never an initialize). */
  private gone(s: Session, key: string | number, w: Waiter): void {
    if (s.waiting.get(key) !== w) return
    s.waiting.delete(key)
    w.answered({ jsonrpc: "2.0", id: idOf(key), error: { code: -32800, message: "the HTTP client disconnected" } })
    if (w.initialize || !this.sessions.has(s.id)) return
    const cancel = {
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: idOf(key), reason: "the HTTP client disconnected" },
      ...(this.settings.pool !== undefined ? { pool: this.settings.pool } : {}),
    }
    void this.host.ingest(s.client, JSON.stringify(cancel))
  }

  /**
   * The client gave up one of its requests (`notifications/cancelled`): it ignores any answer from now on (the MCP
   * spec), so the HTTP request or SSE stream waiting for one ends here, with a -32800 error, and the session may go
   * idle. The cancel goes on to the bus naming the id as written (it tells the worker; 1.50 read as 1.5 named 1.5).
   * (A session's own initialize is never named: the client learns the session's id from its answer.)
   */
  private cancelled(s: Session, msg: JsonRpcMessage): void {
    const params = msg.params as Record<string, unknown> | undefined
    if (typeof params !== "object" || params === null || Array.isArray(params)) return
    const key = idKey(params.requestId) // as the client wrote it (parseMessage), as its request's id was
    const w = key === undefined ? undefined : s.waiting.get(key)
    if (!w) return
    s.waiting.delete(key!)
    clearTimeout(w.resume)
    this.arm(s)
    const reason = typeof params.reason === "string" ? `: ${params.reason}` : ""
    w.answered({ jsonrpc: "2.0", id: idOf(key!), error: { code: -32800, message: `cancelled by the client${reason}` } })
  }

  /** (Re)starts the idle timer: a session with nothing in flight and no GET stream that long is ended. */
  private arm(s: Session): void {
    s.idle?.clear()
    s.idle = longTimeout(() => {
      if (!this.sessions.has(s.id)) return
      if (s.waiting.size > 0 || s.stream?.sink) return this.arm(s)
      this.end(s, `it was idle for ${this.settings.idleMs} ms (idleTimeoutMs)`)
    }, this.settings.idleMs).unref()
  }

  private closeStream(s: Session): void {
    if (s.stream) s.events.finish(s.stream)
    s.stream = null
  }

  /** Ends a session: its requests get an error answer, its streams close, the bus forgets its client (and pin). */
  private end(s: Session, why: string): void {
    if (!this.sessions.delete(s.id)) return
    s.idle?.clear()
    for (const [key, w] of s.waiting) {
      clearTimeout(w.resume)
      w.answered({ jsonrpc: "2.0", id: idOf(key), error: ended(why) })
    }
    s.waiting.clear()
    this.closeStream(s)
    s.client.close()
  }
}

const BATCHES =
  "Invalid Request: the body must be one JSON-RPC object; JSON-RPC batches are not supported (MCP 2025-03-26 has them, 2025-06-18 and 2025-11-25 do not): send one message per POST"
const SSE_HEADERS = { "content-type": "text/event-stream", "cache-control": "no-cache, no-transform" }

const ended = (why: string) => ({ code: -32001, message: `the MCP session ended: ${why}; send initialize again` })
