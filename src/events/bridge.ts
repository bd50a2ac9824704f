// The port the events room owns for topics across hosts (docs/PROTOCOL.md §11): what a transport implements and the
// caller passes in (`Topic.open(name, { remote: nats(url) })`, src/nats) - a bridge per host that carries the ring's
// events to other hosts and theirs into it, and a durable topic's stream. The room imports no transport.

/** A transport for topics across hosts, as a caller passes it in: `nats(url)` from "slotbus/nats" is one. */
export interface TopicRemote {
  /** Its name in status views ("nats"). */
  readonly transport: string
  /**
   * Starts this process's bridge for the topic `host` is (elected per host, taken over when its process dies);
   * with `durable`, the topic's stream is made or bound first. A stream that cannot be used is a TopicStreamError.
   */
  openTopicBridge(
    host: TopicBridgeHost,
    durable?: { limits: TopicStreamLimits; warn: (line: string) => void },
  ): Promise<TopicBridge>
}

/** The methods a topic's `remote` option must have. */
export const TOPIC_PORT = ["openTopicBridge"] as const satisfies readonly (keyof TopicRemote)[]

/** A subscriber's type filter (§8.5): every type, one type, or the types that begin with `type`. */
export interface BridgeFilter {
  mode: "any" | "exact" | "prefix"
  type: Uint8Array
}

/** What a bridge needs of its topic (src/events implements it). */
export interface TopicBridgeHost {
  readonly name: string
  /** The ring's id (§8.2 header offset 16, random, the creator's choice): names this host's copy of the topic. */
  readonly ringId: bigint
  /** Publishes an encoded event (a record's bytes 16 … len, §8.3) into the ring; returns its id. Throws if malformed. */
  publishEncoded(encoded: Uint8Array): number
  /** Publishes a loss record (§8.3): `lost` events of this type never reached the ring; subscribers count them. */
  publishLost(type: Uint8Array, lost: number): void
  /** A reader of every event in the ring from position `at` (a value the ring's tail once had) on. */
  openReader(at: number): BridgeReader
  /**
   * For a bridge just elected (§11.4): where to start reading (the ring header's bridged word, or the tail when no
   * bridge wrote it: then written), the pid of the bridge that last wrote it and the tail now; writes this pid.
   */
  takeBridged(): { at: number; pid: number; tail: number }
  /** Writes the bridged word: every event before position `at` was taken (sent, or skipped as bridged in). */
  setBridged(at: number): void
  /**
   * Entry i of the ring header's books table (§11.4): a sender bridge (0: free), its subject's CRC-32, the last seq,
   * and when it was taken (the wall clock's milliseconds mod 2^32; 0: not known).
   */
  readBook(i: number): { bridge: number; subject: number; seq: number; at: number }
  /** Writes entry i of the books table (only the elected bridge does). */
  writeBook(i: number, bridge: number, subject: number, seq: number, at: number): void
  /** The type filters of the live subscribers in the ring, with their pids (§8.2, §8.5). */
  filters(): (BridgeFilter & { pid: number })[]
}

export interface BridgeReader {
  /** Resolves true when a poll may find events, false once closed. */
  ready(): Promise<boolean>
  /** Calls fn for each event there now, `max` at most: its id, its type's bytes, the encoded event (views, valid during fn). */
  poll(fn: (id: number, type: Uint8Array, encoded: Uint8Array) => void, max: number): number
  /** Events of the ring this reader lost by falling behind (§8.4). */
  readonly lagged: number
  /** It was opened at a position the ring had lapped: it started at the oldest event there instead. */
  readonly restarted: boolean
  close(): void
}

export interface TopicBridgeStats {
  /** Whether this process is its host's bridge for the topic now. */
  bridging: boolean
  /** The subjects it subscribes for its host's subscribers (§11.4). */
  subjects: string[]
  /** Events of this host sent to other hosts. */
  sent: number
  /** Events from other hosts published into this host's ring. */
  received: number
  /** Messages that arrived twice (two of its subscriptions matched while it changed them), dropped. */
  duplicates: number
  /** Events another host's new bridge sent again (its predecessor's server had not confirmed them, §11.4), dropped. */
  resends: number
  /** Events other hosts sent that were lost on the way (§11.5), counted from the gaps in their numbers. */
  lost: number
  /** Events of this host the bridge could not read from the ring in time, so never sent (§8.4). */
  unsent: number
  /** Messages on the topic's subjects that were not slotbus events (or malformed ones), dropped. */
  refused: number
  /**
   * Times a sender's numbers jumped by more than 4,096 either way (a restarted bridge, or a message someone forged
   * with its number): its books started afresh, nothing dropped, and the jump not counted as lost (§11.3).
   */
  resyncs: number
  /** Where `lost`, `unsent`, `refused` and `resyncs` came from, the latest 16. */
  reasons: string[]
}

/** A durable topic's stream as its server tells it now (§11.6), for status views. */
export interface TopicStreamState {
  stream: string
  firstSeq: number
  lastSeq: number
  messages: number
  bytes: number
}

export interface TopicBridge {
  stats(): TopicBridgeStats
  /** The server this process's connection uses now (host:port). */
  server(): string
  /** The durable topic's stream now; null for a topic that is not durable. */
  streamState(): Promise<TopicStreamState | null>
  /** A durable topic's stream (§11.6) from `from`, for the events `filter` lets through; `ahead` pulled at most. */
  openStream(filter: BridgeFilter, from: "now" | "oldest" | number, ahead: number): Promise<StreamFeed>
  close(): Promise<void>
}

/** The stream's limits (§11.6), applied when this process creates it. */
export interface TopicStreamLimits {
  maxBytes: number
  /** 0: no age limit. */
  maxAgeMs: number
  replicas: number
}

/** A stream subscriber's messages (§11.6), pulled at most `ahead` at a time. */
export interface StreamFeed {
  /** `from` was an id whose successor the stream no longer holds (or never did): reading starts at the oldest. */
  readonly restarted: boolean
  /** Why: its events were discarded by the stream's limits, or the id is past the stream's last. */
  readonly restartReason: "discarded" | "from-the-future" | null
  /** The next message of the filter's subject: its stream sequence and payload (§11.2); null once closed. */
  next(): Promise<{ seq: number; data: Uint8Array } | null>
  close(): void
}
