// Writing §6.1.1's CBOR (the tags and why CBOR: cbor-tags.ts).
import { PayloadTooLargeError } from "../../errors.ts"
import { MAX_DEPTH, Tag, TYPED_TAGS } from "./cbor-tags.ts"

/** The most bytes a value is written to when no smaller limit is given: the largest body any bus takes. */
const MAX_ENCODED = 2 ** 32 - 2 ** 30
const tooLarge = (limit: number) =>
  new PayloadTooLargeError(`an RPC value encoded to more than ${limit} bytes, the most a body may have here`)

const dataCloneError = (what: string) =>
  new DOMException(`slotbus's RPC encoding carries data, not ${what} (docs/PROTOCOL.md §6.1.1)`, "DataCloneError")

/** Objects that structured clone refuses too; anything else without a kind of its own goes as a plain object. */
const REFUSED_TAGS = new Set([
  "[object Promise]",
  "[object WeakMap]",
  "[object WeakSet]",
  "[object WeakRef]",
  "[object FinalizationRegistry]",
  "[object SharedArrayBuffer]",
  "[object Generator]",
  "[object AsyncGenerator]",
])

const utf8Out = new TextEncoder()

class Writer {
  private buf = new Uint8Array(256)
  private view = new DataView(this.buf.buffer)
  private pos = 0
  private readonly seen = new Map<object, number>() // every object written, by its tag-28 index
  /** Past this many bytes the value is refused at once, not written out first. */
  limit = MAX_ENCODED

  /** What was written: a copy, as the writer is used again; a buffer over 64 KiB is handed over instead (not kept). */
  bytes(): Uint8Array {
    if (this.buf.length <= 1 << 16) return this.buf.slice(0, this.pos)
    const out = this.buf.subarray(0, this.pos)
    this.buf = new Uint8Array(256)
    this.view = new DataView(this.buf.buffer)
    return out
  }

  reset() {
    this.pos = 0
    this.seen.clear()
    if (this.buf.length > 1 << 16) {
      this.buf = new Uint8Array(256) // a large value's buffer is not kept
      this.view = new DataView(this.buf.buffer)
    }
  }

  private room(n: number) {
    if (this.pos + n > this.limit) throw tooLarge(this.limit)
    if (this.pos + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  private byte(b: number) {
    this.room(1)
    this.buf[this.pos++] = b
  }

  /** A major type with its argument, in the shortest form (RFC 8949 §3). */
  head(major: number, n: number) {
    this.room(9)
    const m = major << 5
    if (n < 24) this.buf[this.pos++] = m | n
    else if (n < 0x100) {
      this.buf[this.pos++] = m | 24
      this.buf[this.pos++] = n
    } else if (n < 0x10000) {
      this.buf[this.pos++] = m | 25
      this.view.setUint16(this.pos, n)
      this.pos += 2
    } else if (n < 0x100000000) {
      this.buf[this.pos++] = m | 26
      this.view.setUint32(this.pos, n)
      this.pos += 4
    } else {
      this.buf[this.pos++] = m | 27
      this.view.setUint32(this.pos, Math.floor(n / 0x100000000))
      this.view.setUint32(this.pos + 4, n >>> 0)
      this.pos += 8
    }
  }

  private raw(b: Uint8Array) {
    this.room(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }

  private byteString(b: Uint8Array) {
    this.head(2, b.length)
    this.raw(b)
  }

  private f64(n: number) {
    this.room(9)
    this.buf[this.pos++] = 0xfb
    this.view.setFloat64(this.pos, n)
    this.pos += 8
  }

  private number(n: number) {
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) n >= 0 ? this.head(0, n) : this.head(1, -1 - n)
    else this.f64(n)
  }

  private string(s: string) {
    const n = s.length
    if (n < 64) {
      // short strings (keys, mostly) by hand: encodeInto's call costs more than the copy (Node: ~1 µs a key)
      this.room(n * 3 + 9) // head() below asks for 9: room enough that it never moves what is written
      const start = this.pos
      this.pos += n < 24 ? 1 : 2
      let p = this.pos
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        this.buf[p++] = c
      }
      if (i === n) {
        const end = this.pos + n
        this.pos = start
        this.head(3, n)
        this.pos = end
        return
      }
      this.pos = start
    }
    if (!s.isWellFormed()) {
      this.head(6, Tag.WTF8)
      return this.byteString(wtf8(s))
    }
    // at most 3 bytes a UTF-16 unit; the head is written for the exact length once it is known
    this.room(n * 3 + 9)
    const start = this.pos
    const headLen = n * 3 < 24 ? 1 : n * 3 < 0x100 ? 2 : n * 3 < 0x10000 ? 3 : 5
    const { written } = utf8Out.encodeInto(s, this.buf.subarray(start + headLen))
    this.head(3, written)
    if (this.pos !== start + headLen) this.buf.copyWithin(this.pos, start + headLen, start + headLen + written)
    this.pos += written
  }

  private bigint(n: bigint) {
    const neg = n < 0n
    const m = neg ? -1n - n : n
    this.head(6, neg ? Tag.NEG_BIGNUM : Tag.POS_BIGNUM)
    if (m === 0n) return this.head(2, 0)
    // through hex, in linear time: a byte a shift took quadratic time (a 100 KB BigInt, 1.5 s)
    const hex = m.toString(16)
    this.byteString(Uint8Array.fromHex(hex.length % 2 === 0 ? hex : `0${hex}`))
  }

  private date(d: Date) {
    const ms = d.getTime()
    if (Number.isNaN(ms) || ms % 1000 === 0 || Math.round((ms / 1000) * 1000) === ms) {
      this.head(6, Tag.EPOCH)
      return this.number(ms / 1000)
    }
    // where seconds as a double do not give the milliseconds back (beyond ±10^14 ms): RFC 9581 seconds + ms
    const s = Math.floor(ms / 1000)
    this.head(6, Tag.EXTENDED_TIME)
    this.head(5, 2)
    this.head(0, 1)
    this.number(s)
    this.head(1, 2) // key -3
    this.head(0, ms - s * 1000)
  }

  private generic(name: string, args: unknown[], depth: number) {
    this.head(6, Tag.OBJECT)
    this.head(4, args.length + 1)
    this.string(name)
    for (const a of args) this.value(a, depth + 1)
  }

  value(v: unknown, depth: number) {
    switch (typeof v) {
      case "undefined":
        return this.byte(0xf7)
      case "boolean":
        return this.byte(v ? 0xf5 : 0xf4)
      case "number":
        return this.number(v)
      case "string":
        return this.string(v)
      case "bigint":
        return this.bigint(v)
      case "object":
        if (v === null) return this.byte(0xf6)
        return this.object(v, depth)
      default:
        throw dataCloneError(typeof v === "function" ? "a function" : "a symbol")
    }
  }

  private object(o: object, depth: number) {
    if (depth >= MAX_DEPTH) throw dataCloneError(`a value nested over ${MAX_DEPTH} deep`)
    const index = this.seen.get(o)
    if (index !== undefined) {
      this.head(6, Tag.SHARED_REF)
      return this.head(0, index)
    }
    const tag = Object.prototype.toString.call(o)
    if (REFUSED_TAGS.has(tag)) throw dataCloneError(`a ${tag.slice(8, -1)}`)
    // every object is shareable: a reference met later is a tag 29 to it, with no look ahead (§6.1.1)
    this.seen.set(o, this.seen.size)
    this.head(6, Tag.SHAREABLE)
    const d = depth + 1
    if (Array.isArray(o)) {
      // each element takes a byte at least: a sparse array's length alone may be over the limit (not written first)
      if (o.length > this.limit - this.pos) throw tooLarge(this.limit)
      this.head(4, o.length)
      for (let i = 0; i < o.length; i++) this.value(o[i], d)
      return
    }
    if (ArrayBuffer.isView(o)) {
      const bytes = new Uint8Array(o.buffer, o.byteOffset, o.byteLength)
      if (o instanceof DataView) {
        this.head(6, Tag.OBJECT)
        this.head(4, 2)
        this.string("DataView")
        return this.byteString(bytes)
      }
      const typed = TYPED_TAGS[(o as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag]]
      if (typed === undefined) throw dataCloneError(`a ${tag.slice(8, -1)}`)
      this.head(6, typed)
      return this.byteString(bytes)
    }
    if (o instanceof ArrayBuffer) {
      if (o.detached) throw dataCloneError("a detached ArrayBuffer")
      return this.byteString(new Uint8Array(o))
    }
    if (o instanceof Date) return this.date(o)
    if (o instanceof RegExp) {
      this.head(6, Tag.REGEXP)
      this.head(4, 2)
      this.string(o.source)
      return this.string(o.flags)
    }
    if (o instanceof Map) {
      this.head(6, Tag.MAP)
      this.head(5, o.size)
      for (const [k, x] of o) {
        this.value(k, d)
        this.value(x, d)
      }
      return
    }
    if (o instanceof Set) {
      this.head(6, Tag.SET)
      this.head(4, o.size)
      for (const x of o) this.value(x, d)
      return
    }
    if (o instanceof Error) {
      const e = o as Error & { cause?: unknown }
      const extra: Record<string, unknown> = {}
      if (typeof e.stack === "string") extra.stack = e.stack
      if (Object.hasOwn(e, "cause")) extra.cause = e.cause
      return this.generic("Error", [String(e.name), String(e.message), extra], d)
    }
    switch (tag) {
      case "[object Number]":
      case "[object String]":
      case "[object Boolean]":
      case "[object BigInt]":
        return this.generic(tag.slice(8, -1), [(o as { valueOf(): unknown }).valueOf()], d)
      case "[object Object]":
      case "[object Arguments]":
        break
      default:
        throw dataCloneError(`a ${tag.slice(8, -1)}`)
    }
    const keys = Object.keys(o)
    this.head(5, keys.length)
    for (const k of keys) {
      this.string(k)
      this.value((o as Record<string, unknown>)[k], d)
    }
  }
}

/** WTF-8: UTF-8 that also writes a lone surrogate as the 3 bytes of its code point. */
function wtf8(s: string): Uint8Array {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
      }
    }
    if (c < 0x80) out.push(c)
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63))
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
  }
  return Uint8Array.from(out)
}

/** A value as one CBOR data item (§6.1.1). Throws DataCloneError for what it cannot carry. */
export function encodeCbor(v: unknown, limit = MAX_ENCODED): Uint8Array {
  const w = idleWriter ?? new Writer() // a getter that sends an RPC value while one is written gets a writer of its own
  idleWriter = null
  try {
    w.limit = limit
    w.value(v, 0)
    return w.bytes()
  } finally {
    w.reset()
    idleWriter = w
  }
}
let idleWriter: Writer | null = new Writer()
