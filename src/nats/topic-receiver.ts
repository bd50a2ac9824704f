// The in side of a topic's elected bridge (docs/PROTOCOL.md §11.3 - §11.5): subscribes to the subjects this host's
// subscribers' filters take, and publishes what other hosts sent into the ring once: duplicates and resends
// dropped, a gap in a sender's numbers counted lost (a loss record into the ring), a jump no loss explains taken as
// a new epoch.
import type { Msg, NatsConnection, Subscription as NatsSubscription } from "@nats-io/transport-node"
import type { TopicBridgeHost, TopicBridgeStats } from "../events/internal.ts"
import { Resends } from "./resends.ts"
import { ReceiverBooks } from "./topic-books.ts"
import { cover, KIND_EVENT, PREFIX, type topicSubjects, typeOfSubject, VERSION } from "./topic-wire.ts"
import { guarded } from "./wire.ts"
import { crc32 } from "../runtime/index.ts"

const FILTERS_MS = 50
/**
 * A jump in a sender's numbers past this behind, or ahead past this plus what it could have sent since it was last
 * heard here, is a new epoch, not a loss (§11.3).
 */
const MAX_GAP = 4096
/** Events a second one bridge can send on one subject, at most (§11.3): ten times what one NATS connection carries. */
const MAX_RATE = 5_000_000

/** Ids this process's bridging published into the ring, in order (kept across its re-elections): never sent out. */
export type BridgedIn = { ids: number[]; head: number }

/** Takes other hosts' events from NATS into the ring for this host's subscribers, until stopped. */
export class TopicReceiver {
  private readonly subs = new Map<string, NatsSubscription>() // pattern → subscription
  private readonly retiring = new Set<NatsSubscription>() // no longer wanted, kept until the ones replacing them are in
  private readonly books: ReceiverBooks
  private readonly resends = new Resends()
  private recordedLost = 0
  private readonly filterTimer: ReturnType<typeof setInterval>
  private stopped = false
  private readonly confirmed = new Set<string>()

  constructor(
    private readonly host: TopicBridgeHost,
    private readonly nc: NatsConnection,
    private readonly s: ReturnType<typeof topicSubjects>,
    private readonly counts: Pick<
      TopicBridgeStats,
      "received" | "duplicates" | "resends" | "lost" | "refused" | "resyncs"
    >,
    private readonly reason: (r: string) => void,
    private readonly own: BridgedIn,
  ) {
    this.books = new ReceiverBooks(host)
    this.syncSubjects()
    this.filterTimer = setInterval(() => this.syncSubjects(), FILTERS_MS)
  }

  /** The subjects subscribed to and confirmed by the server (a flush after the SUB): events on them are heard. */
  subjects() {
    return this.confirmed.values()
  }

  /** Events counted in the loss records this bridge wrote into the ring. */
  get lostIntoRing() {
    return this.recordedLost
  }

  stop() {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.filterTimer)
    this.books.stop()
    for (const sub of [...this.subs.values(), ...this.retiring]) sub.unsubscribe()
    this.subs.clear()
    this.retiring.clear()
    this.confirmed.clear()
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
      if (!this.subs.has(p)) {
        const sub = this.nc.subscribe(p, {
          callback: guarded(
            (msg) => this.take(msg),
            (e) => this.refuse(p, `it could not be taken: ${(e as Error)?.message ?? e}`),
          ),
        })
        this.subs.set(p, sub)
        // the server has the subscription once a flush after it returns: only then is the subject listed
        this.nc.flush().then(
          () => this.subs.get(p) === sub && this.confirmed.add(p),
          () => {},
        )
      }
    for (const [p, sub] of this.subs)
      if (!want.includes(p)) {
        this.subs.delete(p), this.confirmed.delete(p), (removed = true)
        // kept until the server has the subscriptions just made (a flush after them): until then only it carries
        // some of their events (a dead bridge's reader, filter any, reaped: `>` swapped for `job.n` lost 2–8 at
        // 1 ms apart); what both carry meanwhile is taken once (the books' duplicates)
        this.retiring.add(sub)
        const drop = () => this.retiring.delete(sub) && sub.unsubscribe()
        this.nc.flush().then(drop, drop)
      }
    // numbers of subjects no longer heard start afresh when heard again (the gap between is not a loss)
    if (removed) this.books.keepOnly(want)
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
    const crc = crc32(d.subarray(12)) // pos, ring and event: the seq and bridge are compared apart
    let books = this.books.get(key)
    if (books?.has(seq, crc)) {
      this.counts.duplicates++
      return
    }
    const now = Date.now()
    let fresh = false
    if (books === undefined) ({ books, fresh } = this.books.open(key, bridge, msg.subject))
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
          this.recordedLost += n
        } catch (e) {
          this.reason(`${msg.subject}: the loss record was refused (${(e as Error).message})`)
        }
      }
    } else if (seq === books.last + 1) books.advance(seq, now)
    // else a seq below the last, not seen: taken as it is (only a forged message arrives so), the books unchanged
    books.add(seq, crc)
    if (this.resends.seen(ring, v.getUint32(12, true), crc)) {
      this.counts.resends++ // sent again by a new bridge of its host (§11.3): it is in the ring already
      return this.books.write(books)
    }
    let id: number
    try {
      id = this.host.publishEncoded(d.subarray(PREFIX))
    } catch (e) {
      this.books.write(books)
      return this.refuse(msg.subject, (e as Error).message)
    }
    this.books.write(books) // after the publish: a successor counts at most this one event lost that is not
    this.own.ids.push(id)
    this.counts.received++
  }

  private refuse(subject: string, why: string) {
    this.counts.refused++
    this.reason(`${subject}: a message refused (${why})`)
  }
}
