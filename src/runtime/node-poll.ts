// Waking on an fd under Node: a uv_poll on this thread's loop (the node binary exports libuv), its callback a node:ffi
// one. The fd reader (a stream's reads) and the doorbell reader (runtime.ts) are built on it.
import { closeSync } from "node:fs"
import { ffi } from "./node-ffi.ts"
import type { DoorbellReader } from "./runtime.ts"

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
