// The topic's header in shared memory (docs/PROTOCOL.md §8.2), read and written through the names of
// src/native/topic-layout.ts only: the one file that maps it (test/events/layout.test.ts checks both).
import { topicNative } from "../native/ffi.ts"
import { BookField, EntryState, PubField, SubField, TopicConst, TopicLayout } from "../native/topic-layout.ts"
import type { BridgeFilter } from "./bridge.ts"
import { decodeFilter, filterType } from "./codec.ts"
import { memoryView, type Pointer } from "../runtime/index.ts"

const HIGH_HALF = 4 // the high u32 of a little-endian u64
const TWO_32 = 4294967296

/** A live subscriber entry (§8.2) as stats shows it, with its cursor. */
export interface SubscriberEntry {
  pid: number
  filter: string
  queue: number
  received: number
  lagged: number
  cursor: number
  parked: boolean
}

/** A receive books entry (§11.4). */
export interface Book {
  bridge: number
  subject: number
  seq: number
  at: number
}

/** Plain views of a topic's header, registries and books: everything before the ring's data (§8.2). */
export class TopicHeader {
  private readonly view: DataView
  private readonly bytes: Uint8Array

  constructor(ptr: Pointer) {
    const control = memoryView(topicNative.sb_topic_region(ptr)!, 0, TopicLayout.OFF_DATA)
    this.view = new DataView(control)
    this.bytes = new Uint8Array(control)
  }

  private u64(off: number): number {
    return Number(this.view.getBigUint64(off, true))
  }

  /** The topic id, random, the creator's choice: names this host's copy of the topic. */
  get ringId(): bigint {
    return this.view.getBigUint64(TopicLayout.OFF_ID, true)
  }

  /** The low half of the keeper word: the keeper's pid (0: vacant, §8.1). */
  keeperPid(): number {
    return this.view.getUint32(TopicLayout.OFF_KEEPER_PID, true)
  }

  abandoned(): number {
    return this.u64(TopicLayout.OFF_ABANDONED)
  }

  fenced(): number {
    return this.u64(TopicLayout.OFF_FENCED)
  }

  private subEntry(i: number): number {
    return TopicLayout.OFF_SUBS + i * TopicLayout.SUB_BYTES
  }

  /** The live subscriber entries of every process now. */
  subscribers(): SubscriberEntry[] {
    const d = this.view
    const out: SubscriberEntry[] = []
    for (let i = 0; i < TopicConst.MAX_SUBS; i++) {
      const e = this.subEntry(i)
      if (d.getUint32(e + SubField.STATE, true) !== EntryState.LIVE) continue
      const flen = Math.min(d.getUint32(e + SubField.FILTER_LEN, true), TopicConst.FILTER_BYTES)
      out.push({
        pid: d.getUint32(e + SubField.PID, true),
        filter: decodeFilter(this.bytes.subarray(e + SubField.FILTER, e + SubField.FILTER + flen)) ?? "?",
        queue: d.getUint32(e + SubField.QUEUE, true),
        received: this.u64(e + SubField.RECEIVED),
        lagged: this.u64(e + SubField.LAGGED),
        cursor: this.u64(e + SubField.CURSOR),
        parked: d.getUint32(e + SubField.PARKED, true) === 1,
      })
    }
    return out
  }

  /** The type filters of the live subscribers, with their pids (§8.5). */
  filters(): (BridgeFilter & { pid: number })[] {
    const d = this.view
    const out: (BridgeFilter & { pid: number })[] = []
    for (let i = 0; i < TopicConst.MAX_SUBS; i++) {
      const e = this.subEntry(i)
      if (d.getUint32(e + SubField.STATE, true) !== EntryState.LIVE) continue
      const f = this.bytes.subarray(e + SubField.FILTER, e + SubField.FILTER + TopicConst.FILTER_BYTES)
      out.push({ pid: d.getUint32(e + SubField.PID, true), ...filterType(f) })
    }
    return out
  }

  /** The live publisher entries of every process now. */
  publishers(): { pid: number; published: number }[] {
    const d = this.view
    const out: { pid: number; published: number }[] = []
    for (let i = 0; i < TopicConst.MAX_PUBS; i++) {
      const e = TopicLayout.OFF_PUBS + i * TopicLayout.PUB_BYTES
      if (d.getUint32(e + PubField.STATE, true) !== EntryState.LIVE) continue
      out.push({ pid: d.getUint32(e + PubField.PID, true), published: this.u64(e + PubField.PUBLISHED) })
    }
    return out
  }

  // Two u32 halves: only the elected bridge writes the word, and a new one reads it only after the old one died or
  // stepped down.
  /** The bridged word (§11.4): 0 before any bridge, else 1 + the position where the next bridge starts reading. */
  bridged(): number {
    const d = this.view
    return d.getUint32(TopicLayout.OFF_BRIDGED, true) + d.getUint32(TopicLayout.OFF_BRIDGED + HIGH_HALF, true) * TWO_32
  }

  /** Writes the bridged word: every event before position `at` was taken. */
  setBridged(at: number): void {
    this.view.setUint32(TopicLayout.OFF_BRIDGED + HIGH_HALF, Math.floor((at + 1) / TWO_32), true)
    this.view.setUint32(TopicLayout.OFF_BRIDGED, (at + 1) >>> 0, true)
  }

  /** The pid of the process whose bridge last wrote the bridged word (0: none yet). */
  bridgePid(): number {
    return this.view.getUint32(TopicLayout.OFF_BRIDGE_PID, true)
  }

  setBridgePid(pid: number): void {
    this.view.setUint32(TopicLayout.OFF_BRIDGE_PID, pid, true)
  }

  private book(i: number): number {
    return TopicLayout.OFF_BOOKS + i * TopicLayout.BOOK_BYTES
  }

  readBook(i: number): Book {
    const d = this.view
    const e = this.book(i)
    return {
      bridge: d.getUint32(e + BookField.BRIDGE, true),
      subject: d.getUint32(e + BookField.SUBJECT, true),
      seq: d.getUint32(e + BookField.SEQ, true),
      at: d.getUint32(e + BookField.AT, true),
    }
  }

  writeBook(i: number, b: Book): void {
    const d = this.view
    const e = this.book(i)
    d.setUint32(e + BookField.BRIDGE, b.bridge, true)
    d.setUint32(e + BookField.SUBJECT, b.subject, true)
    d.setUint32(e + BookField.SEQ, b.seq, true)
    d.setUint32(e + BookField.AT, b.at, true)
  }
}
