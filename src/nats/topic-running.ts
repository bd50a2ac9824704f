// The work of a topic's elected bridge (docs/PROTOCOL.md §11): this host's events out to NATS, and the events other
// hosts sent that this host's subscribers want into the ring, with the books of what was taken from each sender.
import type { Msg, MsgHdrs, NatsConnection, Subscription as NatsSubscription } from "@nats-io/transport-node"
import { Resends } from "./resends.ts"
import type { BridgeReader, TopicBridgeHost, TopicBridgeStats } from "../events/internal.ts"
import { cover, matches, type topicSubjects, typeOfSubject } from "./topic-subjects.ts"
import { guarded } from "./wire.ts"

const PREFIX = 24
const VERSION = 1
const KIND_EVENT = 1
const FILTERS_MS = 50
/** Events a bridge sends past the last its server confirmed, at most (§11.4): what a successor may send again. */
const UNCONFIRMED = 1024
const BOOKS = 128
const utf8 = new TextDecoder()

/** The ring bytes of the record an encoded event is (§8.3: 16 bytes before it, then aligned to 16). */
const recordBytes = (encoded: Uint8Array) => (16 + encoded.length + 15) & ~15

/** The publisher pid of an encoded event (§8.3 record offset 16, the encoding's first word). */
const pidOf = (encoded: Uint8Array) =>
  (encoded[0]! | (encoded[1]! << 8) | (encoded[2]! << 16) | (encoded[3]! << 24)) >>> 0

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export type Counts = TopicBridgeStats extends infer S ? Omit<S, "bridging" | "subjects" | "reasons"> : never

/**
 * A jump in a sender's numbers past this behind, or ahead past this plus what it could have sent since it was last
 * heard here, is a new epoch, not a loss (§11.3).
 */
const MAX_GAP = 4096
/** Events a second one bridge can send on one subject, at most (§11.3): ten times what one NATS connection carries. */
const MAX_RATE = 5_000_000
const TWO_32 = 4294967296
const RECENT = 8

/** What a receiver keeps of one (bridge, subject) of a sender: its last seq, and the last 8 messages it took. */
class SenderBooks {
  last = 0
  /** When `last` was taken (Date.now()), or NaN: not known (a takeover from a table that does not say). */
  heardAt = Number.NaN
  /** Its entry in the ring header's books table (§11.4), or -1 (none: a takeover starts it afresh). */
  slot = -1
  constructor(
    readonly bridge: number,
    /** The CRC-32 of its subject, as the books table keys it. */
    readonly subject: number,
  ) {}
  private readonly seqs = new Float64Array(RECENT).fill(-1)
  private readonly crcs = new Uint32Array(RECENT)
  private n = 0
  /** A duplicate is the same message again: the same seq and the same bytes (a forged one with a taken seq is not). */
  has(seq: number, crc: number): boolean {
    for (let i = 0; i < RECENT; i++) if (this.seqs[i] === seq && this.crcs[i] === crc) return true
    return false
  }
  /** Takes `seq` as the last, heard `now`. */
  advance(seq: number, now: number) {
    this.last = seq
    this.heardAt = now
  }
  add(seq: number, crc: number) {
    this.seqs[this.n] = seq
    this.crcs[this.n] = crc
    this.n = (this.n + 1) % RECENT
  }
}

/** The work of the elected bridge: out (ring → NATS) and in (NATS → ring). */
export class Running {
  readonly done: Promise<void>
  private readonly reader: BridgeReader
  private bridgeId = 0
  private readonly head = new Uint8Array(PREFIX) // the prefix but its seq (§11.2)
  private lastType = new Uint8Array(0) // the type of the last event sent, and its subject's books
  private lastOut: { subject: string; seq: number } | undefined
  private readonly out = new Map<string, { subject: string; seq: number }>() // type → subject, seq sent on it
  private readonly subs = new Map<string, NatsSubscription>() // pattern → subscription
  private readonly seen = new Map<string, SenderBooks>() // `<bridge> <subject>` → what was taken from it
  private readonly resends = new Resends()
  // the ring header's books table (§11.4): the entries the last bridge left, by `<bridge> <subject crc>` (taken
  // over when their sender is heard), and per slot the books that own it and when it was last written
  private readonly inherited = new Map<string, { slot: number; seq: number; heardAt: number }>()
  private readonly slotBooks: (SenderBooks | undefined)[] = new Array(BOOKS)
  private readonly slotInherited: (string | undefined)[] = new Array(BOOKS)
  private readonly slotWritten = new Float64Array(BOOKS)
  private bookWrites = 0
  // confirming what was sent (§11.4): the position after the last event taken, and what the server confirmed
  private taken = 0
  private confirmedAt = 0
  private sentCount = 0
  private confirmedSent = 0
  private confirming: Promise<void> | undefined
  private lostIntoRing = 0 // events counted in the loss records this bridge wrote into the ring
  private readonly ringHex: string
  // the events a process of another pid (the last bridge) left between the bridged word and the tail: those of
  // its pid were bridged in by it, from other hosts, and are not sent back (§11.4)
  private readonly skipPid: number
  private readonly skipBefore: number
  private readonly filterTimer: ReturnType<typeof setInterval>
  private stopped = false

  constructor(
    private readonly host: TopicBridgeHost,
    private readonly nc: NatsConnection,
    private readonly s: ReturnType<typeof topicSubjects>,
    private readonly counts: Counts,
    private readonly reason: (r: string) => void,
    /** Ids this process's bridging published into the ring, in order (kept across its re-elections): never sent out. */
    private readonly own: { ids: number[]; head: number },
    private readonly msgId: (() => MsgHdrs) | undefined,
  ) {
    this.newBridgeId()
    this.ringHex = host.ringId.toString(16).padStart(16, "0")
    // where the last bridge of this ring stopped (§11.4): what was published since goes out now
    const last = host.takeBridged()
    this.skipPid = last.pid === process.pid ? 0 : last.pid
    this.skipBefore = last.tail
    this.taken = this.confirmedAt = last.at
    const now = Date.now()
    for (let i = 0; i < BOOKS; i++) {
      const b = host.readBook(i)
      if (b.bridge === 0) continue
      const key = `${b.bridge} ${b.subject}`
      // when its seq was taken: the table says to the millisecond mod 2^32 (0: an older bridge's entry, not known)
      const heardAt = b.at === 0 ? Number.NaN : now - (((now % TWO_32) - b.at + TWO_32) % TWO_32)
      this.inherited.set(key, { slot: i, seq: b.seq, heardAt })
      this.slotInherited[i] = key
    }
    this.reader = host.openReader(last.at)
    if (this.reader.restarted) {
      this.counts.unsent++ // at least one; how many the ring lapped is not known
      reason("the ring lapped the events published while no process bridged: sent from the oldest it holds")
    }
    this.syncSubjects()
    this.filterTimer = setInterval(() => this.syncSubjects(), FILTERS_MS)
    this.done = this.forward()
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

  subjects() {
    return this.subs.keys()
  }
  /**
   * Events of this host its outbound reader could not read in time. The reader counts the loss records this
   * bridge wrote into the ring (§11.5) as lagged too: those are other hosts' losses, not this host's.
   */
  unsent() {
    return Math.max(0, this.reader.lagged - this.lostIntoRing)
  }

  stop() {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.filterTimer)
    this.counts.unsent += this.unsent()
    this.reader.close()
    for (const sub of this.subs.values()) sub.unsubscribe()
    this.subs.clear()
  }

  private async forward() {
    const send = (id: number, type: Uint8Array, encoded: Uint8Array) => {
      this.taken = id + recordBytes(encoded)
      const own = this.own
      while (own.head < own.ids.length && own.ids[own.head]! < id) own.head++
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
      if (this.msgId) {
        const h = this.msgId()
        h.set("Nats-Msg-Id", `${this.ringHex}-${id}`)
        this.nc.publish(o.subject, msg, { headers: h })
      } else this.nc.publish(o.subject, msg)
      this.counts.sent++
      this.sentCount++
    }
    // a poll first: a bridge that resumes (§11.4) has events waiting that no wake-up will announce
    while (!this.stopped) {
      // at most UNCONFIRMED events past what the server confirmed: what a successor may have to send again
      const room = UNCONFIRMED - (this.sentCount - this.confirmedSent)
      const n = room > 0 ? this.reader.poll(send, room) : 0
      const own = this.own
      if (own.head > 4096) (own.ids = own.ids.slice(own.head)), (own.head = 0)
      this.confirm()
      if (room <= 0) await (this.confirming ?? Bun.sleep(1))
      else if (n >= room)
        await new Promise((r) => setImmediate(r)) // more there: read on after I/O had its turn
      else if (!(await this.reader.ready())) break
    }
  }

  /**
   * Asks the server to confirm what was sent (a PING; its PONG comes after every message before it was taken),
   * one round trip at a time, and then writes the bridged word (§11.4). A connection that is down retries.
   */
  private confirm() {
    if (this.confirming || this.stopped || this.taken === this.confirmedAt) return
    const at = this.taken
    const sent = this.sentCount
    this.confirming = this.nc.flush().then(
      () => {
        this.confirming = undefined
        if (this.stopped) return // stepped down: another process may own the word now
        this.confirmedAt = at
        this.confirmedSent = sent
        this.host.setBridged(at)
        this.confirm()
      },
      () =>
        Bun.sleep(100).then(() => {
          this.confirming = undefined
          this.confirm()
        }),
    )
  }

  private syncSubjects() {
    if (this.stopped) return
    let filters: ReturnType<TopicBridgeHost["filters"]>
    try {
      filters = this.host.filters()
    } catch {
      return // the topic closed meanwhile
    }
    // our own outbound reader (filter any, this pid) is not a subscriber of this host's to serve
    const mine = filters.findIndex((f) => f.pid === process.pid && f.mode === "any")
    if (mine >= 0) filters.splice(mine, 1)
    const want = cover(filters.map((f) => this.s.filter(f.mode, f.type)))
    let removed = false
    for (const p of want)
      if (!this.subs.has(p))
        this.subs.set(
          p,
          this.nc.subscribe(p, {
            callback: guarded(
              (msg) => this.take(msg),
              (e) => this.refuse(p, `it could not be taken: ${(e as Error)?.message ?? e}`),
            ),
          }),
        )
    for (const [p, sub] of this.subs) if (!want.includes(p)) sub.unsubscribe(), this.subs.delete(p), (removed = true)
    // numbers of subjects no longer heard start afresh when heard again (the gap between is not a loss)
    if (removed)
      for (const [key, books] of this.seen) {
        const subject = key.slice(key.indexOf(" ") + 1)
        if (!want.some((p) => matches(subject, p))) this.seen.delete(key), this.freeSlot(books)
      }
  }

  private take(msg: Msg) {
    if (this.stopped) return
    const d = msg.data
    if (d.length < PREFIX + 16) return this.refuse(msg.subject, "too short")
    const v = new DataView(d.buffer, d.byteOffset, PREFIX)
    const w = v.getUint32(0, true)
    if ((w & 0xff) !== VERSION || ((w >>> 8) & 0xff) !== KIND_EVENT || w >>> 16 !== 0)
      return this.refuse(msg.subject, "another version or kind")
    // this host's own events, heard back (NATS echoes a connection's publishes to its own subscriptions; a bridge
    // of this host that died may still have some on the way): they are in the ring already
    const ring = v.getBigUint64(16, true)
    if (ring === this.host.ringId) return
    const bridge = v.getUint32(4, true)
    const seq = v.getUint32(8, true)
    const key = `${bridge} ${msg.subject}`
    const crc = Bun.hash.crc32(d.subarray(12)) // pos, ring and event: the seq and bridge are compared apart
    let books = this.seen.get(key)
    if (books?.has(seq, crc)) {
      this.counts.duplicates++
      return
    }
    const now = Date.now()
    let fresh = false
    if (books === undefined) {
      if (this.seen.size >= 65536) this.forgetBooks()
      books = new SenderBooks(bridge, Bun.hash.crc32(msg.subject))
      this.seen.set(key, books)
      // the last bridge of this host took from this sender: go on from its books (§11.4), so what reached the
      // host while no process received counts as lost below
      const was = this.inherited.get(`${bridge} ${books.subject}`)
      if (was) {
        this.inherited.delete(`${bridge} ${books.subject}`)
        this.slotInherited[was.slot] = undefined
        this.slotBooks[was.slot] = books
        books.slot = was.slot
        books.advance(was.seq, was.heardAt)
      } else {
        this.takeSlot(books)
        fresh = true
      }
    }
    // the most a loss can be: what the sender could have sent since it was last heard here (a takeover of this
    // host's receiving bridge may take seconds: the kernel frees the name once the dead holder is gone, §11.4)
    const since = Number.isNaN(books.heardAt) ? 0 : Math.max(0, now - books.heardAt)
    if (fresh || seq > books.last + MAX_GAP + (MAX_RATE * since) / 1000 || seq + MAX_GAP < books.last) {
      // a sender first heard, or a jump no loss explains: a new epoch (anyone who may publish here can send any
      // number, so one message must not make this host drop the sender's next events or count billions lost)
      if (!fresh) {
        this.counts.resyncs++
        this.reason(
          `${msg.subject} from bridge ${bridge.toString(16)}: seq jumped from ${books.last} to ${seq}${seq > books.last ? `, more than it could send in ${Math.round(since)} ms` : ""}: its books start afresh (a restarted bridge, or a forged message)`,
        )
      }
      books.advance(seq, now)
    } else if (seq > books.last + 1) {
      const n = seq - books.last - 1
      this.reason(
        `${msg.subject} from bridge ${bridge.toString(16)}: seq jumped from ${books.last} to ${seq}, ${n} lost on NATS (slow consumer, reconnect or a broken route)`,
      )
      books.advance(seq, now)
      this.counts.lost += n
      // into the ring as a loss record: every subscriber here whose filter takes the type counts them in lagged
      const type = typeOfSubject(this.s.root, msg.subject)
      if (type) {
        try {
          this.host.publishLost(type, n)
          this.lostIntoRing += n
        } catch (e) {
          this.reason(`${msg.subject}: the loss record was refused (${(e as Error).message})`)
        }
      }
    } else if (seq === books.last + 1) books.advance(seq, now)
    // else a seq below the last, not seen: taken as it is (only a forged message arrives so), the books unchanged
    books.add(seq, crc)
    if (this.resends.seen(ring, v.getUint32(12, true), crc)) {
      this.counts.resends++ // sent again by a new bridge of its host (§11.3): it is in the ring already
      return this.writeBooks(books)
    }
    let id: number
    try {
      id = this.host.publishEncoded(d.subarray(PREFIX))
    } catch (e) {
      this.writeBooks(books)
      return this.refuse(msg.subject, (e as Error).message)
    }
    this.writeBooks(books) // after the publish: a successor counts at most this one event lost that is not
    this.own.ids.push(id)
    this.counts.received++
  }

  /** The sender's last seq into its books table entry (§11.4), if it has one. */
  private writeBooks(books: SenderBooks) {
    if (books.slot < 0 || this.stopped) return
    const at = Number.isNaN(books.heardAt) ? 0 : books.heardAt % TWO_32 || 1 // 0 says "not known"
    this.host.writeBook(books.slot, books.bridge, books.subject, books.last, at)
    this.slotWritten[books.slot] = ++this.bookWrites
  }

  /** An entry of the books table for a sender first heard: the one written least recently (a free one first). */
  private takeSlot(books: SenderBooks) {
    let slot = 0
    for (let i = 1; i < BOOKS; i++) if (this.slotWritten[i]! < this.slotWritten[slot]!) slot = i
    const inherited = this.slotInherited[slot]
    if (inherited !== undefined) this.inherited.delete(inherited), (this.slotInherited[slot] = undefined)
    const owner = this.slotBooks[slot]
    if (owner) owner.slot = -1
    this.slotBooks[slot] = books
    books.slot = slot
  }

  private freeSlot(books: SenderBooks) {
    if (books.slot < 0) return
    this.slotBooks[books.slot] = undefined
    this.slotWritten[books.slot] = 0
    if (!this.stopped) this.host.writeBook(books.slot, 0, 0, 0, 0)
    books.slot = -1
  }

  /** Too many senders to keep books for: all start afresh. */
  private forgetBooks() {
    for (const books of this.seen.values()) this.freeSlot(books)
    this.seen.clear()
  }

  private refuse(subject: string, why: string) {
    this.counts.refused++
    this.reason(`${subject}: a message refused (${why})`)
  }
}
