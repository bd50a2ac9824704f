// A cluster contest's keys and values on its JetStream KV bucket (docs/PROTOCOL.md §12.1, §12.2): the bucket and
// key of a subject, fencing tokens, the margin of §12.4, and a lease value's JSON both ways. kv-lease.ts makes the
// writes on revisions with them.
import { ProtocolError } from "../core/index.ts"
import { checkTraceOptions, type TraceContext } from "../kit/index.ts"
import type { HeldValue } from "../leases/internal.ts"

/** The bucket of a contest (§12.1): `_` as `_5f`, `.` as `_2e`, so the mapping is one to one. */
export const bucketOf = (contest: string) => `slotbus-lease-${contest.replaceAll("_", "_5f").replaceAll(".", "_2e")}`

/** The key of a subject (§12.1): `<kind>.<label in base64url without padding>`, `_` for the empty label. */
export function keyOf(kind: number, label: Uint8Array): string {
  return `${kind}.${label.length === 0 ? "_" : Buffer.from(label).toString("base64url")}`
}

export function subjectOf(key: string): { kind: number; label: string } | null {
  const m = /^(\d+)\.([A-Za-z0-9_-]+)$/.exec(key)
  if (!m) return null
  return { kind: Number(m[1]), label: m[2] === "_" ? "" : Buffer.from(m[2]!, "base64url").toString("utf8") }
}

/** §12.4: what contenders add to a claim's TTL before judging it expired, and holders take off before stopping. */
export const marginFor = (ttlMs: number, marginMs: number) => marginMs + Math.ceil(ttlMs / 100)

const TOKEN_SHIFT = 2n ** 20n
/** §12.2: a token is a u64; a larger one is not slotbus's, and none is written that a reader could not take. */
export const MAX_TOKEN = 2n ** 64n - 1n

/** §12.2: the token of a claim replacing one whose token was `previous` (undefined: the key was absent). */
export function nextToken(previous: bigint | undefined, nowMs: number, epochMs: number, key = "?"): bigint {
  const clock = BigInt(Math.floor(Math.max(nowMs, epochMs + 1))) * TOKEN_SHIFT
  const next = previous !== undefined && previous + 1n > clock ? previous + 1n : clock
  if (next > MAX_TOKEN)
    throw new ProtocolError(
      `lease key ${key} holds token ${previous}, the largest a fencing token can be (2^64 - 1): no claim can follow it; someone set it by hand? delete the key (fencing against that token is then lost)`,
    )
  return next
}

/** A free value keeps the last claim's token, and its context (§12.1), for the next claim. */
export type LeaseValue = HeldValue | { state: "free"; token: bigint; traceparent?: string; tracestate?: string }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeValue(v: LeaseValue): Uint8Array {
  const token = v.token.toString()
  const trace = v.traceparent === undefined ? {} : { traceparent: v.traceparent, tracestate: v.tracestate }
  return encoder.encode(
    JSON.stringify(
      v.state === "free"
        ? { v: 1, state: "free", token, ...trace }
        : {
            v: 1,
            state: "held",
            token,
            claim: v.claim,
            owner: v.owner,
            ttlMs: v.ttlMs,
            host: v.host,
            pid: v.pid,
            ...trace,
          },
    ),
  )
}

/** The context a value carries (§12.1): undefined for none, null when its `traceparent`/`tracestate` are malformed. */
function traceIn(o: Record<string, unknown>): TraceContext | undefined | null {
  try {
    return checkTraceOptions(o, "a lease value")
  } catch {
    return null
  }
}

/** The context a decoded value carries, if any. */
export function contextOf(v: LeaseValue): TraceContext | undefined {
  if (v.traceparent === undefined) return undefined
  return v.tracestate === undefined
    ? { traceparent: v.traceparent }
    : { traceparent: v.traceparent, tracestate: v.tracestate }
}

/** A value as §12.1 lays it out, or a ProtocolError naming the key: nobody writes over a value it cannot read. */
export function decodeValue(key: string, bytes: Uint8Array): LeaseValue {
  let o: Record<string, unknown>
  try {
    o = JSON.parse(decoder.decode(bytes)) as Record<string, unknown>
  } catch {
    o = {}
  }
  if (o === null || typeof o !== "object") o = {}
  const digits = typeof o.token === "string" && /^\d{1,20}$/.test(o.token) ? BigInt(o.token) : -1n
  const token = digits <= MAX_TOKEN ? digits : -1n
  const trace = traceIn(o)
  if (o.v === 1 && token >= 0n && trace !== null) {
    if (o.state === "free") return { state: "free", token, ...trace }
    if (
      o.state === "held" &&
      typeof o.claim === "string" &&
      typeof o.owner === "string" &&
      Number.isInteger(o.ttlMs) &&
      (o.ttlMs as number) > 0 &&
      typeof o.host === "string" &&
      Number.isInteger(o.pid)
    )
      return {
        state: "held",
        token,
        claim: o.claim,
        owner: o.owner,
        ttlMs: o.ttlMs as number,
        host: o.host,
        pid: o.pid as number,
        ...trace,
      }
  }
  throw new ProtocolError(
    `lease key ${key} holds a value that is not a slotbus lease (docs/PROTOCOL.md §12.1)${trace === null ? ": its traceparent or tracestate is not a W3C trace context" : ""}; nothing overwrites it: delete the key if it is garbage`,
  )
}
