// Tracing through @opentelemetry/api, an optional peer dependency, and the W3C trace context (docs/PROTOCOL.md §6.2).
// The API keeps what an app registers in one global (`Symbol.for("opentelemetry.js.api.1")`), so whether an SDK
// registered a tracer provider is one property read: without the package, or with it and no SDK, nothing is loaded
// and a request pays that read. The API is required only once a provider is there. OpenTelemetry metrics are
// another module's (otel-metrics.ts); this one is traces only.

// The parts of @opentelemetry/api slotbus uses, declared here so that no type of slotbus names the optional package
// (an app without it type-checks clean); test/support/otel-setup.ts checks the real API fits them.
export interface OtelTraceState {
  set(key: string, value: string): OtelTraceState
  unset(key: string): OtelTraceState
  get(key: string): string | undefined
  serialize(): string
}
export interface OtelSpanContext {
  traceId: string
  spanId: string
  traceFlags: number
  isRemote?: boolean
  traceState?: OtelTraceState
}
/** A span link, as OpenTelemetry's `Link` (pass it in `tracer.startSpan(name, { links })`). */
export interface OtelLink {
  context: OtelSpanContext
}
export type OtelAttributes = Record<string, string | number | boolean | undefined>
export interface OtelSpan {
  spanContext(): OtelSpanContext
  setAttribute(key: string, value: string | number | boolean): unknown
  addEvent(name: string): unknown
  recordException(exception: Error): void
  setStatus(status: { code: number; message?: string }): unknown
  end(): void
}
/** An OpenTelemetry Context: opaque here. */
export interface OtelContext {
  getValue(key: symbol): unknown
}
export interface OtelTracer {
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: OtelAttributes; links?: OtelLink[] },
    context?: OtelContext,
  ): OtelSpan
}
export interface Otel {
  trace: {
    getTracer(name: string): OtelTracer
    getSpan(context: OtelContext): OtelSpan | undefined
    setSpan(context: OtelContext, span: OtelSpan): OtelContext
    setSpanContext(context: OtelContext, spanContext: OtelSpanContext): OtelContext
    isSpanContextValid(spanContext: OtelSpanContext): boolean
  }
  context: {
    active(): OtelContext
    with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
      context: OtelContext,
      fn: F,
      thisArg?: ThisParameterType<F>,
      ...args: A
    ): ReturnType<F>
  }
  ROOT_CONTEXT: OtelContext
  SpanKind: { INTERNAL: number; SERVER: number; CLIENT: number; PRODUCER: number; CONSUMER: number }
  SpanStatusCode: { ERROR: number }
  createTraceState(raw?: string): OtelTraceState
}
const REGISTRY = Symbol.for("opentelemetry.js.api.1")
const globals = globalThis as unknown as Record<symbol, { trace?: unknown } | undefined>
let api: Otel | null | undefined // undefined: not looked for yet; null: not installed
let tracer: OtelTracer | null = null
let tracerOf: unknown = null // the registered provider tracer was got from: a provider registered anew gets a new one

/** The OpenTelemetry API when an SDK registered a tracer provider (`trace.setGlobalTracerProvider`), else null. */
export function otelTracing(): Otel | null {
  if (globals[REGISTRY]?.trace === undefined) return null
  if (api === undefined) api = load()
  return api
}

/** The OpenTelemetry API if it is installed (SDK or not), else null. */
export function otelApi(): Otel | null {
  if (api === undefined) api = load()
  return api
}

function load(): Otel | null {
  try {
    return require("@opentelemetry/api") as Otel
  } catch {
    return null // a provider registered through another copy of the API, and none reachable from here
  }
}

/** slotbus's tracer, from the tracer provider registered now. */
export function slotbusTracer(o: Otel): OtelTracer {
  const provider = globals[REGISTRY]?.trace
  if (tracer === null || tracerOf !== provider) {
    tracer = o.trace.getTracer("slotbus")
    tracerOf = provider
  }
  return tracer
}

/** A W3C trace context, as the headers carry it. */
export interface TraceContext {
  traceparent: string
  tracestate?: string
}

// version-trace id-parent id-flags; a later version may append fields after a dash (W3C trace context §3.2.4)
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\0\r\n]*)?$/
const TRACESTATE = /^[\x20-\x7e]{0,512}$/
const ZERO_TRACE_ID = "0".repeat(32)
const ZERO_SPAN_ID = "0".repeat(16)

/** The parts of a valid `traceparent`, or null (malformed, version ff, an all-zero id, or extra fields in version 00). */
export function parseTraceparent(
  value: string,
): { traceId: string; spanId: string; traceFlags: number; version: string } | null {
  const m = TRACEPARENT.exec(value)
  if (m === null) return null
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string?]
  if (version === "ff" || (version === "00" && rest !== undefined)) return null
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return null
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16), version }
}

/** The `traceparent` of a span context (version 00). */
export function formatTraceparent(c: { traceId: string; spanId: string; traceFlags: number }): string {
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 0xff).toString(16).padStart(2, "0")}`
}

/**
 * Checks an explicit `{ traceparent, tracestate }` option: a malformed one is a TypeError naming the format, never a
 * context sent on that a receiver would drop.
 */
export function checkTraceOptions(
  o: { traceparent?: unknown; tracestate?: unknown },
  where: string,
): TraceContext | undefined {
  const { traceparent, tracestate } = o
  if (traceparent !== undefined && traceparent === lastChecked.traceparent && tracestate === lastChecked.tracestate)
    return lastChecked // the same context again (a bus.remote({ traceparent }) proxy, a loop): checked already
  if (traceparent === undefined) {
    if (tracestate !== undefined)
      throw new TypeError(`${where}: tracestate goes with a traceparent; pass both, or neither`)
    return undefined
  }
  if (typeof traceparent !== "string" || parseTraceparent(traceparent) === null)
    throw new TypeError(
      `${where}: traceparent must be a W3C traceparent ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", lower-case, ids not all zero), got ${JSON.stringify(traceparent)}`,
    )
  if (tracestate !== undefined && (typeof tracestate !== "string" || !TRACESTATE.test(tracestate)))
    throw new TypeError(
      `${where}: tracestate must be a W3C tracestate (printable ASCII, at most 512 characters), got ${JSON.stringify(tracestate)}`,
    )
  lastChecked = tracestate === undefined ? { traceparent } : { traceparent, tracestate }
  return lastChecked
}
let lastChecked: TraceContext = { traceparent: "" }

/** The context to carry for the active span, if any (and valid). */
export function activeContext(o: Otel): TraceContext | undefined {
  const span = o.trace.getSpan(o.context.active())
  if (span === undefined) return undefined
  return spanContext(o, span)
}

/** A span's context as `traceparent`/`tracestate`, or undefined for an invalid one (a no-op span). */
export function spanContext(o: Otel, span: OtelSpan): TraceContext | undefined {
  const c = span.spanContext()
  if (!o.trace.isSpanContextValid(c)) return undefined
  const state = c.traceState?.serialize()
  return state ? { traceparent: formatTraceparent(c), tracestate: state } : { traceparent: formatTraceparent(c) }
}

/** The remote span context `tc` names (to start a child of, or to link to), or undefined if it is malformed. */
export function remoteParent(o: Otel, tc: TraceContext): OtelSpanContext | undefined {
  const p = parseTraceparent(tc.traceparent)
  if (p === null) return undefined
  return {
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.traceFlags & 1,
    isRemote: true,
    traceState: tc.tracestate ? o.createTraceState(tc.tracestate) : undefined,
  }
}
