// What the in side of a topic's bridge keeps of the senders it hears (docs/PROTOCOL.md §11.3, §11.4): per sender
// bridge and subject its last seq and its latest messages, and their copy in the ring header's books table, which
// the next bridge of this host goes on from.
import type { TopicBridgeHost } from "../events/internal.ts"
import { matches } from "./topic-wire.ts"
import { crc32 } from "../runtime/index.ts"

const BOOKS = 128
const TWO_32 = 4294967296
const RECENT = 8

/** What a receiver keeps of one (bridge, subject) of a sender: its last seq, and the last 8 messages it took. */
export class SenderBooks {
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

/** The books of every (bridge, subject) heard, at most 65,536, and the entries of the books table they own. */
export class ReceiverBooks {
  private readonly seen = new Map<string, SenderBooks>() // `<bridge> <subject>` → what was taken from it
  // the ring header's books table (§11.4): the entries the last bridge left, by `<bridge> <subject crc>` (taken
  // over when their sender is heard), and per slot the books that own it and when it was last written
  private readonly inherited = new Map<string, { slot: number; seq: number; heardAt: number }>()
  private readonly slotBooks: (SenderBooks | undefined)[] = new Array(BOOKS)
  private readonly slotInherited: (string | undefined)[] = new Array(BOOKS)
  private readonly slotWritten = new Float64Array(BOOKS)
  private bookWrites = 0
  private stopped = false

  constructor(private readonly host: TopicBridgeHost) {
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
  }

  /** The books of the sender `key` (`<bridge> <subject>`), if it was heard here. */
  get(key: string): SenderBooks | undefined {
    return this.seen.get(key)
  }

  /**
   * Books for the sender `key` (bridge `bridge` on `subject`), first heard. If the last bridge of this host took
   * from it, they go on from its entry (§11.4), so what reached the host while no process received counts as lost;
   * else they are `fresh`, and take the entry written least recently.
   */
  open(key: string, bridge: number, subject: string): { books: SenderBooks; fresh: boolean } {
    if (this.seen.size >= 65536) this.forget()
    const books = new SenderBooks(bridge, crc32(subject))
    this.seen.set(key, books)
    const was = this.inherited.get(`${bridge} ${books.subject}`)
    if (!was) {
      this.takeSlot(books)
      return { books, fresh: true }
    }
    this.inherited.delete(`${bridge} ${books.subject}`)
    this.slotInherited[was.slot] = undefined
    this.slotBooks[was.slot] = books
    books.slot = was.slot
    books.advance(was.seq, was.heardAt)
    return { books, fresh: false }
  }

  /** Forgets the senders on subjects that none of `patterns` matches. */
  keepOnly(patterns: string[]) {
    for (const [key, books] of this.seen) {
      const subject = key.slice(key.indexOf(" ") + 1)
      if (!patterns.some((p) => matches(subject, p))) this.seen.delete(key), this.freeSlot(books)
    }
  }

  /** Stepped down: another process may own the table now. */
  stop() {
    this.stopped = true
  }

  /** The sender's last seq into its books table entry (§11.4), if it has one. */
  write(books: SenderBooks) {
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
  private forget() {
    for (const books of this.seen.values()) this.freeSlot(books)
    this.seen.clear()
  }
}
