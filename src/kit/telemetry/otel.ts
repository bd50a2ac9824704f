// Tracing through @opentelemetry/api, an optional peer dependency; the W3C trace context is trace-context.ts's.
// The API keeps what an app registers in one global (`Symbol.for("opentelemetry.js.api.1")`), so whether an SDK
// registered a tracer provider is one property read: without the package, or with it and no SDK, nothing is loaded
// and a request pays that read. The API is required only once a provider is there. OpenTelemetry metrics are
// another module's (otel-metrics.ts); this one is traces only.

import { createRequire } from "node:module"
import { formatTraceparent, parseTraceparent, type TraceContext } from "./trace-context.ts"

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
  updateName(name: string): unknown
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
/** SpanStatusCode.ERROR, for a span that ends where the API is not at hand (the spec fixes its value). */
export const SPAN_ERROR = 2
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

// Unbundled (src/ under Bun, the package's dist/ under Node, whose ES modules have no `require`), a require of this
// file's own; in a bundle (bun build, --compile), the literal require, which the bundler takes in.
const unbundled = /\/kit\/telemetry\/otel\.(ts|js)$/.test(import.meta.url)

function load(): Otel | null {
  try {
    return (unbundled ? createRequire(import.meta.url)("@opentelemetry/api") : require("@opentelemetry/api")) as Otel
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
