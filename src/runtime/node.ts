// The runtime on Node ≥ 26.1 (node:ffi, issue 67): each operation of runtime.ts over Node's own modules. Pointers are
// bigint under node:ffi; they stay bigint behind the Pointer brand (passed back to C as they came, never converted
// per call), and only the functions that return a pointer or a C string are wrapped, to give null for NULL as bun:ffi
// does (none of them is called per request).
import type * as NodeFfi from "node:ffi"
import { closeSync } from "node:fs"
import { isDeepStrictEqual, inspect as nodeInspect } from "node:util"
// a namespace, not a named import: a Node too old for zlib.crc32 refuses a named one before anything here runs
import * as zlib from "node:zlib"
import { nodeFfiRefusal } from "./errors.ts"
import type { DoorbellReader, NativeFunction, NativeSymbols, NativeType, Pointer, PromiseState } from "./runtime.ts"

// Taken at load, not imported: Bun has no node:ffi, and a bundle of slotbus (bun build --compile) holds this file and
// hoists its static imports to the top, where Bun would refuse this one (this file's body only runs under Node).
// Older Node has no getBuiltinModule, no node:ffi, or it turned off (undefined) or denied (ERR_ACCESS_DENIED at the
// first use): one error naming the version and what is needed, thrown at import.
const found = process.getBuiltinModule?.("node:ffi") as typeof NodeFfi | undefined
const refusal = nodeFfiRefusal({ version: process.version, hasFfi: found !== undefined, ffiDenied: ffiDenied() })
if (refusal) throw refusal
const ffi = found!

function ffiDenied(): boolean {
  try {
    return (process as { permission?: { has(scope: string): boolean } }).permission?.has("ffi") === false
  } catch {
    return false // a Node whose permission model has no "ffi" scope: its version is the error
  }
}

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

/** Opens the library with its functions as `symbols` declares them; most are node:ffi's own functions, unwrapped. */
export function openLibrary<S extends Record<string, NativeFunction>>(path: string, symbols: S): NativeSymbols<S> {
  const definitions: Record<string, { return: string; arguments: string[] }> = {}
  for (const [name, f] of Object.entries(symbols))
    definitions[name] = { return: NODE_TYPE[f.returns], arguments: f.args.map((a) => NODE_TYPE[a]) }
  const { functions } = ffi.dlopen(path, definitions as never) as unknown as { functions: Record<string, AnyFn> }
  const out: Record<string, AnyFn> = {}
  for (const [name, f] of Object.entries(symbols)) {
    const call = functions[name]!
    if (f.returns === "ptr") out[name] = (...a) => orNull(call(...a) as bigint)
    else if (f.returns === "cstring")
      out[name] = (...a) => {
        const p = call(...a) as bigint
        return p === 0n ? null : ffi.toString(p)
      }
    else out[name] = call
  }
  return out as unknown as NativeSymbols<S>
}

const orNull = (p: bigint) => (p === 0n ? null : p)

/** `length` bytes at ptr + offset, a plain (not shared) ArrayBuffer over that memory: Atomics load and store work. */
export function memoryView(ptr: Pointer, offset: number, length: number): ArrayBuffer {
  return ffi.toArrayBuffer(BigInt(ptr) + BigInt(offset), length, false)
}

// ---- waking on an fd: a uv_poll on this thread's loop (the node binary exports libuv), its callback a node:ffi one

const UV_READABLE = 1
const UV_POLL = 8 // uv_handle_type
const READ_BYTES = 256

interface Uv {
  uv_poll_init(loop: bigint, handle: bigint, fd: number): number
  uv_poll_start(handle: bigint, events: number, cb: bigint): number
  uv_poll_stop(handle: bigint): number
  uv_close(handle: bigint, cb: bigint): void
  uv_handle_size(type: number): bigint
  read(fd: number, buf: Uint8Array, n: bigint): bigint
  __errno_location(): bigint
}

let uvState: { fns: Uv; loop: bigint; onPoll: bigint; onClose: bigint; errno: bigint; handleSize: number } | undefined
// Readers by their handle's address: one callback pointer serves every poll (callbacks only run on this thread).
const polls = new Map<bigint, PollReader>()

function uv() {
  if (uvState) return uvState
  const self = new ffi.DynamicLibrary(null)
  const fns = self.getFunctions({
    uv_poll_init: { return: "i32", arguments: ["pointer", "pointer", "i32"] },
    uv_poll_start: { return: "i32", arguments: ["pointer", "i32", "pointer"] },
    uv_poll_stop: { return: "i32", arguments: ["pointer"] },
    uv_close: { return: "void", arguments: ["pointer", "pointer"] },
    uv_handle_size: { return: "u64", arguments: ["i32"] },
    read: { return: "i64", arguments: ["i32", "pointer", "u64"] },
    __errno_location: { return: "pointer", arguments: [] },
  }) as unknown as Uv
  const onPoll = self.registerCallback({ return: "void", arguments: ["pointer", "i32", "i32"] }, (handle, status) =>
    polls.get(handle as bigint)?.ready(status),
  )
  const onClose = self.registerCallback({ return: "void", arguments: ["pointer"] }, (handle) => {
    const r = polls.get(handle as bigint)
    polls.delete(handle as bigint)
    r?.closed()
  })
  uvState = {
    fns,
    loop: ffi.getCurrentEventLoop(),
    onPoll,
    onClose,
    errno: fns.__errno_location(),
    handleSize: Number(fns.uv_handle_size(UV_POLL)),
  }
  return uvState
}

const noop = () => {}
// A promise settled in a node:ffi callback (no MakeCallback around it) runs its reactions at the next microtask
// checkpoint, which an idle loop may not reach for seconds (the next timer): an immediate brings one this turn.
const drainSoon = () => void setImmediate(noop)
const EAGAIN = 11
const EINTR = 4
type ReadResult = { done: false; value: Uint8Array } | { done: true; value: undefined }

/** Reads a non-blocking fd when the loop says it is readable; the fd stays the caller's (never closed here). */
class PollReader {
  private readonly handle: Uint8Array
  private readonly at: bigint
  private readonly chunks: Uint8Array[] = []
  private waiting: { resolve(r: ReadResult): void; reject(e: unknown): void } | undefined
  private ended: ReadResult | Error | undefined
  private released: (() => void) | undefined
  private stopped = false

  private readonly fd: number

  constructor(fd: number) {
    this.fd = fd
    const u = uv()
    this.handle = new Uint8Array(u.handleSize) // off the JS heap (over 64 bytes): its address does not move
    this.at = ffi.getRawPointer(this.handle)
    let r = u.fns.uv_poll_init(u.loop, this.at, fd)
    if (r === 0) r = u.fns.uv_poll_start(this.at, UV_READABLE, u.onPoll)
    if (r !== 0) throw new Error(`cannot poll fd ${fd}: libuv error ${r}`)
    polls.set(this.at, this)
  }

  /** The loop found the fd readable (or failed to poll it): read what is there, settle a waiting read. */
  ready(status: number) {
    if (this.stopped) return
    const { fns, errno } = uv()
    if (status < 0) this.end(new Error(`polling fd ${this.fd} failed: libuv error ${status}`))
    else
      for (;;) {
        const buf = new Uint8Array(READ_BYTES)
        const n = Number(fns.read(this.fd, buf, BigInt(READ_BYTES)))
        if (n > 0) {
          this.chunks.push(n === READ_BYTES ? buf : buf.subarray(0, n))
          if (n === READ_BYTES) continue
          break
        }
        if (n === 0) {
          this.end({ done: true, value: undefined })
          break
        }
        const e = ffi.getInt32(errno)
        if (e === EINTR) continue
        if (e !== EAGAIN) this.end(new Error(`reading fd ${this.fd} failed: errno ${e}`))
        break
      }
    const waited = this.waiting
    this.settle()
    if (waited && !this.waiting) drainSoon()
  }

  private end(how: ReadResult | Error) {
    this.ended ??= how
    this.stop()
  }

  private settle() {
    const w = this.waiting
    if (!w) return
    const chunk = this.chunks.shift()
    if (chunk) {
      this.waiting = undefined
      w.resolve({ done: false, value: chunk })
    } else if (this.ended) {
      this.waiting = undefined
      if (this.ended instanceof Error) w.reject(this.ended)
      else w.resolve(this.ended)
    }
  }

  read(): Promise<ReadResult> {
    if (this.waiting) return Promise.reject(new TypeError("a read is already waiting on this fd"))
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject }
      this.settle()
    })
  }

  private stop() {
    if (this.stopped) return
    this.stopped = true
    const { fns, onClose } = uv()
    fns.uv_poll_stop(this.at)
    fns.uv_close(this.at, onClose) // the handle's memory is kept (this object, in polls) until onClose
  }

  closed() {
    if (this.released) drainSoon()
    this.released?.()
  }

  cancel(): Promise<void> {
    this.ended ??= { done: true, value: undefined }
    this.settle()
    if (!polls.has(this.at)) return Promise.resolve()
    return new Promise((resolve) => {
      this.released = resolve
      this.stop()
    })
  }
}

/** The event loop polls `fd` (non-blocking, any pollable kind: eventfd, socket, pipe) and settles a read per wake-up. */
export function fdReader(fd: number): ReadableStreamDefaultReader<Uint8Array> {
  return new PollReader(fd) as unknown as ReadableStreamDefaultReader<Uint8Array>
}

/**
 * The doorbell read through the fd reader's uv_poll: `onWake` with what each wake-up read; close() stops it and
 * closes the fd, which is the reader's (a duplicate, as Bun's socket is given).
 */
export function doorbellReader(fd: number, onWake: (bytes: Uint8Array) => void): DoorbellReader {
  const reader = fdReader(fd)
  let closed = false
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done || closed) break
        onWake(value)
      }
    } catch {} // a failed read ends the reader as a close does
    closeSync(fd)
  })()
  return {
    close() {
      if (closed) return
      closed = true
      void reader.cancel()
    },
  }
}

// ---- the rest of runtime.ts

const start = process.hrtime.bigint()
export const nanoseconds = (): number => Number(process.hrtime.bigint() - start)

const MAX_TIMER_MS = 2 ** 31 - 1
/** setTimeout in pieces below 2^31 ms (TIMER_OVERFLOW: Node's setTimeout overflows as Bun's does). */
export async function sleep(ms: number): Promise<void> {
  let left = Math.max(0, ms)
  do {
    const step = Math.min(left, MAX_TIMER_MS)
    await new Promise((r) => setTimeout(r, step))
    left -= step
  } while (left > 0)
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))
export const sleepSync = (ms: number): void => void Atomics.wait(sleeper, 0, 0, Math.max(0, ms))
export const crc32 = (data: Uint8Array | string): number => zlib.crc32(data)
export const inspect = (value: unknown): string => nodeInspect(value)
/** Strict: node's isDeepStrictEqual. Loose: the same on values with their undefined properties left out (as Bun's). */
export function deepEquals(a: unknown, b: unknown, strict = false): boolean {
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
// microtasks between looks, so a body whose reads are settled is still read whole.
const seen = new WeakMap<Promise<unknown>, { state: PromiseState; value?: unknown }>()
export function promiseState(p: unknown): PromiseState {
  if (!(p instanceof Promise)) return "fulfilled"
  let s = seen.get(p)
  if (!s) {
    const entry: { state: PromiseState; value?: unknown } = { state: "pending" }
    s = entry
    seen.set(p, entry)
    p.then(
      (value) => Object.assign(entry, { state: "fulfilled", value }),
      (value) => Object.assign(entry, { state: "rejected", value }),
    )
  }
  return s.state
}
export function promiseValue(p: unknown): unknown {
  if (!(p instanceof Promise)) return p
  promiseState(p)
  const s = seen.get(p)!
  return s.state === "pending" ? p : s.value
}

export const mainScript = (): string => process.argv[1] ?? ""
export async function stdinBytes(): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of process.stdin) parts.push(chunk as Uint8Array)
  return new Uint8Array(Buffer.concat(parts))
}
export const stdinStream = (): AsyncIterable<Uint8Array> => process.stdin

export { connect, connectFd, type FdSocket, listen, type TcpListener, type UnixListener } from "./node-net.ts"
export { spawn, stdoutSink } from "./node-process.ts"
export { serveHttp } from "./node-http.ts"
