// Waking on an fd under Node: a uv_poll on this thread's loop (the node binary exports libuv), its callback a node:ffi
// one. The fd reader (a stream's reads) and the doorbell reader (runtime.ts) are built on it.
import { closeSync } from "node:fs"
import { constants } from "node:os"
import { ffi } from "./ffi.ts"
import type { DoorbellReader } from "../runtime.ts"

const ERRNO_AT = process.platform === "darwin" ? "__error" : "__errno_location"
const UV_READABLE = 1
const UV_POLL = 8 // uv_handle_type
const READ_BYTES = 256

interface Uv {
  uv_poll_init(loop: bigint, handle: bigint, fd: number): number
  uv_poll_start(handle: bigint, events: number, cb: bigint): number
  uv_poll_stop(handle: bigint): number
  uv_close(handle: bigint, cb: bigint): void
  uv_handle_size(type: number): bigint
  read(fd: number, buf: bigint, n: bigint): bigint
  /** This thread's errno's address: glibc's and musl's __errno_location, macOS's __error. */
  errnoAt(): bigint
}

interface UvState {
  fns: Uv
  loop: bigint
  onPoll: bigint
  onClose: bigint
  errno: bigint
  handleSize: number
  /** Every read on this thread lands here first (a read's bytes are copied out or only counted before the next). */
  scratch: Uint8Array
  scratchAt: bigint
}
let uvState: UvState | undefined
// Polls by their handle's address: one callback pointer serves every poll (callbacks only run on this thread).
const polls = new Map<bigint, UvPoll>()

function uv(): UvState {
  if (uvState) return uvState
  const self = new ffi.DynamicLibrary(null)
  const raw = self.getFunctions({
    uv_poll_init: { return: "i32", arguments: ["pointer", "pointer", "i32"] },
    uv_poll_start: { return: "i32", arguments: ["pointer", "i32", "pointer"] },
    uv_poll_stop: { return: "i32", arguments: ["pointer"] },
    uv_close: { return: "void", arguments: ["pointer", "pointer"] },
    uv_handle_size: { return: "u64", arguments: ["i32"] },
    read: { return: "i64", arguments: ["i32", "pointer", "u64"] },
    [ERRNO_AT]: { return: "pointer", arguments: [] },
  })
  const fns = { ...raw, errnoAt: raw[ERRNO_AT] } as unknown as Uv
  const onPoll = self.registerCallback({ return: "void", arguments: ["pointer", "i32", "i32"] }, (handle, status) =>
    polls.get(handle as bigint)?.ready(status),
  )
  const onClose = self.registerCallback({ return: "void", arguments: ["pointer"] }, (handle) => {
    const p = polls.get(handle as bigint)
    polls.delete(handle as bigint)
    p?.closed()
  })
  const scratch = new Uint8Array(READ_BYTES) // off the JS heap (over 64 bytes): its address does not move
  uvState = {
    fns,
    loop: ffi.getCurrentEventLoop(),
    onPoll,
    onClose,
    errno: fns.errnoAt(),
    handleSize: Number(fns.uv_handle_size(UV_POLL)),
    scratch,
    scratchAt: ffi.getRawPointer(scratch),
  }
  return uvState
}

const noop = () => {}
// A promise settled or a microtask queued in a node:ffi callback (no MakeCallback around it) runs at the next
// microtask checkpoint, which an idle loop may not reach for seconds (the next timer): an immediate brings one in
// this turn's check phase.
const drainSoon = () => void setImmediate(noop)
// the platform's own values (EAGAIN is 11 on Linux, 35 on macOS), as the node binary knows them
const { EAGAIN, EINTR } = constants.errno
const SCRATCH_BYTES = BigInt(READ_BYTES)

/** One read(2) of `fd` into the scratch buffer: the byte count, 0 at EOF, or -errno (EINTR read again). */
function readScratch(fd: number): number {
  const { fns, errno, scratchAt } = uv()
  for (;;) {
    const n = Number(fns.read(fd, scratchAt, SCRATCH_BYTES))
    if (n >= 0) return n
    const e = ffi.getInt32(errno)
    if (e !== EINTR) return -e
  }
}

/**
 * A uv_poll of `fd` for readability on this thread's loop: `onReady(status)` each time the loop finds it readable
 * (status < 0: polling failed), called from a node:ffi callback.
 */
class UvPoll {
  private readonly handle: Uint8Array
  private readonly at: bigint
  private readonly onReady: (status: number) => void
  private stopped = false
  private onClosed: (() => void) | undefined

  constructor(fd: number, onReady: (status: number) => void) {
    this.onReady = onReady
    const u = uv()
    this.handle = new Uint8Array(u.handleSize) // off the JS heap (over 64 bytes): its address does not move
    this.at = ffi.getRawPointer(this.handle)
    let r = u.fns.uv_poll_init(u.loop, this.at, fd)
    if (r === 0) r = u.fns.uv_poll_start(this.at, UV_READABLE, u.onPoll)
    if (r !== 0) throw new Error(`cannot poll fd ${fd}: libuv error ${r}`)
    polls.set(this.at, this)
  }

  get isStopped(): boolean {
    return this.stopped
  }

  ready(status: number) {
    if (!this.stopped) this.onReady(status)
  }

  /** Stops polling; `onClosed` runs once libuv has let go of the handle (whose memory this object keeps till then). */
  stop(onClosed?: () => void) {
    if (this.stopped) return
    this.stopped = true
    this.onClosed = onClosed
    const { fns, onClose } = uv()
    fns.uv_poll_stop(this.at)
    fns.uv_close(this.at, onClose)
  }

  closed() {
    this.onClosed?.()
  }
}

type ReadResult = { done: false; value: Uint8Array } | { done: true; value: undefined }

/** Reads a non-blocking fd when the loop says it is readable; the fd stays the caller's (never closed here). */
class PollReader {
  private readonly poll: UvPoll
  private readonly chunks: Uint8Array[] = []
  private waiting: { resolve(r: ReadResult): void; reject(e: unknown): void } | undefined
  private ended: ReadResult | Error | undefined
  private released: Promise<void> | undefined
  private readonly fd: number

  constructor(fd: number) {
    this.fd = fd
    this.poll = new UvPoll(fd, (status) => this.ready(status))
  }

  /**
   * The loop found the fd readable, or failed to poll it: read what is there, settle a waiting read. A failed poll
   * (libuv's UV_EBADF for EPOLLERR: a socket its peer reset, closing with bytes of ours unread) stopped polling, but
   * what the peer sent before is still there: read it all first, then end.
   */
  private ready(status: number) {
    for (;;) {
      const n = readScratch(this.fd)
      if (n > 0) {
        this.chunks.push(uv().scratch.slice(0, n)) // a copy of n bytes: a small one is cheap to make in Node
        if (n === READ_BYTES) continue
        if (status < 0) continue // no more wake-ups: read on to the end
      } else if (n === 0) this.end({ done: true, value: undefined })
      else if (n !== -EAGAIN) this.end(new Error(`reading fd ${this.fd} failed: errno ${-n}`))
      else if (status < 0) this.end(new Error(`polling fd ${this.fd} failed: libuv error ${status}`))
      break
    }
    const waited = this.waiting
    this.settle()
    if (waited && !this.waiting) drainSoon()
  }

  private end(how: ReadResult | Error) {
    this.ended ??= how
    this.poll.stop()
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

  cancel(): Promise<void> {
    this.ended ??= { done: true, value: undefined }
    this.settle()
    this.released ??= this.poll.isStopped
      ? Promise.resolve()
      : new Promise((resolve) => this.poll.stop(() => (drainSoon(), resolve())))
    return this.released
  }
}

/** The event loop polls `fd` (non-blocking, any pollable kind: eventfd, socket, pipe) and settles a read per wake-up. */
export function fdReader(fd: number): ReadableStreamDefaultReader<Uint8Array> {
  return new PollReader(fd) as unknown as ReadableStreamDefaultReader<Uint8Array>
}

/**
 * The doorbell on its own uv_poll: each wake-up reads every ring into the scratch buffer (no allocation) and calls
 * `onWake` with their count at once, in the poll callback; an immediate then brings the microtasks it queued into
 * this turn. At EOF, a failed read or close(), polling stops and the fd (the reader's, a duplicate) is closed.
 */
export function doorbellReader(fd: number, onWake: (rings: number) => void): DoorbellReader {
  const end = () => poll.stop(() => closeSync(fd))
  const poll = new UvPoll(fd, (status) => {
    let rings = 0
    for (;;) {
      const n = status < 0 ? -1 : readScratch(fd)
      if (n === READ_BYTES) rings += n
      else {
        if (n > 0) rings += n
        else if (n !== -EAGAIN) end() // EOF (the ringer is gone) or a failure: as close() does
        break
      }
    }
    if (rings === 0) return
    try {
      onWake(rings)
    } catch (e) {
      queueMicrotask(() => {
        throw e // an uncaught error, as from any I/O callback; a throw into node:ffi's callback would be lost
      })
    }
    drainSoon()
  })
  return { close: end }
}
