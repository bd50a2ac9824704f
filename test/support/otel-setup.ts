// The real OpenTelemetry SDK, registered globally for the tracing tests (test/core/probe/trace.test.ts): a tracer
// provider with a span processor per exporter given, and the AsyncLocalStorage context manager (which works in Bun).
import * as api from "@opentelemetry/api"
import { context, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import {
  BasicTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import type { Otel, OtelLink } from "../../src/kit/telemetry/otel.ts"

/** slotbus declares the parts of the API it uses itself (kit/telemetry/otel.ts), so its types never name the package: they fit. */
export const apiFits: Otel = api
export const linkFits = (l: OtelLink): api.Link => l

/** Registers the SDK; returns the function that unregisters it. */
export function registerOtel(exporter: SpanExporter): () => Promise<void> {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const cm = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(cm)
  trace.setGlobalTracerProvider(provider)
  return async () => {
    await provider.shutdown()
    trace.disable()
    context.disable()
  }
}

/** A finished span as one JSON line: what a child process prints for the test to collect. */
export interface SpanLine {
  name: string
  kind: number
  traceId: string
  spanId: string
  parentSpanId: string | undefined
  links: { traceId: string; spanId: string }[]
  attributes: Record<string, unknown>
}

export function spanLine(s: ReadableSpan): SpanLine {
  return {
    name: s.name,
    kind: s.kind,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
    attributes: { ...s.attributes },
  }
}

/** An exporter that prints each span as `span <json>` on stdout. */
export const stdoutExporter: SpanExporter = {
  export(spans, done) {
    for (const s of spans) console.log(`span ${JSON.stringify(spanLine(s))}`)
    done({ code: 0 })
  },
  shutdown: async () => {},
}

/** The OTLP/HTTP exporter (JSON) sending each span to `url` (a `/v1/traces` endpoint). */
export const otlpExporter = (url: string): SpanExporter => new OTLPTraceExporter({ url })
