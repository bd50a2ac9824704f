// A worker's answer as a stream (docs/PROTOCOL.md §9), on the hub: frames from their source (a slot's ring, or
// messages from a worker on another host, §10.4), into the caller's ReadableStream as it pulls (credit goes back
// as each frame is taken), or into one body for a caller that did not ask for a stream. Separate from the
// endpoints because it is the one place that reads frames.
import { native, Frame, Msg, RespFlag, E_CORRUPT } from "../../native/ffi.ts"
import { readHead } from "../wire/codec.ts"
import { PayloadTooLargeError, ProtocolError } from "../../errors.ts"
import { nowMs, streamsFromHead, type Pending, type StreamHost, type StreamReading } from "./endpoint.ts"
import type { Channel } from "../wire/channel.ts"
import { answerHead, remoteError } from "./response.ts"
import { frameCharge } from "../wire/remote.ts"

/** Where a stream's frames come from, one at a time; each is taken (`taken()`) before the next is asked for. */
export interface FrameSource {
  /** The frame's sender can still be read from (a closed slot's ring cannot). */
  readonly open: boolean
  /** Nothing more will come after what it holds (the worker's last notification, or the END arrived). */
  final: boolean
  /** The next frame's type (Frame.HEAD, DATA, END), -1 when none is there yet, -2 when the source broke (it said so). */
  next(): number
  /** The frame's status (HEAD) or flags (END). */
  readonly status: number
  /** Its payload: head, data or pairs; valid until taken. */
  readonly bytes: Uint8Array
  /** The frame is copied out: its room may be used again (credit). */
  taken(): void
  /** After the END, once final: what the stream held goes back (the slot). */
  finish(): void
  /** Who sent it, for errors. */
  readonly pid: number
}

/** What a slot's frames need of the worker that holds the slot (slot-endpoint.ts). */
export interface SlotStreamOwner {
  readonly chan: Channel
  /** Its worker broke the protocol: it is cut off. */
  broke(what: string): void
  /** The stream in `slot` is over and read: the slot goes back. */
  streamOver(slot: number): void
}

/** The frames of a slot's ring (§9). */
export class SlotFrames implements FrameSource {
  final = false
  status = 0
  bytes: Uint8Array = new Uint8Array(0)
  private pos = 0

  constructor(
    private readonly link: SlotStreamOwner,
    private readonly slot: number,
  ) {}

  get open() {
    return this.link.chan.isOpen
  }
  get pid() {
    return this.link.chan.peerPid
  }

  next(): number {
    const { chan } = this.link
    const type = native.sb_hub_stream_next(chan.ptr, this.slot)
    if (type === -1) return -1
    if (type < 0) {
      const why = type === E_CORRUPT ? native.sb_error(chan.ptr) : `error ${-type}`
      this.link.broke(`broke a streamed answer (${why})`)
      return -2
    }
    const m = chan.msg
    const off = m[Msg.bodyOff]!
    this.status = m[Msg.status]!
    this.pos = m[Msg.pos]!
    this.bytes = chan.arena(this.slot, 1, off + m[Msg.bodyLen]!).subarray(off, off + m[Msg.bodyLen]!)
    return type
  }

  taken() {
    native.sb_hub_stream_consumed(this.link.chan.ptr, this.slot, this.pos)
  }

  finish() {
    this.link.streamOver(this.slot)
  }
}

/** The frames of a worker on another host (§10.4), as its transport hands them over: held until taken. */
export class RemoteFrames implements FrameSource {
  readonly open = true
  final = false
  status = 0
  bytes: Uint8Array = new Uint8Array(0)
  private type = -1
  private readonly held: { type: number; status: number; bytes: Uint8Array }[] = []
  /** DATA bytes taken so far: the credit the transport grants (§10.4). */
  private took = 0

  constructor(
    readonly pid: number,
    private readonly grant: (taken: number) => void,
    readonly finish: () => void,
  ) {}

  /** A frame arrived (`bytes` its own copy): the transport checked its order and its credit. */
  push(type: number, status: number, bytes: Uint8Array) {
    this.held.push({ type, status, bytes })
    if (type === Frame.END) this.final = true
  }

  next(): number {
    const f = this.held.shift()
    if (!f) return -1
    this.type = f.type
    this.status = f.status
    this.bytes = f.bytes
    return f.type
  }

  taken() {
    if (this.type === Frame.DATA) this.grant((this.took += frameCharge(this.bytes.length)))
  }
}

export class StreamIn implements StreamReading {
  /** The END frame was read. */
  ended = false
  /** Since when a streaming caller has not been reading: no read pending, nor a queued chunk taken (0: one is). */
  private idleFrom = 0
  /** The chunks its stream held queued when `idleFrom` was set: fewer later, and the caller has read meanwhile. */
  private queuedThen = 0
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
    readonly src: FrameSource,
    private readonly p: Pending,
  ) {}

  /**
   * Since when its caller has not read (0: a read is pending). A pull takes what is published, up to a window, as
   * chunks queued in its stream: a caller reading them one by one asks for no pull until they are gone, so the
   * queue's length, looked at here (each tick), tells that it still reads.
   */
  get stalledSince(): number {
    const queued = this.queued()
    if (this.idleFrom !== 0 && queued < this.queuedThen) this.idle()
    return this.idleFrom
  }

  private queued(): number {
    return -(this.controller?.desiredSize ?? 0) // highWaterMark 0, each chunk counts 1: minus the chunks queued
  }

  /** The caller has no read pending from now on. */
  private idle() {
    this.idleFrom = nowMs()
    this.queuedThen = this.queued()
  }

  /** Its source has frames (`final`: the last ones). */
  notified(final: boolean) {
    if (final) this.src.final = true
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
    if (this.src.open) this.advance()
  }

  /** Reads what is published: all of it for a buffered or given-up caller, a chunk per pull for a streaming one. */
  private advance() {
    const { src } = this
    let delivered = false // a pull is answered with everything published by then, not one frame a turn
    while (src.open && !this.returned) {
      const live = this.p.phase === "in-slot"
      if (live && this.controller && this.demand === null) break // back-pressure: the source holds the rest
      const type = src.next()
      if (type < 0) break
      const bytes = src.bytes
      if (type === Frame.HEAD) {
        this.status = src.status
        try {
          this.head = this.p.kind === 0 ? [] : answerHead(bytes, bytes.length, src.pid)
          if (live && streamsFromHead(this.p)) this.start()
        } catch (e) {
          if (live) this.host.fail(this.p, e) // the rest of its frames are taken and dropped
        }
      } else if (type === Frame.DATA && live) {
        this.host.countIn(bytes.length)
        const copy = bytes.slice()
        if (this.controller) {
          this.controller.enqueue(copy)
          delivered = true
        } else if ((this.size += bytes.length) > this.host.maxBody()) {
          this.host.fail(
            this.p,
            new PayloadTooLargeError(
              `the streamed answer is over maxBodyBytes ${this.host.maxBody()}; raise it on the hub`,
            ),
          )
        } else this.parts.push(copy)
      } else if (type === Frame.END) {
        this.ended = true
        if (live) this.end(src.status, readHead(bytes, bytes.length))
      }
      src.taken()
    }
    if (delivered) this.satisfy()
    if (src.final && this.ended && !this.returned && src.open) {
      this.returned = true
      src.finish()
    }
  }

  private start() {
    this.started = true
    this.idle() // from the HEAD on, the caller's reading is what keeps the stream alive
    const body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c
        },
        pull: () => {
          if (this.failing) return this.failing.c.error(this.failing.err)
          if (!this.controller) return
          this.idleFrom = 0
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
      return this.host.fail(this.p, remoteError(rest, message, this.src.pid))
    }
    if (flags & RespFlag.CANCELLED)
      return this.host.fail(this.p, new ProtocolError("worker cancelled a stream the hub never cancelled"))
    if (!this.started && streamsFromHead(this.p)) this.start() // a HEAD without demand: never, but keep the caller whole
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
    if (d && this.controller) this.idle() // answered: the clock runs until the next read
    d?.()
  }
}
