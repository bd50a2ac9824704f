// Serving the hub's HTTP requests: the handler's view of a request, its reply into a slot or as a stream (PROTOCOL §9),
// and, for a hub that offered no stream window, large bodies in the chunks it pulls.
import type { SlotReply, SlotRequest } from "../../core/index.ts"
import { oneChunk, readyBody, routedSpan } from "../../core/internal.ts"
import type { Params, Route, RouteParams } from "../routes.ts"
import { RouteTable } from "../routes.ts"
import { COOKIES_HEADER, STREAM_HEADER } from "../wire.ts"

export type ReplyBody = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array> | null
export type HeadersLike = Headers | Record<string, string> | [string, string][]
/** What a route handler returns: a Response, or its parts. */
export type HubReply = Response | { status?: number; headers?: HeadersLike; body?: ReplyBody }
/** A route handler; for a literal pattern, `req.params` is typed from it ("/items/:id" → `{ id: string }`). */
export type HubHandler<P extends string = string> = (req: HubRequest<RouteParams<P>>) => HubReply | Promise<HubReply>

/**
 * The request a handler gets, shaped like the Web `Request` plus `params` and `query`.
 * The body is read from shared memory: read it (`bytes()`, `text()`, …) before the handler returns.
 */
export class HubRequest<Ps extends Params = Params> {
  readonly method: string
  /** Absolute URL as the client asked for it (host from the Host header). */
  readonly url: string
  /** The path without the query. */
  readonly path: string
  private _query: URLSearchParams | null = null
  private readonly raw: SlotRequest
  private readonly pathAndQuery: string
  private readonly head: readonly string[]
  private _headers: Headers | null = null

  constructor(
    raw: SlotRequest,
    readonly params: Ps,
  ) {
    this.raw = raw
    this.method = raw.method
    this.pathAndQuery = raw.path
    const q = raw.path.indexOf("?")
    this.path = q < 0 ? raw.path : raw.path.slice(0, q)
    // The head's strings, kept: Headers are built only for a handler that reads them, also after it returned.
    this.head = raw.head
    let host = "hub"
    for (let i = 2; i + 1 < this.head.length; i += 2) if (this.head[i] === "host") host = this.head[i + 1]!
    this.url = `http://${host}${raw.path}`
  }

  get headers(): Headers {
    if (this._headers === null) {
      const h = new Headers()
      for (let i = 2; i + 1 < this.head.length; i += 2) h.append(this.head[i]!, this.head[i + 1]!)
      this._headers = h
    }
    return this._headers
  }
  /** Aborts when the hub gives the request up: the HTTP client disconnected, or the hub timed out. */
  get signal(): AbortSignal {
    return this.raw.signal
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
    return new Blob([this.raw.body.slice()], { type: this.headers.get("content-type") ?? "" })
  }
  formData(): ReturnType<Request["formData"]> {
    return this.toRequest().formData()
  }
  /** A real `Request` with the same method, URL, headers, signal and (copied) body: hand it to Hono, Elysia, … */
  toRequest(): Request {
    const hasBody = this.method !== "GET" && this.method !== "HEAD"
    return new Request(this.url, {
      method: this.method,
      headers: this.headers,
      body: hasBody ? this.raw.body.slice() : null,
      signal: this.signal,
    })
  }
}

/** A response body larger than one slot, waiting for the hub to pull its next chunk (a hub that offered no stream window). */
interface BodyStream {
  reader: { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(): Promise<unknown> } | null
  rest: Uint8Array | null
  touched: number
}

const EMPTY = new Uint8Array(0)
const STREAM_IDLE_MS = 5 * 60_000
const SWEEP_EVERY_MS = 30_000
const encoder = new TextEncoder()
const ERROR_REPLY = {
  status: 500,
  headers: { "content-type": "application/json" },
  body: '{"error":"worker-error","message":"the handler failed"}',
}

/** This worker's HTTP routes, the requests it has served, and the response bodies still streaming to the hub. */
export class RequestServer {
  private readonly routes = new RouteTable<HubHandler>()
  private readonly streams = new Map<number, BodyStream>()
  private nextStream = 1
  private sweeper: ReturnType<typeof setInterval> | null = null
  served = 0
  /**
   * Response bodies (bytes) up to this travel whole in the slot; larger ones stream, or, for a hub that offered no
   * stream window, travel in chunks of this size the hub pulls. The hub says how large at registration.
   */
  chunkBytes = 1024 * 1024

  constructor(
    private readonly name: string,
    private readonly log: (message: string, error?: unknown) => void,
  ) {}

  add(route: Route, handler: HubHandler) {
    this.routes.add(route, handler)
  }

  get openStreams(): number {
    return this.streams.size
  }

  startSweeping() {
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_EVERY_MS)
  }

  stopSweeping() {
    if (this.sweeper) clearInterval(this.sweeper)
    this.sweeper = null
  }

  // Stays synchronous as long as the handler and its reply are: a promise per request is measurable here.
  serve(raw: SlotRequest): SlotReply | Promise<SlotReply> {
    const path = raw.path
    const q = path.indexOf("?")
    const m = this.routes.match(raw.method, q < 0 ? path : path.slice(0, q))
    if (!m || "allow" in m)
      return {
        status: 404,
        headers: { "content-type": "application/json" },
        body: `{"error":"not-found","message":"worker ${this.name} has no such route"}`,
      }
    this.served++
    if (raw.span !== null) routedSpan(raw.span, raw.method, m.route.pattern)
    const failed = (e: unknown) => {
      this.log(`handler for ${raw.method} ${m.route.pattern} failed`, e)
      return ERROR_REPLY
    }
    // Offered a stream window (every hub since streams, docs/PROTOCOL.md §9.9): a stream body goes to the core
    // worker as it is and streams. Offered none (an older hub): large bodies go in the chunks the hub pulls.
    const streams = raw.streamWindow > 0
    const where = `${raw.method} ${m.route.pattern}`
    try {
      const out = m.value(new HubRequest(raw, m.params))
      const reply =
        out instanceof Promise ? out.then((o) => this.toReply(o, streams, where)) : this.toReply(out, streams, where)
      return reply instanceof Promise ? reply.catch(failed) : reply
    } catch (e) {
      return failed(e)
    }
  }

  /** The next chunk of response stream `id`; empty once it has ended. */
  async pull(id: number): Promise<Uint8Array> {
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

  /** The client stopped reading response stream `id`. */
  cancel(id: number): Uint8Array {
    const s = this.streams.get(id)
    this.streams.delete(id)
    s?.reader?.cancel().catch(() => {})
    return EMPTY
  }

  /** Drops every response stream (the hub that would pull them is gone). */
  dropStreams() {
    for (const s of this.streams.values()) s.reader?.cancel().catch(() => {})
    this.streams.clear()
  }

  private toReply(out: HubReply, streams: boolean, where: string): SlotReply | Promise<SlotReply> {
    if (out instanceof Response) return this.withBody(out.status, replyHeaders(out.headers), out.body, streams, where)
    if (out === null || typeof out !== "object")
      throw new TypeError(
        `a handler must return a Response or { status, headers, body }, got ${out === null ? "null" : typeof out}`,
      )
    const h = out.headers
    const headers = !h
      ? []
      : h.constructor === Object
        ? Object.entries(h as Record<string, string>)
        : replyHeaders(new Headers(h))
    return this.withBody(out.status ?? 200, headers, out.body ?? null, streams, where)
  }

  private withBody(
    status: number,
    headers: [string, string][],
    body: ReplyBody,
    streams: boolean,
    where: string,
  ): SlotReply | Promise<SlotReply> {
    if (body === null) return { status, headers }
    if (typeof body === "string") body = encoder.encode(body)
    else if (body instanceof ArrayBuffer) body = new Uint8Array(body)
    else if (body instanceof Blob) body = body.stream()
    if (body instanceof Uint8Array) {
      if (body.length <= this.chunkBytes) return { status, headers, body }
      if (streams) return { status, headers, body: oneChunk(body) } // more than a slot: the core streams it
      return this.startStream(status, headers, { reader: null, rest: body, touched: Date.now() })
    }
    if (streams)
      // all there already (a Response of a string, bytes, JSON): whole, as bytes; else it streams from where read
      return readyBody(body, this.chunkBytes).then((r) =>
        r.whole
          ? { status, headers, body: r.whole.join() }
          : { status, headers, body: this.logged(r.rest as ReadableStream<Uint8Array>, where) },
      )
    return this.readStream(status, headers, body.getReader())
  }

  /**
   * `body` as the core worker reads it, chunk by chunk as the hub grants credit; a failure while it streams
   * reaches the client as a cut connection (its status line is gone), so the worker's log is where it is told.
   */
  private logged(body: ReadableStream<Uint8Array>, where: string): ReadableStream<Uint8Array> {
    const reader = body.getReader()
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          try {
            const r = await reader.read()
            if (r.done) c.close()
            else c.enqueue(r.value)
          } catch (e) {
            this.log(`the response body of ${where} failed while streaming`, e)
            throw e
          }
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    )
  }

  /** A stream body: inlined if it ends within one chunk, otherwise the hub pulls the rest. */
  private async readStream(
    status: number,
    headers: [string, string][],
    reader: NonNullable<BodyStream["reader"]>,
  ): Promise<SlotReply> {
    const parts: Uint8Array[] = []
    let size = 0
    for (;;) {
      const r = await reader.read()
      if (r.done || !r.value)
        return { status, headers, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) }
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

  private sweep() {
    const old = Date.now() - STREAM_IDLE_MS
    for (const [id, s] of this.streams)
      if (s.touched < old) {
        this.streams.delete(id)
        s.reader?.cancel().catch(() => {})
      }
  }
}

/**
 * A Response's headers as the pairs a slot carries: one value per name, so several Set-Cookie travel as
 * one JSON list under COOKIES_HEADER; the length and framing headers are the hub's to set.
 */
function replyHeaders(h: Headers): [string, string][] {
  const out: [string, string][] = []
  for (const [k, v] of h)
    if (k !== "content-length" && k !== "set-cookie" && k !== "transfer-encoding") out.push([k, v])
  const cookies = h.getSetCookie()
  if (cookies.length === 1) out.push(["set-cookie", cookies[0]!])
  else if (cookies.length > 1) out.push([COOKIES_HEADER, JSON.stringify(cookies)])
  return out
}
