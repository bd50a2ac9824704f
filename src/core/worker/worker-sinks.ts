// The worker's answer sinks: a slot of its channel (docs/PROTOCOL.md §5, §9) or a remote transport's sink (§10.3),
// as where a request's answer goes (serve.ts's AnswerSink).
import { native } from "../../native/ffi.ts"
import type { Channel } from "../wire/channel.ts"
import type { SlotRequest } from "./request.ts"
import type { StreamParts } from "./answer.ts"
import type { AnswerSink, StreamEnd } from "./serve.ts"
import { encodeHead, streamOut } from "./stream-out.ts"
import type { Answer, RemoteAnswerSink } from "../wire/remote.ts"

export interface SlotPort {
  givenUp(chan: Channel, slot: number, gen: number, req: SlotRequest): boolean
  credit(slot: number, seen: number, req: SlotRequest): Promise<void>
}

/** A slot of the worker's channel as where its request's answer goes (docs/PROTOCOL.md §5, §9). */
export class SlotSink implements AnswerSink {
  constructor(
    private readonly chan: Channel,
    private readonly slot: number,
    private readonly held: (SlotRequest | null)[],
    private readonly gen: Uint32Array,
    private readonly windows: Uint32Array,
    private readonly port: SlotPort,
  ) {}

  get open() {
    return this.chan.isOpen
  }
  get window() {
    return this.chan.isOpen ? this.windows[this.slot]! : 0
  }
  takeWindow() {
    const w = this.window
    this.windows[this.slot] = 0
    return w
  }
  arena(need: number) {
    return this.chan.arena(this.slot, 1, need)
  }
  get room() {
    return this.chan.arenaSize
  }
  readonly roomIs = "the slot arena (%d bytes); raise maxBodyBytes on the hub"
  complete(a: Answer) {
    native.sb_worker_complete(this.chan.ptr, this.slot, this.gen[this.slot]!, a.status, a.flags, a.headLen, a.bodyLen)
  }
  stream(parts: StreamParts, _window: number, req: SlotRequest): Promise<StreamEnd> {
    const { chan, slot } = this
    const gen = this.gen[slot]!
    return streamOut({
      chan,
      slot,
      gen,
      ...parts,
      cancelled: () => this.port.givenUp(chan, slot, gen, req),
      signal: req.signal,
      credit: (seen) => this.port.credit(slot, seen, req),
    })
  }
  release(req: SlotRequest) {
    if (this.held[this.slot] === req) this.held[this.slot] = null
    req.retire()
    this.chan.release()
  }
}

/** A remote transport's sink (docs/PROTOCOL.md §10.3) as where a request's answer goes. */
export class RemoteSink implements AnswerSink {
  readonly open = true
  constructor(
    private readonly sink: RemoteAnswerSink,
    public window: number,
  ) {}

  takeWindow() {
    const w = this.window
    this.window = 0
    return w
  }
  arena() {
    return this.sink.answerArena()
  }
  get room() {
    return this.sink.answerArena().length
  }
  readonly roomIs = "one message of the transport (%d bytes); raise its limit (NATS: max_payload), or answer a stream"
  complete(a: Answer) {
    this.sink.done(a)
  }
  stream(parts: StreamParts): Promise<StreamEnd> {
    return new Promise((over) =>
      this.sink.stream({
        body: parts.body,
        status: parts.status,
        head: encodeHead(parts.head),
        over: () => over({ begun: true }),
      }),
    )
  }
  release(req: SlotRequest) {
    req.retire()
  }
}
