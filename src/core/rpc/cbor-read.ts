// Reading §6.1.1's CBOR, from a peer that may be of another runtime, version or language: every length is checked
// against the bytes left, every tag against the profile, and anything else is a ProtocolError.
import { ProtocolError } from "../../errors.ts"
import { ERRORS, MAX_DEPTH, Tag, TYPED_CLASSES } from "./cbor-tags.ts"

const utf8In = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const PENDING = Symbol("pending")
const MAX_BIGNUM_BYTES = 2 ** 27
const bad = (why: string) => new ProtocolError(`an RPC value's CBOR is malformed: ${why}`)

class Reader {
  private pos = 0
  private readonly view: DataView
  private readonly refs: unknown[] = []
  /** The tag-28 index the next container made takes, or -1. */
  private share = -1

  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  }

  end() {
    if (this.pos !== this.b.length) throw bad(`${this.b.length - this.pos} bytes after the value`)
  }

  private need(n: number) {
    if (n > this.b.length - this.pos) throw bad("it ends inside an item")
  }

  /** A container made: it takes the pending tag-28 index before its contents are read (so a cycle finds it). */
  private made<T>(o: T): T {
    if (this.share >= 0) {
      this.refs[this.share] = o
      this.share = -1
    }
    return o
  }

  /** The major type of the head read last. */
  private major = 0

  /** An item's head: its argument, its major type in `major` (an indefinite length is refused). */
  private head(): number {
    this.need(1)
    const ib = this.b[this.pos++]!
    const major = ib >> 5
    const ai = ib & 31
    this.major = major
    if (major === 7 || ai < 24) return ai
    let n: number
    if (ai === 24) {
      this.need(1)
      n = this.b[this.pos]!
      this.pos += 1
    } else if (ai === 25) {
      this.need(2)
      n = this.view.getUint16(this.pos)
      this.pos += 2
    } else if (ai === 26) {
      this.need(4)
      n = this.view.getUint32(this.pos)
      this.pos += 4
    } else if (ai === 27) {
      this.need(8)
      const big = this.view.getBigUint64(this.pos)
      this.pos += 8
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
        if (major === 0 || major === 1) {
          this.bigHead = big
          return -1
        }
        throw bad("a length over 2^53")
      }
      n = Number(big)
    } else throw bad(ai === 31 ? "an indefinite length (not used here)" : `reserved additional info ${ai}`)
    return n
  }
  private bigHead = 0n

  private length(n: number, unit: number) {
    if (n * unit > this.b.length - this.pos) throw bad("a length past the end")
    return n
  }

  private bytes(): Uint8Array {
    const n = this.head()
    const major = this.major
    if (major !== 2) throw bad("a tag that takes a byte string has another item")
    this.length(n, 1)
    return this.b.subarray(this.pos, (this.pos += n))
  }

  private text(): string {
    const n = this.head()
    const major = this.major
    if (major !== 3) throw bad("a text string expected")
    return this.utf8(n)
  }

  private utf8(n: number): string {
    this.length(n, 1)
    const b = this.b
    const start = this.pos
    if (n < 64) {
      // short ASCII by hand, as the writer does
      let s = ""
      let i = start
      for (; i < start + n && b[i]! < 0x80; i++) s += String.fromCharCode(b[i]!)
      if (i === start + n) {
        this.pos = i
        return s
      }
    }
    try {
      return utf8In.decode(b.subarray(start, (this.pos += n)))
    } catch {
      throw bad("a text string that is not UTF-8")
    }
  }

  value(depth: number): unknown {
    // the writer counts containers; here each tag counts too (a shared container is tag 28 on it, a BigInt a tag)
    if (depth > 2 * MAX_DEPTH + 1) throw bad(`nested over ${MAX_DEPTH} deep`)
    const share = this.share
    this.share = -1 // only the item right under tag 28 takes it
    const n = this.head()
    const major = this.major
    switch (major) {
      case 0:
        return n < 0 ? this.bigHead : n
      case 1:
        return n < 0 ? -1n - this.bigHead : -1 - n
      case 2: {
        this.length(n, 1)
        const ab = this.b.slice(this.pos, (this.pos += n)).buffer
        return ab
      }
      case 3:
        return this.utf8(n)
      case 4: {
        this.length(n, 1)
        this.share = share
        const a = this.made(new Array(n))
        for (let i = 0; i < n; i++) a[i] = this.value(depth + 1)
        return a
      }
      case 5: {
        this.length(n, 2)
        this.share = share
        const o = this.made({} as Record<string, unknown>)
        for (let i = 0; i < n; i++) {
          const k = this.value(depth + 1)
          if (typeof k !== "string") throw bad("an object key that is not a text string (a Map is tag 259)")
          const v = this.value(depth + 1)
          if (k === "__proto__")
            Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
          else o[k] = v
        }
        return o
      }
      case 6:
        return this.tagged(n, share, depth)
      default:
        return this.simple(n)
    }
  }

  private simple(ai: number): unknown {
    switch (ai) {
      case 20:
        return false
      case 21:
        return true
      case 22:
        return null
      case 23:
        return undefined
      case 25: {
        this.need(2)
        const h = this.view.getUint16(this.pos)
        this.pos += 2
        return half(h)
      }
      case 26: {
        this.need(4)
        const f = this.view.getFloat32(this.pos)
        this.pos += 4
        return f
      }
      case 27: {
        this.need(8)
        const f = this.view.getFloat64(this.pos)
        this.pos += 8
        return f
      }
      default:
        throw bad(`simple value ${ai} (not used here)`)
    }
  }

  private tagged(tag: number, share: number, depth: number): unknown {
    const d = depth + 1
    switch (tag) {
      case Tag.SHAREABLE: {
        if (share >= 0) throw bad("tag 28 on tag 28")
        const i = this.refs.push(PENDING) - 1
        this.share = i
        const v = this.value(d)
        if (this.refs[i] === PENDING) this.refs[i] = v // a value that is no container takes it once read
        return v
      }
      case Tag.SHARED_REF: {
        const i = this.head()
        if (this.major !== 0 || i < 0) throw bad("tag 29 on something else than an unsigned integer")
        if (i >= this.refs.length) throw bad(`tag 29 to ${i}, not a shared value before it`)
        const v = this.refs[i]
        if (v === PENDING) throw bad(`tag 29 to ${i}, a value inside its own making that cannot hold itself`)
        return v
      }
      case Tag.EPOCH: {
        const s = this.value(d)
        if (typeof s !== "number") throw bad("tag 1 on something else than a number")
        return new Date(Math.round(s * 1000))
      }
      case Tag.EXTENDED_TIME: {
        const n = this.head()
        const major = this.major
        if (major !== 5) throw bad("tag 1001 on something else than a map")
        this.length(n, 2)
        const m = new Map<unknown, unknown>()
        for (let i = 0; i < n; i++) m.set(this.value(d), this.value(d))
        const s = m.get(1)
        const ms = m.get(-3) ?? 0
        if (!Number.isSafeInteger(s) || !Number.isSafeInteger(ms))
          throw bad("tag 1001 without whole seconds (key 1) and milliseconds (key -3)")
        return new Date((s as number) * 1000 + (ms as number))
      }
      case Tag.POS_BIGNUM:
      case Tag.NEG_BIGNUM: {
        let b = this.bytes()
        // leading zero bytes are read (RFC 8949 §3.4.3: decoders must), and not counted against the cap
        let z = 0
        while (z < b.length && b[z] === 0) z++
        b = b.subarray(z)
        // past 2^30 bits neither engine makes the BigInt (Node's error would quote all of its hex)
        if (b.length > MAX_BIGNUM_BYTES) throw bad(`a bignum of ${b.length} bytes, over the 2^30 bits a BigInt holds`)
        // through hex, in linear time: a shift and an or a byte took quadratic time (a 400 KB bignum, 23 s)
        const n = b.length === 0 ? 0n : BigInt(`0x${b.toHex()}`)
        return tag === Tag.POS_BIGNUM ? n : -1n - n
      }
      case Tag.WTF8:
        return unwtf8(this.bytes())
      case Tag.REGEXP: {
        const n = this.head()
        const major = this.major
        if (major !== 4 || n !== 2) throw bad("tag 21066 on something else than [source, flags]")
        const source = this.text()
        const flags = this.text()
        try {
          return new RegExp(source, flags)
        } catch (e) {
          throw bad(`a RegExp that does not compile: ${(e as Error).message}`)
        }
      }
      case Tag.SET: {
        const n = this.head()
        const major = this.major
        if (major !== 4) throw bad("tag 258 on something else than an array")
        this.length(n, 1)
        this.share = share
        const s = this.made(new Set<unknown>())
        for (let i = 0; i < n; i++) s.add(this.value(d))
        return s
      }
      case Tag.MAP: {
        const n = this.head()
        const major = this.major
        if (major !== 5) throw bad("tag 259 on something else than a map")
        this.length(n, 2)
        this.share = share
        const m = this.made(new Map<unknown, unknown>())
        for (let i = 0; i < n; i++) {
          const k = this.value(d)
          m.set(k, this.value(d))
        }
        return m
      }
      case Tag.OBJECT:
        return this.generic(share, d)
      default: {
        const c = TYPED_CLASSES.get(tag)
        if (c === undefined) throw bad(`tag ${tag} (not used here)`)
        const b = this.bytes()
        if (b.length % c.BYTES_PER_ELEMENT !== 0)
          throw bad(`tag ${tag}: ${b.length} bytes is no whole number of elements`)
        return new c(b.slice().buffer)
      }
    }
  }

  /** Tag 27: [class, …] for what has no registered tag (§6.1.1). */
  private generic(share: number, d: number): unknown {
    const n = this.head()
    const major = this.major
    if (major !== 4 || n < 2) throw bad("tag 27 on something else than [class, …]")
    const name = this.text()
    if (name === "Error" && n === 4) {
      const errorName = this.text()
      const message = this.text()
      const e = bare(ERRORS[errorName] ?? Error, message)
      if (!(errorName in ERRORS))
        Object.defineProperty(e, "name", { value: errorName, writable: true, configurable: true })
      this.share = share
      this.made(e)
      const extra = this.value(d)
      if (extra === null || typeof extra !== "object") throw bad("an Error's details are not a map")
      const { stack, cause } = extra as { stack?: unknown; cause?: unknown }
      // the remote's stack, or its name and message only: never the frames of the decoder that made it here
      const own = typeof stack === "string" ? stack : message ? `${errorName}: ${message}` : errorName
      Object.defineProperty(e, "stack", { value: own, writable: true, configurable: true })
      if (Object.hasOwn(extra, "cause"))
        Object.defineProperty(e, "cause", { value: cause, writable: true, configurable: true })
      return e
    }
    if (n !== 2) throw bad(`tag 27 ["${name}", …] of ${n} items`)
    const v = this.value(d)
    let out: object
    if (name === "DataView" && v instanceof ArrayBuffer) out = new DataView(v)
    else if (name === "Number" && typeof v === "number") out = Object(v)
    else if (name === "String" && typeof v === "string") out = Object(v)
    else if (name === "Boolean" && typeof v === "boolean") out = Object(v)
    else if (name === "BigInt" && typeof v === "bigint") out = Object(v)
    else throw bad(`tag 27 ["${name}", …] (not used here)`)
    return out
  }
}

/** An Error made with no frames: Bun's inspect prints the source lines where one was made (here, this file). */
function bare(make: ErrorConstructor, message: string): Error {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new make(message)
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** IEEE 754 half precision. */
function half(h: number): number {
  const e = (h >> 10) & 31
  const f = h & 1023
  const v = e === 0 ? f * 2 ** -24 : e === 31 ? (f ? Number.NaN : Number.POSITIVE_INFINITY) : (1024 + f) * 2 ** (e - 25)
  return h & 0x8000 ? -v : v
}

function unwtf8(b: Uint8Array): string {
  let s = ""
  for (let i = 0; i < b.length; ) {
    const x = b[i]!
    const n = x < 0x80 ? 1 : x >= 0xf0 ? 4 : x >= 0xe0 ? 3 : x >= 0xc0 ? 2 : 0
    if (n === 0 || i + n > b.length) throw bad("tag 273 on bytes that are not WTF-8")
    let c = n === 1 ? x : x & (0xff >> (n + 1))
    for (let j = 1; j < n; j++) {
      const y = b[i + j]!
      if ((y & 0xc0) !== 0x80) throw bad("tag 273 on bytes that are not WTF-8")
      c = (c << 6) | (y & 63)
    }
    s += String.fromCodePoint(c)
    i += n
  }
  return s
}

/** The value of one CBOR data item that fills `bytes` (§6.1.1). Throws ProtocolError for bytes that are not one. */
export function decodeCbor(bytes: Uint8Array): unknown {
  const r = new Reader(bytes)
  let v: unknown
  try {
    v = r.value(0)
  } catch (e) {
    if (e instanceof ProtocolError) throw e
    throw bad(String(e)) // a RangeError of the engine's own stack, say
  }
  r.end()
  return v
}
