// A request's way in, the steps of SlotBus's submit (bus.ts): what the caller passed is checked, the head encoded,
// the trace context added, and the Pending made that the Dispatcher keeps of it from the queue to the answer.
import { Kind } from "../../native/ffi.ts"
import { headerPairs, headLength } from "../wire/codec.ts"
import { isRpcVerb } from "../wire/rpc-status.ts"
import { checkOptions } from "../../kit/index.ts"
import { HeadTooLargeError, PayloadTooLargeError } from "../../errors.ts"
import { RAISE_MAX_BODY } from "./fetch-body.ts"
import type { HeldBody, Into, Pending, ReadAnswer, Want } from "../endpoint/endpoint.ts"
import {
  checkRequestOptions,
  positiveInt,
  REQUEST_INIT,
  REQUEST_OPTIONS,
  type ListenSettings,
  type RequestOptions,
  type SlotRequestInit,
} from "./options.ts"
import { clientTrace, headWithContext } from "../probe/trace.ts"

/** How a request comes in: its kind, the call its errors name, and whether it resolves as a Web Response. */
export interface Entry {
  readonly kind: number
  readonly where: "bus.request" | "bus.call"
  /** bus.fetch's: an answer that came whole resolves as a Web Response. */
  readonly response: boolean
  /** A trace begins here even outside one (else as `response` says): nodeHandler's, which answers bytes. */
  readonly starts?: boolean
  /** Where a whole answer is copied when the caller gave no `into` (nodeHandler's pool). */
  readonly into?: Into
}
export const REQUEST: Entry = { kind: Kind.HTTP, where: "bus.request", response: false }
export const CALL: Entry = { kind: Kind.RAW, where: "bus.call", response: false }
export const FETCH: Entry = { kind: Kind.HTTP, where: "bus.request", response: true }
/** nodeHandler's bus.fetch of a request's head (bus.requestFor): traced as bus.fetch, answered as a stream. */
export const HEAD_FETCH: Entry = { kind: Kind.HTTP, where: "bus.request", response: false, starts: true }

const INIT_FIELDS = { noun: "request field" }

/** Checks the request's shape and the names of its fields and options; its options, or one shared {} for none. */
export function admit(entry: Entry, init: SlotRequestInit, options: RequestOptions | undefined): RequestOptions {
  if (init === null || typeof init !== "object") throw new TypeError("request() takes { method, path, headers, body }")
  if (entry.kind === Kind.HTTP) checkOptions(init, REQUEST_INIT, "bus.request", INIT_FIELDS)
  return checkOptions(options, REQUEST_OPTIONS, entry.where)
}

/** An HTTP request's head as the codec writes it: method, path, then each header's name and value. */
export function encodeHead(init: SlotRequestInit, maxHeadBytes: number): string[] {
  const method = init.method ?? "GET"
  const path = init.path ?? "/"
  if (typeof method !== "string" || typeof path !== "string" || /[\0\s]/.test(method) || path.includes("\0"))
    throw new TypeError("method and path must be strings without NUL (method without spaces)")
  // a worker's Request is http://<bus><path>: "@evil.example/x" would name another host (an RPC call's is its method)
  if (!path.startsWith("/") && !isRpcVerb(method))
    throw new TypeError(`path must start with "/", got ${JSON.stringify(path.slice(0, 64))}`)
  const strings = [method, path, ...headerPairs(init.headers)]
  const head = headLength(strings)
  if (head > maxHeadBytes)
    throw new HeadTooLargeError(`request head is ${head} bytes, over maxHeadBytes ${maxHeadBytes}`)
  return strings
}

export function checkBodySize(body: Uint8Array, maxBodyBytes: number) {
  if (body.length > maxBodyBytes)
    throw new PayloadTooLargeError(
      `request body is ${body.length} bytes, over maxBodyBytes ${maxBodyBytes}; ${RAISE_MAX_BODY}`,
    )
}

const unsettled = () => {}

const BORROW: Want = { as: "borrow", read: null, into: null }
const RESPONSE: Want = { as: "response", read: null, into: null }
const STREAM: Want = { as: "stream", read: null, into: null }
const WHOLE: Want = { as: "whole", read: null, into: null }

/** What the caller gets from the answer, by the first of its wishes that holds (options.ts refuses the rest). */
function wantOf(entry: Entry, opts: RequestOptions, read: ReadAnswer | null): Want {
  if (read !== null) return { as: "read", read, into: null }
  if (opts.borrow === true) return BORROW
  if (entry.response) return RESPONSE
  const into = opts.into ?? entry.into ?? null
  if (opts.stream === true) return into === null ? STREAM : { as: "stream", read: null, into }
  return into === null ? WHOLE : { as: "whole", read: null, into }
}

/**
 * The request as the Dispatcher keeps it, once its options pass their checks (the bus's limits are the defaults).
 * Its promise, clock and abort hookup come when it is queued (SlotBus's enqueue).
 */
export function newPending(
  entry: Entry,
  strings: string[] | null,
  body: Uint8Array,
  opts: RequestOptions,
  s: ListenSettings,
  read: ReadAnswer | null,
  held: HeldBody | null = null,
): Pending {
  const timeoutMs = positiveInt(opts.timeoutMs, s.timeoutMs, "timeoutMs")
  checkRequestOptions(opts)
  const streamIdleMs = positiveInt(opts.streamIdleMs, s.streamIdleMs, "streamIdleMs")
  return {
    phase: "queued",
    kind: entry.kind,
    strings,
    body,
    bodyLength: body.length,
    want: wantOf(entry, opts, read),
    resolve: unsettled,
    reject: unsettled,
    signal: opts.signal,
    onAbort: undefined,
    signalOf: null,
    timeoutMs,
    deadline: Infinity,
    started: 0,
    stuckFrom: 0,
    endpoint: null,
    slot: -1,
    streamIdleMs,
    in: null,
    idempotent: opts.idempotent === true,
    retried: false,
    waited: false,
    queuedAt: 0,
    trace: null,
    route: opts.route ?? null,
    held,
  }
}

/** Starts the request's trace (trace.ts) and carries its context in the head; nothing when there is none to carry. */
export function addTrace(p: Pending, opts: RequestOptions, entry: Entry, bus: string, maxHeadBytes: number) {
  const trace = clientTrace(p.kind, p.strings, opts, bus, entry.where, entry.starts ?? entry.response)
  if (trace === null) return
  p.strings = headWithContext(p.kind, p.strings, trace.context, opts.route)
  const head = headLength(p.strings)
  if (head > maxHeadBytes) {
    trace.end()
    throw new HeadTooLargeError(
      `request head with its trace context is ${head} bytes, over maxHeadBytes ${maxHeadBytes}`,
    )
  }
  p.trace = trace
}
