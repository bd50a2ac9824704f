// A worker's intake: the requests the hub published in a channel's slots taken and started (the pump's duty), the
// hub's cancels read against the requests held, and the streams waiting for credit woken; over a remote transport
// (docs/PROTOCOL.md §10), its requests made SlotRequests. Each is served through the one pipeline (serve.ts).
import { native, Msg, E_CORRUPT } from "../../native/ffi.ts"
import { ProtocolError } from "../../errors.ts"
import type { Channel } from "../wire/channel.ts"
import type { RemoteAnswerSink, RemoteRequest, RemoteWorkerHost, SlotBytes } from "../wire/remote.ts"
import { SlotRequest } from "./request.ts"
import type { Serving } from "./serve.ts"
import { RemoteSink, SlotSink, type SlotPort } from "./worker-sinks.ts"
import type { WorkerClosed } from "./options.ts"

/** One connection's intake from its slots: made when the channel is, for as long as it serves. */
export class Intake implements SlotPort {
  // The requests it holds, by slot, and their generations: what a cancel request is checked against.
  private readonly held: (SlotRequest | null)[]
  private readonly heldGen: Uint32Array
  // The stream window the hub offered each held request (0: answer whole).
  private readonly heldWindow: Uint32Array
  // Where each slot's answer goes: one sink per slot, reused by every request.
  private readonly sinks: SlotSink[]
  // Streams waiting for credit (their limit to move from `seen`) or a cancel: looked at on every collect.
  private looks: { slot: number; seen: number; req: SlotRequest; resolve: () => void }[] = []
  private cancelSeen: number

  constructor(
    private readonly chan: Channel,
    private readonly name: string,
    private readonly serving: Serving,
    /** The hub broke the protocol: the connection is lost. */
    private readonly broken: (error: ProtocolError) => void,
  ) {
    this.held = new Array<SlotRequest | null>(chan.slotCount).fill(null)
    this.heldGen = new Uint32Array(chan.slotCount)
    this.heldWindow = new Uint32Array(chan.slotCount)
    this.sinks = Array.from(
      { length: chan.slotCount },
      (_, slot) => new SlotSink(chan, slot, this.held, this.heldGen, this.heldWindow, this),
    )
    this.cancelSeen = native.sb_worker_cancel_seq(chan.ptr)
  }

  /** The pump's duty: take every request the hub published and start its handler. */
  collect(): number {
    const { chan } = this
    const m = chan.msg
    let n = 0
    if (chan.isOpen && chan.cancelSeq[0] !== this.cancelSeen) this.readCancels()
    if (this.looks.length > 0) this.wakeStreams()
    // Bounded: each slot is in the ring at most once, so more in one go is a hub that keeps pushing.
    while (n < chan.slotCount) {
      if (!chan.isOpen) break
      const slot = native.sb_worker_poll(chan.ptr)
      if (slot < 0) {
        if (slot === E_CORRUPT) this.broken(new ProtocolError(`hub broke the protocol: ${native.sb_error(chan.ptr)}`))
        break
      }
      n++
      const req = SlotRequest.inSlot(chan, slot, m, this.name)
      this.heldWindow[slot] = req.streamWindow
      this.run(slot, m[Msg.gen]!, req)
    }
    return n
  }

  /** The hub is gone: every held request's signal aborts with `gone`, every stream waiting for credit goes on. */
  drop(gone: DOMException) {
    for (const req of this.held) req?.cancel(gone)
    this.wakeStreams()
  }

  /** Streams waiting for credit go on once it moved, or their request was given up, or the hub is gone. */
  private wakeStreams() {
    const { chan } = this
    const stay = this.looks.filter(
      (l) => chan.isOpen && l.req.cancelled === null && chan.streamLimit(l.slot) === l.seen,
    )
    if (stay.length === this.looks.length) return
    const go = this.looks.filter((l) => !stay.includes(l))
    this.looks = stay
    for (const l of go) l.resolve()
  }

  /** The hub asked to cancel something (docs/PROTOCOL.md §3): abort the signal of each held request it named. */
  private readCancels() {
    const { chan } = this
    this.cancelSeen = native.sb_worker_cancel_seq(chan.ptr)
    for (let slot = 0; slot < this.held.length; slot++) {
      const req = this.held[slot]
      if (req) this.givenUp(chan, slot, this.heldGen[slot]!, req)
    }
  }

  /** Whether the hub gave `req` up (its cancel word names it), aborting its signal the first time it is seen. */
  givenUp(chan: Channel, slot: number, gen: number, req: SlotRequest): boolean {
    if (req.cancelled === null && chan.isOpen && native.sb_worker_cancelled(chan.ptr, slot, gen) === 1)
      req.cancel(
        new DOMException(
          "the hub gave this request up: its caller aborted or timed out, or its HTTP client went away",
          "AbortError",
        ),
      )
    return req.cancelled !== null
  }

  /** A stream in `slot` waits for the hub's credit to move from `seen` (or for its request to be given up). */
  credit(slot: number, seen: number, req: SlotRequest): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>()
    this.looks.push({ slot, seen, req, resolve })
    return promise
  }

  private run(slot: number, gen: number, req: SlotRequest) {
    this.held[slot] = req
    this.heldGen[slot] = gen
    this.chan.hold()
    this.serving.serve(req, this.sinks[slot]!)
  }
}

/** The intake from a remote transport (docs/PROTOCOL.md §10): what it may ask of this worker. */
export class RemoteIntake implements RemoteWorkerHost {
  constructor(
    readonly name: string,
    private readonly serving: Serving,
    private readonly gone: (reason: WorkerClosed["reason"], error?: Error) => void,
  ) {}

  request(kind: number, id: number, bytes: SlotBytes, headLen: number, bodyLen: number, window: number) {
    return SlotRequest.fromRemote({ kind, id, bytes, headLen, bodyLen, window }, this.name)
  }
  serve(req: RemoteRequest, out: RemoteAnswerSink) {
    this.serving.serve(req as SlotRequest, new RemoteSink(out, (req as SlotRequest).streamWindow))
  }
  lost(reason: "closed" | "hub-gone", error?: Error) {
    this.gone(reason, error)
  }
}
