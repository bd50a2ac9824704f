// A topic's bridge to NATS (docs/PROTOCOL.md §11): one process per host and topic, elected by an abstract socket,
// forwards its host's events to `slotbus.ev.<topic>.<type>` and the events its host's subscribers want from there
// into the ring. It implements the events room's port (src/events/bridge.ts): slotbus/events drives it through
// TopicBridgeHost; nothing here knows the Topic class.
import type { Msg, MsgHdrs, NatsConnection, Subscription as NatsSubscription } from "@nats-io/transport-node"
import { lockHost, portableBackend, unlockHost } from "../native/ffi.ts"
import { Resends } from "./resends.ts"
import { ensureTopicStream, openStreamFeed, streamOf, StreamUnusable } from "./topic-stream.ts"
import {
  type BridgeFilter,
  type BridgeReader,
  type StreamFeed,
  type TopicBridge,
  type TopicBridgeHost,
  type TopicBridgeStats,
  TopicStreamError,
  type TopicStreamLimits,
  type TopicStreamState,
} from "../events/internal.ts"
import { explainNats } from "./explain.ts"
import { jetStreamClient, natsClient } from "./packages.ts"
import type { NatsUse, SharedConnection } from "./shared.ts"
import { guarded } from "./wire.ts"

const PREFIX = 24
const VERSION = 1
const KIND_EVENT = 1
const ELECT_MS = 100
const FILTERS_MS = 50
/** Events a bridge sends past the last its server confirmed, at most (§11.4): what a successor may send again. */
const UNCONFIRMED = 1024
const BOOKS = 128
const utf8 = new TextDecoder()
const enc = new TextEncoder()

// §11.1: a subject token per `.`-separated part; [A-Za-z0-9_-] stay, any other byte is ~XX, an empty part is ~.
const PLAIN = new Uint8Array(256)
for (const c of enc.encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")) PLAIN[c] = 1
const HEX = "0123456789ABCDEF"

function tokens(type: Uint8Array): string[] {
  const out: string[] = []
  let tok = ""
  for (const b of type) {
    if (b === 0x2e) out.push(tok === "" ? "~" : tok), (tok = "")
    else tok += PLAIN[b] ? String.fromCharCode(b) : `~${HEX[b >> 4]}${HEX[b & 15]}`
  }
  out.push(tok === "" ? "~" : tok)
  return out
}

/** The subjects of §11.1 for one topic. */
export function topicSubjects(topic: string) {
  const root = `slotbus.ev.${topic.replaceAll(".", "~")}`
  return {
    root,
    /** The subject an event of this type goes to. */
    event: (type: Uint8Array | string) =>
      `${root}.${tokens(typeof type === "string" ? enc.encode(type) : type).join(".")}`,
    /** The subject that carries every type a filter selects (for a prefix not ending at a `.`, a superset). */
    filter: (mode: "any" | "exact" | "prefix", type: Uint8Array | string) => {
      const t = typeof type === "string" ? enc.encode(type) : type
      if (mode === "any" || t.length === 0) return `${root}.>`
      const toks = tokens(t)
      if (mode === "exact") return `${root}.${toks.join(".")}`
      toks.pop() // the last part is partial (or empty: the prefix ends at a `.`)
      return toks.length ? `${root}.${toks.join(".")}.>` : `${root}.>`
    },
  }
}

/** The type an event subject carries (§11.1, undone), or null when it is not one of the topic's. */
export function typeOfSubject(root: string, subject: string): Uint8Array | null {
  if (!subject.startsWith(`${root}.`)) return null
  const out: number[] = []
  const toks = subject.slice(root.length + 1).split(".")
  for (let i = 0; i < toks.length; i++) {
    if (i > 0) out.push(0x2e)
    const t = toks[i]!
    if (t === "~") continue
    for (let j = 0; j < t.length; j++) {
      if (t[j] !== "~") {
        out.push(t.charCodeAt(j))
        continue
      }
      const b = Number.parseInt(t.slice(j + 1, j + 3), 16)
      if (t.length < j + 3 || Number.isNaN(b)) return null
      out.push(b)
      j += 2
    }
  }
  return out.length >= 1 && out.length <= 255 ? new Uint8Array(out) : null
}

/** Whether subject pattern `p` (exact or ending in `.>`) only matches what `q` matches too, p ≠ q. */
function coveredBy(p: string, q: string): boolean {
  if (p === q || !q.endsWith(".>")) return false
  const stem = q.slice(0, -1) // "….": p must have at least one more token after it
  return p.startsWith(stem) && p.length > stem.length
}

/** The smallest set of patterns matching what `all` matches, none covering another: a message matches one. */
export function cover(all: Iterable<string>): string[] {
  const set = [...new Set(all)]
  return set.filter((p) => !set.some((q) => coveredBy(p, q))).sort()
}

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

function matches(subject: string, pattern: string): boolean {
  return subject === pattern || (pattern.endsWith(".>") && subject.startsWith(pattern.slice(0, -1)))
}

/**
 * Opens the NATS connection `nats(…)` names and stands for election as the host's bridge of the topic:
 * bridges while it holds `\0slotbus.bridge.<topic>`, tries again every 100 ms while another process does.
 */
export async function startTopicBridge(
  host: TopicBridgeHost,
  shared: SharedConnection,
  durable?: { limits: TopicStreamLimits; warn: (line: string) => void },
): Promise<TopicBridge> {
  if (durable) await jetStreamClient() // a missing package is said before any connection is tried
  const use = await shared.use()
  let msgId: (() => MsgHdrs) | undefined
  try {
    const subject = `${topicSubjects(host.name).root}.>`
    if (durable)
      await ensureTopicStream(use.nc, host.name, subject, durable.limits, durable.warn).catch((e) => {
        const why = e instanceof StreamUnusable ? e.message : explainNats(e)
        throw new TopicStreamError(`topic "${host.name}" cannot be durable: ${why}`, { cause: e })
      })
    // a durable topic's messages carry a Nats-Msg-Id, so its stream stores a resend once (§11.2)
    msgId = durable ? (await natsClient()).headers : undefined
  } catch (e) {
    await use.release()
    throw e
  }
  const b = new Bridge(host, use, msgId)
  b.elect()
  return b
}

class Bridge implements TopicBridge {
  private readonly s
  private readonly counts = {
    sent: 0,
    received: 0,
    duplicates: 0,
    resends: 0,
    lost: 0,
    unsent: 0,
    refused: 0,
    resyncs: 0,
  }
  private readonly reasons: string[] = []
  private socket: { stop(force?: boolean): void } | undefined
  private electTimer: ReturnType<typeof setInterval> | undefined
  private watching = false
  private watch: { end(): void } | undefined
  private closed = false
  private run: Running | undefined
  private readonly own = { ids: [] as number[], head: 0 }
  private readonly nc: NatsConnection

  constructor(
    private readonly host: TopicBridgeHost,
    private readonly use: NatsUse,
    private readonly msgId: (() => MsgHdrs) | undefined,
  ) {
    this.nc = use.nc
    this.s = topicSubjects(host.name)
    // a connection that closes for good (not a reconnect) ends the bridging here: another candidate takes over
    use.onClosed(() => this.stepDown())
  }

  elect() {
    this.tryBind()
    this.electTimer = setInterval(() => this.tryBind(), ELECT_MS)
    this.electTimer.unref()
  }

  private tryBind() {
    if (this.closed || this.socket || this.nc.isClosed()) return
    if (portableBackend()) {
      // no abstract names (macOS): a lock file in the socket directory, freed by the kernel when its holder dies
      // (§11.4); the other candidates try again every ELECT_MS
      const fd = lockHost("slotbus.bridge.", this.host.name, true)
      if (fd === null) return
      this.socket = { stop: () => unlockHost(fd) }
      this.startRunning()
      return
    }
    const unix = `\0slotbus.bridge.${this.host.name}`
    try {
      this.socket = Bun.listen({ unix, socket: { data() {} } })
    } catch {
      // Another process of this host bridges (EADDRINUSE). Hold a connection to it: the kernel closes it the
      // moment that process dies, and this one stands again at once instead of at its next 100 ms try.
      if (!this.watching) {
        this.watching = true
        const since = performance.now()
        const again = () => {
          this.watching = false
          this.watch = undefined
          // at once; a connection that did not even last a moment was refused (the dying holder's connections can
          // close before its name is free): try again shortly, never in a tight loop
          if (performance.now() - since > 5) this.tryBind()
          else setTimeout(() => this.tryBind(), 1).unref()
        }
        Bun.connect({ unix, socket: { data() {}, close: again, error: again } }).then((w) => {
          if (this.closed) w.end()
          else this.watch = w
        }, again)
      }
      return
    }
    this.startRunning()
  }

  private startRunning() {
    this.run = new Running(this.host, this.nc, this.s, this.counts, (r) => this.reason(r), this.own, this.msgId)
  }

  private stepDown() {
    this.run?.stop()
    this.run = undefined
    this.socket?.stop(true)
    this.socket = undefined
  }

  reason(r: string) {
    this.reasons.push(r)
    if (this.reasons.length > 16) this.reasons.shift()
  }

  stats(): TopicBridgeStats {
    return {
      bridging: this.run !== undefined,
      subjects: this.run ? [...this.run.subjects()] : [],
      ...this.counts,
      unsent: this.counts.unsent + (this.run?.unsent() ?? 0),
      reasons: [...this.reasons],
    }
  }

  server() {
    return this.nc.getServer()
  }

  async streamState(): Promise<TopicStreamState | null> {
    if (!this.msgId) return null
    const { jetstreamManager } = await jetStreamClient()
    const stream = streamOf(this.host.name)
    const { state } = await (await jetstreamManager(this.nc)).streams.info(stream)
    return { stream, firstSeq: state.first_seq, lastSeq: state.last_seq, messages: state.messages, bytes: state.bytes }
  }

  openStream(filter: BridgeFilter, from: "now" | "oldest" | number, ahead: number): Promise<StreamFeed> {
    if (!this.msgId) throw new Error("the topic was not opened durable")
    const subject = this.s.filter(filter.mode, filter.type)
    return openStreamFeed(this.nc, this.host.name, subject, from, ahead).catch((e) => {
      throw new StreamUnusable(explainNats(e), { cause: e })
    })
  }

  async close() {
    if (this.closed) return
    this.closed = true
    clearInterval(this.electTimer)
    this.watch?.end()
    const run = this.run
    this.stepDown()
    await run?.done
    await this.use.release()
  }
}

type Counts = TopicBridgeStats extends infer S ? Omit<S, "bridging" | "subjects" | "reasons"> : never

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
class Running {
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
