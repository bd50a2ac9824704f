// The RPC encoding in one process: JSON where it gives a value back exactly as CBOR would, CBOR (docs/PROTOCOL.md
// §6.1.1) everywhere else, and the caller never sees the difference.
import { describe, expect, test } from "bun:test"
import { deserialize, serialize } from "bun:jsc"
import fc from "fast-check"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { decodeCbor } from "../../../src/core/rpc/cbor-read.ts"
import { encodeCbor } from "../../../src/core/rpc/cbor-write.ts"
import { decodeValue, encodeValue } from "../../../src/core/rpc/rpc.ts"
import { RpcStatus, RpcVerb } from "../../../src/core/wire/rpc-status.ts"

const ANY = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  key: fc.oneof(fc.string(), fc.constant("__proto__")),
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
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withTypedArray: true,
      key: fc.oneof(fc.string(), fc.constant("__proto__")),
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
