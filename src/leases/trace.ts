// A claim's trace context: the claimer's W3C context stored with its claim, so whoever sees the holder change can
// link to the claim before. A local contest keeps it in 32 bytes of the claim's entry (docs/PROTOCOL.md §7.2, entry
// +224: trace id, span id, flags, 1 = present); a cluster contest in its key's value (§12.1, `traceparent` and
// `tracestate`). Both take it the same way (claimContext) and record the same span for a claim won (recordClaim).
// Without a context and without an OpenTelemetry SDK a claim pays one property read.
import {
  activeContext,
  checkTraceOptions,
  formatTraceparent,
  otelTracing,
  parseTraceparent,
  remoteParent,
  slotbusTracer,
  type TraceContext,
} from "../kit/index.ts"
import type { Lease } from "./lease.ts"

export const TRACE_BYTES = 32

/**
 * The context to store with a claim: the `traceparent` (and `tracestate`) option, checked by the W3C parser (a
 * TypeError naming the format; a traceparent given as version 00), else the active span's. undefined for none.
 */
export function claimContext(
  opts: { traceparent?: string; tracestate?: string },
  where: string,
): TraceContext | undefined {
  const o = otelTracing()
  if (o === null && opts.traceparent === undefined && opts.tracestate === undefined) return undefined
  return checkTraceOptions(opts, where) ?? (o ? activeContext(o) : undefined)
}

/** The 32 bytes to store with a local claim: the `traceparent` option, else the active span's; null for none. */
export function claimTrace(opts: { traceparent?: string }, where: string): Uint8Array | null {
  const c = claimContext(opts, where)
  if (c === undefined) return null
  const p = parseTraceparent(c.traceparent)!
  const out = new Uint8Array(TRACE_BYTES)
  out.set(Buffer.from(p.traceId, "hex"), 0)
  out.set(Buffer.from(p.spanId, "hex"), 16)
  out[24] = p.traceFlags
  out[25] = 1
  return out
}

/** The `traceparent` of 32 stored bytes, or undefined when they hold none. */
export function storedTraceparent(b: Uint8Array): string | undefined {
  if (b[25] !== 1) return undefined
  const hex = Buffer.from(b.buffer, b.byteOffset, 24).toString("hex")
  return formatTraceparent({ traceId: hex.slice(0, 32), spanId: hex.slice(32, 48), traceFlags: b[24]! })
}

/** A local claim just won: the lease learns its contexts (its own, the replaced claim's) and, with an SDK, a span links. */
export function traceClaim(lease: Lease, trace: Uint8Array | null, replacedBytes: Uint8Array): void {
  const replaced = storedTraceparent(replacedBytes)
  lease.traced(trace === null ? undefined : storedTraceparent(trace), replaced)
  recordClaim(
    lease.subject.label,
    lease.token,
    lease.from,
    replaced === undefined ? undefined : { traceparent: replaced },
  )
}

/**
 * With an SDK: a span `claim <label>` for a claim just won, in the active context, linked to the claim it replaced
 * (the holder change), ended at once.
 */
export function recordClaim(subject: string, token: bigint, from: string, replaced: TraceContext | undefined): void {
  const o = otelTracing()
  if (o === null) return
  const sc = replaced === undefined ? undefined : remoteParent(o, replaced)
  slotbusTracer(o)
    .startSpan(`claim ${subject}`, {
      attributes: {
        "slotbus.lease.subject": subject,
        "slotbus.lease.token": token.toString(),
        "slotbus.lease.from": from,
      },
      links: sc ? [{ context: sc }] : [],
    })
    .end()
}
