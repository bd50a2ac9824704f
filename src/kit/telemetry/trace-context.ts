// The W3C trace context (https://www.w3.org/TR/trace-context/, docs/PROTOCOL.md §6.2): the one parser of every
// `traceparent`/`tracestate` slotbus takes, from outside (a client's headers, a head from another host's hub, an
// event's keys, a lease value: receivedContext, never throws) or from the app (its options: checkTraceOptions, a
// TypeError). What it passes on is bounded: a version-00 traceparent (55 characters) and at most 512 characters of
// tracestate, made of whole list members.

/** A W3C trace context, as the headers carry it. */
export interface TraceContext {
  traceparent: string
  tracestate?: string
}

/** The fields of a valid `traceparent`. */
export interface Traceparent {
  version: string
  traceId: string
  spanId: string
  traceFlags: number
}

// version-trace id-parent id-flags; a later version may append fields after a dash (W3C trace context §3.2.4)
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/
const TRACEPARENT_LENGTH = 55
const ZERO_TRACE_ID = "0".repeat(32)
const ZERO_SPAN_ID = "0".repeat(16)
// §3.3.1.3: a simple key, or tenant@system; a value of printable ASCII but "," and "=", not ending in a space
const KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/
const MAX_MEMBERS = 32
/** The most tracestate slotbus passes on, in characters (W3C §3.3.1.5's 512). */
export const TRACESTATE_MAX = 512
const LONG_MEMBER = 128
const OWS = /^[ \t]+|[ \t]+$/g

/**
 * The fields of a W3C `traceparent`, or null: not lower-case hex in the 2-32-16-2 form, version ff, an all-zero id,
 * a version-00 value that is not exactly 55 characters, or a later version's longer value not going on with a dash.
 */
export function parseTraceparent(value: string): Traceparent | null {
  if (typeof value !== "string" || value.length < TRACEPARENT_LENGTH) return null
  const m = TRACEPARENT.exec(value)
  if (m === null) return null
  const [, version, traceId, spanId, flags] = m as unknown as [string, string, string, string, string]
  if (version === "ff") return null
  if (value.length > TRACEPARENT_LENGTH && (version === "00" || value[TRACEPARENT_LENGTH] !== "-")) return null
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return null
  return { version, traceId, spanId, traceFlags: Number.parseInt(flags, 16) }
}

/** The `traceparent` of a span context (version 00). */
export function formatTraceparent(c: { traceId: string; spanId: string; traceFlags: number }): string {
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 0xff).toString(16).padStart(2, "0")}`
}

/** The list members of a `tracestate`, or null when it breaks the grammar: a bad member, a key twice, over 32. */
function tracestateMembers(value: string): string[] | null {
  const members: string[] = []
  const keys = new Set<string>()
  for (const part of value.split(",")) {
    const member = part.replace(OWS, "")
    if (member === "") continue // empty members are allowed, and dropped
    const eq = member.indexOf("=")
    const key = member.slice(0, eq)
    if (eq < 0 || !KEY.test(key) || !VALUE.test(member.slice(eq + 1)) || keys.has(key)) return null
    if (members.push(member) > MAX_MEMBERS) return null
    keys.add(key)
  }
  return members
}

/**
 * A `tracestate` as slotbus passes it on: its members joined by commas, as many whole ones as fit in 512 characters
 * (W3C §3.3.1.5: members over 128 characters go first, then members from the end); "" for none; null when it
 * breaks the grammar (then all of it is dropped, never part).
 */
export function parseTracestate(value: string): string | null {
  if (typeof value !== "string") return null
  const members = tracestateMembers(value)
  if (members === null) return null
  let length = members.length - 1
  for (const m of members) length += m.length
  while (length > TRACESTATE_MAX) {
    let i = members.length - 1
    while (i >= 0 && members[i]!.length <= LONG_MEMBER) i--
    const [dropped] = members.splice(i < 0 ? members.length - 1 : i, 1)
    length -= dropped!.length + 1
  }
  return members.join(",")
}

/**
 * The context a message carries, checked (a request's headers or head, an event's keys): undefined unless its
 * traceparent is valid; the traceparent as version 00, the tracestate as parseTracestate passes it on (left out
 * when invalid or empty). Optional whitespace around either value is ignored, as in an HTTP header. Never throws.
 */
export function receivedContext(
  traceparent: string | null | undefined,
  tracestate?: string | null,
): TraceContext | undefined {
  if (typeof traceparent !== "string") return undefined
  const value = traceparent.length === TRACEPARENT_LENGTH ? traceparent : traceparent.replace(OWS, "")
  const p = parseTraceparent(value)
  if (p === null) return undefined
  const tp = p.version === "00" ? value : formatTraceparent(p)
  const ts = typeof tracestate === "string" ? parseTracestate(tracestate) : null
  return ts ? { traceparent: tp, tracestate: ts } : { traceparent: tp }
}

/**
 * Checks an explicit `{ traceparent, tracestate }` option: a malformed one is a TypeError naming the format, never a
 * context sent on that a receiver would drop. Gives it as it is passed on (a later version's traceparent as 00).
 */
export function checkTraceOptions(
  o: { traceparent?: unknown; tracestate?: unknown },
  where: string,
): TraceContext | undefined {
  const { traceparent, tracestate } = o
  if (traceparent !== undefined && traceparent === checkedIn.traceparent && tracestate === checkedIn.tracestate)
    return checkedOut // the same context again (a bus.remote({ traceparent }) proxy, a loop): checked already
  if (traceparent === undefined) {
    if (tracestate !== undefined)
      throw new TypeError(`${where}: tracestate goes with a traceparent; pass both, or neither`)
    return undefined
  }
  const p = typeof traceparent === "string" ? parseTraceparent(traceparent) : null
  if (p === null)
    throw new TypeError(
      `${where}: traceparent must be a W3C traceparent ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", lower-case, ids not all zero, version not ff), got ${JSON.stringify(traceparent)}`,
    )
  const ts = tracestate === undefined ? "" : typeof tracestate === "string" ? parseTracestate(tracestate) : null
  if (ts === null || (typeof tracestate === "string" && tracestate.length > TRACESTATE_MAX))
    throw new TypeError(
      `${where}: tracestate must be a W3C tracestate (at most 32 key=value members, comma-separated, lower-case keys, printable ASCII values, at most ${TRACESTATE_MAX} characters), got ${JSON.stringify(tracestate)}`,
    )
  const tp = p.version === "00" ? (traceparent as string) : formatTraceparent(p)
  checkedIn = { traceparent, tracestate }
  checkedOut = ts ? { traceparent: tp, tracestate: ts } : { traceparent: tp }
  return checkedOut
}
let checkedIn: { traceparent?: unknown; tracestate?: unknown } = {}
let checkedOut: TraceContext = { traceparent: "" }
