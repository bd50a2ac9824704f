// An event's trace context (docs/PROTOCOL.md §8.3): the publisher's W3C context rides as the routing keys
// `traceparent` and `tracestate`; a subscriber reads it back (TopicEvent.traceparent) and links its span to it.
import {
  checkTraceOptions,
  otelApi,
  otelTracing,
  remoteParent,
  slotbusTracer,
  SPAN_ERROR,
  spanContext,
  type OtelLink as Link,
  type OtelSpan as Span,
  type TraceContext,
} from "../kit/index.ts"
import { TopicConst } from "../native/topic-layout.ts"
import { checkRouting } from "./codec.ts"

/** What publishTrace reads of an event to publish (options.ts's PublishInit; not imported: options.ts imports the subscription, which imports this). */
type Traced = { type: string; routing?: Record<string, string>; traceparent?: string; tracestate?: string }

/**
 * The event to publish with its context in its routing keys, and the PRODUCER span (with an SDK, inside a trace) to
 * end once it is published; null when there is nothing to carry, or it already carries a `traceparent` key of its own
 * (checked as the option would be: a TypeError, as for an HTTP hub's client that publishes one).
 */
export function publishTrace<E extends Traced>(ev: E, topic: string): { ev: E; span: Span | null } | null {
  const o = otelTracing()
  const routing = ev.routing
  const own =
    typeof routing === "object" &&
    routing !== null &&
    (routing.traceparent !== undefined || routing.tracestate !== undefined)
  if (o === null && ev.traceparent === undefined && ev.tracestate === undefined && !own) return null
  if (routing != null) checkRouting(routing, "routing") // before its keys are copied next to the context
  const explicit = checkTraceOptions(ev, "publish")
  if (own) {
    checkTraceOptions(routing, "publish: its routing keys")
    return null
  }
  if (explicit === undefined && o !== null && o.trace.getSpan(o.context.active()) === undefined) return null // untraced
  const { traceparent: _, tracestate: __, ...plain } = ev
  let context = explicit
  let span: Span | null = null
  if (o !== null) {
    let parent = o.context.active()
    const sc = explicit && remoteParent(o, explicit)
    if (sc) parent = o.trace.setSpanContext(parent, sc)
    // messaging conventions: `{operation name} {destination}`, the operation "publish" of type "send"
    span = slotbusTracer(o).startSpan(
      `publish ${topic}`,
      {
        kind: o.SpanKind.PRODUCER,
        attributes: {
          "messaging.system": "slotbus",
          "messaging.operation.name": "publish",
          "messaging.operation.type": "send",
          "messaging.destination.name": topic,
          "slotbus.event.type": String(ev.type),
        },
      },
      parent,
    )
    context = spanContext(o, span) ?? explicit
  }
  if (context === undefined) return { ev: plain as E, span }
  return { ev: { ...plain, routing: withContext(routing ?? {}, context) } as E, span }
}

/** The routing keys and the context, as many of its keys as there is room for (at most 8 keys in all). */
function withContext(routing: Record<string, string>, c: TraceContext): Record<string, string> {
  let keys = 0
  for (const k of Object.keys(routing)) if (routing[k] !== undefined) keys++
  if (keys >= TopicConst.MAX_KEYS) return routing
  const out: Record<string, string> = { ...routing, traceparent: c.traceparent }
  if (c.tracestate && keys + 2 <= TopicConst.MAX_KEYS && Buffer.byteLength(c.tracestate) <= 255)
    out.tracestate = c.tracestate
  return out
}

/** An OpenTelemetry span link to the publisher's context (for `tracer.startSpan(name, { links: [link] })`). */
export function linkTo(traceparent: string | undefined, tracestate: string | undefined): Link | undefined {
  if (traceparent === undefined) return undefined
  const o = otelApi()
  if (o === null) return undefined
  const context = remoteParent(o, { traceparent, tracestate })
  return context && { context }
}

/** The PRODUCER span's event is published as `id` (`messaging.message.id`), or failed with `err` (`error.type`). */
export function publishEnded(span: Span, id: number | undefined, err?: unknown): void {
  if (id !== undefined) span.setAttribute("messaging.message.id", String(id))
  else {
    if (err instanceof Error) span.recordException(err)
    span.setAttribute("error.type", err instanceof Error ? err.name : "_OTHER")
    span.setStatus({ code: SPAN_ERROR, message: err instanceof Error ? err.message : String(err) })
  }
  span.end()
}
