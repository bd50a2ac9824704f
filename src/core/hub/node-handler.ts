// nodeHandler: bus.fetch behind node:http (issue 67): `http.createServer(nodeHandler(bus))`. The request goes to a
// worker as a WHATWG Request (its body streamed in, the client's hang-up its signal), the worker's Response comes
// back streamed with backpressure; a failure is the status the HTTP hub gives it (observe/http-answer.ts), with the
// error's class named, never a hung connection.
import { checkOptions, exchangeOf, optionNames } from "../../kit/index.ts"
import { type HeadAnswer, headListener, incoming, requestListener } from "../../runtime/index.ts"
import { wholeLengths } from "../endpoint/answer-value.ts"
import { NULL_BODY_STATUS, type StreamedResponse, webResponse } from "../endpoint/response.ts"
import { SlotBus } from "./bus.ts"
import { failureAnswer, failureOf } from "../observe/http-answer.ts"
import { checkFetchOptions, type FetchOptions } from "./options.ts"
import { HEAD_FETCH } from "./submit.ts"

export interface NodeHandlerOptions {
  /** Passed to each `bus.fetch` (timeoutMs, streamIdleMs, idempotent, …). */
  fetch?: Omit<FetchOptions, "signal">
  /** The answer when a request failed; default: failureResponse(error). */
  onError?(error: unknown, request: Request): Response | Promise<Response>
}

/** What nodeHandler takes: a SlotBus, or anything with its fetch. */
export interface FetchTarget {
  fetch(request: Request, opts?: FetchOptions): Promise<Response>
}

const OPTIONS = optionNames<NodeHandlerOptions>({ fetch: true, onError: true })

/**
 * The HTTP answer to a failed `bus.fetch`, as the HTTP hub gives it: TimeoutError 504, BusFullError and
 * BusClosedError 503 (Retry-After: 1), HeadTooLargeError 431, any other PayloadTooLargeError 413, RemoteError (the
 * worker threw) 500, WorkerGoneError and every other SlotBusError 502; anything else 500. The body:
 * `{ error, name, message }`.
 */
export function failureResponse(e: unknown): Response {
  const err = e instanceof Error ? e : new Error(String(e))
  return failureAnswer(failureOf(err), { name: err.name, message: err.message })
}

/**
 * A node:http request listener that hands each request to `bus.fetch`: `http.createServer(nodeHandler(bus))`, or
 * `app.use(nodeHandler(bus))` for the requests an Express app passes on. The client's hang-up cancels the request
 * (and the worker's streamed body); a failure before the answer's head is `failureResponse(error)` (or `onError`'s);
 * one mid-body cuts the connection, so the client sees an incomplete answer, not a complete-looking one. Inside
 * `instrument()`, each bus.fetch carries the route the framework matched (Express's `req.route`, `httpRoute`'s).
 */
export function nodeHandler(bus: FetchTarget, options: NodeHandlerOptions = {}) {
  if (typeof bus?.fetch !== "function") throw new TypeError("nodeHandler takes a SlotBus (or anything with its fetch)")
  const o = checkOptions(options, OPTIONS, "nodeHandler")
  if (o.onError !== undefined && typeof o.onError !== "function") throw new TypeError("onError must be a function")
  const fetchOptions = o.fetch === undefined ? undefined : checkFetchOptions(o.fetch, "nodeHandler: fetch")
  const lengths = wholeLengths()
  // a whole answer's length as Content-Length (node:http frames a body it is given as a stream chunked otherwise),
  // in place of the worker's, which may be wrong; a HEAD's stays the worker's
  const withLength = (request: Request) => (response: Response) => {
    const n = lengths.get(response)
    if (n !== undefined && (request.method !== "HEAD" || !response.headers.has("content-length")))
      response.headers.set("content-length", String(n))
    return response
  }
  const onError = o.onError ?? failureResponse
  const viaFetch = requestListener((request) => {
    // inside instrument(): the route the app matched by now (Express's req.route, httpRoute's) goes with bus.fetch
    const req = incoming.get(request)
    const route = req && exchangeOf(req)?.route
    if (route !== undefined) return bus.fetch(request, { ...fetchOptions, route }).then(withLength(request))
    return (fetchOptions ? bus.fetch(request, fetchOptions) : bus.fetch(request)).then(withLength(request))
  }, onError)
  if (!(bus instanceof SlotBus)) return viaFetch
  // a request with no body skips the Request and the Response: the same answer for about half the front's CPU
  const pool = new BodyPool()
  const entry = { ...HEAD_FETCH, into: (n: number) => pool.take(n) }
  return headListener(
    viaFetch,
    (head, gone, req) => {
      const route = exchangeOf(req)?.route
      const opts =
        route === undefined
          ? { ...fetchOptions, stream: true as const }
          : { ...fetchOptions, stream: true as const, route }
      return bus.requestFor(gone, head, opts, entry).then((r) => {
        const answer = headAnswer(r)
        const whole = answer.whole
        if (whole !== null) gone.closed = () => pool.give(whole) // node:http has handed it to the socket by then
        return answer
      })
    },
    onError,
  )
}

const POOLED_UP_TO = 256 * 1024

const NONE = new Uint8Array(0)

/**
 * The buffers whole answers are copied into from their slot, each back once node:http has handed it to the socket:
 * a 50 KB page a request made and dropped a buffer of its own, and Node's GC threads spent up to a third as much
 * as the front's own thread on them (docs/perf/round-nine-node.md). Each as large as the largest answer to 256 KiB.
 */
class BodyPool {
  private free: Uint8Array[] = []
  private size = 64 * 1024
  /** A buffer for an answer of `n` bytes; an empty one past 256 KiB (it is copied on its own). */
  take(n: number): Uint8Array {
    if (n > POOLED_UP_TO) return NONE
    if (n > this.size) (this.size = 2 ** Math.ceil(Math.log2(n))), (this.free = [])
    return this.free.pop() ?? new Uint8Array(this.size)
  }
  /** `body` written: its buffer serves the next answer, if it is one of this pool's size. */
  give(body: Uint8Array) {
    if (body.byteOffset === 0 && body.buffer.byteLength === this.size && this.free.length < 16)
      this.free.push(new Uint8Array(body.buffer))
  }
}

/** A bus answer as the head listener writes it: whole bytes, or the Web Response bus.fetch would have made. */
function headAnswer(r: StreamedResponse): HeadAnswer {
  const status = r.status === 0 ? 200 : r.status // 0: the worker gave none
  const head = r.headPairs
  const whole = status >= 200 && status <= 599 && !NULL_BODY_STATUS.has(status) ? r.takeWhole() : null
  if (whole === null) {
    const response = r.toResponse() // a status a Response refuses throws here: the request fails with it
    return { status, head, whole, response: () => response }
  }
  const response = () => {
    const made = webResponse(status, head, whole)
    made.headers.set("content-length", String(whole.length))
    return made
  }
  return { status, head, whole, response }
}
