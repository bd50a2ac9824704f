// A handler's streamed body, on the worker (docs/PROTOCOL.md §9): HEAD, then DATA frames as the body produces
// chunks and the hub grants credit, then END. The body is read only while there is credit, so a full window
// pauses the handler's stream (its `pull`).
import { native, Errno, RespFlag } from "../../native/ffi.ts"
import type { Channel } from "../wire/channel.ts"
import { chunkBytes, headLength, writeHead } from "../wire/codec.ts"
import { PayloadTooLargeError, ProtocolError } from "../../errors.ts"
import { ownError, thrownField, thrownText } from "./thrown.ts"

export interface StreamOut {
  chan: Channel
  slot: number
  gen: number
  status: number
  head: readonly string[]
  body: ReadableStream<unknown>
  /** Whether the hub gave the request up: its cancel word names it (read after every wait). */
  cancelled(): boolean
  /** The handler's req.signal: when it aborts, the body is cancelled, whatever its stream is waiting for. */
  signal: AbortSignal
  /** Resolves once the stream's credit is no longer `seen` (chan.streamLimit), or it is given up. */
  credit(seen: number): Promise<void>
}

/** How it went: `begun` false means nothing was sent and the slot still wants a whole answer (`error` if any). */
export type StreamResult = { begun: true } | { begun: false; error?: unknown }

const { ECANCELED, E2BIG, EAGAIN, ENOTSUP } = Errno
// An error END's pairs: at most half the smallest window (4096) less the frame header, since an END of half the
// window or less fits at any position (before the ring's end or after a PAD, docs/PROTOCOL.md §9.2); a larger one
// may fit at neither however long it waits.
const MAX_ERROR_PAIRS = 2040
const EMPTY_HEAD = new Uint8Array(0)

export function encodeHead(strings: readonly string[]): Uint8Array {
  if (strings.length === 0) return EMPTY_HEAD
  const bytes = new Uint8Array(headLength(strings))
  writeHead(bytes, strings)
  return bytes
}

export async function streamOut(s: StreamOut): Promise<StreamResult> {
  const { chan, slot, gen } = s
  const head = encodeHead(s.head)
  const r = native.sb_worker_stream_begin(chan.ptr, slot, gen, s.status, head.length ? head : null, head.length)
  if (r === ENOTSUP) return { begun: false, error: new ProtocolError("the hub offered no stream window") }
  if (r === ECANCELED) {
    s.body.cancel().catch(() => {})
    return { begun: false } // given up: any whole answer will do, the hub discards it
  }
  if (r === E2BIG)
    return {
      begun: false,
      error: new PayloadTooLargeError("the response headers do not fit the hub's stream window (streamWindowBytes)"),
    }
  if (r < 0) return { begun: false, error: new ProtocolError(`could not start the stream (error ${-r})`) }

  const reader = s.body.getReader()
  // a read waiting for a chunk that may never come ends (done) when the request is given up
  const stop = () => void reader.cancel(s.signal.reason).catch(() => {})
  s.signal.addEventListener("abort", stop, { once: true })
  let flags = 0
  let pairs: Uint8Array | null = null
  // s.cancelled() reads the hub's cancel word (and aborts the handler's signal the first time it is set)
  const over = () => s.cancelled() || !chan.isOpen
  try {
    for (;;) {
      if (over()) break
      const { done, value } = await reader.read()
      if (done) break
      const got = chunkBytes(value)
      const bytes = got instanceof Promise ? await got : got
      for (let off = 0; off < bytes.length; ) {
        if (!chan.isOpen) break
        const seen = chan.streamLimit(slot) // read before the write: a grant after it is then seen as a move
        const n = native.sb_worker_stream_write(chan.ptr, slot, gen, bytes.subarray(off), bytes.length - off)
        if (n === ECANCELED) break
        if (n < 0) throw new ProtocolError(`the hub broke the stream (error ${-n})`)
        off += n
        if (off < bytes.length) await s.credit(seen) // the window is full: wait for credit
        if (over()) break
      }
    }
  } catch (e) {
    flags = RespFlag.ERROR
    pairs = errorPairs(e)
  }
  s.signal.removeEventListener("abort", stop)
  if (over()) {
    flags = RespFlag.CANCELLED
    pairs = null
    reader.cancel(new DOMException("the hub gave this request up", "AbortError")).catch(() => {})
  } else if (flags === 0) reader.releaseLock()
  for (;;) {
    if (!chan.isOpen) return { begun: true }
    if (over()) (flags = RespFlag.CANCELLED), (pairs = null) // an END with nothing: it always fits
    const seen = chan.streamLimit(slot)
    const e = native.sb_worker_stream_end(chan.ptr, slot, gen, flags, pairs, pairs?.length ?? 0)
    if (e === E2BIG && pairs) {
      pairs = null // they can never fit here (errorPairs keeps them small enough, so never): the error without them
      continue
    }
    if (e !== EAGAIN) return { begun: true }
    await s.credit(seen) // the error's pairs need more credit than there is
  }
}

/** The error END's pairs (docs/PROTOCOL.md §9.2): message, name and stack, cut to fit any position in the smallest window. */
export function errorPairs(e: unknown): Uint8Array {
  const err = e instanceof Error ? e : null
  const clean = (v: string, max: number) => v.replace(/\0/g, "").slice(0, max)
  const message = clean(thrownText(err ? thrownField(err, "message") : e), 1000)
  const name = clean(thrownText((err && thrownField(err, "name")) ?? "Error"), 100)
  const errStack = err && thrownField(err, "stack")
  const stack = typeof errStack === "string" ? ["stack", clean(errStack, 2000)] : []
  let strings = ["message", message, "name", name, ...ownError(e), ...stack]
  if (headLength(strings) > MAX_ERROR_PAIRS) strings = ["message", message, "name", name, ...ownError(e)]
  // 1000 UTF-16 units can be 3000 bytes: halve the message until the pairs fit
  while (headLength(strings) > MAX_ERROR_PAIRS) strings[1] = strings[1]!.slice(0, strings[1]!.length >> 1)
  return encodeHead(strings)
}
