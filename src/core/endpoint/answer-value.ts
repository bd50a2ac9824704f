// The value a caller gets from an answer, decided in one place and one order for every way an answer comes: whole
// from a slot (slot-endpoint.ts), or from the books once a streamed or a remote answer ended (the Dispatcher).
import { Kind } from "../../native/ffi.ts"
import { readAnswer, type Pending } from "./endpoint.ts"
import {
  BorrowedResponse,
  heldLate,
  NULL_BODY_STATUS,
  oneChunk,
  ownBytes,
  SlotResponse,
  StreamedResponse,
  webResponse,
} from "./response.ts"

/** Where an answer's body lies while it is not the caller's own: a slot of a worker on this host. */
export interface AnswerSlot {
  /** `p`'s body as a BorrowedResponse: its slot lent to the caller until release, or a copy when it cannot be kept. */
  lend(
    p: Pending,
    status: number,
    head: readonly string[],
    bytes: Uint8Array,
    off: number,
    len: number,
  ): BorrowedResponse
  /** The pump turn `p` was sent in: its Web Response is late after it (heldLate). */
  sentTurnOf(p: Pending): number
}

let lengths: WeakMap<Response, number> | null = null
/**
 * The body length of each Web Response bus.fetch makes from a whole answer from here on (a byte body, or one held
 * late as a one-chunk stream): nodeHandler writes it as Content-Length, which node:http cannot know of a body it is
 * given as a stream. Kept only once a nodeHandler asked for it: a Bun.serve front pays nothing.
 */
export function wholeLengths(): WeakMap<Response, number> {
  return (lengths ??= new WeakMap())
}

/**
 * What `p`'s caller gets from an answer whose body is `bytes[off, off + len)`, as its Want says: an RPC call's decoded
 * value (`read`), a borrowed body (`borrow`), a Web Response (bus.fetch), else the body (in the caller's buffer with
 * `into`) as a StreamedResponse (`stream`), the bytes themselves (bus.call) or a SlotResponse.
 * `from`: the slot the body lies in, whose bytes are copied or lent; null when they are the caller's own already.
 * Throws what webResponse throws (a status a Response refuses): the caller's request then fails with it.
 */
export function answerValue(
  p: Pending,
  status: number,
  head: readonly string[],
  bytes: Uint8Array,
  off: number,
  len: number,
  from: AnswerSlot | null,
): unknown {
  const want = p.want
  if (want.as === "read") return readAnswer(want.read, status, view(bytes, off, len))
  if (want.as === "borrow")
    return from === null
      ? new BorrowedResponse(status, head, view(bytes, off, len), null)
      : from.lend(p, status, head, bytes, off, len)
  if (want.as === "response") {
    const r =
      from !== null && heldLate(len, from.sentTurnOf(p))
        ? webResponse(status, head, oneChunk(bytes.slice(off, off + len)))
        : webResponse(status, head, view(bytes, off, len)) // Bun copies it: no JS buffer
    if (lengths !== null && !NULL_BODY_STATUS.has(status)) lengths.set(r, len)
    return r
  }
  const body =
    want.into !== null
      ? ownBytes(view(bytes, off, len), want.into)
      : from === null
        ? view(bytes, off, len)
        : bytes.slice(off, off + len)
  if (want.as === "stream") return new StreamedResponse(status, head, body)
  // an answer from the books (streamed, remote) came turns after its request: NaN, late
  return p.kind === Kind.RAW ? body : new SlotResponse(status, head, body, from?.sentTurnOf(p))
}

/** Whether answerValue only reads `p`'s body during the call (read, a Web Response, into): a body lent for the call
 * then needs no copy first. */
export function readsBodyOnce(p: Pending): boolean {
  const want = p.want
  return want.as === "read" || want.as === "response" || want.into !== null
}

function view(bytes: Uint8Array, off: number, len: number): Uint8Array {
  return off === 0 && len === bytes.length ? bytes : bytes.subarray(off, off + len)
}
