// Message heads inside a slot arena (docs/PROTOCOL.md §6): NUL-separated UTF-8 strings, body at align8(head).
import { checkName } from "../../kit/index.ts"

const encoder = new TextEncoder()

export type HeaderInit = Headers | Record<string, string> | Iterable<readonly [string, string]>
/** A body: bytes in any view or buffer, a string (UTF-8), or a Blob (read before the message is sent). */
export type BodyInit = ArrayBufferView | ArrayBuffer | SharedArrayBuffer | Blob | string | null | undefined

// Exact for any length up to 2^53, not only below 2^31: `(n + 7) & ~7` wraps to a negative number for n ≥ 2^31 - 7,
// so a hostile head length would pass a bounds check. Only the low three bits of -n matter, and ToInt32 keeps them.
export const align8 = (n: number) => n + (-n & 7)

/**
 * The error answer's pair only slotbus's own code writes (docs/PROTOCOL.md §6), naming its own error's class: a
 * handler's error with the same `name` has no such pair, so the hub never takes it for one of slotbus's.
 */
export const OWN_ERROR = "slotbus-error"

/** The bytes of a body, as a view where it can be one; a detached buffer is a TypeError, never 0 bytes. */
export function toBytes(body: BodyInit, what: string, takes = BODY_KINDS): Uint8Array {
  if (body == null) return EMPTY
  if (typeof body === "string") return encoder.encode(body)
  let bytes: Uint8Array
  if (body instanceof Uint8Array) bytes = body
  else if (ArrayBuffer.isView(body))
    bytes = new Uint8Array(notDetached(body.buffer, what), body.byteOffset, body.byteLength)
  else if (body instanceof ArrayBuffer || body instanceof SharedArrayBuffer)
    bytes = new Uint8Array(notDetached(body, what))
  else throw new TypeError(`${what} must be ${takes}, got ${typeof body}`)
  // A view of a detached buffer has length 0, so only an empty one needs its buffer looked at: reading
  // `.buffer` of a small typed array makes JSC allocate one (~1 µs), which a request must not pay.
  if (bytes.byteLength === 0) notDetached(bytes.buffer, what)
  return bytes
}

/** What toBytes takes, as its TypeError says (a reply says more: a handler may return more kinds of body). */
const BODY_KINDS = "a Uint8Array (or another ArrayBufferView), ArrayBuffer, Blob, string or null"

/** A streamed body's chunk as bytes: what toBytes takes, or a Blob, read whole (a promise then). */
export function chunkBytes(chunk: unknown): Uint8Array | Promise<Uint8Array> {
  return chunk instanceof Blob ? chunk.bytes() : toBytes(chunk as BodyInit, "a streamed body's chunk")
}

function notDetached(buf: ArrayBufferLike, what: string): ArrayBufferLike {
  if ((buf as ArrayBuffer).detached === true)
    throw new TypeError(`${what}'s ArrayBuffer is detached (it was transferred); pass bytes you still own`)
  return buf
}
export const EMPTY = new Uint8Array(0)
const NO_PAIRS: readonly string[] = Object.freeze([])
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const BAD_VALUE = /[\0\r\n\u0100-\uffff]/

/** Whether `value` may be an HTTP header's value (Latin-1 without NUL, CR or LF, as in Headers). */
export const isHeaderValue = (value: string): boolean => !BAD_VALUE.test(value)

/**
 * Headers as a handler may give them: a HeaderInit, or a record some of whose values are undefined (absent), the
 * type TypeScript infers for branches returning `headers` literals with different keys.
 */
export type HeadersLike = HeaderInit | Readonly<Record<string, string | undefined>>

/** Header pairs with lower-case names, validated: no NUL may appear in a name or value; a record's undefined is absent. */
export function headerPairs(init: HeadersLike | undefined): readonly string[] {
  if (init == null) return NO_PAIRS
  const out: string[] = []
  // Headers hold names lower-case and checked already; forEach gives each set-cookie apart, as iterating does, and
  // makes no [name, value] array per header (bus.fetch's request heads, a fetch-mode worker's Response heads)
  if (init instanceof Headers) {
    init.forEach((value, name) => out.push(name, value))
    return out
  }
  const entries: Iterable<readonly [string, string]> =
    Symbol.iterator in init
      ? (init as Iterable<readonly [string, string]>)
      : Object.entries(init as Record<string, string>)
  const record = !(Symbol.iterator in init)
  for (const [name, value] of entries) {
    if (record && value === undefined) continue
    if (typeof name !== "string" || typeof value !== "string")
      throw new TypeError(`header ${String(name)} must be a string pair`)
    if (!TOKEN.test(name) || BAD_VALUE.test(value))
      throw new TypeError(
        `header ${JSON.stringify(name)} is not a valid HTTP header: the name must be a token, the value Latin-1 without NUL, CR or LF (as in Headers)`,
      )
    out.push(name.toLowerCase(), value)
  }
  return out
}

/** Encoded size of strings each followed by NUL, exactly as writeHead writes them (a lone surrogate as U+FFFD, 3 bytes). */
export function headLength(strings: readonly string[]): number {
  let n = 0
  for (const s of strings) {
    n += s.length + 1
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      if (c < 0x80) continue
      if (c < 0x800) n += 1
      else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00)
        (n += 2), i++ // a pair: 4 bytes for 2 units
      else n += 2 // the rest of the BMP, and lone surrogates
    }
  }
  return n
}

/** Writes strings NUL-terminated at dst[0..]; returns the bytes written. dst must hold headLength(strings). */
export function writeHead(dst: Uint8Array, strings: readonly string[]): number {
  let at = 0
  for (const s of strings) {
    let i = 0
    // ASCII is written directly: encodeInto would need a subarray per string.
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i)
      if (c > 0x7f) break
      dst[at++] = c
    }
    if (i < s.length) at += encoder.encodeInto(s.slice(i), dst.subarray(at)).written
    dst[at++] = 0
  }
  return at
}

/** Splits the head in src[0..end) into its strings. One native decode and a split beat decoding each. */
export function readHead(src: Uint8Array, end: number): string[] {
  if (end === 0) return []
  const head = Buffer.from(src.buffer, src.byteOffset, end) // a view, not a copy
  return head.toString("utf8", 0, src[end - 1] === 0 ? end - 1 : end).split("\0")
}

/**
 * Head pairs as Headers (repeated names appended, so several set-cookie stay apart). A pair Headers refuses
 * (a name that is not an HTTP token: only a non-slotbus peer sends one) is left out.
 */
export function pairsToHeaders(strings: readonly string[], from: number): Headers {
  const out = new Headers()
  for (let i = from; i + 1 < strings.length; i += 2) {
    try {
      out.append(strings[i]!, strings[i + 1]!)
    } catch {}
  }
  return out
}

/** Head pairs from `from` on as [name, value] entries: a Request or Response takes them for less than a Headers. */
export function pairEntries(strings: readonly string[], from: number): [string, string][] {
  const out: [string, string][] = []
  for (let i = from; i + 1 < strings.length; i += 2) out.push([strings[i]!, strings[i + 1]!])
  return out
}

const decoder = new TextDecoder()
export const utf8 = (bytes: Uint8Array) => decoder.decode(bytes)

/** What a bus name may not start with: its file would be a topic's or an election's (docs/PROTOCOL.md §1.1). */
const OTHER_FILES = ["topic.", "fronts.", "fronts-cover.", "bridge."]

/** The C string of a bus name, checked: the C side would stop at a NUL and never see the rest. */
export function busName(name: string): Buffer {
  checkName(name, { what: "bus name" })
  const taken = OTHER_FILES.find((prefix) => name.startsWith(prefix))
  if (taken)
    throw new TypeError(
      `bus name "${name}" starts with "${taken}": its socket file would be that of a ${taken === "topic." ? "topic" : "front, cover or bridge election"} (slotbus.${name}); pick another name`,
    )
  return Buffer.from(`${name}\0`)
}

/**
 * Refuses a string with a lone surrogate: UTF-8 has no bytes for one (it would be written as U+FFFD), so two
 * names differing only there would meet as one subject, label or contest.
 */
export function checkWellFormed(s: string, what: string): string {
  if (!s.isWellFormed())
    throw new TypeError(
      `${what} has a lone surrogate (${JSON.stringify(s)}), which UTF-8 cannot carry; pass well-formed text`,
    )
  return s
}
