// The out side of a topic's elected bridge (docs/PROTOCOL.md §11.2, §11.4): this host's events, read from the ring
// where the last bridge stopped, to `slotbus.ev.<topic>.<type>`, numbered per subject; what the server confirmed is
// written back as the ring's bridged word, so a successor sends again only what may not have arrived, and so does
// this bridge when its connection drops.
import type { NatsConnection } from "@nats-io/transport-node"
import type { BridgeReader, TopicBridgeHost, TopicBridgeStats } from "../events/internal.ts"
import type { BridgedIn } from "./topic-receiver.ts"
import { KIND_EVENT, PREFIX, type topicSubjects, VERSION } from "./topic-wire.ts"
import { sleep } from "../runtime/index.ts"
import type { StreamAcks } from "./stream-acks.ts"

/** Events a bridge sends past the last its server confirmed, at most (§11.4): what a successor may send again. */
const UNCONFIRMED = 1024
const utf8 = new TextDecoder()

/** The ring bytes of the record an encoded event is (§8.3: 16 bytes before it, then aligned to 16). */
const recordBytes = (encoded: Uint8Array) => (16 + encoded.length + 15) & ~15

/** The publisher pid of an encoded event (§8.3 record offset 16, the encoding's first word). */
const pidOf = (encoded: Uint8Array) =>
  (encoded[0]! | (encoded[1]! << 8) | (encoded[2]! << 16) | (encoded[3]! << 24)) >>> 0

/** The first index of the ascending `ids` holding `at` or more. */
function lowerBound(ids: number[], at: number): number {
  let lo = 0
  let hi = ids.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (ids[mid]! < at) lo = mid + 1
    else hi = mid
  }
  return lo
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

type SubjectOut = { subject: string; seq: number }
/** A message sent past the confirmed event: its subject and seq (to send it again as it was), where its event ends. */
type Unconfirmed = { o: SubjectOut; seq: number; end: number; answered: boolean }

/** After a stream's answer failed: the wait before sending again (§11.6). */
const STREAM_RETRY_MS = 1000

/** Reads this host's events from the ring and publishes them on NATS, until stopped. */

export class TopicSender {
  private reader: BridgeReader
  private laggedBefore = 0 // what the readers this one replaced lagged
  private bridgedInLapped = 0 // of those, events this bridge wrote in from other hosts: never this host's to send
  private lappedUpTo = 0 // the position up to which they are counted: a rewind reads past them again
  private bridgeId = 0
  private readonly head = new Uint8Array(PREFIX) // the prefix but its seq (§11.2)
  private lastType = new Uint8Array(0) // the type of the last event sent, and its subject's books
  private lastOut: SubjectOut | undefined
  private readonly out = new Map<string, SubjectOut>() // type → subject, seq sent on it
  // confirming what was sent (§11.4): the position after the last event taken, and what the server confirmed
  private taken = 0
  private confirmedAt = 0
  private sentCount = 0
  private confirmedSent = 0
  private confirming: Promise<void> | undefined
  // what went out past the confirmed event, in order, to send it again as it was (§11.4) and, for a durable topic,
  // to confirm by the stream's answers (§11.6)
  private unconfirmed: Unconfirmed[] = []
  private generation = 0 // a rewind's: answers to messages sent before it are not counted
  private resumeAt = 0 // a stream's answer failed: nothing is sent before this time
  private progress: (() => void) | undefined // the forward loop waiting for room
  private sentUpTo = 0 // the events before this position went out before a rewind: sent again, not counted again
  private readonly ringHex: string
  // the events a process of another pid (the last bridge) left between the bridged word and the tail: those of
  // its pid were bridged in by it, from other hosts, and are not sent back (§11.4)
  private readonly skipPid: number
  private readonly skipBefore: number
  private stopped = false

  constructor(
    private readonly host: TopicBridgeHost,
    private readonly nc: NatsConnection,
    private readonly s: ReturnType<typeof topicSubjects>,
    private readonly counts: Pick<TopicBridgeStats, "sent" | "unsent">,
    private readonly reason: (r: string) => void,
    private readonly own: BridgedIn,
    /** A durable topic's: each message goes through it and is confirmed by the stream's answer (§11.6). */
    private readonly streamPublish: Pick<StreamAcks, "publish"> | undefined,
  ) {
    this.newBridgeId()
    this.ringHex = host.ringId.toString(16).padStart(16, "0")
    // where the last bridge of this ring stopped (§11.4): what was published since goes out now
    const last = host.takeBridged()
    this.skipPid = last.pid === process.pid ? 0 : last.pid
    this.skipBefore = last.tail
    this.taken = this.confirmedAt = last.at
    this.reader = host.openReader(last.at)
    if (this.reader.restarted) {
      this.counts.unsent++ // at least one; how many the ring lapped is not known
      reason("the ring lapped the events published while no process bridged: sent from the oldest it holds")
    }
  }

  /** A new sender for the receivers (§11.2): its numbers start at 1 on every subject. */
  private newBridgeId() {
    this.bridgeId = (crypto.getRandomValues(new Uint32Array(1))[0]! | 1) >>> 0
    const v = new DataView(this.head.buffer)
    v.setUint32(0, VERSION | (KIND_EVENT << 8), true)
    v.setUint32(4, this.bridgeId, true)
    v.setBigUint64(16, this.host.ringId, true)
    this.out.clear()
    this.lastOut = undefined
  }

  /**
   * This host's events the reader lost by falling behind (§8.4): what it lagged less the events this bridge wrote in
   * from other hosts. It counts the loss records this bridge wrote as lagged too.
   */
  get lagged() {
    return this.laggedBefore + this.reader.lagged - this.bridgedInLapped
  }

  stop() {
    if (this.stopped) return
    this.stopped = true
    this.reader.close()
    this.woken()
  }

  private woken() {
    this.progress?.()
    this.progress = undefined
  }

  /** Sends until stopped; resolves when it has stopped. */
  async forward() {
    const send = (id: number, type: Uint8Array, encoded: Uint8Array) => {
      this.taken = id + recordBytes(encoded)
      const own = this.own
      // an id passed over was never read: the ring lapped the reader there
      for (; own.head < own.ids.length && own.ids[own.head]! < id; own.head++)
        if (own.ids[own.head]! >= this.lappedUpTo) this.bridgedInLapped++
      if (id > this.lappedUpTo) this.lappedUpTo = id
      const bridgedIn =
        (own.head < own.ids.length && own.ids[own.head] === id && ++own.head > 0) ||
        (id < this.skipBefore && this.skipPid !== 0 && pidOf(encoded) === this.skipPid)
      if (bridgedIn) return // from another host: never sent back (§11.3)
      if (this.lastOut !== undefined && this.lastOut.seq >= 0xfffffffe) this.newBridgeId() // seq is a u32 (§11.2)
      let o = this.lastOut
      if (o === undefined || !sameBytes(type, this.lastType)) {
        const key = utf8.decode(type)
        o = this.out.get(key)
        if (!o) {
          // too many types to keep books for: start again as a new sender (receivers see a new bridge id)
          if (this.out.size >= 65536) this.newBridgeId()
          o = { subject: this.s.event(type), seq: 0 }
          this.out.set(key, o)
        }
        this.lastOut = o
        this.lastType = type.slice()
      }
      const msg = new Uint8Array(PREFIX + encoded.length)
      msg.set(this.head)
      const seq = ++o.seq
      msg[8] = seq & 0xff
      msg[9] = (seq >>> 8) & 0xff
      msg[10] = (seq >>> 16) & 0xff
      msg[11] = seq >>> 24
      msg[12] = id & 0xff // pos: the low 32 bits of the event's position here (§11.2), for receivers' resends
      msg[13] = (id >>> 8) & 0xff
      msg[14] = (id >>> 16) & 0xff
      msg[15] = (id >>> 24) & 0xff
      msg.set(encoded, PREFIX)
      const u: Unconfirmed = { o, seq, end: this.taken, answered: false }
      this.unconfirmed.push(u)
      if (this.streamPublish) {
        const generation = this.generation
        this.streamPublish.publish(o.subject, msg, `${this.ringHex}-${id}`, (stored, reconnected) => {
          if (generation !== this.generation || this.stopped) return // sent again since, under its Nats-Msg-Id
          if (stored) return void ((u.answered = true), this.answered())
          if (reconnected) return void this.rewind("the connection to NATS dropped")
          this.resumeAt = performance.now() + STREAM_RETRY_MS
          this.rewind("the stream did not store (its server down, or JetStream without a quorum)")
        })
      } else this.nc.publish(o.subject, msg)
      if (id >= this.sentUpTo) this.counts.sent++
      this.sentCount++
    }
    // a poll first: a bridge that resumes (§11.4) has events waiting that no wake-up will announce
    while (!this.stopped) {
      const pause = this.resumeAt - performance.now()
      if (pause > 0) {
        await sleep(pause)
        continue
      }
      // at most UNCONFIRMED events past what the server confirmed: what a successor may have to send again
      const room = UNCONFIRMED - (this.sentCount - this.confirmedSent)
      const reader = this.reader
      const n = room > 0 ? reader.poll(send, room) : 0
      const own = this.own
      if (own.head > 4096) {
        // the ids past the confirmed event stay: a rewind (the connection dropped) reads those events again
        const cut = Math.min(own.head, lowerBound(own.ids, this.confirmedAt))
        if (cut > 4096) (own.ids = own.ids.slice(cut)), (own.head -= cut)
      }
      this.confirm()
      if (room <= 0) await (this.confirming ?? new Promise<void>((r) => (this.progress = r)))
      else if (n >= room)
        await new Promise((r) => setImmediate(r)) // more there: read on after I/O had its turn
      else if (!(await reader.ready()) && reader === this.reader) break // closed, not replaced by a rewind
    }
  }

  /**
   * Asks the server to confirm what was sent (a PING; its PONG comes after every message before it was taken),
   * one round trip at a time, and then writes the bridged word (§11.4). A round trip that fails (the connection
   * dropped: nats.js fails them as it dials again, dropping what it had not written) sends again what it covered.
   */
  private confirm() {
    if (this.confirming || this.stopped || this.taken === this.confirmedAt) return
    if (this.streamPublish) {
      // by the stream's answers (answered()); events skipped after the last one answered need none
      if (this.unconfirmed.length === 0) this.confirmed(this.taken, this.sentCount)
      return
    }
    const at = this.taken
    const sent = this.sentCount
    this.confirming = this.nc.flush().then(
      () => {
        this.confirming = undefined
        this.confirmed(at, sent)
        this.confirm()
      },
      () => {
        this.confirming = undefined
        // the forward loop reads on from the confirmed event, and asks again after its next poll
        this.rewind("the connection to NATS dropped")
      },
    )
  }

  /** Every event before position `at`, the first `sent` messages, was confirmed: the bridged word moves there. */
  private confirmed(at: number, sent: number) {
    if (this.stopped) return // stepped down: another process may own the word now
    this.unconfirmed.splice(0, sent - this.confirmedSent)
    this.confirmedAt = at
    this.confirmedSent = sent
    this.host.setBridged(at)
    this.woken()
  }

  /** A durable topic's stream answered a message: the run answered from the first unconfirmed one is confirmed. */
  private answered() {
    const u = this.unconfirmed
    let k = 0
    while (k < u.length && u[k]!.answered) k++
    if (k === 0) return
    // all answered: the events skipped after the last message too
    if (k === u.length) this.confirmed(this.taken, this.sentCount)
    else this.confirmed(u[k - 1]!.end, this.confirmedSent + k)
  }

  /**
   * The connection dropped before the server confirmed what went out past `confirmedAt` (§11.4): every event from
   * there goes out again, each with the seq it had, so receivers drop those they took and count only real gaps.
   */
  private rewind(why: string) {
    if (this.stopped || this.sentCount === this.confirmedSent) return
    const again = this.sentCount - this.confirmedSent
    // a connection that stays down fails a round trip at each dial: said once, for what went out on a live one
    const first = this.taken > this.sentUpTo
    this.sentUpTo = Math.max(this.sentUpTo, this.taken)
    for (let i = this.unconfirmed.length - 1; i >= 0; i--) this.unconfirmed[i]!.o.seq = this.unconfirmed[i]!.seq - 1
    this.unconfirmed = []
    this.generation++
    this.sentCount = this.confirmedSent
    this.taken = this.confirmedAt
    this.own.head = lowerBound(this.own.ids, this.confirmedAt)
    const old = this.reader
    this.laggedBefore += old.lagged
    this.reader = this.host.openReader(this.confirmedAt)
    old.close() // a forward loop waiting on it reads on with the new one
    if (first) this.reason(`${why} with ${again} events not confirmed: they go out again`)
    if (this.reader.restarted) {
      this.counts.unsent++ // at least one; how many the ring lapped is not known
      this.reason("the ring lapped events not confirmed before the connection dropped: sent from the oldest it holds")
    }
    this.woken()
  }
}
