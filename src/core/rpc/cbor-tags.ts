// The RPC value encoding both runtimes write and read (docs/PROTOCOL.md §6.1.1): CBOR (RFC 8949) with registered
// tags, for what JSON cannot carry. One implementation for Bun and Node: each engine's own structured-clone bytes
// (bun:jsc, node:v8) are not readable by the other. The npm codecs were measured first and fit less well (cbor-x
// writes -0 as 0, loses Error subclasses and causes, cycles through Maps, and its tag-27 decoder calls any global
// by name; cbor2 carries no cycle, ArrayBuffer or DataView and reads a small bigint back as a number).

/** The tags of §6.1.1. */
export const Tag = {
  EPOCH: 1,
  POS_BIGNUM: 2,
  NEG_BIGNUM: 3,
  OBJECT: 27, // generic object: [class, …]
  SHAREABLE: 28,
  SHARED_REF: 29,
  SET: 258,
  MAP: 259,
  WTF8: 273,
  EXTENDED_TIME: 1001,
  REGEXP: 21066,
} as const

/** RFC 8746's little-endian typed-array tags, by constructor name. */
export const TYPED_TAGS: Record<string, number> = {
  Uint8Array: 64,
  Uint8ClampedArray: 68,
  Uint16Array: 69,
  Uint32Array: 70,
  BigUint64Array: 71,
  Int8Array: 72,
  Int16Array: 77,
  Int32Array: 78,
  BigInt64Array: 79,
  Float16Array: 84,
  Float32Array: 85,
  Float64Array: 86,
}
type TypedArrayClass = { new (b: ArrayBuffer): ArrayBufferView; BYTES_PER_ELEMENT: number }
export const TYPED_CLASSES = new Map<number, TypedArrayClass>()
for (const [name, tag] of Object.entries(TYPED_TAGS)) {
  const c = (globalThis as unknown as Record<string, TypedArrayClass | undefined>)[name]
  if (c) TYPED_CLASSES.set(tag, c)
}

// no prototype: a name such as "constructor" or "toString" is no class of these
export const ERRORS: Record<string, ErrorConstructor> = Object.assign(Object.create(null), {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
})

/** Nesting deeper than this is refused both ways (a decoder's stack against hostile bytes). */
export const MAX_DEPTH = 512
