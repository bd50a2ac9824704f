// The answers request() and call() resolve with (copied or borrowed), and a worker's error answer as an error.
// Separate because they are what callers hold: nothing here touches the bus's books.
import { OWN_ERROR, pairEntries, pairsToHeaders, readHead, utf8 } from "../wire/codec.ts"
import { pumpTurns } from "../wire/loop-probe.ts"
import { PayloadTooLargeError, ProtocolError, RemoteError, type SlotBusError } from "../../errors.ts"
import { quirks } from "../../runtime/index.ts"
import type { Into } from "./endpoint.ts"

export const NO_HEAD: readonly string[] = Object.freeze([])

// The runtime's late write (Bun.serve's: runtime/bun/quirks.ts LATE_WRITE, with its canary), read once: the hot path
// compares two module constants. On a runtime without it nothing is held (LATE_OVER is Infinity).
const LATE_OVER = quirks.lateWrite?.minBytes ?? Number.POSITIVE_INFINITY
const LATE_UP_TO = quirks.lateWrite?.maxBytes ?? 0

/**
 * Whether a late answer of `bytes` is better held as a closed stream holding it. Bun.serve (1.4.5) writes a Response
 * resolved after its request callback's turn, whose head and body pass its 16 KiB send buffer, in ~15 send calls
 * (each piece of the head its own); resolved in that turn, in one. A body that is a closed stream already holding its
 * bytes goes out late in two (docs/perf/bun-late-write.md), but chunked: without its length. So on Bun a late answer
 * is held that way when it is over 15 KiB (pages) and at most 64 KiB; past that the ~15 sends are small beside the
 * body, and a download keeps its length. Node's server has no such cost: nothing is held there.
 */
export function heldLate(bytes: number, sentTurn: number): boolean {
  return bytes > LATE_OVER && bytes <= LATE_UP_TO && sentTurn !== pumpTurns()
}

/** Whether an answer of `bytes` sent in this very turn saves the runtime's late write (the pump's in-turn spin). */
export function inTurnSaves(bytes: number): boolean {
  return bytes > LATE_OVER
}

/** The answer to `request()`. `body` is a copy: it stays valid after the slot is reused. */
export class SlotResponse {
  private head: readonly string[]
  private h: Headers | null = null

  /** @internal `head`: the response's header pairs as read from the slot; `sentTurn`: its request's (heldLate). */
  constructor(
    readonly status: number,
    head: readonly string[],
    readonly body: Uint8Array,
    private readonly sentTurn = Number.NaN,
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
  /** As a Web Response: a page (15–64 KiB) made after its request's turn as a closed stream holding it (heldLate). */
  toResponse(): Response {
    const late = heldLate(this.body.length, this.sentTurn)
    return webResponse(this.status, this.head, late ? oneChunk(this.body) : this.body)
  }
}

/**
 * An answer's body as its caller keeps it: copied into the caller's `into` buffer (or the one `into` gives for its
 * length) when it fits (a view of that), else a copy of its own. `src` may view a slot that is reused right after.
 */
export function ownBytes(src: Uint8Array, to: Into | null): Uint8Array {
  const into = typeof to === "function" ? to(src.length) : to
  // (a detached `into` has length 0: its answers come as copies, and nothing is written to it)
  if (into === null || src.length > into.length || into.length === 0) return src.slice()
  into.set(src)
  return into.subarray(0, src.length)
}

/** The statuses whose answer has no body. */
export const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

/**
 * The runtime's own Response, as it was when slotbus loaded. Hono's Node server puts a lazy Response of its own in
 * the global's place when it starts serving, which keeps a byte body as it was given (no copy): a slot's view, read
 * after the slot was reused (a 1 MB answer's last 80 bytes came as zeros).
 */
const OwnResponse = globalThis.Response

/**
 * An answer as a Web Response (a status outside 200..599 is a RangeError, as for Response). Bun (and Node) copy a
 * byte body into the Response's own store when it is made, so `body` may view a slot that is reused right after:
 * bus.fetch's whole answers go from the slot to Bun.serve with no JavaScript buffer made in between.
 */
/**
 * A worker's status as a Web Response's: 0 (none given) is 200; one a Response cannot carry (the wire takes 0–999) is
 * the worker's fault, a ProtocolError (a front's 502), not Response's RangeError.
 */
export function responseStatus(status: number): number {
  if (status === 0) return 200
  if (status >= 200 && status <= 599) return status
  throw new ProtocolError(`the worker answered status ${status}, which an HTTP response cannot carry (200–599)`)
}

export function webResponse(status: number, head: readonly string[], body: Uint8Array | ReadableStream | null) {
  const init = { status: responseStatus(status), headers: head.length === 0 ? undefined : pairEntries(head, 0) }
  if (NULL_BODY_STATUS.has(status)) body = null
  try {
    return new OwnResponse(body, init)
  } catch (e) {
    if (init.headers === undefined || e instanceof RangeError) throw e
    // a name Headers refuses (only a non-slotbus worker sends one) is left out, as pairsToHeaders does
    return new OwnResponse(body, { status: init.status, headers: pairsToHeaders(head, 0) })
  }
}

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
 * The answer to `request(…, { stream: true })`: status and headers as soon as the worker sent them, the body as it
 * produces it. Read the body once (`body`, `bytes()`, `text()`, `json()` or `toResponse()`); cancelling it gives
 * the request up (the worker's `req.signal` aborts).
 */
export class StreamedResponse {
  private head: readonly string[]
  private h: Headers | null = null
  private stream: ReadableStream<Uint8Array> | null
  /** The body, when the worker answered whole and nothing has read it yet. */
  private whole: Uint8Array | null

  /** @internal `body`: the stream, or the bytes of an answer that came whole (a stream is made only if asked for). */
  constructor(
    readonly status: number,
    head: readonly string[],
    body: ReadableStream<Uint8Array> | Uint8Array,
  ) {
    this.head = head
    if (body instanceof Uint8Array) (this.whole = body), (this.stream = null)
    else (this.whole = null), (this.stream = body)
  }
  get headers(): Headers {
    return (this.h ??= pairsToHeaders(this.head, 0))
  }
  /** @internal The header pairs as the worker sent them. */
  get headPairs(): readonly string[] {
    return this.head
  }
  get body(): ReadableStream<Uint8Array> {
    if (this.stream) return this.stream
    const whole = this.takeWhole()
    if (whole) return (this.stream = oneChunk(whole))
    const read = new ReadableStream<Uint8Array>() // its bytes were taken whole: a stream that is already read
    read.getReader()
    return read
  }
  /** @internal The body, when the worker answered whole and nothing read it yet; it counts as read from now on. */
  takeWhole(): Uint8Array | null {
    const whole = this.whole
    this.whole = null
    return whole
  }
  /** The whole body, once it has ended. */
  async bytes(): Promise<Uint8Array> {
    if (!this.stream) {
      const whole = this.takeWhole()
      if (whole) return whole
    }
    const parts: Uint8Array[] = []
    let size = 0
    for await (const chunk of this.body) {
      parts.push(chunk)
      size += chunk.length
    }
    if (parts.length === 1) return parts[0]!
    const out = new Uint8Array(size)
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.length
    }
    return out
  }
  async text(): Promise<string> {
    return utf8(await this.bytes())
  }
  async json<T = unknown>(): Promise<T> {
    return JSON.parse(await this.text()) as T
  }
  /** As a Web Response streaming the same body (a status outside 200..599 is a TypeError, as for Response). */
  toResponse(): Response {
    const init = { status: responseStatus(this.status), headers: this.headers }
    if (NULL_BODY_STATUS.has(this.status)) {
      if (!this.takeWhole()) this.body.pipeTo(new WritableStream()).catch(() => {}) // read to its end: the slot goes back
      return new Response(null, init)
    }
    const whole = this.stream ? null : this.takeWhole()
    return new Response(whole ?? this.body, init)
  }
}

/**
 * A body that is one chunk, as a stream: what a streaming caller gets when its worker answered whole. A string chunk
 * (respond()'s, under Bun only: a Web stream's chunks are bytes) goes out as UTF-8.
 */
export function oneChunk(chunk: Uint8Array | string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      if (chunk.length > 0) c.enqueue(chunk as Uint8Array)
      c.close()
    },
  })
}

/**
 * An error made by slotbus's own machinery (a worker's socket closed, a peer went silent): its stack would show
 * only slotbus's internals, and a server whose response stream errors with it (bus.fetch mid-stream) has Bun print
 * that stack with a code frame, which reads like a crash. Made without one, Bun prints it as one line.
 */
export function stackless<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * The most header fields an answer may carry. A Web Response's Headers take time quadratic in their count under
 * Bun (65,536 distinct names: 8 s): one worker's answer with a head of a few MiB held a front's event loop for
 * minutes. Node's own HTTP client stops at the same count (maxHeadersCount).
 */
export const MAX_ANSWER_FIELDS = 2000

/** An answer's head as its pairs (docs/PROTOCOL.md §2); a ProtocolError past MAX_ANSWER_FIELDS fields. */
export function answerHead(src: Uint8Array, end: number, pid: number): string[] {
  const head = readHead(src, end)
  if (head.length > 2 * MAX_ANSWER_FIELDS)
    throw new ProtocolError(
      `worker pid ${pid} answered with ${Math.floor(head.length / 2)} header fields, more than the ${MAX_ANSWER_FIELDS} an answer may carry`,
    )
  return head
}

/**
 * A worker's error answer (docs/PROTOCOL.md §6) as the hub's error: a reply too large for the slot (its
 * `slotbus-error` pair says so) is the hub's PayloadTooLargeError; a handler's error is a RemoteError, whatever its name.
 */
export function remoteError(head: string[], message: string, pid: number): SlotBusError {
  let remoteName: string | undefined, remoteStack: string | undefined, own: string | undefined
  for (let i = 0; i + 1 < head.length; i += 2) {
    if (head[i] === "name") remoteName = head[i + 1]
    else if (head[i] === "stack") remoteStack = head[i + 1]
    else if (head[i] === OWN_ERROR) own = head[i + 1]
  }
  if (own === "PayloadTooLargeError") return new PayloadTooLargeError(`worker pid ${pid}: ${message}`)
  return new RemoteError(remoteName ? `${remoteName}: ${message}` : message, { remoteName, remoteStack })
}

// A borrowed body collected without release(): nothing can see the slot any more, so it can go back.
export const forgotten = new FinalizationRegistry<() => void>((returnSlot) => returnSlot())

/**
 * A Web Response from what a request resolves with, for Bun.serve: give it the request's promise itself
 * (`respond(bus.call(path), init)`, `respond(remote.page(id), init)`), so the turn the request was sent in is known.
 * Bytes and strings are the body, any other value JSON (as Response.json); a SlotResponse, StreamedResponse or
 * Response is answered as it is. A body of 15–64 KiB (a string's UTF-8 bytes) that arrives after the request's turn
 * goes as a closed stream holding it, which Bun.serve writes in two sends instead of ~15 (heldLate); in the turn, or
 * another size, as it is.
 */
export async function respond(answer: unknown, init?: ResponseInit): Promise<Response> {
  const turn = pumpTurns() // the caller's: before anything is awaited
  const value = await answer
  if (value instanceof SlotResponse || value instanceof StreamedResponse || value instanceof Response) {
    if (init !== undefined)
      throw new TypeError(`respond: a ${value.constructor.name} carries its own status and headers; give no init`)
    return value instanceof Response ? value : value.toResponse()
  }
  if (value instanceof Uint8Array)
    return new Response(heldLate(value.length, turn) ? oneChunk(value.slice()) : value, init)
  const json = typeof value !== "string"
  const text = json ? JSON.stringify(value) : value
  if (text === undefined) throw new TypeError(`respond: ${typeof value} has no JSON form`)
  // a UTF-8 body is length..3×length bytes: measured only when that may make it a page
  const mayHold = text.length * 3 > LATE_OVER && text.length <= LATE_UP_TO
  if (!mayHold || !heldLate(Buffer.byteLength(text), turn))
    return json ? Response.json(value, init) : new Response(text, init)
  const headers = new Headers(init?.headers as ConstructorParameters<typeof Headers>[0])
  if (!headers.has("content-type"))
    headers.set("content-type", json ? "application/json;charset=utf-8" : "text/plain;charset=utf-8")
  // the string itself, which Bun writes as UTF-8 as it sends: encoded here first, a 40 KB page cost the front ~4 more
  // page faults beside four renders (docs/perf/real-work.md, stop 90)
  return new Response(oneChunk(text), { ...init, headers })
}
