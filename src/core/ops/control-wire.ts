// The control socket's wire (docs/PROTOCOL.md §14): a JSON line, then u32-length frames up to an empty one, then
// (answers only) a trailer line. One reader for both sides, fed chunks as the socket gives them, and one writer
// that waits while the socket's buffer is full, so neither side holds more than a frame and a line.
import { connectFd, type Socket, type SocketHandlers } from "../../runtime/index.ts"

/** §14.2: the longest header (or head, trailer, error) line, its "\n" included. */
export const LINE_MAX = 65_536
/** §14.2: the longest frame. */
export const FRAME_MAX = 1_048_576
/** §14.2: the most body bytes a request may carry. */
export const REQUEST_BODY_MAX = 16 * 1024 * 1024
/** §14.1: connections a hub serves at once. */
export const CONNECTIONS_MAX = 4
/** §14.2: the whole request must arrive this soon after the connection. */
export const REQUEST_ARRIVAL_MS = 10_000
/** §14.2: the longest deadline a request may ask for. */
export const TIMEOUT_MAX_MS = 600_000
/** §14.3: an answer the client takes no byte of for this long is cut off. */
export const ANSWER_STALL_MS = 10_000

/** The wire was not as §14 says: `type` is the error class the hub answers with (BadRequest, TooLarge). */
export class WireError extends Error {
  constructor(
    readonly type: "BadRequest" | "TooLarge",
    message: string,
  ) {
    super(message)
  }
}

export type WireEvent =
  | { kind: "line"; value: Record<string, unknown> }
  | { kind: "frame"; bytes: Uint8Array }
  | { kind: "end" }

const enc = new TextEncoder()
const dec = new TextDecoder("utf-8", { fatal: true })

/**
 * Reads §14's grammar from chunks: a line, frames, the end frame, then (answers) a line again. push() returns what
 * became whole; it throws WireError on anything else. `bodyMax` bounds the frames' bytes in all.
 */
export class WireReader {
  private buf: Uint8Array = new Uint8Array(0)
  private expectLine = true
  private bodyBytes = 0

  constructor(private readonly bodyMax = Number.POSITIVE_INFINITY) {}

  push(chunk: Uint8Array): WireEvent[] {
    this.buf = this.buf.length === 0 ? chunk : concat(this.buf, chunk)
    const out: WireEvent[] = []
    for (;;) {
      if (this.expectLine) {
        const nl = this.buf.indexOf(10)
        if (nl < 0) {
          if (this.buf.length >= LINE_MAX) throw new WireError("TooLarge", `a line is longer than ${LINE_MAX} bytes`)
          return out
        }
        if (nl + 1 > LINE_MAX) throw new WireError("TooLarge", `a line is longer than ${LINE_MAX} bytes`)
        let value: unknown
        try {
          value = JSON.parse(dec.decode(this.buf.subarray(0, nl)))
        } catch {
          throw new WireError("BadRequest", "a line is not JSON (UTF-8)")
        }
        if (typeof value !== "object" || value === null || Array.isArray(value))
          throw new WireError("BadRequest", "a line is not a JSON object")
        this.buf = this.buf.subarray(nl + 1)
        this.expectLine = false
        out.push({ kind: "line", value: value as Record<string, unknown> })
        continue
      }
      if (this.buf.length < 4) return out
      const n = new DataView(this.buf.buffer, this.buf.byteOffset, 4).getUint32(0, true)
      if (n === 0) {
        this.buf = this.buf.subarray(4)
        this.expectLine = true // an answer's trailer line follows; a request has nothing more
        out.push({ kind: "end" })
        continue
      }
      if (n > FRAME_MAX) throw new WireError("BadRequest", `a frame of ${n} bytes (at most ${FRAME_MAX})`)
      if ((this.bodyBytes += n) > this.bodyMax)
        throw new WireError("TooLarge", `the body is larger than ${this.bodyMax} bytes`)
      if (this.buf.length < 4 + n) {
        this.bodyBytes -= n // counted again once it is whole
        return out
      }
      out.push({ kind: "frame", bytes: this.buf.slice(4, 4 + n) })
      this.buf = this.buf.subarray(4 + n)
    }
  }

  /** Bytes received past what was read (a request with anything after its end frame is not one request). */
  get leftover(): number {
    return this.buf.length
  }
}

/**
 * Writes to a socket in order, waiting (drain) while its buffer is full. With `stall`, a peer that takes no byte
 * for `stall.ms` while bytes wait is reported to `stall.cut` once, so a reader that stopped cannot hold a writer.
 */
export class WireWriter {
  private queue: Uint8Array[] = []
  private waiting: (() => void)[] = []
  private timer: ReturnType<typeof setTimeout> | undefined
  private progressAt = 0
  private abandoned = false

  constructor(
    private readonly socket: Socket<unknown>,
    private readonly stall?: { ms: number; cut: () => void },
  ) {}

  line(value: unknown): Promise<void> {
    return this.raw(enc.encode(`${JSON.stringify(value)}\n`))
  }

  /** `bytes` as frames (of at most FRAME_MAX each). */
  async frames(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; at += FRAME_MAX) {
      const part = bytes.subarray(at, Math.min(bytes.length, at + FRAME_MAX))
      const head = new Uint8Array(4)
      new DataView(head.buffer).setUint32(0, part.length, true)
      await this.raw(concat(head, part))
    }
  }

  end(): Promise<void> {
    return this.raw(new Uint8Array(4))
  }

  raw(bytes: Uint8Array): Promise<void> {
    if (this.abandoned) return Promise.resolve()
    if (this.queue.length === 0) {
      const n = this.socket.write(bytes)
      if (n >= bytes.length) return Promise.resolve()
      bytes = bytes.subarray(Math.max(0, n))
      this.progressAt = performance.now()
      this.watchStall()
    }
    this.queue.push(bytes)
    return new Promise((r) => this.waiting.push(r))
  }

  private watchStall(wait = this.stall?.ms) {
    if (!this.stall || this.timer !== undefined) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.queue.length === 0) return
      const left = this.progressAt + this.stall!.ms - performance.now()
      if (left > 0) this.watchStall(left)
      else this.stall!.cut()
    }, wait)
  }

  /** The socket's drain handler calls this. */
  drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!
      const n = this.socket.write(head)
      if (n > 0) this.progressAt = performance.now()
      if (n < head.length) {
        this.queue[0] = head.subarray(Math.max(0, n))
        return
      }
      this.queue.shift()
      this.waiting.shift()?.()
    }
  }

  /** The socket closed: whoever waits for room goes on (their bytes go nowhere). */
  abandon(): void {
    this.abandoned = true
    clearTimeout(this.timer)
    this.timer = undefined
    this.queue = []
    for (const w of this.waiting.splice(0)) w()
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/** [name, value] string pairs, checked. */
export function headerList(v: unknown): [string, string][] {
  if (v === undefined) return []
  if (!Array.isArray(v) || v.some((p) => !Array.isArray(p) || p.length !== 2 || p.some((x) => typeof x !== "string")))
    throw new WireError("BadRequest", "headers must be a list of [name, value] string pairs")
  return v as [string, string][]
}

/** A socket over a connected unix socket fd from libslotbus. */
export function socketOfFd<T>(fd: number, data: T, socket: SocketHandlers<T>): Promise<Socket<T>> {
  return connectFd(fd, data, socket)
}
