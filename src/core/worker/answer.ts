// A handler's answer as the worker writes it (docs/PROTOCOL.md §6): what a handler may return (SlotReply), the
// replies read before the slot is written (a Response, a Blob, a stream), a stream answered whole when it fits, and
// the encoding into the answer arena, an error's included.
import { RespFlag } from "../../native/ffi.ts"
import { PayloadTooLargeError } from "../../errors.ts"
import { checkNumber } from "../../kit/index.ts"
import { align8, headerPairs, type HeadersLike, headLength, toBytes, writeHead } from "../wire/codec.ts"
import type { BodyInit } from "../wire/codec.ts"
import { Pieces, readyBody } from "./ready-body.ts"
import type { SlotRequest } from "./request.ts"
import { ownError, thrownField, thrownText } from "./thrown.ts"

/** A reply's status: what HTTP can carry (three digits). */
const STATUS = { what: "status", max: 999 }

/** A body a Web Response takes that is none of BodyInit's: made into one by `new Response(body)` (webReply). */
export type WebBody = URLSearchParams | FormData | AsyncIterable<Uint8Array | string>

/**
 * What a handler returns: a reply object, a Response, or just the body. A `ReadableStream` body (or a Response's,
 * or an async iterable's) streams to the caller chunk by chunk as it is produced (docs/PROTOCOL.md §9).
 */
export type SlotReply =
  | { status?: number; headers?: HeadersLike; body?: BodyInit | ReadableStream | WebBody }
  | Response
  | BodyInit
  | ReadableStream
  | WebBody

/** A Response, a Blob, a stream, or a reply whose body is a Blob or a stream: read before the slot is written. */
export function isAsyncReply(out: unknown): out is Response | Blob | ReadableStream | { body: Blob | ReadableStream } {
  const body = typeof out === "object" && out !== null ? (out as { body?: unknown }).body : undefined
  return (
    out instanceof Response ||
    out instanceof Blob ||
    out instanceof ReadableStream ||
    body instanceof Blob ||
    body instanceof ReadableStream
  )
}

export async function readAsyncReply(
  out: Response | Blob | ReadableStream | { status?: number; headers?: HeadersLike; body: Blob | ReadableStream },
): Promise<SlotReply> {
  if (out instanceof Response) {
    const headers = out.headers // before the body, as in streamParts
    return { status: out.status, headers, body: await out.bytes() }
  }
  if (out instanceof Blob)
    return { headers: out.type ? { "content-type": out.type } : undefined, body: await out.bytes() }
  if (out instanceof ReadableStream) return { body: await new Response(out).bytes() }
  return { ...out, body: await new Response(out.body).bytes() }
}

/**
 * A reply whose body is a stream (a Response with a body, a ReadableStream, or { body: ReadableStream }) as what
 * stream-out.ts sends; null for any other reply, which is answered whole.
 */
export function streamParts(out: unknown): StreamParts | null {
  if (out instanceof Response) {
    // the head first: Bun sets a Blob's (or Bun.file's) type as content-type only if asked before the body
    const head = headerPairs(out.headers)
    return out.body ? { status: out.status, head, body: out.body } : null
  }
  if (out instanceof ReadableStream) return { status: 200, head: [], body: out }
  if (typeof out === "object" && out !== null && (out as { body?: unknown }).body instanceof ReadableStream) {
    const r = out as { status?: number; headers?: HeadersLike; body: ReadableStream }
    const status = checkNumber(r.status ?? 200, STATUS)
    return { status, head: headerPairs(r.headers), body: r.body }
  }
  return null
}

export type StreamParts = { status: number; head: readonly string[]; body: ReadableStream<unknown> }

/**
 * A stream reply whose body is all there already and fits both `arena` and the stream window goes whole (`whole`,
 * a reply to encode); otherwise the parts with the body to stream from where reading stopped (ready-body.ts). The
 * window bounds what is read ahead, as streaming would.
 */
export async function wholeOrStream(parts: StreamParts, arena: number, window: number): Promise<StreamParts | Whole> {
  const r = await readyBody(parts.body, Math.min(window, arena - align8(headLength(parts.head))))
  if (r.whole) return new Whole(parts.status, parts.head, r.whole)
  return { ...parts, body: r.rest }
}

/** A reply read whole before it is encoded: its head pairs already checked (a Response's), its body read. */
export class Whole {
  constructor(
    readonly status: number,
    readonly head: readonly string[],
    readonly body: Pieces,
  ) {}
}

/** A handler's return value as { status, headers, body }; anything that is not a reply is a TypeError, never an empty 200. */
function replyParts(r: unknown): { status?: number; headers?: HeadersLike; body?: unknown } {
  if (
    r == null ||
    typeof r === "string" ||
    ArrayBuffer.isView(r) ||
    r instanceof ArrayBuffer ||
    r instanceof SharedArrayBuffer
  )
    return { body: r }
  if (typeof r === "object" && !Array.isArray(r) && ("status" in r || "body" in r))
    return r as { status?: number; headers?: HeadersLike; body?: unknown }
  const what =
    r === null || typeof r !== "object"
      ? `a ${typeof r} (${String(r).slice(0, 40)})`
      : `an object without status or body`
  throw new TypeError(`the handler returned ${what}; return ${REPLIES}`)
}

const BODIES =
  "a Uint8Array (or another ArrayBufferView), ArrayBuffer, Blob, ReadableStream, URLSearchParams, FormData, async iterable, string or null"
const REPLIES =
  "a body (string, Uint8Array or another ArrayBufferView, ArrayBuffer, Blob, ReadableStream, URLSearchParams, FormData, async iterable), { status, headers, body }, a Response, or nothing"

const isWebBody = (b: unknown): b is WebBody =>
  typeof b === "object" &&
  b !== null &&
  !(b instanceof ReadableStream) &&
  (b instanceof URLSearchParams || b instanceof FormData || Symbol.asyncIterator in b)

/**
 * A reply that is, or whose body is, a body a Web Response takes and BodyInit does not (URLSearchParams, FormData, an
 * async iterable) as the reply with that Response's body stream, to be answered as any stream reply is, and its
 * content-type (as a Request's would be) unless the reply names one; null for any other reply.
 */
export function webReply(
  out: unknown,
): { status?: number; headers: [string, string][]; body: ReadableStream | null } | null {
  // a Response's body is not looked at here: Bun gives a Blob body's type as content-type only if asked first
  if (typeof out !== "object" || out === null || out instanceof Response) return null
  const parts = isWebBody(out) ? { body: out } : (out as { status?: number; headers?: HeadersLike; body?: unknown })
  if (!isWebBody(parts.body)) return null
  const made = new Response(parts.body as ConstructorParameters<typeof Response>[0])
  const head = headerPairs(parts.headers)
  const headers: [string, string][] = []
  for (let i = 0; i < head.length; i += 2) headers.push([head[i]!, head[i + 1]!])
  const type = made.headers.get("content-type")
  if (type !== null && !headers.some(([name]) => name === "content-type")) headers.push(["content-type", type])
  return { status: parts.status, headers, body: made.body }
}

/** Where an answer is encoded: the start of the arena, at least `need` bytes long (all of it if fewer), and its size. */
export interface AnswerArena {
  arena(need: number): Uint8Array
  readonly room: number
  /** What the room is and how to get more, for the error of an answer too large for it. */
  readonly roomIs: string
}

/**
 * A handler's outcome written into `to`'s arena as the answer (docs/PROTOCOL.md §6): head, padding, body; a throw,
 * or a reply that cannot be sent (bad status, too large), as the error answer.
 */
export function encodeAnswer(to: AnswerArena, req: SlotRequest, out: unknown, threw: boolean) {
  const room = to.room
  let status = 200,
    flags = 0,
    headLen = 0,
    bodyLen = 0
  try {
    if (threw) throw out
    // bytes that fit: the body alone (an empty view may be of a detached buffer: toBytes below says so)
    if (out instanceof Uint8Array && out.byteLength > 0 && out.byteLength <= room && req.replied === null) {
      to.arena(out.byteLength).set(out, 0)
      return { status, flags, headLen, bodyLen: out.byteLength }
    }
    const reply = out instanceof Whole ? out : replyParts(out)
    if (req.replied && reply.body === req.replied.view) {
      ;({ status, headLen } = req.replied)
      bodyLen = req.replied.view.length
      if (req.lendsCopies) to.arena(align8(headLen) + bodyLen).set(req.replied.view, align8(headLen))
    } else {
      status = checkNumber(reply.status ?? 200, STATUS)
      const strings = reply instanceof Whole ? reply.head : headerPairs(reply.headers)
      const at = align8(headLength(strings))
      if (typeof reply.body === "string") {
        // straight into the arena: no buffer of the UTF-8 made and dropped (its pages are what the kernel zeroes
        // again and again once the allocator gave them back; docs/perf/real-work.md); 3 bytes a unit at most
        const text = reply.body
        const arena = to.arena(at + 3 * text.length)
        const { read, written } =
          at <= arena.length ? encoder.encodeInto(text, arena.subarray(at)) : { read: -1, written: 0 }
        if (read < text.length) throw tooLarge(Buffer.byteLength(text), room, to.roomIs)
        headLen = writeHead(arena, strings)
        bodyLen = written
      } else if (reply.body instanceof Pieces) {
        // a stream body read whole (wholeOrStream): its pieces go into the arena as they are
        const body = reply.body
        if (at + body.length > room) throw tooLarge(body.length, room, to.roomIs)
        const arena = to.arena(at + body.length)
        headLen = writeHead(arena, strings)
        body.copyTo(arena, align8(headLen))
        bodyLen = body.length
      } else {
        const body = toBytes(reply.body as BodyInit, "reply body", BODIES)
        if (at + body.length > room) throw tooLarge(body.length, room, to.roomIs)
        const arena = to.arena(at + body.length)
        headLen = writeHead(arena, strings)
        arena.set(body, align8(headLen))
        bodyLen = body.length
      }
    }
  } catch (e) {
    ;({ headLen, bodyLen } = writeError(to, e))
    ;(status = 500), (flags = RespFlag.ERROR)
  }
  return { status, flags, headLen, bodyLen }
}

const encoder = new TextEncoder()

const tooLarge = (bytes: number, room: number, roomIs: string) =>
  new PayloadTooLargeError(`reply of ${bytes} body bytes does not fit ${roomIs.replace("%d", String(room))}`)

const MAX_STACK_CHARS = 8192

/**
 * An error answer (docs/PROTOCOL.md §6): head pairs `name`, `slotbus-error` (slotbus's own error) and `stack` (when
 * there is one), body the message, cut to fit the arena.
 */
function writeError(to: AnswerArena, e: unknown): { headLen: number; bodyLen: number } {
  const err = e instanceof Error ? e : null
  const stack = err && thrownField(err, "stack")
  const strings = [
    "name",
    thrownText((err && thrownField(err, "name")) ?? "Error").replace(/\0/g, ""),
    ...ownError(e),
    ...(typeof stack === "string" ? ["stack", stack.slice(0, MAX_STACK_CHARS).replace(/\0/g, "")] : []),
  ]
  const msg = new TextEncoder().encode(thrownText(err ? thrownField(err, "message") : e))
  const head = align8(headLength(strings))
  const arena = to.arena(head + Math.max(64, msg.length))
  const headLen = head + 64 <= arena.length ? writeHead(arena, strings) : 0
  const off = align8(headLen)
  const cut = msg.subarray(0, Math.min(msg.length, arena.length - off))
  arena.set(cut, off)
  return { headLen, bodyLen: cut.length }
}
