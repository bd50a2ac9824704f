// The runtime on Node ≥ 26.1 (node:ffi, issue 67): each operation of runtime.ts over Node's own modules. Pointers are
// numbers, as on Bun (openLibrary: the per-request calls are bound to the library's twins of doubles).
import { isDeepStrictEqual } from "node:util"
// a namespace, not a named import: a Node too old for zlib.crc32 refuses a named one before anything here runs
import * as zlib from "node:zlib"
import { ffi } from "./ffi.ts"
import type { NativeFunction, NativeSymbols, NativeType, Pointer, PromiseState, Runtime } from "../runtime.ts"
import { connect, connectFd, listen } from "./net.ts"
import { doorbellReader, fdReader } from "./poll.ts"
import { spawn, stdoutSink } from "./process.ts"
import { serveHttp } from "./http.ts"
import { NODE_QUIRKS } from "./quirks.ts"

// bun:ffi's names for the library's C types, as node:ffi spells them (a C string goes in as a pointer: a string or
// a NUL-terminated Buffer, and comes out as one, read by ffi.toString).
const NODE_TYPE: Record<NativeType, string> = {
  ptr: "pointer",
  i32: "i32",
  u32: "u32",
  i64: "i64",
  f64: "f64",
  cstring: "pointer",
  void: "void",
}

type AnyFn = (...args: unknown[]) => unknown

/**
 * Opens the library with its functions as `symbols` declares them. node:ffi calls a function whose arguments are all
 * doubles directly (~9 ns for six) and checks each integer or pointer argument in JavaScript first (~25 ns for one,
 * ~0.5 µs for six; Node 26.12). So a function the library also has with double arguments (csrc/doubles.c: sbd_<name>
 * for sb_<name>, the per-request calls) is bound to that twin, unwrapped; and a pointer is a number here, as on Bun
 * (user-space addresses are below 2^53), made a bigint only for a function that takes it as node:ffi's "pointer".
 */
function openLibrary<S extends Record<string, NativeFunction>>(path: string, symbols: S): NativeSymbols<S> {
  const { lib } = ffi.dlopen(path)
  // made whole by fromEntries, not by `out[name] =` one at a time: V8 turns an object given more than a dozen keyed
  // stores into a dictionary, and optimized code then looks each function up through a LoadIC call (~4% of a Node
  // hub's samples, docs/perf/round-nine-node.md)
  const entries = Object.entries(symbols).map(([name, f]) => [name, doublesTwin(lib, name, f) ?? bind(lib, name, f)])
  return Object.fromEntries(entries) as NativeSymbols<S>
}

type Library = ReturnType<typeof ffi.dlopen>["lib"]
const IN_A_DOUBLE = new Set<NativeType>(["ptr", "i32", "u32"])

function doublesTwin(lib: Library, name: string, f: NativeFunction): AnyFn | undefined {
  if (!name.startsWith("sb_") || !f.args.every((a) => IN_A_DOUBLE.has(a)) || f.returns === "ptr") return undefined
  const twin = `sbd_${name.slice(3)}`
  try {
    lib.getSymbol(twin)
  } catch {
    return undefined // none: this function is not called per request
  }
  const returns = NODE_TYPE[f.returns]
  return lib.getFunctions({ [twin]: { return: returns, arguments: f.args.map(() => "f64") } } as never)[twin] as AnyFn
}

function bind(lib: Library, name: string, f: NativeFunction): AnyFn {
  const definition = { return: NODE_TYPE[f.returns], arguments: f.args.map((a) => NODE_TYPE[a]) }
  const raw = lib.getFunctions({ [name]: definition } as never)[name] as AnyFn
  const pointers = f.args.flatMap((a, i) => (a === "ptr" || a === "cstring" ? [i] : []))
  const call =
    pointers.length === 0
      ? raw
      : (...a: unknown[]) => {
          for (const i of pointers) if (typeof a[i] === "number") a[i] = BigInt(a[i] as number)
          return raw(...a)
        }
  if (f.returns === "ptr")
    return (...a) => {
      const p = call(...a) as bigint
      return p === 0n ? null : Number(p)
    }
  if (f.returns === "cstring")
    return (...a) => {
      const p = call(...a) as bigint
      return p === 0n ? null : ffi.toString(p)
    }
  return call
}

/** `length` bytes at ptr + offset, a plain (not shared) ArrayBuffer over that memory: Atomics load and store work. */
function memoryView(ptr: Pointer, offset: number, length: number): ArrayBuffer {
  return ffi.toArrayBuffer(BigInt(ptr + offset), length, false)
}

// Readings from 2^32 ns on, never from 0: V8 keeps an object field that has held only small integers (Smis) in that
// representation, and the first larger value changes the map of every object with it and throws away the code that
// used them. From 0 the clock passed 2^30 ns 1.07 s and 2^31 ns 2.1 s into the process, and a Node hub's 64 B
// round trip went from 1.1 to 1.8 µs for good (docs/perf/round-nine-node.md).
const CLOCK_ORIGIN_NS = 2 ** 32
// taken once: Node's global `process` is an accessor, which optimized code reads through a LoadGlobalIC call each time
const hrtime = process.hrtime.bigint
const start = hrtime()
const nanoseconds = (): number => CLOCK_ORIGIN_NS + Number(hrtime() - start)

const MAX_TIMER_MS = 2 ** 31 - 1
/** setTimeout in pieces below 2^31 ms (TIMER_OVERFLOW: Node's setTimeout overflows as Bun's does). */
async function sleep(ms: number): Promise<void> {
  let left = ms > 0 ? ms : 0
  do {
    const step = Math.min(left, MAX_TIMER_MS)
    await new Promise((r) => setTimeout(r, step))
    left -= step
  } while (left > 0)
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))
/** Atomics.wait waits for good on NaN: a negative or NaN delay is 0, as Bun's (runtime.ts). */
const sleepSync = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms > 0 ? ms : 0)
const crc32 = (data: Uint8Array | string): number => zlib.crc32(data)
/** Strict: node's isDeepStrictEqual. Loose: the same on values with their undefined properties left out (as Bun's). */
function deepEquals(a: unknown, b: unknown, strict = false): boolean {
  return strict ? isDeepStrictEqual(a, b) : isDeepStrictEqual(withoutUndefined(a), withoutUndefined(b))
}
function withoutUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutUndefined)
  if (v === null || typeof v !== "object" || Object.getPrototypeOf(v) !== Object.prototype) return v
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => [k, withoutUndefined(x)]),
  )
}

// Node cannot read a promise's state synchronously (no Bun.peek): the first look hangs handlers on it and says
// "pending"; once they ran (one microtask for a settled promise) the state is known. readyBody awaits a few
// microtasks between looks, so a body whose reads are settled is still read whole. What the handlers saw is kept on
// the promise itself, not in a WeakMap: an entry per body read made a Node worker answering Responses run ~2.5× the
// major collections (docs/perf/round-nine-node.md). A promise that takes no property (frozen) goes in one.
interface Seen {
  state: PromiseState
  value?: unknown
}
const SEEN = Symbol("slotbus promise state")
type Peeked = Promise<unknown> & { [SEEN]?: Seen }
const seenFrozen = new WeakMap<Promise<unknown>, Seen>()
const seenOf = (p: Promise<unknown>): Seen | undefined => (p as Peeked)[SEEN] ?? seenFrozen.get(p)
function promiseState(p: unknown): PromiseState {
  if (!(p instanceof Promise)) return "fulfilled"
  let s = seenOf(p)
  if (!s) {
    const entry: Seen = { state: "pending" }
    s = entry
    if (Object.isExtensible(p)) (p as Peeked)[SEEN] = entry
    else seenFrozen.set(p, entry)
    p.then(
      (value) => Object.assign(entry, { state: "fulfilled", value }),
      (value) => Object.assign(entry, { state: "rejected", value }),
    )
  }
  return s.state
}
function promiseValue(p: unknown): unknown {
  if (!(p instanceof Promise)) return p
  promiseState(p)
  const s = seenOf(p)!
  return s.state === "pending" ? p : s.value
}

const mainScript = (): string => process.argv[1] ?? ""
async function stdinBytes(): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of process.stdin) parts.push(chunk as Uint8Array)
  return new Uint8Array(Buffer.concat(parts))
}
const stdinStream = (): AsyncIterable<Uint8Array> => process.stdin

const adapter = {
  name: "node",
  quirks: { lateWrite: null, httpCloseDropsIdle: false, uncaughtKeepsAlive: false, all: NODE_QUIRKS },
  // Node has no `type: "file"` import (and dist/ leaves the prebuilds out of its bundle): the package's prebuilds/
  embeddedLibrary: async (_platform: string): Promise<string | undefined> => undefined,
  openLibrary,
  memoryView,
  fdReader,
  doorbellReader,
  nanoseconds,
  sleep,
  sleepSync,
  crc32,
  deepEquals,
  promiseState,
  promiseValue,
  mainScript,
  stdinBytes,
  stdinStream,
  stdoutSink,
  listen,
  connect,
  connectFd,
  spawn,
  serveHttp,
} satisfies Runtime

/** The adapter as the contract types it (its declaration names no type of the runtime's own). */
export const host: Runtime = adapter
