// Hands an HTTP request to a worker over its bus and turns its answer into a Response: the head at once, the body
// streamed as the worker produces it (docs/PROTOCOL.md §9.9).
import { HOP_BY_HOP, type HttpServer as Server } from "../../runtime/index.ts"
import { BusClosedError, type BorrowedResponse, type StreamedResponse } from "../../core/index.ts"
import {
  bodyUpTo,
  type Failure,
  failureAnswer,
  failureOf,
  HeldBodies,
  heldLate,
  oneChunk,
  pumpTurns,
} from "../../core/internal.ts"
import { BusFullError, PayloadTooLargeError } from "../../errors.ts"
import { COOKIES_HEADER, STREAM_HEADER, type ControlMessage } from "../wire.ts"
import type { HubCounters } from "./counters.ts"
import type { Liveness } from "./liveness.ts"
import { forwardedFor, idleSecondsFor, outlastsIdle, type ResolvedOptions } from "./options.ts"
import { isAttached, MAX_HEAD_BYTES, type Registry, type RouteEntry, type WorkerInstance } from "./registry.ts"

// and Content-Length: the server frames the body it is given itself
const dropped = (name: string) => HOP_BY_HOP.has(name) || name === "content-length"
const NO_STORE = { "cache-control": "no-store" }
const NULL_BODY = new Set([101, 103, 204, 205, 304])

/**
 * The worker's head as the client's headers (hop-by-hop and slotbus's own taken out, its cookie list made
 * Set-Cookie lines) and the old protocol's stream number (-1: none); throws, saying what, on a head it cannot use.
 */
function clientHead(from: Headers): { headers: Headers; pulled: number } {
  let plain = true
  for (const name of from.keys()) if (name.startsWith("x-slotbus-") || dropped(name)) plain = false
  if (plain) return { headers: from, pulled: -1 }
  const headers = new Headers()
  let pulled = -1
  for (const [name, value] of from) {
    if (name === STREAM_HEADER) pulled = Number(value)
    else if (name === COOKIES_HEADER) appendCookies(headers, value)
    else if (!dropped(name)) headers.append(name, value)
  }
  return { headers, pulled }
}

/** The worker's Set-Cookie lines, sent as one JSON list (src/http/worker/request.ts), appended to `to`. */
function appendCookies(to: Headers, list: string) {
  let cookies: unknown
  try {
    cookies = JSON.parse(list)
  } catch {}
  if (!Array.isArray(cookies) || !cookies.every((c) => typeof c === "string" && !/[\0\r\n]/.test(c)))
    throw new Error(`sent a malformed ${COOKIES_HEADER} header (not a JSON array of header-safe strings)`)
  for (const c of cookies) to.append("set-cookie", c)
}

export class RequestProxy {
  /** A wait the connection's idle timeout would cut short (the client would get no answer at all) is exempt from it. */
  private readonly exempt: boolean
  private readonly idleSeconds: number
  /** Requests whose body is still coming in: not yet in flight on a worker (the hub's stop waits for them). */
  uploads = 0
  /** The request bodies read (or being read) and not yet in a worker's slot: maxHeldBodyBytes in all. */
  readonly bodies: HeldBodies

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly counters: HubCounters,
    private readonly registry: Registry,
    private readonly liveness: Liveness,
  ) {
    this.bodies = new HeldBodies(
      opts.maxRequestBodyBytes,
      opts.maxHeldBodyBytes,
      "the hub",
      "raise maxHeldBodyBytes in createHub's options (slotbus hub --max-held-body-bytes)",
    )
    this.exempt = outlastsIdle(opts.timeoutMs)
    this.idleSeconds = idleSecondsFor(opts.timeoutMs)
  }

  async forward(req: Request, server: Server<undefined>, entry: RouteEntry, pathAndQuery: string): Promise<Response> {
    this.counters.requests++
    const turn = pumpTurns() // the callback's turn: an answer collected at another count is late
    let inst = this.registry.pick(entry)
    if (!inst) return this.unavailable(entry)
    forwardedFor(req, server)
    let body: Uint8Array | undefined
    let held: { giveBack(): void } | null = null
    if (req.body) {
      this.uploads++
      try {
        // no idle bound of its own (the connection's idle timeout is one); a wait for room, at most timeoutMs
        const read = await bodyUpTo(req, this.bodies, 0, req.signal, this.opts.timeoutMs)
        body = read?.body
        held = read?.held ?? null
      } catch (e) {
        if (req.signal.aborted) return this.failure(e, null, req) // the client hung up mid-upload
        if (e instanceof PayloadTooLargeError || e instanceof BusFullError) return this.unread(e)
        throw e
      } finally {
        this.uploads--
      }
      // It left its routes while the body arrived: another worker takes it (a deploy retired it; it deregistered),
      // or, with none on the route (the hub stops), the one it came for, still attached, runs it as it drains
      if (!entry.instances.includes(inst)) inst = this.registry.pick(entry) ?? (isAttached(inst) ? inst : null)
      if (!inst) {
        held?.giveBack()
        return this.unavailable(entry)
      }
    }
    inst.inFlight++
    let res: StreamedResponse
    if (this.exempt) server.timeout(req, 0)
    try {
      // Resolves at the worker's head (docs/PROTOCOL.md §9.9): status and headers, the body as it is produced.
      res = await inst.bus.requestFor(
        req, // its signal cancels the request (read only if the request is still out at the bus's tick)
        { method: req.method, path: pathAndQuery, headers: req.headers, body },
        { stream: true, route: entry.route.pattern }, // GET /metrics's label: never the path
        undefined,
        held, // given back once the body is in a slot
      )
    } catch (e) {
      inst.inFlight--
      return this.failure(e, inst, req)
    } finally {
      if (this.exempt) server.timeout(req, this.idleSeconds) // kept alive, it idles as any other
    }
    inst.served++
    this.liveness.answered(inst)
    this.counters.responses++
    return this.toResponse(res, inst, req, turn)
  }

  /** A body refused before or while it was read: over maxRequestBodyBytes (413), or past maxHeldBodyBytes (503). */
  private unread(e: PayloadTooLargeError | BusFullError): Response {
    const close = { ...NO_STORE, connection: "close" } // the rest of the body is not read
    if (e instanceof BusFullError) {
      this.counters.unavailable++
      return failureAnswer("unavailable", { message: e.message }, close)
    }
    this.counters.tooLarge++
    const message = `request body is over the hub's limit of ${this.opts.maxRequestBodyBytes} bytes; raise maxRequestBodyBytes in createHub's options (slotbus hub --max-body-bytes)`
    return failureAnswer("too-large", { message }, close)
  }

  unavailable(entry: RouteEntry): Response {
    this.counters.unavailable++
    return failureAnswer(
      "unavailable",
      { message: `no worker is serving ${entry.route.method} ${entry.route.pattern} right now; retry shortly` },
      NO_STORE,
    )
  }

  /** The answer once the hub is stopping (slotbus hub's SIGTERM): retry, on a new connection (to the hub that follows). */
  shuttingDown(): Response {
    this.counters.unavailable++
    const message = "the hub is shutting down; retry shortly"
    return failureAnswer("unavailable", { message }, { ...NO_STORE, connection: "close" })
  }

  /** The client's answer when a call to `inst` failed. */
  failure(e: unknown, inst: WorkerInstance | null, req: Request | null): Response {
    const where = inst ? `worker "${inst.name}" (pid ${inst.pid})` : "the worker"
    const failure = this.count(e, inst, req)
    if (failure === "client-abort") return new Response(null, { status: 499 })
    const message =
      failure === "timeout"
        ? `${where} did not answer within ${this.opts.timeoutMs}ms`
        : failure === "worker-error"
          ? `${where} failed to handle the request`
          : failure === "unavailable"
            ? `${where} is saturated; retry shortly`
            : failure === "head-too-large"
              ? `request head (method, path and headers) is over the hub's limit of ${MAX_HEAD_BYTES} bytes`
              : failure === "too-large"
                ? "request body does not fit a slot"
                : `${where} went away before answering`
    return failureAnswer(failure, { message }, NO_STORE)
  }

  /** Counts a failed call to `inst` (before its answer's head, or while its body streamed) and says what it was. */
  private count(e: unknown, inst: WorkerInstance | null, req: Request | null): Failure | "client-abort" {
    if (req?.signal.aborted) {
      this.counters.clientAborts++
      return "client-abort"
    }
    // a worker's bus closes when the hub evicts it: the worker went away, where a front's closed bus is unavailable
    const failure = e instanceof BusClosedError ? "bad-gateway" : failureOf(e)
    if (failure === "timeout") this.counters.timeouts++
    else if (failure === "worker-error") this.counters.workerErrors++
    else if (failure === "unavailable") this.counters.unavailable++
    else if (failure === "too-large" || failure === "head-too-large") this.counters.tooLarge++
    else {
      // WorkerGoneError, ProtocolError, anything else: the worker went away mid-request
      this.counters.badGateway++
      if (inst) this.liveness.lost(inst, e)
      return "bad-gateway"
    }
    return failure
  }

  /**
   * The client's Response: the worker's status and headers (filtered), its body passed on as it arrives. The
   * request counts as in flight on `inst` until its body has ended, failed, or the client went away.
   */
  private async toResponse(res: StreamedResponse, inst: WorkerInstance, req: Request, turn: number): Promise<Response> {
    let open = true
    const finished = () => {
      if (!open) return false
      open = false
      inst.inFlight--
      return true
    }
    const status = res.status
    let head: { headers: Headers; pulled: number }
    try {
      if (status < 200 || status > 599) throw new Error(`answered with status ${status}`)
      head = clientHead(res.headers)
    } catch (e) {
      // Nothing of this answer reaches the client: its body is given up, so its slot comes back now.
      finished()
      res.body.cancel().catch(() => {})
      const pulled = res.headers.get(STREAM_HEADER) // a worker without a window: its chunks wait to be pulled
      if (pulled !== null) this.cancelPulled(inst, Number(pulled))
      this.counters.badGateway++
      return failureAnswer("bad-gateway", { message: `worker "${inst.name}" ${(e as Error).message}` }, NO_STORE)
    }
    const { headers, pulled } = head
    // The client went away mid-body. Bun cancels the body of every answer to HEAD itself (it sends none, and says
    // `transfer-encoding: chunked` as for GET): that gives the worker's body up too, but is no abort.
    const left = () => {
      if (finished() && req.method !== "HEAD") this.counters.clientAborts++
    }
    if (pulled >= 0) {
      // A worker that was offered no stream window (streamWindowBytes: 0) or predates streams: a whole answer
      // whose head says the rest waits in chunks to pull.
      let first: Uint8Array
      try {
        first = await res.bytes()
      } catch (e) {
        finished()
        return this.failure(e, inst, req)
      }
      return new Response(this.pulledStream(inst, pulled, first, finished, left), { status, headers })
    }
    const whole = res.takeWhole() // the worker answered whole: its bytes, no stream to relay
    if (whole) {
      finished()
      if (NULL_BODY.has(status)) return new Response(null, { status, headers })
      return new Response(heldLate(whole.length, turn) ? oneChunk(whole) : whole, { status, headers })
    }
    if (NULL_BODY.has(status)) {
      // Read to its end (normally nothing), so the slot goes back without giving the request up.
      res.body.pipeTo(new WritableStream()).then(finished, finished)
      return new Response(null, { status, headers })
    }
    return new Response(this.relay(res.body, inst, req, finished, left), { status, headers })
  }

  /**
   * The worker's body as the client's: each chunk read only when Bun's side of the socket asks for the next
   * (that read is the credit the worker gets back). The client going away cancels it, which gives the request
   * up (the worker's req.signal aborts); a failure after the head errors it, which cuts the connection.
   */
  private relay(
    body: ReadableStream<Uint8Array>,
    inst: WorkerInstance,
    req: Request,
    finished: () => boolean,
    left: () => void,
  ): ReadableStream<Uint8Array> {
    const reader = body.getReader()
    let chunks = 0
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          let r: Awaited<ReturnType<typeof reader.read>>
          try {
            r = await reader.read()
          } catch (e) {
            if (finished()) this.count(e, inst, req)
            // The client sees a cut connection: the status line is long gone. Not `e`: Bun would print it, and
            // the worker has logged it already.
            return c.error(undefined)
          }
          if (r.done) {
            finished()
            return c.close()
          }
          if (++chunks === 2) this.counters.streamedResponses++
          inst.lastSeen = Date.now()
          c.enqueue(r.value)
        },
        cancel: (reason) => {
          left()
          return reader.cancel(reason) // gives the request up: the worker's req.signal aborts
        },
      },
      { highWaterMark: 0 },
    )
  }

  /**
   * The old protocol's large body: `first` (the answer's own body), then each chunk pulled from the worker,
   * borrowed: a chunk's slot goes back once the client's side has taken it (the next pull), or when the stream
   * ends or the client goes away.
   */
  private pulledStream(
    inst: WorkerInstance,
    stream: number,
    first: Uint8Array,
    finished: () => boolean,
    left: () => void,
  ): ReadableStream<Uint8Array> {
    const pull = JSON.stringify({ op: "pull", stream } satisfies ControlMessage)
    let held: BorrowedResponse | null = null
    let firstSent = false
    let over = false
    this.counters.streamedResponses++
    const letGo = () => {
      held?.release()
      held = null
    }
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          if (!firstSent) {
            firstSent = true
            if (first.length > 0) return c.enqueue(first)
          }
          letGo()
          try {
            const chunk = await inst.bus.call(pull, { borrow: true })
            inst.lastSeen = Date.now()
            if (over || chunk.body.length === 0) {
              chunk.release()
              if (finished()) c.close()
            } else {
              held = chunk
              c.enqueue(chunk.body)
            }
          } catch {
            if (finished()) this.counters.badGateway++
            c.error(undefined) // the client sees a cut connection: the status line is long gone
          }
        },
        cancel: () => {
          letGo()
          if (over) return
          over = true
          left()
          this.cancelPulled(inst, stream)
        },
      },
      { highWaterMark: 0 },
    )
  }

  /** Tells a worker without a stream window that the rest of answer `stream` is not wanted (the old protocol). */
  private cancelPulled(inst: WorkerInstance, stream: number) {
    inst.bus.call(JSON.stringify({ op: "cancel", stream } satisfies ControlMessage)).catch(() => {})
  }
}

/**
 * A request's body, or null once it is over `max` bytes (declared so, or read so: never more than that is kept). Only
 * a length that is digits alone is taken at its word: Bun.serve joins two equal Content-Length headers into "N, N"
 * and frames the body by N, so such a body is counted as it comes, as one with no length.
 */
export async function readBody(req: Request, max: number): Promise<Uint8Array | null> {
  const declared = req.headers.get("content-length")
  if (declared !== null && /^\d+$/.test(declared)) return Number(declared) > max ? null : await req.bytes()
  if (!req.body) return new Uint8Array(0)
  const parts: Uint8Array[] = []
  let total = 0
  for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length
    if (total > max) return null
    parts.push(chunk)
  }
  return Buffer.concat(parts)
}
