// A worker on this host as an Endpoint (docs/PROTOCOL.md §3-§6): its channel, slots and pump. It publishes a request
// in a free slot, cancels one, collects answers (lending a slot to a caller that borrows), returns slots, and counts
// the slots it holds for callers that gave up. Accepting and dropping it is accept.ts's; the queue is the dispatcher's.
import { hostname } from "node:os"
import { native, Errno, Kind, Msg, MsgFlag, RespFlag, E_CORRUPT } from "../../native/ffi.ts"
import { align8, headLength, readHead, utf8, writeHead } from "../wire/codec.ts"
import { PayloadTooLargeError, ProtocolError, SlotBusError } from "../../errors.ts"
import type { Channel } from "../wire/channel.ts"
import type { IdleStrategy } from "../wire/idle-strategy.ts"
import { pumpTurns } from "../wire/loop-probe.ts"
import { Pump, STARTUP_POLL_NS } from "../wire/pump.ts"
import { isRpcCall, letGo, nowMs, startClock, STATE_NAMES } from "./endpoint.ts"
import type { Endpoint, EndpointHost, Pending, WorkerInfo } from "./endpoint.ts"
import { answerHead, BorrowedResponse, forgotten, inTurnSaves, NO_HEAD, remoteError } from "./response.ts"
import { answerValue, type AnswerSlot } from "./answer-value.ts"
import { SlotFrames, StreamIn, type SlotStreamOwner } from "./stream-in.ts"
import { evictingNext, stuckSlots } from "./eviction.ts"
import type { FlightRecorder } from "../probe/recorder.ts"
import { nanoseconds } from "../../runtime/index.ts"

const HOST = hostname()
/**
 * How long a request may wait behind others on a worker that answers quickly rather than another worker be woken for
 * it (packCap): a wake costs the hub and the worker a syscall and a context switch each, a batch taken in one wake
 * costs them once. Where more processes serve the bus than there are CPUs (crowded) a second worker adds no CPU,
 * only wakes, so the wait may be longer. docs/api.md "Which worker gets a request".
 */
const PACK_NS = 100_000
const PACK_CROWDED_NS = 1_000_000
/** The weight each pass's figures keep per later pass in the answer rate. */
const RATE_DECAY = 0.875
/** How often a tick looks whether the worker's process is gone while its socket stays open (a child holds it). */
const PEER_CHECK_MS = 200

/**
 * How many requests a worker that took `answers` answers in `busyNs` of holding requests may hold before the next
 * goes to another worker: those it answers within `budgetNs` at that rate, at least 1, at most its `slots`; 1 until
 * it answered once.
 */
export function packCap(budgetNs: number, answers: number, busyNs: number, slots: number): number {
  if (!(answers >= 1)) return 1
  return Math.max(1, Math.min(slots, Math.floor((budgetNs * answers) / busyNs)))
}

/**
 * A worker connection's life: `serving` takes requests; `draining` asked for nothing new (control byte D);
 * `evicting` holds too many stuck slots and goes once nobody waits for it.
 */
export type LinkState = WorkerInfo["state"]

/** What a worker on this host is told of its bus: how it idles and when its slots count as stuck. */
export interface SlotSettings {
  idle: IdleStrategy | undefined
  /** A slot its worker still holds this long past its request's deadline (or giving up, if later) is stuck. */
  stuckAfterMs: number
  /** A worker holding this many stuck slots is evicted. */
  maxStuck: number
  /** The bus's flight recorder (docs/PROTOCOL.md §16), or null. */
  recorder: FlightRecorder | null
}

/** What it asks of the part that owns the connections (the Acceptor). */
export interface SlotHooks {
  /** It broke the protocol: disconnect it. */
  cutOff(link: SlotEndpoint, what: string): void
  /** It holds too many stuck slots and nobody waits for it any more: disconnect it. */
  evict(link: SlotEndpoint): void
  /** Its worker's process is gone, though a child it forked keeps the socket open: drop it as at EOF. */
  gone(link: SlotEndpoint): void
  /** A request went out with none in flight: its worker is at work (at-work.ts reads `inFlight` and `requests`). */
  sent(link: SlotEndpoint): void
}

export class SlotEndpoint implements Endpoint, AnswerSlot, SlotStreamOwner {
  workerIndex = -1
  readonly distance = 0
  state: LinkState = "serving"
  /** While evicting: the state it goes back to if it hands its stuck slots back, and nowMs() of its last answer. */
  private resume: LinkState = "serving"
  private answeredAt = 0
  /** Set when it left the bus's books: an answer collected while it is dropped cannot keep its slot. */
  private gone = false
  readonly pump: Pump
  /** By slot, until the slot is returned. */
  readonly pending: (Pending | null)[]
  /** By slot: the buffer under a borrowed body, detached when the slot goes. */
  readonly lent: (WeakRef<ArrayBuffer> | null)[]
  /** By slot: pumpTurns() when its request was sent (an answer collected at another count is late). */
  private readonly sentTurn: Float64Array
  /** Slots out. */
  inFlight = 0
  /** In-slot requests whose caller waits. */
  waiting = 0
  requests = 0
  requestLimit = Infinity
  controlBytes = 0
  private nextId = 1
  /** pumpTurns() when a request was last sent. */
  private lastSentTurn = -1
  /** nowMs() from when a tick looks again whether its worker's process is gone (PEER_CHECK_MS). */
  private peerCheckAt = 0
  /** The body size of the last answer: over 15 KiB, one in its caller's turn saves Bun.serve's late write. */
  private lastAnswerBytes = 0
  /** Its answer rate, for packCap: ns it held requests and the answers taken meanwhile, both decayed per pass. */
  private busyNs = 0
  private answersTaken = 0
  /** nanoseconds() when its busy time counts from: its last pass with answers, or a send with nothing out. */
  private busyFrom = 0

  constructor(
    readonly chan: Channel,
    private readonly host: EndpointHost,
    private readonly hooks: SlotHooks,
    private readonly settings: SlotSettings,
  ) {
    this.pending = new Array<Pending | null>(chan.slotCount).fill(null)
    this.lent = new Array<WeakRef<ArrayBuffer> | null>(chan.slotCount).fill(null)
    this.sentTurn = new Float64Array(chan.slotCount)
    this.pump = new Pump(chan, settings.idle, {
      collect: () => this.collect(),
      wanted: () => this.waiting > 0, // given-up and borrowed slots need no polling: a late answer rings
      rest: () => this.inFlight === 0, // no slot out: nothing can come that would ring, so no park (nor unpark)
      onRingFlood: (rings, parks) => hooks.cutOff(this, `rang the hub's doorbell ${rings} times for ${parks} parks`),
      onError: () => host.counters.internalError(),
      startupPollNs: STARTUP_POLL_NS,
      crowded: () => chan.crowded,
      yieldsToIo: true,
      answerInTurnPays: () => this.lastSentTurn === pumpTurns() && inTurnSaves(this.lastAnswerBytes),
    })
  }

  get pid() {
    return this.chan.peerPid
  }
  get serving() {
    return this.state === "serving"
  }
  get retiring() {
    return this.state === "retiring"
  }

  drain() {
    if (this.state === "serving" || this.state === "retiring") this.state = "draining"
    else if (this.state === "evicting") this.resume = "draining" // what it is if it hands its stuck slots back
  }

  retire() {
    if (this.state === "serving") this.state = "retiring"
    else if (this.state === "evicting" && this.resume === "serving") this.resume = "retiring"
  }
  serve() {
    if (this.state === "retiring") this.state = "serving"
    else if (this.state === "evicting" && this.resume === "retiring") this.resume = "serving"
  }
  get capacity() {
    return this.chan.slotCount
  }

  get packCap() {
    return packCap(this.chan.crowded ? PACK_CROWDED_NS : PACK_NS, this.answersTaken, this.busyNs, this.chan.slotCount)
  }

  /** Publishes p in a free slot (docs/PROTOCOL.md §3). False when none is free after all. */
  send(p: Pending): boolean {
    const ptr = this.chan.ptr
    const slot = native.sb_hub_claim(ptr)
    if (slot < 0) return false
    let headLen = 0
    let r: number
    try {
      if (p.body.length !== p.bodyLength)
        throw new TypeError(
          `the request body changed size after request() (${p.bodyLength} → ${p.body.length} bytes: its buffer was transferred or resized); keep a body intact until its request settles`,
        )
      const arena = this.chan.arena(slot, 0, (p.strings ? align8(headLength(p.strings)) : 0) + p.body.length)
      headLen = p.strings ? writeHead(arena, p.strings) : 0
      arena.set(p.body, align8(headLen))
      if (this.settings.recorder !== null) this.settings.recorder.published(p.started, p.waited)
      r = native.sb_hub_publish(ptr, slot, p.kind, this.nextId++ >>> 0, headLen, p.body.length)
      if (r === Errno.E2BIG)
        throw new PayloadTooLargeError(`request of ${headLen} head and ${p.body.length} body bytes does not fit a slot`)
      // -EINVAL: a slot not claimed, or a kind C does not know; neither comes from a caller's request
      if (r < 0) throw new SlotBusError(`sb_hub_publish refused slot ${slot} of kind ${p.kind} (errno ${-r})`)
    } catch (e) {
      native.sb_hub_unclaim(ptr, slot) // nothing was published: the slot goes straight back
      this.host.fail(p, e)
      return true
    }
    if (p.started === 0) startClock(p, this.settings.recorder?.dispatchedAt() || nanoseconds()) // its worker has it: no hurry
    this.pending[slot] = p
    if (this.inFlight++ === 0) {
      this.busyFrom = p.waited ? nanoseconds() : p.started
      this.hooks.sent(this)
    }
    this.waiting++
    this.requests++
    p.phase = "in-slot"
    p.endpoint = this
    p.slot = slot
    this.sentTurn[slot] = p.waited ? Number.NaN : pumpTurns() // a queued request's caller had its turn long ago
    if (!p.waited) this.lastSentTurn = this.sentTurn[slot]!
    if (!p.idempotent) letGo(p) // the bytes are in the slot: do not keep the caller's buffer alive
    this.pump.kick()
    return true
  }

  /** The worker sees the slot cancelled; it stays p's until the worker hands it back. */
  cancel(p: Pending, why?: unknown) {
    if (!this.chan.isOpen || p.in?.ended) return
    if (this.settings.recorder !== null) this.settings.recorder.gaveUp(this.chan.ptr, p.slot, why)
    native.sb_hub_cancel(this.chan.ptr, p.slot)
  }

  settled(p: Pending) {
    p.phase = "settled" // its slot is the worker's until it hands it back
    this.waiting--
  }

  forget(p: Pending) {
    this.waiting--
    this.pending[p.slot] = null
  }

  held(): Iterable<Pending | null> {
    return this.pending
  }

  tick(now: number) {
    // Its process exited with the socket still open in a child (a fork without exec): no EOF will ever come.
    if (now >= this.peerCheckAt) {
      this.peerCheckAt = now + PEER_CHECK_MS
      if (this.chan.peerGone()) return this.hooks.gone(this)
    }
    // Holding requests and no answer since the last pass with one (a handler that blocks its event loop, a long one):
    // that wait counts now, not once answers come, so packCap stops piling new requests behind it meanwhile
    if (this.inFlight > 0) {
      const ns = nanoseconds()
      if (ns - this.busyFrom > PACK_CROWDED_NS) this.rate(0, ns)
    }
    if (this.state === "evicting") return this.leave(now, false) // a caller waited, who has given up since
    if ((this.state !== "serving" && this.state !== "retiring") || this.stuckSlots(now) < this.settings.maxStuck) return
    // Its handlers hang: send it nothing more, and let it go once nobody waits for it any longer.
    this.resume = this.state
    this.state = "evicting"
    this.leave(now, false)
  }

  /** Evicting (`answered`: it just answered): once nobody waits for it, it serves on, waits or goes (evictingNext). */
  private leave(now: number, answered: boolean) {
    if (answered) this.answeredAt = now
    if (this.waiting > 0) return
    const next = evictingNext(this.stuckSlots(now), now - this.answeredAt, this.settings)
    if (next === "serve") return void ((this.state = this.resume), this.host.freed())
    if (next === "wait") return
    this.host.counters.evictedWorker()
    this.hooks.evict(this)
  }

  /** The pump's duty: take every answer the worker completed, hand it to its caller, return the slots. */
  collect(): number {
    const { chan } = this
    const m = chan.msg
    let n = 0
    let answers = 0
    let now = 0 // read once per pass, at the first answer: every answer of a pass arrived by then
    const rec = this.settings.recorder
    if (rec !== null) rec.passStarted()
    for (;;) {
      if (!chan.isOpen) break
      const slot = native.sb_hub_poll(chan.ptr)
      if (slot < 0) {
        if (slot === E_CORRUPT) this.hooks.cutOff(this, `corrupted its region (${native.sb_error(chan.ptr)})`)
        break
      }
      n++
      const p = this.pending[slot]
      if (m[Msg.flags]! & MsgFlag.STREAM) {
        // a frame or more of a streamed answer (docs/PROTOCOL.md §9): the slot goes back after its END
        if (p)
          (p.in ??= new StreamIn(this.host.streams, new SlotFrames(this, slot), p)).notified(
            (m[Msg.flags]! & MsgFlag.FINAL) !== 0,
          )
        continue
      }
      let lent = false
      if (p?.phase === "in-slot") {
        if (now === 0) now = rec?.passClock() || nanoseconds()
        answers++
        try {
          lent = this.answer(p, slot, now)
        } catch (e) {
          this.host.fail(
            p,
            new ProtocolError(`could not read the answer of worker pid ${chan.peerPid}: ${(e as Error)?.message}`),
          )
        }
      }
      if (!lent) this.returnSlot(slot)
    }
    if (answers > 0) this.rate(answers, now)
    if (n > 0) this.host.freed()
    if (this.state === "evicting" && !this.gone) this.leave(nowMs(), n > 0) // (left() collects what it answered)
    return n
  }

  /** `answers` were taken at `now`: the rate packCap reads (a pass's whole wait is counted, so it errs slow). */
  private rate(answers: number, now: number) {
    const busy = now - this.busyFrom
    if (!(busy >= 0)) return // a clock from another source (the recorder's) that ran behind
    this.busyNs = this.busyNs * RATE_DECAY + busy
    this.answersTaken = this.answersTaken * RATE_DECAY + answers
    this.busyFrom = now
  }

  private returnSlot(slot: number) {
    const p = this.pending[slot]
    if (p) p.phase = "slot-returned"
    this.pending[slot] = null
    const lent = this.lent[slot]?.deref()
    this.lent[slot] = null
    if (lent && !lent.detached) lent.transfer(0) // stale borrowed views read empty, never the next answer
    if (!this.chan.isOpen) return
    native.sb_hub_release(this.chan.ptr, slot)
    this.inFlight--
  }

  /** Resolves p with the answer in `slot`; true when the slot was lent to the caller (a borrowed response). */
  private answer(p: Pending, slot: number, now: number): boolean {
    const { chan } = this
    const m = chan.msg
    const bodyOff = m[Msg.bodyOff]!
    const bodyLen = m[Msg.bodyLen]!
    this.lastAnswerBytes = bodyLen
    const arena = chan.arena(slot, 1, Math.max(bodyOff + bodyLen, m[Msg.headLen]!))
    this.host.counters.receivedBytes(bodyLen)
    const flags = m[Msg.flags]!
    if (flags & RespFlag.ERROR) {
      this.host.fail(
        p,
        remoteError(readHead(arena, m[Msg.headLen]!), utf8(arena.subarray(bodyOff, bodyOff + bodyLen)), chan.peerPid),
      )
      return false
    }
    if (flags & RespFlag.CANCELLED) {
      this.host.fail(p, new ProtocolError("worker returned a request the hub never cancelled"))
      return false
    }
    const status = m[Msg.status]!
    const headers = p.kind === Kind.RAW || isRpcCall(p) ? NO_HEAD : answerHead(arena, m[Msg.headLen]!, chan.peerPid)
    let value: unknown
    try {
      value = answerValue(p, status, headers, arena, bodyOff, bodyLen, this)
    } catch (e) {
      this.host.fail(p, e) // a status Response refuses
      return false
    }
    const lent = this.lent[slot] !== null // lend() lent it the slot, back at release (none is lent before its answer)
    this.host.answered(p, value, now, isRpcCall(p) ? status : undefined) // a decoded value has no status of its own
    return lent
  }

  /** `p`'s answer borrowed (AnswerSlot): the slot lent to its caller until release. */
  lend(p: Pending, status: number, head: readonly string[], arena: Uint8Array, off: number, len: number) {
    // An answer collected while its worker is being dropped cannot keep the slot: it gets a copy.
    if (len === 0 || this.gone) return new BorrowedResponse(status, head, arena.slice(off, off + len), null)
    const slot = p.slot
    const buf = this.chan.lend(slot, 1, off, len)
    let returned = false
    const give = () => {
      if (returned) return
      returned = true
      forgotten.unregister(give)
      if (this.pending[slot] === p) this.returnSlot(slot)
      this.host.freed()
    }
    this.lent[slot] = new WeakRef(buf)
    forgotten.register(buf, give, give)
    return new BorrowedResponse(status, head, new Uint8Array(buf), give)
  }

  /** The pump turn `p` was sent in (AnswerSlot; heldLate): NaN for a request that waited in the queue. */
  sentTurnOf(p: Pending): number {
    return this.sentTurn[p.slot]!
  }

  /** A streamed answer's frames broke the protocol. */
  broke(what: string) {
    this.hooks.cutOff(this, what)
  }

  /** The stream in `slot` was read to its END: the slot goes back. */
  streamOver(slot: number) {
    this.returnSlot(slot)
    this.host.freed()
  }

  /**
   * It left the books (`err`: disconnected, died, cut off, evicted, the bus closed). Answers it completed first are
   * taken (unless it broke the protocol), every other request it held goes elsewhere or fails, borrowed bodies
   * read empty before the region goes.
   */
  left(err: Error) {
    this.gone = true
    this.pump.stop()
    try {
      if (!(err instanceof ProtocolError)) this.collect()
    } catch {
      this.host.counters.internalError()
    }
    for (const p of this.pending) if (p) this.host.retryOrFail(p, err) // sent again: forget() let go of it
    for (let s = 0; s < this.pending.length; s++) {
      const lent = this.lent[s]?.deref()
      if (lent && !lent.detached) lent.transfer(0)
      if (this.pending[s]) this.pending[s]!.phase = "slot-returned"
      this.pending[s] = null
      this.lent[s] = null
    }
    this.chan.close()
  }

  /** Slots the worker still holds stuckAfterMs past their request's deadline, or past its giving up if later. */
  stuckSlots(now: number): number {
    return stuckSlots(this.pending, this.lent, now, this.settings.stuckAfterMs)
  }

  info(): WorkerInfo {
    const { chan } = this
    return {
      pid: chan.peerPid,
      uid: chan.peerUid,
      state: this.state,
      inFlight: this.inFlight,
      waiting: this.waiting,
      stuck: this.stuckSlots(nowMs()),
      requests: this.requests,
      slots: Array.from({ length: chan.slotCount }, (_, s) =>
        chan.isOpen ? (STATE_NAMES[native.sb_slot_state(chan.ptr, s) & 0xff] ?? "corrupt") : "gone",
      ),
      transport: "shm",
      host: HOST,
    }
  }
}
