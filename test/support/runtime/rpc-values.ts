// The values an RPC call carries between runtimes (docs/PROTOCOL.md §6.1.1), each made afresh on either side and
// checked where it arrives: what it must read back as, and what a deep equality does not see (shared objects,
// cycles, -0, classes). Runs under Bun and Node alike (rpc-peer.ts, test/runtime/rpc-cross.test.ts).
import { inspect, isDeepStrictEqual } from "node:util"

interface Case {
  make(): unknown
  /** What arrives, when it is not what was sent (a class instance as a plain object, a hole as undefined). */
  arrives?: () => unknown
  /** What a deep equality does not see; a reason when it is wrong. */
  // biome-ignore lint/suspicious/noExplicitAny: each case reads the shape it sent
  also?: (v: any) => string | null
}

const bytes16 = () => new Uint8Array(16).map((_, i) => i * 17)
class Point {
  x = 1
  y = "two"
  get sum() {
    return 3
  }
}

export const CASES: Record<string, Case> = {
  map: {
    make: () =>
      new Map<unknown, unknown>([
        [1, "a"],
        ["k", { v: [2n] }],
        [null, undefined],
      ]),
  },
  set: { make: () => new Set([1, "two", 3n, null]) },
  date: { make: () => [new Date(1_700_000_000_123), new Date(-1), new Date(8.64e15 - 1)] },
  invalidDate: {
    make: () => new Date(Number.NaN),
    arrives: () => null,
    also: (v) => (v instanceof Date && Number.isNaN(v.getTime()) ? null : "not an invalid Date"),
  },
  bigint: { make: () => [0n, 1n, -1n, 2n ** 64n, -(2n ** 70n) + 1n] },
  typedArrays: {
    make: () => [
      new Uint8Array([1, 2, 255]),
      new Uint8ClampedArray([0, 255]),
      new Int8Array([-128, 127]),
      new Uint16Array([1, 65535]),
      new Int16Array([-32768]),
      new Uint32Array([4_000_000_000]),
      new Int32Array([-5]),
      new Float32Array([0.5, -0, Number.NaN]),
      new Float64Array([0.1, Number.NEGATIVE_INFINITY]),
      new BigInt64Array([-3n]),
      new BigUint64Array([2n ** 64n - 1n]),
      new Float16Array([1.5, -0, 65504]),
    ],
  },
  viewsOfPart: {
    make: () => [new Uint16Array(bytes16().buffer, 4, 2), new DataView(bytes16().buffer, 2, 4)],
    arrives: () => [new Uint16Array(bytes16().buffer.slice(4, 8)), new DataView(bytes16().buffer.slice(2, 6))],
    also: (v) => (v[0].byteOffset === 0 && v[1].byteOffset === 0 ? null : "a view kept its offset"),
  },
  buffer: { make: () => [Buffer.from("node bytes")], arrives: () => [new Uint8Array(Buffer.from("node bytes"))] },
  arrayBuffer: { make: () => [bytes16().buffer, new ArrayBuffer(0)] },
  regexp: { make: () => [/a+b/giu, /^\d{2}$/m] },
  error: {
    make: () => new RangeError("out of range", { cause: new TypeError("inner", { cause: 7 }) }),
    also: (e) =>
      e instanceof RangeError &&
      e.message === "out of range" &&
      e.cause instanceof TypeError &&
      e.cause.message === "inner" &&
      e.cause.cause === 7 &&
      typeof e.stack === "string"
        ? null
        : `not the RangeError sent: ${String(e)}, cause ${String(e?.cause)}`,
  },
  namedError: {
    make: () => Object.assign(new Error("gone"), { name: "NotFoundError" }),
    arrives: () => null,
    also: (e) => (e instanceof Error && e.name === "NotFoundError" && e.message === "gone" ? null : `got ${String(e)}`),
  },
  undefinedInside: { make: () => ({ a: undefined, b: [undefined, 1] }) },
  hole: { make: () => Object.assign(new Array(3), { 0: 1, 2: 3 }), arrives: () => [1, undefined, 3] },
  numbers: {
    make: () => [-0, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53 + 2, 0.1 + 0.2, -1e-310],
    also: (v) => (Object.is(v[0], -0) ? null : `-0 came as ${v[0]}`),
  },
  strings: { make: () => ["é 😀 \0 \ufeff", "\ud800 alone", "x".repeat(70_000)] },
  cycle: {
    make: () => {
      const o: Record<string, unknown> = { name: "loop" }
      o.self = o
      return o
    },
    arrives: () => null,
    also: (v) => (v?.self === v && v.name === "loop" ? null : "the cycle did not come back as one"),
  },
  cycles: {
    make: () => {
      const a: unknown[] = [1]
      a.push(a)
      const m = new Map<string, unknown>()
      m.set("me", m)
      const s = new Set<unknown>()
      s.add(s)
      return [a, m, s]
    },
    arrives: () => null,
    also: ([a, m, s]) =>
      a[1] === a && m.get("me") === m && s.has(s) ? null : "an array, Map or Set cycle did not come back as one",
  },
  shared: {
    make: () => {
      const one = { n: 1 }
      const d = new Date(0)
      return [one, one, { again: one }, d, d]
    },
    also: (v) => (v[0] === v[1] && v[2].again === v[0] && v[3] === v[4] ? null : "shared objects came back apart"),
  },
  deep: {
    make: () => {
      let v: unknown = "bottom"
      for (let i = 0; i < 500; i++) v = i % 2 ? [v] : { v } // the limit is 512 (PROTOCOL §6.1.1)
      return v
    },
    arrives: () => null,
    // walked here, level by level: an engine's deep equality may give up on 500 levels
    also: (v) => {
      for (let i = 499; i >= 0; i--) {
        const ok = i % 2 ? Array.isArray(v) && v.length === 1 : Object.keys(v ?? 0).join() === "v"
        if (!ok) return `level ${499 - i} is not what was sent`
        v = i % 2 ? v[0] : v.v
      }
      return v === "bottom" ? null : "the bottom is not what was sent"
    },
  },
  classInstance: {
    make: () => new Point(),
    arrives: () => ({ x: 1, y: "two" }),
    also: (v) => (Object.getPrototypeOf(v) === Object.prototype ? null : "not a plain object"),
  },
  nullPrototype: { make: () => Object.assign(Object.create(null), { a: 1 }), arrives: () => ({ a: 1 }) },
  protoKey: {
    make: () => JSON.parse('{"__proto__": {"polluted": true}}'),
    also: (v) => (Object.getPrototypeOf(v) === Object.prototype && !("polluted" in {}) ? null : "a prototype was set"),
  },
  boxed: { make: () => [Object(1), Object("s"), Object(false), Object(5n)] },
}

/** Why `v`, which arrived for case `name`, is not what it must be; null when it is. */
export function wrongness(name: string, v: unknown): string | null {
  const c = CASES[name]
  if (!c) return `no case ${name}`
  const expected = c.arrives ? c.arrives() : c.make()
  if (expected !== null && !isDeepStrictEqual(v, expected))
    return `arrived ${inspect(v, { depth: 4, breakLength: Number.POSITIVE_INFINITY })}`.slice(0, 300)
  return c.also ? c.also(v) : null
}

/** The RPC functions a peer exposes. */
export const peerApi = {
  /** Checks an argument the other side made for case `name`: null, or what is wrong with it. */
  check(name: string, v: unknown): string | null {
    return wrongness(name, v)
  },
  /** Case `name`'s value, made on this side. */
  make(name: string): unknown {
    return CASES[name]!.make()
  },
  /** Its argument back (a 1 MiB BigInt both ways: test/core/rpc/rpc.test.ts). */
  echo<T>(v: T): T {
    return v
  },
  /** A result no encoding carries. */
  makeBad(): unknown {
    return { f() {} }
  },
  /** Throws case `name`'s value (an Error goes as the error answer, anything else as a thrown value). */
  throwValue(name: string): never {
    throw CASES[name]!.make()
  },
  /** Throws an Error whose name is no string (the error answer threw writing it: the call went unanswered). */
  throwOddName(kind: "number" | "symbol"): never {
    const e = new Error("odd")
    ;(e as { name: unknown }).name = kind === "number" ? 42 : Symbol("odd")
    throw e
  },
}
export type PeerApi = typeof peerApi

type Remote = { [K in keyof PeerApi]: (...a: Parameters<PeerApi[K]>) => Promise<unknown> }

/**
 * Every case both ways through `api` (the other side's peerApi): one line per case and way, "args <case> ok" when
 * the other side read the arguments this side made, "result <case> ok" when this side read the result the other
 * made; then a refused result, and a call after it.
 */
export async function crossAll(api: Remote): Promise<string[]> {
  const lines: string[] = []
  for (const name of Object.keys(CASES)) {
    const sent = await api.check(name, CASES[name]!.make()).catch((e: Error) => `${e.name}: ${e.message}`)
    lines.push(`args ${name} ${sent ?? "ok"}`)
    const back = await api.make(name).then(
      (v) => wrongness(name, v),
      (e: Error) => `${e.name}: ${e.message}`,
    )
    lines.push(`result ${name} ${back ?? "ok"}`)
  }
  const bad = await api.makeBad().then(
    () => "resolved",
    (e: Error & { remoteName?: string }) => `${e.name} ${e.remoteName}`,
  )
  lines.push(`bad result ${bad}`)
  const args = await api
    .check("map", () => 1)
    .then(
      () => "resolved",
      (e: Error) => `${e.name} ${(e.cause as Error)?.name}`,
    )
  lines.push(`bad args ${args}`)
  const thrown = await api.throwValue("map").then(
    () => "resolved",
    (e: Error & { cause?: unknown }) => `${e.name} ${wrongness("map", e.cause) ?? "ok"}`,
  )
  lines.push(`thrown map ${thrown}`)
  for (const kind of ["number", "symbol"] as const) {
    const odd = await api.throwOddName(kind).then(
      () => "resolved",
      (e: Error & { remoteName?: string }) => `${e.name} ${e.remoteName}`,
    )
    lines.push(`odd name ${kind} ${odd}`)
  }
  lines.push(`after ${(await api.check("set", CASES.set!.make())) ?? "ok"}`)
  return lines
}

/** What crossAll gives when every case crosses. */
export function allCrossed(): string[] {
  return [
    ...Object.keys(CASES).flatMap((n) => [`args ${n} ok`, `result ${n} ok`]),
    "bad result RemoteError DataCloneError",
    "bad args TypeError DataCloneError",
    "thrown map RemoteError ok",
    "odd name number RemoteError 42",
    "odd name symbol RemoteError Symbol(odd)",
    "after ok",
  ]
}
