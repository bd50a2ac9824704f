// A worker's answer as a stream (docs/PROTOCOL.md §9), on the hub: frames out of the slot's ring, into the caller's
// ReadableStream as it pulls (credit goes back as each frame is copied out), or into one body for a caller that
// did not ask for a stream. Separate from routing.ts because it is the one place that reads frames.
import { native, Frame, Msg, RespFlag, E_CORRUPT } from "../native/ffi.ts"
import { readHead } from "./codec.ts"
import { PayloadTooLargeError, ProtocolError } from "../errors.ts"
import { nowMs, type Link, type Pending, type StreamReading } from "./link.ts"
import { remoteError } from "./response.ts"

/** What a stream needs of the bus: routing.ts implements it. */
export interface StreamHost {
  /** The largest body a buffered caller takes. */
  maxBody(): number
  countIn(bytes: number): void
  /** The caller asked for a stream: answer it now, at the HEAD. */
  streamStarted(p: Pending, status: number, head: string[], body: ReadableStream<Uint8Array>): void
  /** The END arrived: a buffered caller gets its answer (`body`), a streaming one only its books settled. */
  streamEnded(p: Pending, status: number, head: string[], body: Uint8Array | null): void
  fail(p: Pending, err: unknown): void
  cutOff(link: Link, what: string): void
  returnSlot(link: Link, slot: number): void
}

export class StreamIn implements StreamReading {
  /** The worker's final notification came: after the END, the slot can go back. */
  final = false
  /** The END frame was read. */
  ended = false
  /** Since when a streaming caller has not been reading: no read pending since then (0: one is). */
  stalledSince = 0
  private status = 0
  private head: string[] = []
  private started = false
  private parts: Uint8Array[] = []
  private size = 0
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null
  private demand: (() => void) | null = null
  /** The stream's failure, held back until the caller has read the chunks queued before it. */
  private failing: { c: ReadableStreamDefaultController<Uint8Array>; err: unknown } | null = null
  private endedInError = false
  private returned = false

  constructor(
    private readonly host: StreamHost,
    private readonly link: Link,
    private readonly slot: number,
    private readonly p: Pending,
  ) {}

  /** sb_hub_poll returned this slot with a stream notification. */
  notified(final: boolean) {
    if (final) this.final = true
    this.advance()
  }

  /** The request failed (given up, timed out, worker gone): the caller's stream errors; frames are dropped from now on. */
  failed(err: unknown) {
    const c = this.controller
    this.controller = null
    // error() would drop what is queued: chunks the worker sent before its error END are read first (a failure
    // of the caller's own making, an abort or a timeout, ends the stream at once)
    if (c && this.endedInError && (c.desiredSize ?? 0) < 0) this.failing = { c, err }
    else if (c)
      try {
        c.error(err)
      } catch {}
    this.satisfy()
    this.parts = []
    if (this.link.chan.isOpen) this.advance()
  }

  /** Reads what is published: all of it for a buffered or given-up caller, a chunk per pull for a streaming one. */
  private advance() {
    const { chan } = this.link
    const m = chan.msg
    let delivered = false // a pull is answered with everything published by then, not one frame a turn
    while (chan.isOpen && !this.returned) {
      const live = this.p.phase === "in-slot"
      if (live && this.controller && this.demand === null) break // back-pressure: the ring holds the rest
      const type = native.sb_hub_stream_next(chan.ptr, this.slot)
      if (type === -1) break
      if (type < 0) {
        const why = type === E_CORRUPT ? native.sb_error(chan.ptr) : `error ${-type}`
        return this.host.cutOff(this.link, `broke a streamed answer (${why})`)
      }
      const off = m[Msg.bodyOff]!
      const len = m[Msg.bodyLen]!
      const status = m[Msg.status]!
      const pos = m[Msg.pos]!
      const arena = chan.arena(this.slot, 1)
      if (type === Frame.HEAD) {
        this.status = status
        this.head = this.p.kind === 0 ? [] : readHead(arena.subarray(off, off + len), len)
        if (live && this.p.stream) this.start()
      } else if (type === Frame.DATA && live) {
        this.host.countIn(len)
        const copy = arena.slice(off, off + len)
        if (this.controller) {
          this.controller.enqueue(copy)
          delivered = true
        } else if ((this.size += len) > this.host.maxBody()) {
          this.host.fail(
            this.p,
            new PayloadTooLargeError(
              `the streamed answer is over maxBodyBytes ${this.host.maxBody()}; raise it on the hub`,
            ),
          )
        } else this.parts.push(copy)
      } else if (type === Frame.END) {
        this.ended = true
        if (live) this.end(status, readHead(arena.subarray(off, off + len), len))
      }
      native.sb_hub_stream_consumed(chan.ptr, this.slot, pos)
    }
    if (delivered) this.satisfy()
    if (this.final && this.ended && !this.returned && chan.isOpen) {
      this.returned = true
      this.host.returnSlot(this.link, this.slot)
    }
  }

  private start() {
    this.started = true
    this.stalledSince = nowMs() // from the HEAD on, the caller's reading is what keeps the stream alive
    const body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c
        },
        pull: () => {
          if (this.failing) return this.failing.c.error(this.failing.err)
          if (!this.controller) return
          this.stalledSince = 0
          const { promise, resolve } = Promise.withResolvers<void>()
          this.demand = resolve
          this.advance()
          return promise
        },
        cancel: (reason) => {
          this.controller = null
          this.host.fail(this.p, reason ?? new DOMException("the stream's reader cancelled it", "AbortError"))
        },
      },
      { highWaterMark: 0 },
    )
    this.host.streamStarted(this.p, this.status, this.head, body)
  }

  private end(flags: number, pairs: string[]) {
    if (flags & RespFlag.ERROR) {
      let message = ""
      const rest: string[] = []
      for (let i = 0; i + 1 < pairs.length; i += 2)
        if (pairs[i] === "message") message = pairs[i + 1]!
        else rest.push(pairs[i]!, pairs[i + 1]!)
      this.endedInError = true
      return this.host.fail(this.p, remoteError(rest, message, this.link.chan.peerPid))
    }
    if (flags & RespFlag.CANCELLED)
      return this.host.fail(this.p, new ProtocolError("worker cancelled a stream the hub never cancelled"))
    if (!this.started && this.p.stream) this.start() // a HEAD without demand: never, but keep the caller whole
    if (this.controller) {
      this.controller.close()
      this.controller = null
      this.satisfy()
      return this.host.streamEnded(this.p, this.status, this.head, null)
    }
    const body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size)
    this.parts = []
    this.host.streamEnded(this.p, this.status, this.head, new Uint8Array(body.buffer, body.byteOffset, body.length))
  }

  private satisfy() {
    const d = this.demand
    this.demand = null
    if (d && this.controller) this.stalledSince = nowMs() // answered: the clock runs until the next read
    d?.()
  }
}
