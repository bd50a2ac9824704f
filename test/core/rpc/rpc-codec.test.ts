// The RPC encoding in one process: JSON where it gives a value back exactly as CBOR would, CBOR (docs/PROTOCOL.md
// §6.1.1) everywhere else, and the caller never sees the difference.
import { describe, expect, test } from "bun:test"
import { ProtocolError } from "../../../src/errors.ts"
import { deserialize, serialize } from "bun:jsc"
import fc from "fast-check"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { decodeCbor } from "../../../src/core/rpc/cbor-read.ts"
import { encodeCbor } from "../../../src/core/rpc/cbor-write.ts"
import { decodeValue, encodeValue } from "../../../src/core/rpc/rpc.ts"
import { RpcStatus, RpcVerb } from "../../../src/core/wire/rpc-status.ts"

/** fast-check's anything() with every kind structured clone carries, keys `__proto__` included. */
const KINDS = {
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withTypedArray: true,
  key: fc.oneof(fc.string(), fc.constant("__proto__")),
} as const

const ANY = fc.anything({
  ...KINDS,
  withSparseArray: true,
  // Leaves JSON gets wrong (-0, NaN, undefined) often enough to meet them inside plain objects and arrays.
  values: [
    fc.string({ unit: "binary" }),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constantFrom(null, undefined, -0, Number.NaN, Number.NEGATIVE_INFINITY),
  ],
})

/** What a value is once it crossed: encoded, put in bytes as a slot would carry them, decoded. */
function crossed(v: unknown): { json: boolean; value: unknown } {
  const e = encodeValue(v)
  const bytes =
    typeof e.body === "string"
      ? new TextEncoder().encode(e.body)
      : e.body instanceof Uint8Array
        ? e.body
        : new Uint8Array(e.body)
  return { json: e.json, value: decodeValue(e.json, bytes) }
}

describe("the RPC encoding", () => {
  test("a value that goes as JSON comes back exactly as CBOR would bring it, and as structured clone would", () => {
    // CBOR's own path is decodeCbor(encodeCbor(v)) by construction; JSON's must match it (and the engine's clone).
    let asJson = 0
    fc.assert(
      fc.property(ANY, (v) => {
        const c = crossed(v)
        if (!c.json) return
        asJson++
        expect(c.value).toStrictEqual(decodeCbor(encodeCbor(v)))
        expect(c.value).toStrictEqual(deserialize(serialize(v)))
      }),
      { numRuns: 3000 },
    )
    expect(asJson).toBeGreaterThan(100) // the property did look at the JSON path
  })

  test("CBOR gives back what structured clone gives, for any value without holes (§6.1.1 lists the differences)", () => {
    const NO_HOLES = fc.anything({
      ...KINDS,
      values: [
        fc.string({ unit: "binary" }),
        fc.double(),
        fc.bigInt(),
        fc.date({ noInvalidDate: true }), // (Bun's deep equality finds two invalid dates unequal: below)
        fc.constantFrom(null, undefined, -0, Number.NaN, Number.NEGATIVE_INFINITY, /a.b/giu),
      ],
    })
    fc.assert(
      fc.property(NO_HOLES, (v) => {
        const back = decodeCbor(encodeCbor(v))
        const clone = deserialize(serialize(v))
        // Bun's deep equality finds a Map keyed by objects unequal even to another clone of itself: then compare
        // what a developer reads
        if (Bun.deepEquals(clone, deserialize(serialize(v)), true)) expect(back).toStrictEqual(clone)
        else expect(Bun.inspect(back)).toBe(Bun.inspect(clone))
      }),
      { numRuns: 3000 },
    )
  })

  test.each<[string, unknown]>([
    ["small arguments", [1, 2]],
    ["strings with lone surrogates, NUL and emoji", ["\ud800 \0 é 😀"]],
    ["a plain object", { a: [1, "x", null, true, { b: 2.5 }] }],
    ["an object without prototype", Object.assign(Object.create(null), { a: 1 })],
  ])("JSON carries %s, exactly", (_, v) => {
    const c = crossed(v)
    expect(c.json).toBe(true)
    expect(c.value).toStrictEqual(v as object)
  })

  test.each<[string, unknown]>([
    ["an undefined inside", [1, undefined]],
    ["-0", [-0]],
    ["NaN", [Number.NaN]],
    ["Infinity", [Number.POSITIVE_INFINITY]],
    ["a bigint", [1n]],
    ["a Date", [new Date(0)]],
    ["a Date with milliseconds", [new Date(-1_234_567)]],
    ["Dates at the ends of their range", [new Date(8.64e15), new Date(-8.64e15), new Date(8.64e15 - 1)]],
    ["a Map", [new Map([[1, 2]])]],
    ["a Set", [new Set([1])]],
    ["a Uint8Array", [new Uint8Array([1, 2, 3])]],
    ["a Float64Array", [new Float64Array([0.5, -0])]],
    ["an ArrayBuffer", [new ArrayBuffer(8)]],
    [
      "a class instance",
      [
        new (class P {
          x = 1
        })(),
      ],
    ],
  ])("CBOR carries %s, as structured clone does", (_, v) => {
    const c = crossed(v)
    expect(c.json).toBe(false)
    expect(c.value).toStrictEqual(deserialize(serialize(v)))
  })

  test("an invalid Date comes back invalid", () => {
    const back = crossed([new Date(Number.NaN)]).value as Date[]
    expect(back[0]).toBeInstanceOf(Date)
    expect(back[0]!.getTime()).toBeNaN()
  })

  test("a hole goes as CBOR and comes back as undefined (§6.1.1)", () => {
    const c = crossed(Object.assign(new Array(3), { 0: 1, 2: 3 }))
    expect(c.json).toBe(false)
    expect(c.value).toStrictEqual([1, undefined, 3])
  })

  test("a shared reference stays shared and a cycle stays a cycle (CBOR, not JSON)", () => {
    const shared = { n: 1 }
    const both = crossed([shared, shared])
    expect(both.json).toBe(false)
    const [a, b] = both.value as [object, object]
    expect(a).toBe(b)
    const loop: { self?: unknown } = {}
    loop.self = loop
    const c = crossed(loop)
    const back = c.value as { self: unknown }
    expect(back.self).toBe(back)
  })

  test("a shared reference among many objects is still seen (past the short list, in the set)", () => {
    const shared = { n: 1 }
    const many = [...Array.from({ length: 40 }, (_, i) => ({ i })), shared, { x: shared }]
    const c = crossed(many)
    expect(c.json).toBe(false)
    const back = c.value as unknown[]
    expect((back[41] as { x: unknown }).x).toBe(back[40])
    expect(crossed(Array.from({ length: 40 }, (_, i) => ({ i }))).json).toBe(true)
  })

  test("undefined alone is an empty JSON body", () => {
    expect(encodeValue(undefined)).toEqual({ json: true, body: "" })
    expect(crossed(undefined).value).toBeUndefined()
  })

  test("a typed array crosses as its bytes, not as base64 or an object of indices", () => {
    const big = new Uint8Array(1 << 20).fill(7)
    const e = encodeValue([big])
    expect(e.json).toBe(false)
    expect((e.body as Uint8Array).byteLength).toBeLessThan(big.length + 256)
  })

  test("nesting deeper than JSON is walked goes as CBOR", () => {
    let deep: unknown = 1
    for (let i = 0; i < 200; i++) deep = [deep]
    const c = crossed(deep)
    expect(c.json).toBe(false)
    expect(c.value).toStrictEqual(deep)
  })

  test("what CBOR cannot carry is a DataCloneError, and the next encoding is unaffected", () => {
    for (const v of [() => 1, Symbol("s"), { f() {} }, [Promise.resolve(1)]])
      expect(() => encodeValue(v)).toThrow(expect.objectContaining({ name: "DataCloneError" }))
    const shared = { n: 1 }
    expect(crossed([shared, shared]).json).toBe(false)
    expect(crossed([{ n: 1 }, { n: 1 }]).json).toBe(true)
  })
})

test("docs/PROTOCOL.md §6.1 names the verbs and statuses the code uses, and nothing else", () => {
  const doc = readFileSync(join(import.meta.dir, "..", "..", "..", "docs", "PROTOCOL.md"), "utf8")
  const section = doc.slice(doc.indexOf("### 6.1 RPC calls"), doc.indexOf("## 7."))
  const verbs = [...section.matchAll(/^\| `(rpc:[a-z]+)` \|/gm)].map((m) => m[1])
  const statuses = [...section.matchAll(/^\| (\d{3}) \|/gm)].map((m) => Number(m[1]))
  expect(verbs).toEqual(Object.values(RpcVerb))
  expect(statuses).toEqual(Object.values(RpcStatus))
})

describe("the CBOR of §6.1.1", () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")
  const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s/g, ""), "hex"))

  test("a short string that lands where the writer's buffer must grow keeps every byte", () => {
    // the writer reuses one buffer, back to 256 bytes after a value over 64 KiB: a string's head where it must
    // grow must not lose the bytes of the string written before it
    for (const s of ["v", "key", "é"]) {
      encodeCbor(new Uint8Array(70_000))
      for (let pad = 230; pad < 300; pad++)
        expect(decodeCbor(encodeCbor([new Uint8Array(pad), s]))).toEqual([new Uint8Array(pad), s])
    }
  })

  test("it is RFC 8949's CBOR: the RFC's own examples decode to their values (Appendix A)", () => {
    expect(decodeCbor(bytes("1b000000e8d4a51000"))).toBe(1_000_000_000_000)
    expect(decodeCbor(bytes("3903e7"))).toBe(-1000)
    expect(decodeCbor(bytes("f90001"))).toBe(2 ** -24) // 5.960464477539063e-8
    expect(decodeCbor(bytes("f97c00"))).toBe(Number.POSITIVE_INFINITY)
    expect(decodeCbor(bytes("fa47c35000"))).toBe(100000)
    expect(decodeCbor(bytes("fbc010666666666666"))).toBe(-4.1)
    expect(decodeCbor(bytes("1bffffffffffffffff"))).toBe(18446744073709551615n)
    expect(decodeCbor(bytes("c249010000000000000000"))).toBe(18446744073709551616n)
    expect(decodeCbor(bytes("c349010000000000000000"))).toBe(-18446744073709551617n)
    expect(decodeCbor(bytes("c11a514b67b0"))).toEqual(new Date(1363896240 * 1000))
    expect(decodeCbor(bytes("c1fb41d452d9ec200000"))).toEqual(new Date(1363896240500))
    expect(decodeCbor(bytes("62225c"))).toBe('"\\')
    expect(decodeCbor(bytes("64f0908591"))).toBe("\u{10151}")
    expect(decodeCbor(bytes("a26161016162820203"))).toEqual({ a: 1, b: [2, 3] })
    expect(decodeCbor(bytes("f7"))).toBeUndefined()
  })

  test("it writes the registered tags: what another language's CBOR library reads", () => {
    expect(hex(encodeCbor(new Map([[1, 2]])))).toBe("d81cd90103a10102") // shareable(Map tag 259 {1: 2})
    expect(hex(encodeCbor(new Set([1])))).toBe("d81cd9010281" + "01") // shareable(Set tag 258 [1])
    expect(hex(encodeCbor(new Date(1363896240000)))).toBe("d81cc11a514b67b0") // tag 1, epoch seconds
    expect(hex(encodeCbor(255n))).toBe("c241ff") // tag 2 bignum, even when small
    expect(hex(encodeCbor(-256n))).toBe("c341ff") // tag 3: -1 - n
    expect(hex(encodeCbor(new Uint16Array([1, 2])))).toBe("d81cd84544" + "01000200") // tag 69, little-endian
    expect(hex(encodeCbor(/a/g))).toBe("d81cd952 4a826161 6167".replace(/\s/g, "")) // tag 21066 [source, flags]
    expect(hex(encodeCbor("\ud800"))).toBe("d9011143eda080") // tag 273, WTF-8
    expect(hex(encodeCbor([-0, undefined, null]))).toBe("d81c83fb8000000000000000f7f6")
    const shared = {}
    expect(hex(encodeCbor([shared, shared]))).toBe("d81c82d81ca0d81d01") // the second is tag 29 to index 1
  })

  test("a writer that marks only what it refers to again is read too (tag 28 is not needed on every object)", () => {
    // [s, s] with s = {} shared, marked only where it is: d8 1c on the object, index 0
    const v = decodeCbor(bytes("82d81ca0d81d00")) as object[]
    expect(v[0]).toBe(v[1])
    // a cycle: tag 28 on the map, a value that is tag 29 to itself
    const loop = decodeCbor(bytes("d81ca16473656c66d81d00")) as { self: unknown }
    expect(loop.self).toBe(loop)
  })

  test.each<[string, string]>([
    ["an empty body", ""],
    ["bytes after the value", "0101"],
    ["an item that ends early", "62 61"],
    ["a length past the end", "5b 00000000ffffffff"],
    ["an indefinite length", "9f 01 ff"],
    ["an unknown tag", "d9 ffff 01"],
    ["a reference to nothing", "d81d 05"],
    ["a reference to a value still being read that is no container", "d81c c1 d81d00"],
    // before, the next three read as undefined and the fourth as the value it counted to (a bignum was refused)
    ["a reference by a negative index", "82 d81c80 d81d20"],
    ["a reference by a negative index, nothing shared", "81 d81d20"],
    ["a reference by a fractional index", "82 d81c80 d81d f93800"],
    ["a reference by a float, even a whole one", "82 d81c80 d81d f90000"],
    ["a reference by a bignum", "82 d81c80 d81d c240"],
    ["an object key that is not text", "a1 01 02"],
    ["a text string that is not UTF-8", "62 c328"],
    ["a typed array of a part element", "d845 43 010203"],
    ["an Error of another shape", "d81b 82 654572726f72 01"],
    ["a class it does not know", "d81b 82 6846756e6374696f6e 60"],
    ["a reserved simple value", "f8ff"],
  ])("malformed: %s is a ProtocolError", (_, h) => {
    expect(() => decodeCbor(bytes(h))).toThrow(ProtocolError)
  })

  /** Tag 2 or 3 over a byte string of `n` bytes (4-byte length head, as the writer writes one over 64 KiB). */
  function bignum(tag: 2 | 3, n: number, first = 0x9d): Uint8Array {
    const b = new Uint8Array(6 + n)
    b.set([0xc0 | tag, 0x5a])
    new DataView(b.buffer).setUint32(2, n)
    for (let i = 0; i < Math.min(n, 256); i++) b[6 + i] = (i * 31 + 7) & 255
    for (let have = 256; have < n; have *= 2) b.copyWithin(6 + have, 6, 6 + have) // the pattern's period is 256
    b[6] = first
    return b
  }

  test("a 1 MiB bignum is read and written whole, both signs, in linear time", () => {
    // failed before (by the test's timeout): read a byte a shift, and written the same way, both quadratic (400 KB
    // took 23 s to read under Bun, 81 s under Node; a 1 MiB one minutes either way)
    const n = 1 << 20
    for (const tag of [2, 3] as const) {
      const b = bignum(tag, n)
      const v = decodeCbor(b) as bigint
      const m = tag === 2 ? v : -1n - v
      expect(m >> BigInt(8 * (n - 1))).toBe(0x9dn) // its first byte is the highest
      expect(m & 0xffffn).toBe(BigInt((b[b.length - 2]! << 8) | b[b.length - 1]!)) // its last the lowest
      expect(Buffer.from(encodeCbor(v)).equals(b)).toBe(true)
    }
  })

  test("a BigInt is written with no leading zero byte, 0 and -1 as empty byte strings, and read back", () => {
    expect(hex(encodeCbor(0n))).toBe("c240")
    expect(hex(encodeCbor(-1n))).toBe("c340")
    expect(hex(encodeCbor(256n))).toBe("c2420100") // an odd number of hex digits: the first byte is 0x01
    expect(hex(encodeCbor(-(2n ** 64n) - 1n))).toBe("c349010000000000000000")
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 600n), max: 2n ** 600n }), (v) => {
        const b = encodeCbor(v)
        const content = decodeCbor(b.subarray(1)) as ArrayBuffer // the byte string under the tag
        expect(new Uint8Array(content)[0]).not.toBe(0)
        expect(decodeCbor(b)).toBe(v)
      }),
      { numRuns: 2000 },
    )
  })

  test("a bignum with leading zero bytes is read as its value (RFC 8949 §3.4.3), the zeros not counted", () => {
    expect(decodeCbor(bytes("c243000001"))).toBe(1n)
    expect(decodeCbor(bytes("c34100"))).toBe(-1n)
    expect(decodeCbor(bytes("c242ffff"))).toBe(65535n)
    // 2^27 bytes after a zero: within the 2^30 bits (before, its 2^27 + 1 bytes were refused)
    const b = bignum(2, 2 ** 27 + 1, 0)
    b[7] = 0x80
    expect((decodeCbor(b) as bigint) >> BigInt(2 ** 30 - 1)).toBe(1n)
  })

  test("a bignum over the 2^30 bits a BigInt holds is a ProtocolError saying so", () => {
    const n = 2 ** 27 + 1
    for (const tag of [2, 3] as const)
      expect(() => decodeCbor(bignum(tag, n, 1))).toThrow(
        new ProtocolError(
          `an RPC value's CBOR is malformed: a bignum of ${n} bytes, over the 2^30 bits a BigInt holds`,
        ),
      )
  })

  test("nesting past the limit is a ProtocolError when read and a DataCloneError when written", () => {
    expect(() => decodeCbor(bytes("81".repeat(3000) + "01"))).toThrow(ProtocolError)
    let deep: unknown = 1
    for (let i = 0; i < 3000; i++) deep = [deep]
    expect(() => encodeCbor(deep)).toThrow(expect.objectContaining({ name: "DataCloneError" }))
  })

  test("what the writer takes the reader reads: 512 containers deep, shared (tag 28) and with a BigInt leaf", () => {
    for (const wrap of [(v: unknown) => [v], (v: unknown) => ({ a: v }), (v: unknown) => new Map([[1, v]])]) {
      let v: unknown = 1n
      for (let i = 0; i < 512; i++) v = wrap(v)
      expect(() => decodeCbor(encodeCbor(v))).not.toThrow() // before: refused from 1,024 deep, 2,048 documented
      expect(() => encodeCbor(wrap(v))).toThrow(expect.objectContaining({ name: "DataCloneError" }))
    }
  })

  test("a key __proto__ is an own property, and no prototype is set", () => {
    const v = decodeCbor(bytes("a1 695f5f70726f746f5f5f a1 61 70 f5")) as Record<string, unknown>
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(Object.hasOwn(v, "__proto__")).toBe(true)
    expect(({} as Record<string, unknown>).p).toBeUndefined()
  })

  test("an Error crosses with its class, message, stack, cause, and a name of its own", () => {
    const e = decodeCbor(encodeCbor(new RangeError("out", { cause: new Error("in") }))) as RangeError
    expect([e instanceof RangeError, e.message, (e.cause as Error).message]).toEqual([true, "out", "in"])
    expect(e.stack).toContain("out")
    const named = decodeCbor(encodeCbor(Object.assign(new TypeError("t"), { name: "MyError" }))) as Error
    expect([named instanceof Error, named.name, named.message]).toEqual([true, "MyError", "t"])
    for (const name of ["constructor", "toString", "valueOf", "hasOwnProperty", "__proto__"]) {
      const odd = decodeCbor(encodeCbor(Object.assign(new Error("m"), { name }))) as Error
      expect([odd instanceof Error, odd.name, odd.message]).toEqual([true, name, "m"]) // before: a String, or thrown
    }
    const stackless = [new RangeError("m"), Object.assign(new Error(""), { name: "Mine" })]
    for (const x of stackless) delete (x as { stack?: string }).stack
    expect(stackless.map((x) => (decodeCbor(encodeCbor(x)) as Error).stack)).toEqual(["RangeError: m", "Mine"])
    const selfCaused = new Error("loop") as Error & { cause?: unknown }
    selfCaused.cause = selfCaused
    const back = decodeCbor(encodeCbor(selfCaused)) as Error & { cause?: unknown }
    expect(back.cause).toBe(back)
  })

  test("refused as structured clone refuses them: a DataCloneError naming what", () => {
    for (const [v, what] of [
      [() => 1, "a function"],
      [Symbol("s"), "a symbol"],
      [Promise.resolve(), "a Promise"],
      [new WeakMap(), "a WeakMap"],
      [new SharedArrayBuffer(8), "a SharedArrayBuffer"],
      [new Request("http://x/"), "a Request"],
    ] as const)
      expect(() => encodeCbor([v])).toThrow(
        expect.objectContaining({ name: "DataCloneError", message: expect.stringContaining(what) }),
      )
  })
})
