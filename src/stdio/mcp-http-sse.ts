// The SSE side of the MCP Streamable HTTP transport: each stream of a session (a POST's answer, the GET stream) has
// a number, each event an id `<stream>-<n>` unique over the session, and the session keeps its newest events (up to
// a byte budget) so that a client whose connection broke resumes with `Last-Event-ID` and loses nothing.
import { refusal } from "./mcp-http-checks.ts"

const encoder = new TextEncoder()

/**
 * One SSE response body: events written as they come, and a comment every `keepAliveMs`. A client that reads slower
 * than they come is cut off once more than `maxQueued` bytes wait for it (as an NDJSON client past
 * max_output_queue): its session keeps the newest events for a resumption, and nothing else grows. The bytes waiting
 * are those of the stream's queue, which the server (Bun.serve, or writeResponse on node:http) takes from only as its
 * socket takes them; they are counted once the server has had its turn, so the events of one read of a worker's
 * output (Bun's: up to 2 MB), written together, do not cut off a client that reads them.
 */
export class SseSink {
  readonly body: ReadableStream<Uint8Array>
  private controller!: ReadableStreamDefaultController<Uint8Array>
  private readonly keepAlive: ReturnType<typeof setInterval>
  private counting = false
  closed = false
  constructor(
    keepAliveMs: number,
    maxQueued: number,
    private readonly onGone: () => void,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (c) => void (this.controller = c),
        cancel: () => {
          this.stop()
          onGone()
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: maxQueued }),
    )
    // a proxy cuts a response that sends nothing for a while (nginx: 60 s); a tool call may run longer without progress
    this.keepAlive = setInterval(() => this.write(": keepalive\n\n"), keepAliveMs)
    this.keepAlive.unref?.()
  }
  /** Text, or bytes (an event's data, shared by every session it goes to: never changed). */
  write(chunk: string | Uint8Array): void {
    if (this.closed) return
    try {
      this.controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk)
    } catch {
      return this.stop() // the server closed it
    }
    if (this.counting || (this.controller.desiredSize ?? 0) >= 0) return
    this.counting = true
    setImmediate(() => {
      this.counting = false
      if (this.closed || (this.controller.desiredSize ?? 0) >= 0) return
      this.stop()
      // no reason: Bun.serve prints a body's error, with its stack, to stderr (one per slow client)
      this.controller.error()
      this.onGone()
    })
  }
  close(): void {
    if (this.closed) return
    this.stop()
    try {
      this.controller.close()
    } catch {}
  }
  private stop(): void {
    this.closed = true
    clearInterval(this.keepAlive)
  }
}

/** One stream of a session: its events outlive the connection that carried them (sink), up to the byte budget. */
export interface EventStream {
  readonly no: number
  /** The connection writing it now; null while the client is away. */
  sink: SseSink | null
  /** Its last event is written (a POST's answer, or the GET stream replaced): a resumption replays and closes. */
  finished: boolean
  /** Its events still kept. */
  kept: number
  /** The number of its newest event dropped from the buffer (0: none): a resumption from before it cannot be whole. */
  lost: number
}

interface Kept {
  stream: EventStream
  n: number
  head: string
  data: Uint8Array
  bytes: number
}

/** A message's `data:` line, encoded once for every session it goes to (the bus hands each the same object). */
const encoded = new WeakMap<object, Uint8Array>()
function dataOf(message: object): Uint8Array {
  let data = encoded.get(message)
  if (data === undefined) encoded.set(message, (data = encoder.encode(`data: ${JSON.stringify(message)}\n\n`)))
  return data
}

/** A session's streams and its newest events, at most `maxBytes` of them (the oldest go first). */
export class SessionEvents {
  private readonly kept: Kept[] = []
  private readonly streams = new Map<number, EventStream>()
  private bytes = 0
  private last = 0
  private nextNo = 1
  constructor(private readonly maxBytes: number) {}

  /** A new stream on `sink`; its first event is an id with no data, so a client may resume it from the start. */
  open(sink: SseSink): EventStream {
    const s: EventStream = { no: this.nextNo++, sink, finished: false, kept: 0, lost: 0 }
    this.streams.set(s.no, s)
    sink.write(`id: ${s.no}-0\ndata: \n\n`)
    return s
  }

  send(s: EventStream, message: object): void {
    const n = ++this.last
    const head = `id: ${s.no}-${n}\nevent: message\n`
    const data = dataOf(message)
    const bytes = head.length + data.length
    s.sink?.write(head)
    s.sink?.write(data)
    if (bytes > this.maxBytes) {
      s.lost = n
      return
    }
    while (this.bytes + bytes > this.maxBytes) this.evict()
    this.kept.push({ stream: s, n, head, data, bytes })
    this.bytes += bytes
    s.kept++
  }

  /** A stream on `sink` with one event, `message`, and its end: an answer sent whole. */
  whole(sink: SseSink, message: object): void {
    const s = this.open(sink)
    this.send(s, message)
    this.finish(s)
  }

  /** The stream has had its last event; its connection closes, and it is forgotten once none of its events is kept. */
  finish(s: EventStream): void {
    s.finished = true
    s.sink?.close()
    s.sink = null
    if (s.kept === 0) this.streams.delete(s.no)
  }

  /** The connection went away; the stream goes on being kept for a resumption. */
  detach(s: EventStream, sink: SseSink): void {
    if (s.sink === sink) s.sink = null
  }

  /**
   * A GET with `Last-Event-ID`: the stream it names gets `sink` (the connection it had is closed) after the events
   * that followed that id; a finished one closes after them. Or the refusal: an id this session never issued, or one
   * whose followers were dropped from the buffer.
   */
  resume(lastEventId: string, sink: () => SseSink): { stream: EventStream; sink: SseSink } | Response {
    const m = /^(\d+)-(\d+)$/.exec(lastEventId.trim())
    const no = m ? Number(m[1]) : 0
    const s = this.streams.get(no)
    const after = m ? Number(m[2]) : 0
    // stream numbers start at 1 and event numbers run over the session: a later one was never issued
    if (!m || no === 0 || no >= this.nextNo || after > this.last)
      return refusal(
        400,
        -32000,
        `Bad Request: Last-Event-ID ${JSON.stringify(lastEventId)} was not issued in this session`,
      )
    if (!s || s.lost > after)
      return refusal(
        410,
        -32000,
        `Gone: the events after ${lastEventId} are no longer kept (replayBufferBytes: ${this.maxBytes} per session); send the request again`,
      )
    if (s.finished && !this.kept.some((k) => k.stream === s && k.n > after)) return new Response(null, { status: 204 })
    s.sink?.close()
    const next = sink()
    for (const k of this.kept)
      if (k.stream === s && k.n > after) {
        next.write(k.head)
        next.write(k.data)
      }
    if (s.finished) next.close()
    else s.sink = next
    return { stream: s, sink: next }
  }

  /** Every connection closes; nothing is kept. */
  close(): void {
    for (const s of this.streams.values()) s.sink?.close()
    this.streams.clear()
    this.kept.length = 0
    this.bytes = 0
  }

  private evict(): void {
    const k = this.kept.shift()!
    this.bytes -= k.bytes
    const s = k.stream
    s.lost = k.n
    if (--s.kept === 0 && s.finished) this.streams.delete(s.no)
  }
}
