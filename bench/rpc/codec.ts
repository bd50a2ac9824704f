// What an RPC call's arguments cost to cross: slotbus's CBOR (docs/PROTOCOL.md §6.1.1), Bun's own structured clone
// (bun:jsc serialize/deserialize, which slotbus used until 0.3 and a Node peer cannot read) and JSON
// (stringify, UTF-8 bytes, and back), for small arguments, a 1 KiB object and a 1 MiB Uint8Array, in one
// process (the bytes still go through a Uint8Array, as they would through a slot), and what slotbus does with
// them (src/core/rpc/rpc.ts). `bun bench/rpc/codec.ts`
import { deserialize, serialize } from "bun:jsc"
import { bench, do_not_optimize, group, run, summary } from "mitata"
import { decodeCbor } from "../../src/core/rpc/cbor-read.ts"
import { encodeCbor } from "../../src/core/rpc/cbor-write.ts"
import { decodeValue, encodeValue } from "../../src/core/rpc/rpc.ts"
import { kibObject } from "./payload.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const CASES: [string, unknown][] = [
  ["small args [1, 2]", [1, 2]],
  ["1 KiB object", [kibObject()]],
  ["1 MiB Uint8Array", [new Uint8Array(1 << 20).map((_, i) => i & 255)]],
]

const clone = (v: unknown) => deserialize(new Uint8Array(serialize(v, { binaryType: "nodebuffer" })))
const cbor = (v: unknown) => decodeCbor(encodeCbor(v))
const json = (v: unknown) => JSON.parse(decoder.decode(encoder.encode(JSON.stringify(v))))
// JSON cannot carry bytes: the usual way is base64 in a tagged object.
const replacer = (_: string, v: unknown) =>
  v instanceof Uint8Array ? { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") } : v
const reviver = (_: string, v: unknown) =>
  v !== null && typeof v === "object" && typeof (v as { $bytes?: unknown }).$bytes === "string"
    ? new Uint8Array(Buffer.from((v as { $bytes: string }).$bytes, "base64"))
    : v
const jsonB64 = (v: unknown) => JSON.parse(decoder.decode(encoder.encode(JSON.stringify(v, replacer))), reviver)
// What slotbus does: JSON when it brings the value back exactly, CBOR otherwise (src/core/rpc/rpc.ts).
const slotbus = (v: unknown) => {
  const e = encodeValue(v)
  return decodeValue(
    e.json,
    typeof e.body === "string"
      ? encoder.encode(e.body)
      : e.body instanceof Uint8Array
        ? e.body
        : new Uint8Array(e.body),
  )
}

for (const [name, v] of CASES) {
  const sc = serialize(v, { binaryType: "nodebuffer" }).byteLength
  const js = encoder.encode(JSON.stringify(v, replacer)).byteLength
  console.log(`${name}: CBOR ${encodeCbor(v).byteLength} bytes, structured clone ${sc} bytes, JSON ${js} bytes`)
}

for (const [name, v] of CASES)
  summary(() =>
    group(name, () => {
      bench("CBOR", () => do_not_optimize(cbor(v)))
      bench("structured clone", () => do_not_optimize(clone(v)))
      if (Array.isArray(v) && v[0] instanceof Uint8Array) bench("JSON + base64", () => do_not_optimize(jsonB64(v)))
      else bench("JSON", () => do_not_optimize(json(v)))
      bench("slotbus (JSON if exact, else CBOR)", () => do_not_optimize(slotbus(v)))
    }),
  )

await run()
