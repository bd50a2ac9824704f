// RPC over requests (issue 20): a worker exposes functions (SlotWorker.expose), the hub calls them as methods
// that return promises (bus.remote(), bus.invoke()). One call is one request and its reply on the ordinary
// path, nothing new underneath: docs/PROTOCOL.md §6.1 is the mapping. This file is both ends' half of it (the
// encoding, the worker's dispatcher, the hub's proxy and reply reading); it imports neither bus.ts nor worker.ts.
import { PayloadTooLargeError, ProtocolError, RemoteError, UnknownMethodError } from "../../errors.ts"
import { utf8 } from "../wire/codec.ts"
import { RetiredRpc, RpcStatus, RpcVerb } from "../wire/rpc-status.ts"
import { didYouMean, isThenable, preview } from "../../kit/index.ts"
import { decodeCbor } from "./cbor-read.ts"
import { encodeCbor } from "./cbor-write.ts"

// ── The encoding ────────────────────────────────────────────────────────────────────────────────────────────
// CBOR (cbor.ts, docs/PROTOCOL.md §6.1.1: the same bytes under Bun and Node) carries what JSON cannot: typed arrays
// as bytes, Map, Set, Date, BigInt, undefined, NaN, -0, shared references and cycles. But plain data is cheaper as
// JSON, which the engine parses natively, so a value that JSON brings back exactly as CBOR would goes as JSON, and
// everything else as CBOR. The caller sees the same values either way (test/core/rpc/rpc-codec.test.ts checks
// that with fast-check).

const MAX_JSON_DEPTH = 64
/** A 722 result's UTF-8, every character kept (the default decoder drops a leading byte order mark). */
const asText = new TextDecoder("utf-8", { ignoreBOM: true })
const FEW_OBJECTS = 32

/**
 * One look at a value: whether JSON gives it back exactly as CBOR would. That holds for finite numbers but -0,
 * strings, booleans, null, and arrays (without holes) and plain objects of them, each object reached once. (An
 * array's own named properties, besides its elements, neither carries.)
 */
class JsonLook {
  // Objects met so far: a list while they are few (cheaper than a Set for the usual handful), then a Set.
  private list: object[] = []
  private set: Set<object> | null = null

  exact(v: unknown, depth: number): boolean {
    switch (typeof v) {
      case "string":
      case "boolean":
        return true
      case "number":
        return Number.isFinite(v) && (v !== 0 || 1 / v > 0)
      case "object":
        break
      default:
        return false // undefined (JSON drops it), bigint, symbol, function
    }
    if (v === null) return true
    if (depth > MAX_JSON_DEPTH || !this.firstMeeting(v)) return false // shared or cyclic: clone keeps that
    const proto = Object.getPrototypeOf(v)
    if (proto === Array.prototype) {
      const a = v as unknown[]
      for (let i = 0; i < a.length; i++) if (!this.exact(a[i], depth + 1)) return false // a hole reads undefined
      return true
    }
    if (proto !== Object.prototype && proto !== null) return false // Date, Map, typed arrays, class instances, …
    for (const k in v) if (!this.exact((v as Record<string, unknown>)[k], depth + 1)) return false
    return true
  }

  private firstMeeting(o: object): boolean {
    if (this.set !== null) return this.set.size !== this.set.add(o).size
    if (this.list.includes(o)) return false
    if (this.list.push(o) > FEW_OBJECTS) this.set = new Set(this.list)
    return true
  }

  reset() {
    this.list.length = 0
    this.set = null
  }
}

let idleLook: JsonLook | null = new JsonLook()

/** A value's body and whether it is JSON (else CBOR). Throws DataCloneError for what neither can carry. */
export function encodeValue(
  v: unknown,
  limit?: number,
): { json: boolean; body: string | SharedArrayBuffer | Uint8Array } {
  if (v === undefined) return { json: true, body: "" }
  const look = idleLook ?? new JsonLook() // a getter that makes an RPC call during a look gets a look of its own
  idleLook = null
  let exact: boolean
  try {
    exact = look.exact(v, 0)
  } finally {
    look.reset()
    idleLook = look
  }
  return exact ? { json: true, body: JSON.stringify(v) } : { json: false, body: encodeCbor(v, limit) }
}

/** The value encodeValue encoded. */
export function decodeValue(json: boolean, bytes: Uint8Array): unknown {
  if (json) return bytes.length === 0 ? undefined : JSON.parse(utf8(bytes))
  return decodeCbor(bytes)
}

// ── The worker's side ───────────────────────────────────────────────────────────────────────────────────────

const SIGNALLED = Symbol("slotbus.withSignal")
const NEVER_ABORTS = new AbortController().signal

/**
 * Marks an exposed function that wants its call's AbortSignal: it takes the signal first, the caller's
 * arguments after it. The signal aborts when the hub gives the call up (its caller aborted or timed out, or
 * the hub went away). The hub's typing sees the function without the signal; called in-process (a test, a
 * local caller) it gets a signal that never aborts.
 */
export function withSignal<This, A extends unknown[], R>(
  fn: (this: This, signal: AbortSignal, ...args: A) => R,
): (this: This, ...args: A) => R {
  if (typeof fn !== "function") throw new TypeError("withSignal takes a function (signal, ...args) => result")
  const local = function (this: This, ...args: A): R {
    return fn.call(this, NEVER_ABORTS, ...args)
  }
  Object.defineProperty(local, SIGNALLED, { value: fn })
  Object.defineProperty(local, "name", { value: fn.name })
  return local
}

/** What a function marked with `withCall` gets first: its call's signal and its caller's W3C trace context. */
export interface RpcCall {
  readonly signal: AbortSignal
  /** The caller's `traceparent` (docs/PROTOCOL.md §6.2), undefined when it sent none. */
  readonly traceparent: string | undefined
  readonly tracestate: string | undefined
}
const CALLED = Symbol("slotbus.withCall")
const LOCAL_CALL: RpcCall = Object.freeze({ signal: NEVER_ABORTS, traceparent: undefined, tracestate: undefined })

/**
 * Marks an exposed function that wants its call (`RpcCall`: the signal and the caller's trace context, which a
 * worker without OpenTelemetry reads here) first, the caller's arguments after it. Typed for the hub without it;
 * called in-process it gets a signal that never aborts and no context.
 */
export function withCall<This, A extends unknown[], R>(
  fn: (this: This, call: RpcCall, ...args: A) => R,
): (this: This, ...args: A) => R {
  if (typeof fn !== "function") throw new TypeError("withCall takes a function (call, ...args) => result")
  const local = function (this: This, ...args: A): R {
    return fn.call(this, LOCAL_CALL, ...args)
  }
  Object.defineProperty(local, CALLED, { value: fn })
  Object.defineProperty(local, "name", { value: fn.name })
  return local
}

type AnyFunction = (...args: unknown[]) => unknown

/** The functions `api` exposes: its data properties and its prototypes' (a class's methods) that hold functions, but `constructor`. */
export function exposedFunctions(api: object): Map<string, AnyFunction> {
  if (api === null || typeof api !== "object" || Array.isArray(api))
    throw new TypeError("SlotWorker.expose takes an object of functions ({ resize(img, size) { … }, … })")
  const fns = new Map<string, AnyFunction>()
  for (let o: object | null = api; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o))
    for (const name of Object.getOwnPropertyNames(o)) {
      const d = Object.getOwnPropertyDescriptor(o, name)
      if (name !== "constructor" && !fns.has(name) && typeof d?.value === "function") fns.set(name, d.value)
    }
  if (fns.size === 0) throw new TypeError("SlotWorker.expose: the object has no functions to expose")
  return fns
}

/** The parts of a SlotRequest the dispatcher reads (this file does not import worker.ts). */
export interface RpcRequest {
  readonly kind: "raw" | "http"
  readonly method: string
  readonly path: string
  readonly body: Uint8Array
  readonly signal: AbortSignal
  readonly traceparent: string | undefined
  readonly tracestate: string | undefined
}

type RpcReply = { status: number; body: string | SharedArrayBuffer | Uint8Array }

const callOf = (req: RpcRequest): RpcCall => ({
  signal: req.signal,
  traceparent: req.traceparent,
  tracestate: req.tracestate,
})

function resultReply(method: string, v: unknown): RpcReply {
  // a string goes as its UTF-8, written straight into the slot: no JSON quoting here, no parse on the hub (a lone
  // surrogate has no UTF-8: such a string goes as JSON, which keeps it)
  if (typeof v === "string" && v.isWellFormed()) return { status: RpcStatus.RESULT_TEXT, body: v }
  // bytes go as they are, copied once into the slot, when the caller gets back what CBOR would give
  if (v instanceof Uint8Array && isWholeBuffer(v)) return { status: RpcStatus.RESULT_BYTES, body: v }
  let e: { json: boolean; body: string | SharedArrayBuffer | Uint8Array }
  try {
    e = encodeValue(v)
  } catch (err) {
    if (err instanceof PayloadTooLargeError) throw err // the caller's, as one too large for the slot
    throw new DOMException(
      `the result of ${method}() cannot be sent back (${(err as Error)?.message}); return data (no functions, symbols, promises or host objects)`,
      "DataCloneError",
    )
  }
  return { status: e.json ? RpcStatus.RESULT_JSON : RpcStatus.RESULT_CBOR, body: e.body }
}

/**
 * A plain Uint8Array over all of an ArrayBuffer of its own, which 723 gives back as it is. A view of part of a
 * buffer, a subclass (Buffer), a shared, resizable or detached buffer go as CBOR (which refuses what it must).
 */
function isWholeBuffer(v: Uint8Array): boolean {
  if (Object.getPrototypeOf(v) !== Uint8Array.prototype || v.byteOffset !== 0) return false
  const b = v.buffer
  return b instanceof ArrayBuffer && !b.detached && !b.resizable && b.byteLength === v.byteLength
}

/** A thrown Error goes back through the worker's error answer (RemoteError); any other thrown value as itself. */
function thrownReply(thrown: unknown): RpcReply {
  if (thrown instanceof Error) throw thrown
  let e: { json: boolean; body: string | SharedArrayBuffer | Uint8Array }
  try {
    e = encodeValue(thrown)
  } catch {
    e = { json: true, body: JSON.stringify(String(thrown)) }
  }
  return { status: e.json ? RpcStatus.THROWN_JSON : RpcStatus.THROWN_CBOR, body: e.body }
}

/**
 * The handler of a worker that exposes `api`: RPC calls run its functions (with `this` the api object), other
 * requests go to `fallback`, or are refused without one.
 */
export function rpcHandler<Req extends RpcRequest, Out>(api: object, fallback?: (req: Req) => Out) {
  const fns = exposedFunctions(api)
  const names = JSON.stringify([...fns.keys()])
  return (req: Req): Out | RpcReply | Promise<RpcReply> => {
    const json = req.method === RpcVerb.JSON
    if (req.kind !== "http" || (!json && req.method !== RpcVerb.CBOR)) {
      if (req.method === RetiredRpc.VERB && req.kind === "http")
        throw new ProtocolError(
          `the hub called ${req.path}() in the retired ${RetiredRpc.VERB} encoding (slotbus 0.3 and before: one runtime's own structured clone), which this worker does not read; run the same slotbus release on the hub and its workers`,
        )
      if (fallback) return fallback(req)
      throw new TypeError(
        `this worker exposes functions (SlotWorker.expose) and takes no other requests; it got ${req.kind === "raw" ? "a raw call" : `${req.method} ${req.path}`}: pass { handler } to SlotWorker.expose to serve those too`,
      )
    }
    const method = req.path
    const fn = fns.get(method)
    if (fn === undefined) return { status: RpcStatus.NO_SUCH_METHOD, body: names }
    try {
      const args = decodeValue(json, req.body)
      if (!Array.isArray(args)) throw new TypeError(`the arguments of ${method}() did not arrive as a list`)
      const { [SIGNALLED]: signalled, [CALLED]: called } = fn as { [SIGNALLED]?: AnyFunction; [CALLED]?: AnyFunction }
      const out = signalled
        ? signalled.call(api, req.signal, ...args)
        : called
          ? called.call(api, callOf(req), ...args)
          : fn.apply(api, args)
      if (out instanceof Promise || isThenable(out))
        return Promise.resolve(out).then(
          (v) => resultReply(method, v),
          (e) => thrownReply(e),
        )
      return resultReply(method, out)
    } catch (e) {
      return thrownReply(e) // an Error (a result clone refused included) goes on to the worker's error answer
    }
  }
}

// ── The hub's side ──────────────────────────────────────────────────────────────────────────────────────────

/**
 * The hub's view of a worker's exposed API: each function, called with the same arguments, returns a Promise of
 * its result. One that returns a Promise already keeps its own type, so its generics stay.
 */
export type Remote<Api> = {
  readonly [K in keyof Api as K extends string ? (Api[K] extends AnyFunctionType ? K : never) : never]: Api[K] extends (
    ...args: infer A
  ) => infer R
    ? [R] extends [Promise<unknown>] // R of a generic function is read with its type parameters unknown
      ? OmitThisParameter<Api[K]>
      : (...args: A) => Promise<Awaited<R>>
    : never
}
type AnyFunctionType = (...args: never[]) => unknown

/** The request of one call: its verb and body. Arguments the encoding cannot carry are a TypeError, before anything is sent. */
export function encodeCall(
  method: string,
  args: readonly unknown[],
  maxBodyBytes?: number,
): { verb: string; body: string | SharedArrayBuffer | Uint8Array } {
  try {
    const e = encodeValue(args, maxBodyBytes)
    return { verb: e.json ? RpcVerb.JSON : RpcVerb.CBOR, body: e.body }
  } catch (err) {
    if (err instanceof PayloadTooLargeError) throw err
    throw new TypeError(
      `the arguments of ${method}() cannot be sent (${(err as Error)?.message}); pass data (no functions, symbols, promises or host objects)`,
      { cause: err },
    )
  }
}

/** The result of a call from its reply, or the error it is. */
export function decodeReply(method: string, status: number, body: Uint8Array): unknown {
  switch (status) {
    case RpcStatus.RESULT_JSON:
    case RpcStatus.RESULT_CBOR:
      return readReply(method, status, body)
    case RpcStatus.RESULT_TEXT:
      return asText.decode(body) // as it is: a leading U+FEFF is the string's own
    case RpcStatus.RESULT_BYTES:
      return body.slice() // body views the slot, which the next call reuses
    case RpcStatus.THROWN_JSON:
    case RpcStatus.THROWN_CBOR: {
      const thrown = readReply(method, status, body)
      throw new RemoteError(`${method}() threw a value that is not an Error: ${preview(thrown)}`, { cause: thrown })
    }
    case RpcStatus.NO_SUCH_METHOD: {
      const methods = readReply(method, RpcStatus.RESULT_JSON, body)
      if (!Array.isArray(methods) || !methods.every((m) => typeof m === "string")) throw notAReply(method, status)
      const near = didYouMean(method, methods)
      throw new UnknownMethodError(
        `the worker exposes no function "${method}"; ${near ? `did you mean "${near}"? ` : ""}it exposes ${methods.join(", ")}`,
        method,
        methods,
      )
    }
    case RetiredRpc.RESULT:
    case RetiredRpc.THROWN:
      throw new ProtocolError(
        `the worker answered ${method}() in the retired structured-clone encoding (status ${status}, slotbus 0.3 and before: one runtime's own format), which this hub does not read; run the same slotbus release on the hub and its workers`,
      )
    default:
      throw new UnknownMethodError(
        `the worker that took the call of ${method}() exposes no functions: it answered as a plain handler (status ${status}); connect RPC workers with SlotWorker.expose, and only those under this bus name`,
        method,
        [],
      )
  }
}

/** A reply's value; bytes that do not decode are the worker's fault: ProtocolError, not the decoder's own error. */
function readReply(method: string, status: number, body: Uint8Array): unknown {
  try {
    return decodeValue(status === RpcStatus.RESULT_JSON || status === RpcStatus.THROWN_JSON, body)
  } catch (e) {
    throw notAReply(method, status, e)
  }
}

const notAReply = (method: string, status: number, cause?: unknown) =>
  new ProtocolError(
    `the worker's answer to ${method}() (status ${status}) does not decode as an RPC reply: is it a slotbus RPC worker of this version?`,
    { cause },
  )

/**
 * A Proxy whose every string property is a function calling the worker's function of that name through
 * `invoke`. `then` and `toJSON` are not, so awaiting the proxy (or returning it from an async function) and
 * JSON.stringify do not call the worker (bus.invoke calls a function of either name); Symbol.toPrimitive names it,
 * so a template string or `+` does not call `toString` or `valueOf` there.
 */
export function remoteProxy<Api>(invoke: (method: string, args: unknown[]) => Promise<unknown>): Remote<Api> {
  const methods = new Map<string, (...args: unknown[]) => Promise<unknown>>()
  return new Proxy(Object.create(null) as object, {
    get(_, prop) {
      if (prop === Symbol.toPrimitive) return () => "[slotbus remote]"
      if (typeof prop !== "string" || prop === "then" || prop === "toJSON") return undefined
      let f = methods.get(prop)
      if (f === undefined) methods.set(prop, (f = (...args: unknown[]) => invoke(prop, args)))
      return f
    },
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
  }) as Remote<Api>
}
