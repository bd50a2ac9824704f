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
 * The bodies a bus's fetch (or the HTTP hub) reads whole: each at most `maxBody` bytes (maxBodyBytes), and the bytes
 * of those it has not let go yet (being read, queued, on their way to a slot) about `max` in all (maxHeldBodyBytes),
 * so that uploads waiting for slow workers cannot take the front's memory. Only bytes that arrived count: a body
 * that would take them past `max` is read no further until bodies are let go (its client is held back, as by any
 * server that reads no more), so a client that declares a large body and sends nothing holds nothing. Once bodies
 * being read hold it all and none is complete, the one holding the most reads on (the others would wait for each
 * other for good): it may take the bytes held past `max` by one body, and each body being read by what its last
 * read took. An idle client, holding none, is never it.
 */
export class HeldBodies {
  /** Bytes held now. */
  bytes = 0
  /** Of them, the bytes of bodies read to their end. */
  private complete = 0
  /** The bodies being read, oldest first. */
  private readonly reading = new Set<HeldBytes>()
  private roomMade: PromiseWithResolvers<void> | null = null

  constructor(
    readonly maxBody: number,
    readonly max: number,
    /** Who holds them ('bus "images"'), and what its user raises, for the BusFullError's message. */
    readonly holder: string,
    readonly raise: string,
  ) {}

  /** A body's count, at 0 bytes: `hold` grows it, `giveBack` returns all of it. */
  body(): HeldBytes {
    const b = new HeldBytes(this)
    this.reading.add(b)
    return b
  }

  /** Whether `b`, being read, may read more now. */
  mayRead(b: HeldBytes): boolean {
    if (this.bytes < this.max) return true
    if (this.complete > 0) return false // those are let go as workers take them
    // all of it held by bodies still coming in: the one holding the most (the oldest of equals) goes on
    let most: HeldBytes | null = null
    for (const r of this.reading) if (most === null || r.bytes > most.bytes) most = r
    return most === b
  }

  /** Settles once bytes were given back (or a body ended its reading). */
  room(): Promise<void> {
    this.roomMade ??= Promise.withResolvers<void>()
    return this.roomMade.promise
  }

  /** @internal HeldBytes' book-keeping. */
  changed(b: HeldBytes, by: number, ended: boolean) {
    this.bytes += by
    if (b.done) this.complete += by
    if (ended) {
      const wasReading = this.reading.delete(b)
      if (b.done && wasReading) this.complete += b.bytes
    }
    if (by < 0 || ended) {
      this.roomMade?.resolve()
      this.roomMade = null
    }
  }
}

/** One body's bytes counted in its HeldBodies. */
export class HeldBytes implements HeldBody {
  bytes = 0
  /** Read to its end. */
  done = false
  constructor(private readonly all: HeldBodies) {}

  /** Counts it as `n` bytes. */
  hold(n: number) {
    const by = n - this.bytes
    this.bytes = n
    this.all.changed(this, by, false)
  }

  /** It was read to its end: `n` bytes. */
  finish(n: number) {
    this.hold(n)
    this.done = true
    this.all.changed(this, 0, true)
  }

  giveBack() {
    this.hold(0)
    this.all.changed(this, 0, true)
  }
}

/**
 * A Request's body, refused at `bodies.maxBody` bytes: by its Content-Length before reading, or once more than that
 * arrived; read no further while `bodies` hold maxHeldBodyBytes (HeldBodies), and given up with BusFullError once it
 * waited `roomMs` (default `timeoutMs`; 0: no bound) for room. Given up (cancelled where it can be) with TimeoutError once nothing of it came for
 * `timeoutMs` (0: never; a small body read at once, within `timeoutMs` of the start), or with `signal`'s reason when
 * it aborts: a client that stops sending mid-body holds no caller, and no more memory, while a slow upload that
 * keeps coming is read to its end. A body read comes with its bytes held, for the caller to give back once it lets
 * the body go; one refused or given up gives them back here.
 */
export async function bodyUpTo(
  request: Request,
  bodies: HeldBodies,
  timeoutMs = 0,
  signal?: AbortSignal,
  roomMs = timeoutMs,
): Promise<{ body: Uint8Array; held: HeldBytes } | undefined> {
  const stream = request.body
  if (!stream) return undefined
  const held = bodies.body()
  try {
    return { body: await readUpTo(request, stream, bodies, held, { timeoutMs, roomMs }, signal), held }
  } catch (e) {
    held.giveBack()
    throw e
  }
}

async function readUpTo(
  request: Request,
  stream: ReadableStream<Uint8Array>,
  bodies: HeldBodies,
  held: HeldBytes,
  { timeoutMs, roomMs }: { timeoutMs: number; roomMs: number },
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const max = bodies.maxBody
  const tooLarge = (what: string) => {
    stream.cancel().catch(() => {})
    return new PayloadTooLargeError(`request body is ${what} bytes, over maxBodyBytes ${max}; ${RAISE_MAX_BODY}`)
  }
  const declared = request.headers.get("content-length")
  const length = declared !== null && /^\d+$/.test(declared) ? Number(declared) : -1
  if (length > max) throw tooLarge(declared!)
  const stop = stopper(timeoutMs, signal)
  try {
    // a body longer than it said is refused by request() all the same. arrayBuffer(), not bytes(): Hono's Node
    // server passes a Request look-alike that has no bytes() of its own (Request's, called on it, throws). One of
    // node:http's (ours) is read so it can be cancelled
    if (declared !== null && Number(declared) <= SMALL_BODY && !incoming.has(request)) {
      if (!bodies.mayRead(held)) await roomFor(bodies, held, stop, roomMs)
      const body = await (stop ? Promise.race([request.arrayBuffer(), stop.given]) : request.arrayBuffer())
      held.finish(body.byteLength)
      return new Uint8Array(body)
    }
    const reader = stream.getReader()
    // a body of a declared length is copied once, into its buffer as it comes; one of none is joined at its end
    const parts = new BodyParts(length)
    for (;;) {
      if (!bodies.mayRead(held)) await roomFor(bodies, held, stop, roomMs).catch(cancelled(reader))
      const next = reader.read()
      const { done, value } = await (stop ? Promise.race([next, stop.given]).catch(cancelled(reader)) : next)
      if (done) {
        held.finish(parts.read)
        return parts.whole()
      }
      stop?.kick()
      if (parts.read + value.length > max) {
        reader.releaseLock()
        throw tooLarge(`over ${parts.read + value.length}`)
      }
      parts.add(value)
      held.hold(parts.read)
    }
  } finally {
    stop?.clear()
  }
}

/** A body's bytes as they come: into one buffer of its declared `length` (-1: none), else kept to be joined. */
class BodyParts {
  read = 0
  private buffer: Uint8Array | null = null
  private readonly parts: Uint8Array[] = []
  constructor(private readonly length: number) {}

  add(chunk: Uint8Array) {
    if (this.parts.length === 0 && this.length > 0 && this.read + chunk.length <= this.length) {
      this.buffer ??= new Uint8Array(this.length)
      this.buffer.set(chunk, this.read)
    } else {
      // more than it said (request() refuses it later), or no length said: kept as it came
      if (this.buffer) this.parts.push(this.buffer.subarray(0, this.read))
      this.buffer = null
      this.parts.push(chunk)
    }
    this.read += chunk.length
  }

  whole(): Uint8Array {
    if (this.parts.length > 0) return Buffer.concat(this.parts, this.read)
    return this.buffer ? this.buffer.subarray(0, this.read) : new Uint8Array(0)
  }
}

/**
 * Waits until `held` may read more (the idle timer stopped meanwhile: the wait is ours, not the client's); BusFullError
 * once that took `timeoutMs` (0: no bound), or `stop`'s reason.
 */
async function roomFor(bodies: HeldBodies, held: HeldBytes, stop: Stopper | null, timeoutMs: number) {
  stop?.pause()
  const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Number.POSITIVE_INFINITY
  let timer: LongTimer | undefined
  const full = new Promise<never>((_, reject) => {
    if (timeoutMs > 0)
      timer = longTimeout(
        () =>
          reject(
            new BusFullError(
              `${bodies.holder}: request bodies being read and waiting for a slot hold ${bodies.bytes} bytes, maxHeldBodyBytes ${bodies.max}, and this one waited timeoutMs (${timeoutMs} ms) for room to be read on; try again shortly, or ${bodies.raise}`,
            ),
          ),
        timeoutMs,
      )
  })
  full.catch(() => {})
  try {
    while (!bodies.mayRead(held) && performance.now() < deadline)
      await Promise.race(stop ? [bodies.room(), full, stop.given] : [bodies.room(), full])
  } finally {
    timer?.clear()
    stop?.kick()
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
    /** Its idle timer stops until the next kick(). */
    pause() {
      timer?.clear()
    },
    clear() {
      timer?.clear()
      if (onAbort) signal!.removeEventListener("abort", onAbort)
    },
  }
  stop.kick()
  return stop
}

type Stopper = NonNullable<ReturnType<typeof stopper>>
