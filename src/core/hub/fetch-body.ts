// bus.fetch's reading of a Request (its path and query; its body, refused at the bus's maxBodyBytes while it is
// read, never after, and at its maxHeldBodyBytes for all the bodies it holds) and the Response it resolves with.
import { BusFullError, PayloadTooLargeError, TimeoutError } from "../../errors.ts"
import { type LongTimer, longTimeout } from "../../kit/index.ts"
import { incoming } from "../../runtime/index.ts"
import type { HeldBody } from "../endpoint/endpoint.ts"
import { StreamedResponse } from "../endpoint/response.ts"

/**
 * A Request URL's path and query, as `new URL(url)`'s pathname + search: cut from the URL as Request serialized
 * it (an http(s) URL's path starts at the first "/" after its host, which holds none; the fragment is left out),
 * for a fifteenth of a URL's cost. Another scheme goes through URL.
 */
export function pathOf(url: string): string {
  const host = url.startsWith("http://") ? 7 : url.startsWith("https://") ? 8 : -1
  // a bare path: Bun.serve's Request of a request with no Host, or one it could not make a URL of
  const at = url[0] === "/" ? 0 : host < 0 ? -1 : url.indexOf("/", host)
  if (at < 0) {
    const u = new URL(url)
    return u.pathname + u.search
  }
  const hash = url.indexOf("#", at)
  return hash < 0 ? url.slice(at) : url.slice(at, hash)
}

/** The buses closeGracefully began to close: their fetch answers tell the client to close its connection. */
export const leaving = new WeakSet<object>()

/**
 * A whole answer comes as a Response already; a streamed one is made one. (Not `instanceof Response`: Hono's Node
 * server replaces the global Response with its own class, which the runtime's Responses are no instances of.)
 */
export function asResponse(res: StreamedResponse | Response, bus: object): Response {
  const response = res instanceof StreamedResponse ? res.toResponse() : res
  if (leaving.has(bus)) response.headers.set("connection", "close")
  return response
}

/** Up to this declared length a body is read whole at once (Bun's Request natively, twice a reader's speed). */
const SMALL_BODY = 64 * 1024

/**
 * What a caller over the bus's body limit can change: the bus's option (bus.fetch, nodeHandler and bus.request all
 * read it; nodeHandler has none of its own).
 */
export const RAISE_MAX_BODY = "raise maxBodyBytes in SlotBus.listen's options"

/**
 * The bodies a bus's fetch (or the HTTP hub) reads whole: each at most `maxBody` bytes (maxBodyBytes), and those it
 * has not let go yet (being read, queued, on their way to a slot) at most `max` bytes in all (maxHeldBodyBytes), so
 * that uploads waiting for slow workers cannot take the front's memory.
 */
export class HeldBodies {
  /** Bytes held now. */
  bytes = 0
  constructor(
    readonly maxBody: number,
    private readonly max: number,
    /** Who holds them ('bus "images"'), and what its user raises, for the BusFullError's message. */
    private readonly holder: string,
    private readonly raise: string,
  ) {}

  /** A body's count, at 0 bytes: `hold` grows it, `giveBack` returns all of it. */
  body(): HeldBytes {
    return new HeldBytes(this)
  }

  /** `n` more bytes held; BusFullError (nothing taken) when they would take the bus past maxHeldBodyBytes. */
  take(n: number) {
    if (this.bytes + n > this.max)
      throw new BusFullError(
        `${this.holder}: request bodies read and waiting for a slot hold ${this.bytes} bytes, and ${n} more would pass maxHeldBodyBytes ${this.max}; try again shortly, or ${this.raise}`,
      )
    this.bytes += n
  }

  give(n: number) {
    this.bytes -= n
  }
}

/** One body's bytes counted in its bus's HeldBodies. */
export class HeldBytes implements HeldBody {
  bytes = 0
  constructor(private readonly all: HeldBodies) {}

  /** Counts it as `n` bytes: more taken (BusFullError when they do not fit), or fewer given back. */
  hold(n: number) {
    if (n > this.bytes) this.all.take(n - this.bytes)
    else this.all.give(this.bytes - n)
    this.bytes = n
  }

  giveBack() {
    this.hold(0)
  }
}

/**
 * A Request's body, refused at `bodies.maxBody` bytes: by its Content-Length before reading, or once more than that
 * arrived; and with BusFullError when its bytes would take `bodies` past maxHeldBodyBytes: its Content-Length
 * counted before reading, a body of no declared length as it arrives. Given up (cancelled where it can be) with
 * TimeoutError once nothing of it came for `timeoutMs` (0: never; a small body read at once, within `timeoutMs` of
 * the start), or with `signal`'s reason when it aborts: a client that stops sending mid-body holds no caller, and no
 * more memory, while a slow upload that keeps coming is read to its end. A body read comes with its bytes held, for
 * the caller to give back once it lets the body go; one refused or given up gives them back here.
 */
export async function bodyUpTo(
  request: Request,
  bodies: HeldBodies,
  timeoutMs = 0,
  signal?: AbortSignal,
): Promise<{ body: Uint8Array; held: HeldBytes } | undefined> {
  const stream = request.body
  if (!stream) return undefined
  const held = bodies.body()
  try {
    return { body: await readUpTo(request, stream, bodies.maxBody, held, timeoutMs, signal), held }
  } catch (e) {
    held.giveBack()
    throw e
  }
}

async function readUpTo(
  request: Request,
  stream: ReadableStream<Uint8Array>,
  max: number,
  held: HeldBytes,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const tooLarge = (what: string) => {
    stream.cancel().catch(() => {})
    return new PayloadTooLargeError(`request body is ${what} bytes, over maxBodyBytes ${max}; ${RAISE_MAX_BODY}`)
  }
  // counted as `n` bytes, or refused (BusFullError) and the rest of it not read
  const hold = (n: number, cancel: () => Promise<void>) => {
    try {
      held.hold(n)
    } catch (e) {
      cancel().catch(() => {})
      throw e
    }
  }
  const declared = request.headers.get("content-length")
  const length = declared !== null && /^\d+$/.test(declared) ? Number(declared) : -1
  if (length > max) throw tooLarge(declared!)
  if (length > 0) hold(length, () => stream.cancel()) // before a byte of it is read
  const stop = stopper(timeoutMs, signal)
  try {
    // a body longer than it said is refused by request() all the same. arrayBuffer(), not bytes(): Hono's Node
    // server passes a Request look-alike that has no bytes() of its own (Request's, called on it, throws). One of
    // node:http's (ours) is read so it can be cancelled
    if (declared !== null && Number(declared) <= SMALL_BODY && !incoming.has(request)) {
      const body = await (stop ? Promise.race([request.arrayBuffer(), stop.given]) : request.arrayBuffer())
      held.hold(body.byteLength)
      return new Uint8Array(body)
    }
    const reader = stream.getReader()
    const parts: Uint8Array[] = []
    let read = 0
    for (;;) {
      const next = reader.read()
      const { done, value } = await (stop ? Promise.race([next, stop.given]).catch(cancelled(reader)) : next)
      if (done) {
        held.hold(read) // less than it said, if it said more
        return Buffer.concat(parts, read)
      }
      stop?.kick()
      read += value.length
      if (read > max) {
        reader.releaseLock()
        throw tooLarge(`over ${read}`)
      }
      if (read > held.bytes) hold(read, () => reader.cancel())
      parts.push(value)
    }
  } finally {
    stop?.clear()
  }
}

/** A read given up (`e`): the reader is cancelled (the rest of the body is dropped, not kept), then `e` thrown. */
const cancelled = (reader: { cancel(): Promise<void> }) => (e: unknown) => {
  reader.cancel().catch(() => {})
  throw e
}

/**
 * `given` rejects once `timeoutMs` passed since the start or the last kick() (TimeoutError), or `signal` aborted
 * (its reason); null when neither can.
 */
function stopper(ms: unknown, signal?: AbortSignal) {
  const timeoutMs = typeof ms === "number" && ms > 0 ? ms : 0 // a bad one is refused after the body, as ever
  if (timeoutMs === 0 && !signal) return null
  let timer: LongTimer | undefined
  let onAbort: (() => void) | undefined
  let fail: (e: unknown) => void = () => {}
  const given = new Promise<never>((_, reject) => {
    fail = reject
    if (signal?.aborted) reject(signal.reason)
    else signal?.addEventListener("abort", (onAbort = () => reject(signal.reason)), { once: true })
  })
  given.catch(() => {}) // settled after the body came: nobody races it any more
  const idle = () =>
    fail(new TimeoutError(`the request body stopped coming: nothing of it for timeoutMs (${timeoutMs} ms); given up`))
  const stop = {
    given,
    kick() {
      timer?.clear()
      if (timeoutMs > 0) timer = longTimeout(idle, timeoutMs)
    },
    clear() {
      timer?.clear()
      if (onAbort) signal!.removeEventListener("abort", onAbort)
    },
  }
  stop.kick()
  return stop
}
