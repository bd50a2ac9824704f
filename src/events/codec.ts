// Events, filters and rules as csrc/topic.h encodes them (docs/PROTOCOL.md §8.3, §8.5, §8.6).
import { Encoding, FilterMode, TopicConst } from "../native/topic-layout.ts"
import { checkWellFormed } from "../core/internal.ts"
import { checkOptions, optionNames } from "../kit/index.ts"
import type { BridgeFilter } from "./bridge.ts"

export type Routing = Record<string, string>
export type EventData = Uint8Array | ArrayBufferView | ArrayBuffer | string | unknown

/** What a filter selects: `type` exact ("job.done"), prefix ("session.*", "*" = any), and routing keys that must be equal. */
export interface TopicFilter {
  type?: string
  routing?: Routing
}

const FILTER_KEYS = optionNames<TopicFilter>({ type: true, routing: true })
const utf8 = new TextEncoder()
const HEADER = 16 // the encoded event's header: the record's bytes 16..31
/** §8.3 MAX_EVENT's ceiling: a record's length in 16-byte units has 20 bits (MAX_ALEN, csrc/topic_internal.h). */
const MAX_RECORD = 2 ** 24 - 16

/** The longest encoded event a topic of `capacity` takes: MAX_EVENT = min(capacity / 4, 16 MiB − 16) (§8.3), less the record's 16-byte header. */
export function maxEncodedEvent(capacity: number): number {
  return Math.min(capacity / 4, MAX_RECORD) - 16
}

function checkPart(what: string, s: unknown, max = 255): string {
  if (typeof s !== "string" || s.length === 0)
    throw new TypeError(`${what} must be a non-empty string, got ${JSON.stringify(s)}`)
  checkWellFormed(s, what) // two values differing only in a lone surrogate would encode alike (U+FFFD)
  if (utf8.encode(s).length > max)
    throw new TypeError(`${what} must be at most ${max} bytes of UTF-8: ${JSON.stringify(s.slice(0, 40))}…`)
  return s
}

/**
 * Routing as given, when it is a plain object (its prototype Object.prototype or null): anything else (a Map, an
 * array, a class instance) is a TypeError, as its keys would be none or not what was meant (a Map's entries are
 * no keys: a filter by it would match every event).
 */
export function checkRouting(routing: unknown, what: string): Record<string, unknown> {
  if (typeof routing !== "object" || routing === null)
    throw new TypeError(`${what} must be an object of strings, got ${routing === null ? "null" : typeof routing}`)
  const proto = Object.getPrototypeOf(routing)
  if (proto !== Object.prototype && proto !== null) {
    const kind = Array.isArray(routing) ? "an array" : `a ${proto?.constructor?.name || "non-plain object"}`
    const hint = routing instanceof Map ? " (Object.fromEntries(map) makes one of a Map)" : ""
    throw new TypeError(`${what} must be a plain object of strings, like { tenant: "A" }, got ${kind}${hint}`)
  }
  return routing as Record<string, unknown>
}

// Encoded types and routing keys, cached (and checked) once: events mostly reuse a handful. Only what passes the
// checks is cached: a refused one (a 100 KB type) would be kept for good and fill the cache's 4096 entries.
const bytesCache = new Map<string, Uint8Array>()
function bytesOf(s: string, what: string): Uint8Array {
  let b = bytesCache.get(s)
  if (b === undefined) {
    if (s.length > 255) checkPart(what, s) // over 255 UTF-16 units is over 255 bytes: throws, without encoding it all
    b = utf8.encode(checkWellFormed(s, what))
    if (b.length > 255) checkPart(what, s)
    if (bytesCache.size < 4096) bytesCache.set(s, b)
  }
  return b
}

/** @internal for tests: how many encoded types and routing keys are cached. */
export function cachedNames(): number {
  return bytesCache.size
}

/**
 * Encodes an event into `out` (an encoded event for sb_topic_publish) and returns its length, or -1 if it does
 * not fit. Throws TypeError on a malformed type or routing.
 */
export function encodeEvent(
  out: Uint8Array,
  view: DataView,
  type: string,
  routing: Routing | undefined,
  data: EventData,
): number {
  if (typeof type !== "string" || type.length === 0) checkPart("event type", type)
  const t = bytesOf(type, "event type")
  let n = HEADER
  if (n + t.length > out.length) return -1
  out.set(t, n)
  n += t.length
  let keys = 0
  if (routing !== undefined && routing !== null) {
    const r = checkRouting(routing, "routing")
    for (const k of Object.keys(r)) {
      const v = r[k]
      if (v === undefined) continue
      if (++keys > TopicConst.MAX_KEYS)
        throw new TypeError(`an event carries at most ${TopicConst.MAX_KEYS} routing keys`)
      const kb = bytesOf(checkPart("routing key", k), "routing key")
      const vb =
        typeof v === "string" && v.length > 0 && v.length < 86 && v.isWellFormed()
          ? utf8.encode(v)
          : utf8.encode(checkPart(`routing value of "${k}"`, v))
      if (vb.length > 255) checkPart(`routing value of "${k}"`, v)
      if (n + 2 + kb.length + vb.length > out.length) return -1
      out[n] = kb.length
      out[n + 1] = vb.length
      out.set(kb, n + 2)
      out.set(vb, n + 2 + kb.length)
      n += 2 + kb.length + vb.length
    }
  }
  let enc: number = Encoding.BYTES
  let dataLen = 0
  const bytes = data instanceof Uint8Array ? data : bytesOfData(data)
  if (bytes) {
    if (n + bytes.length > out.length) return -1
    out.set(bytes, n)
    dataLen = bytes.length
  } else if (typeof data === "string") {
    enc = Encoding.STRING
    const r = utf8.encodeInto(data, out.subarray(n))
    if (r.read !== data.length) return -1
    dataLen = r.written
  } else if (data !== undefined) {
    enc = Encoding.JSON
    const json = JSON.stringify(data)
    if (json === undefined) throw new TypeError("event data must be bytes, a string or JSON-serialisable")
    const r = utf8.encodeInto(json, out.subarray(n))
    if (r.read !== json.length) return -1
    dataLen = r.written
  }
  view.setUint32(0, 0, true)
  view.setUint16(4, t.length, true)
  out[6] = keys
  out[7] = enc
  view.setUint32(8, dataLen, true)
  view.setUint32(12, 0, true)
  return n + dataLen
}

/** The bytes of any other typed array, a DataView or an ArrayBuffer (JSON would make `{}` of most of them); else null. */
function bytesOfData(data: unknown): Uint8Array | null {
  if (typeof data !== "object" || data === null) return null
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return new Uint8Array(data)
  return null
}

/** A loss record as an encoded event (§8.3): `lost` events of `type` never reached the ring; no keys, no data. */
export function encodeLoss(type: Uint8Array, lost: number): Uint8Array {
  const rec = new Uint8Array(HEADER + type.length)
  const v = new DataView(rec.buffer)
  v.setUint16(4, type.length, true)
  v.setUint32(12, lost, true)
  rec.set(type, HEADER)
  return rec
}

/** Makes an encoded event another host sent an event here, never a loss record: its `lost` field 0 (§11.2). */
export function clearLost(view: DataView): void {
  view.setUint32(12, 0, true)
}

/** The filter bytes for sb_sub_open, and a printable form. */
export function encodeFilter(filter: TopicFilter): { bytes: Uint8Array; text: string } {
  checkOptions(filter, FILTER_KEYS, "subscribe filter", { noun: "filter key" }) // a typo must not mean "everything"
  const type = filter.type ?? "*"
  if (typeof type !== "string" || type.length === 0)
    throw new TypeError(`filter type must be a non-empty string, got ${JSON.stringify(type)}`)
  checkWellFormed(type, "filter type")
  const routing = filter.routing == null ? {} : checkRouting(filter.routing, "filter routing")
  let mode: number = FilterMode.EXACT
  let t = type
  if (type === "*") (mode = FilterMode.ANY), (t = "")
  else if (type.endsWith("*")) (mode = FilterMode.PREFIX), (t = type.slice(0, -1))
  const tb = utf8.encode(t)
  if (tb.length > 255) throw new TypeError("filter type must be at most 255 bytes")
  const parts: number[] = [mode, tb.length, ...tb]
  const entries = Object.entries(routing).filter(([, v]) => v !== undefined)
  if (entries.length > TopicConst.MAX_FILTER_KEYS)
    throw new TypeError(`a filter matches at most ${TopicConst.MAX_FILTER_KEYS} routing keys, got ${entries.length}`)
  parts.push(entries.length)
  for (const [k, v] of entries) {
    const kb = utf8.encode(checkPart("filter routing key", k))
    const vb = utf8.encode(checkPart(`filter routing value of "${k}"`, v))
    parts.push(kb.length, vb.length, ...kb, ...vb)
  }
  if (parts.length > TopicConst.FILTER_BYTES)
    throw new TypeError(
      `the filter encodes to ${parts.length} bytes; at most ${TopicConst.FILTER_BYTES} fit: use shorter keys or values`,
    )
  const text = [type, ...entries.map(([k, v]) => `${k}=${v}`)].join(" ")
  return { bytes: new Uint8Array(parts), text }
}

/** Decodes a filter read from the registry (stats); undefined if it is not one. */
export function decodeFilter(b: Uint8Array): string | undefined {
  const dec = new TextDecoder()
  if (b.length < 3 || b[0]! > FilterMode.PREFIX) return undefined
  const tl = b[1]!
  const type =
    b[0] === FilterMode.ANY ? "*" : dec.decode(b.subarray(2, 2 + tl)) + (b[0] === FilterMode.PREFIX ? "*" : "")
  let off = 2 + tl
  const keys = b[off++] ?? 0
  const out = [type]
  for (let i = 0; i < keys && off + 2 <= b.length; i++) {
    const kl = b[off]!,
      vl = b[off + 1]!
    out.push(
      `${dec.decode(b.subarray(off + 2, off + 2 + kl))}=${dec.decode(b.subarray(off + 2 + kl, off + 2 + kl + vl))}`,
    )
    off += 2 + kl + vl
  }
  return out.join(" ")
}

/** The type part of filter bytes (§8.5), as a bridge subscribes by it: its mode and a copy of the type's bytes. */
export function filterType(f: Uint8Array): BridgeFilter {
  const mode = f[0] === FilterMode.EXACT ? "exact" : f[0] === FilterMode.PREFIX ? "prefix" : "any"
  return { mode, type: f.slice(2, 2 + f[1]!) }
}

/** A late-binding rule for sb_topic_add_rule: type, A, B, C as (u8 len, bytes), each 1..29 bytes. */
export function encodeRule(type: string, a: string, b: string, c: string): Uint8Array {
  const parts: number[] = []
  for (const [what, s] of [
    ["rule type", type],
    ["key A", a],
    ["key B", b],
    ["key C", c],
  ] as const) {
    const bytes = utf8.encode(checkPart(what, s, 29))
    parts.push(bytes.length, ...bytes)
  }
  return new Uint8Array(parts)
}

/**
 * A test of encoded events (§8.3 bytes 16 … len, as §11.2 carries them) against filter bytes from encodeFilter:
 * true for a well-formed event the filter selects, false for one it does not, null for bytes that are no event.
 */
export function encodedMatcher(filter: Uint8Array): (encoded: Uint8Array) => boolean | null {
  const mode = filter[0]!
  const type = filter.subarray(2, 2 + filter[1]!)
  const keys: [Uint8Array, Uint8Array][] = []
  for (let i = 0, off = 3 + type.length; i < filter[2 + type.length]!; i++) {
    const kl = filter[off]!,
      vl = filter[off + 1]!
    keys.push([filter.subarray(off + 2, off + 2 + kl), filter.subarray(off + 2 + kl, off + 2 + kl + vl)])
    off += 2 + kl + vl
  }
  const same = (a: Uint8Array, at: number, b: Uint8Array) => {
    for (let i = 0; i < b.length; i++) if (a[at + i] !== b[i]) return false
    return true
  }
  return (e) => {
    if (e.length < HEADER) return null
    const v = new DataView(e.buffer, e.byteOffset, HEADER)
    const typeLen = v.getUint16(4, true)
    const keyCount = e[6]!
    const dataLen = v.getUint32(8, true)
    if (typeLen < 1 || typeLen > 255 || keyCount > TopicConst.MAX_KEYS || e[7]! > Encoding.JSON) return null
    if (v.getUint32(12, true) !== 0) return null // a loss record is a ring's, never carried
    let off = HEADER + typeLen
    const keysAt = off
    for (let i = 0; i < keyCount; i++) {
      if (off + 2 > e.length || e[off] === 0 || e[off + 1] === 0) return null
      off += 2 + e[off]! + e[off + 1]!
    }
    if (off + dataLen !== e.length) return null
    if (mode !== FilterMode.ANY) {
      if (mode === FilterMode.EXACT ? typeLen !== type.length : typeLen < type.length) return false
      if (!same(e, HEADER, type)) return false
    }
    for (const [k, val] of keys) {
      let found = false
      for (let i = 0, o = keysAt; i < keyCount && !found; i++, o += 2 + e[o]! + e[o + 1]!)
        found = e[o] === k.length && e[o + 1] === val.length && same(e, o + 2, k) && same(e, o + 2 + k.length, val)
      if (!found) return false
    }
    return true
  }
}
