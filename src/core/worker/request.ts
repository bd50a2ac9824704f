// A request as a worker's handler sees it (SlotRequest): its head and body read from a slot's arena (or a message
// that came over another transport), views that read empty once the handler settled, and `reply()` for writing the
// answer's body straight into the slot.
import { PayloadTooLargeError, ProtocolError } from "../../errors.ts"
import { Kind, Msg } from "../../native/ffi.ts"
import { checkNumber, checkOptions, optionNames, receivedContext, type OtelSpan } from "../../kit/index.ts"
import {
  align8,
  headerPairs,
  headLength,
  pairEntries,
  pairsToHeaders,
  readHead,
  utf8,
  writeHead,
} from "../wire/codec.ts"
import type { HeaderInit } from "../wire/codec.ts"
import type { SlotBytes } from "../wire/remote.ts"
import { KNOWN_METHODS } from "../probe/trace.ts"

const REPLY_INIT = optionNames<{ status?: number; headers?: HeaderInit }>({ status: true, headers: true })

// Request bodies below this many bytes are handed to handlers as copies (see SlotRequest.body): a copy of 8 KiB
// took 410 ns here, a view of its own and its detaching 470 ns (a 4 KiB echo at 32 in flight: 2.3 → 2.0 µs of JS).
const COPY_BELOW = 8192

/** An HTTP method: a token (RFC 9110 §5.6.2); KNOWN_METHODS's pass without the regex. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * A request as the worker sees it. `body` views shared memory, and so does the view `reply()` returns: both
 * are valid until the handler settles, then they (and every view made from them) read empty. Strings
 * (`method`, `path`, `headers`) read after that are empty too. Copy what you keep (`body.slice()`).
 */
export class SlotRequest {
  private strings: string[] | null = null
  private h: Headers | null = null
  private abort: AbortController | null = null
  /** @internal Set once the hub gave the request up (docs/PROTOCOL.md §3, cancel requests). */
  cancelled: unknown = null
  private bodyView: Uint8Array | null = null
  private live = true
  private lent: ArrayBuffer[] | null = null // most requests lend nothing: no array for them
  /** @internal Set by `reply()`: the response head already written into the slot. */
  replied: { view: Uint8Array; status: number; headLen: number } | null = null
  /** @internal The worker's SERVER span while the request is served (an OpenTelemetry SDK is registered). */
  span: OtelSpan | null = null

  /** @internal The request the message head `m` (native Msg fields) announces in `slot` of `chan`. */
  static inSlot(chan: SlotBytes, slot: number, m: Uint32Array, busName: string): SlotRequest {
    const kind = m[Msg.kind] === Kind.RAW ? "raw" : "http"
    return new SlotRequest(
      kind,
      m[Msg.id]!,
      chan,
      slot,
      m[Msg.headLen]!,
      m[Msg.bodyOff]!,
      m[Msg.bodyLen]!,
      busName,
      m[Msg.window]!,
    )
  }

  /** @internal A request from a remote transport: `bytes` holds its head, then its body from the next 8-byte boundary. */
  static fromRemote(
    at: { kind: number; id: number; bytes: SlotBytes; headLen: number; bodyLen: number; window: number },
    busName: string,
  ): SlotRequest {
    const kind = at.kind === Kind.RAW ? "raw" : "http"
    return new SlotRequest(kind, at.id, at.bytes, 0, at.headLen, align8(at.headLen), at.bodyLen, busName, at.window)
  }

  /** @internal */
  constructor(
    /** "raw" for `bus.call`, "http" for `bus.request`. */
    readonly kind: "raw" | "http",
    readonly id: number,
    private readonly chan: SlotBytes,
    private readonly slot: number,
    private readonly headLen: number,
    private readonly bodyOff: number,
    private readonly bodyLen: number,
    /** @internal */
    readonly busName = "slotbus",
    /**
     * The ring bytes the hub offered for a streamed answer (docs/PROTOCOL.md §9.1), read once when the request
     * was taken (over a remote transport: the window the hub announced, §10.4): a `ReadableStream` body (or a
     * Response's) then streams as it is produced. 0: the hub offered none (`streamWindowBytes: 0`, or a hub from
     * before streams), so such a body is read to its end and answered whole.
     */
    readonly streamWindow = 0,
  ) {}

  /** The request body: a view into the slot (no copy), or for bodies under 8 KiB a copy of its bytes. */
  get body(): Uint8Array {
    // Never a shared empty array: user code could detach its buffer.
    if (!this.live) return new Uint8Array(0)
    if (this.bodyView === null) {
      // A kept view must never show the next request. A small body is copied (a view of its own, detached on
      // settle, costs ~470 ns: COPY_BELOW); a large one gets its own ArrayBuffer over the slot, detached when the
      // handler settles.
      if (this.bodyLen === 0) this.bodyView = new Uint8Array(0)
      else if (this.bodyLen < COPY_BELOW)
        this.bodyView = this.chan
          .arena(this.slot, 0, this.bodyOff + this.bodyLen)
          .slice(this.bodyOff, this.bodyOff + this.bodyLen)
      else this.bodyView = new Uint8Array(this.borrow(0, this.bodyOff, this.bodyLen))
    }
    return this.bodyView
  }

  private borrow(response: 0 | 1, off: number, len: number): ArrayBuffer {
    const buf = this.chan.lend(this.slot, response, off, len)
    ;(this.lent ??= []).push(buf)
    return buf
  }

  private get parts(): string[] {
    if (!this.live) return []
    return (this.strings ??= readHead(this.chan.arena(this.slot, 0, this.headLen), this.headLen))
  }
  get method(): string {
    return this.kind === "raw" ? "" : (this.parts[0] ?? "")
  }
  get path(): string {
    return this.kind === "raw" ? "" : (this.parts[1] ?? "")
  }
  /**
   * The caller's W3C trace context (docs/PROTOCOL.md §6.2), with or without OpenTelemetry: the `traceparent` the
   * request carries (for HTTP requests also `headers.get("traceparent")`), undefined when it carries none or one
   * the W3C parser refuses (a head from another host's hub is checked here too).
   */
  get traceparent(): string | undefined {
    return receivedContext(this.pair("traceparent"))?.traceparent
  }
  /** The caller's `tracestate`, if its context has one (as the parser passes it on: at most 512 characters). */
  get tracestate(): string | undefined {
    return receivedContext(this.pair("traceparent"), this.pair("tracestate"))?.tracestate
  }
  private pair(name: string): string | undefined {
    const p = this.parts
    for (let i = this.kind === "raw" ? 0 : 2; i + 1 < p.length; i += 2) if (p[i] === name) return p[i + 1]
    return undefined
  }
  /** @internal The head as read from the slot: method, path, then name/value pairs (empty once retired). */
  get head(): readonly string[] {
    return this.parts
  }
  /** Request headers, lower-case names; a copy, valid after the handler settles (read empty if first read then). */
  get headers(): Headers {
    if (!this.live) return new Headers()
    return (this.h ??= pairsToHeaders(this.parts, this.kind === "raw" ? 0 : 2))
  }
  /**
   * Aborts when the hub gives the request up: its caller aborted or timed out, the HTTP client disconnected,
   * or the hub went away. Stop working on it; whatever you return is thrown away.
   */
  get signal(): AbortSignal {
    if (this.abort === null) {
      this.abort = new AbortController()
      if (this.cancelled !== null) this.abort.abort(this.cancelled)
    }
    return this.abort.signal
  }
  /** @internal The hub gave this request up. */
  cancel(reason: unknown) {
    if (this.cancelled !== null) return
    this.cancelled = reason
    this.abort?.abort(reason)
  }
  text(): string {
    return utf8(this.body)
  }
  /** The body parsed as JSON: `unknown` unless you name the type you expect. */
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T
  }

  /** The request as a Web `Request` (body copied): URL `http://<bus name><path>`, `signal` aborting as `req.signal`. */
  toRequest(): Request {
    const method = this.kind === "raw" ? "POST" : this.method
    // the front checks both (bus.request); a peer that skipped it must not name another host (`@evil.host/x`) or
    // meet each runtime's own leniency (Bun took "G\xffT" as GET, Node refused it)
    if (this.kind !== "raw" && (this.path.charCodeAt(0) !== 47 || !(KNOWN_METHODS.has(method) || TOKEN.test(method))))
      throw new ProtocolError(
        `the hub sent a request whose path or method no URL takes: ${JSON.stringify([method, this.path])}`,
      )
    const body = method === "GET" || method === "HEAD" ? null : this.body.slice()
    const url = `http://${this.busName}${this.kind === "raw" ? "/" : this.path}`
    const from = this.kind === "raw" ? 0 : 2
    // only what differs from Request's defaults: each member of the init costs the constructor a lookup and a check
    const init: RequestInit =
      method === "GET"
        ? { headers: pairEntries(this.parts, from) }
        : { method, headers: pairEntries(this.parts, from), body }
    try {
      return new WebRequest(this, url, init)
    } catch {
      init.headers = pairsToHeaders(this.parts, from) // a name Headers refuses (only a non-slotbus peer sends one): left out
      return new WebRequest(this, url, init)
    }
  }

  /**
   * Zero-copy reply: writes status and headers into the slot now and returns a view of `size` bytes of
   * shared memory for the body. Fill it and return it from the handler.
   */
  reply(size: number, init: { status?: number; headers?: HeaderInit } = {}): Uint8Array {
    if (!this.live)
      throw new TypeError("reply() called after the handler settled; the slot is no longer this request's")
    checkOptions(init, REPLY_INIT, "req.reply")
    const strings = headerPairs(init.headers)
    checkNumber(size, { what: "size", where: "req.reply" })
    const head = align8(headLength(strings))
    const room = this.chan.arenaSize
    if (head + size > room)
      throw new PayloadTooLargeError(
        `reply size ${size} with its headers does not fit the slot's ${room} bytes; raise maxBodyBytes on the hub`,
      )
    const headLen = writeHead(this.chan.arena(this.slot, 1, head), strings)
    const off = align8(headLen)
    const view = size === 0 ? new Uint8Array(0) : new Uint8Array(this.borrow(1, off, size))
    this.replied = { view, status: init.status ?? 200, headLen }
    return view
  }

  /** @internal Its views are copies of the bytes (a request that came through a remote transport), not views of a slot. */
  get lendsCopies(): boolean {
    return this.chan.copies === true
  }

  /** @internal The handler settled: every view handed out reads empty from now on. */
  retire() {
    this.live = false
    this.bodyView = null
    this.strings = null
    this.h = null
    if (this.lent) for (const buf of this.lent) if (!buf.detached) buf.transfer(0)
    this.lent = null
  }
}

/**
 * The Request a `{ fetch: true }` handler gets. Its `signal` is the SlotRequest's, made when first read: a signal
 * given to the Request constructor costs an AbortController and the Request's own following signal on every
 * request (4 of a fetch-mode worker's ~6 µs of Request making, measured), and few handlers read it.
 */
class WebRequest extends Request {
  readonly #of: SlotRequest
  constructor(of: SlotRequest, url: string, init: RequestInit) {
    super(url, init)
    this.#of = of
  }
  static {
    // (lib.dom types `signal` as a field, so the getter is defined rather than declared)
    Object.defineProperty(WebRequest.prototype, "signal", {
      get(this: WebRequest): AbortSignal {
        return this.#of.signal
      },
      configurable: true,
    })
  }
}
