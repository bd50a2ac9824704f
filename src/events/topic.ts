// A named topic: open or create, publish, subscribe, late-binding rules, stats (docs/PROTOCOL.md §8).
import { toArrayBuffer, type Pointer } from "bun:ffi"
import { PayloadTooLargeError, PeerRefusedError, ProtocolError, SlotBusError, TimeoutError } from "../errors.ts"
import {
  TOPIC_PORT,
  type TopicBridge,
  type TopicBridgeHost,
  type TopicBridgeStats,
  type TopicRemote,
} from "./bridge.ts"
import {
  CreateModeValue,
  PubFlag,
  TOPIC_OUT_WORDS,
  TopicConst,
  Errno,
  E_SOCKET_DIR,
  socketDirError,
  TopicOut,
  topicNative,
  loadNative,
} from "../native/ffi.ts"
import { tuning } from "../core/internal.ts"
import {
  checkCreate,
  checkOptions,
  checkRemote,
  createRefusal,
  madeBy,
  optionNames,
  section,
  settingMismatch,
  STATUS,
  type CreateMode,
  type StatusSection,
} from "../kit/index.ts"
import {
  clearLost,
  encodeEvent,
  encodeLoss,
  encodedMatcher,
  encodeFilter,
  encodeRule,
  filterType,
  type EventData,
  type Routing,
  type TopicFilter,
} from "./codec.ts"
import { DURABLE_KEY, DurableSubscription } from "./durable.ts"
import { TopicClosedError, TopicFullError, TopicStreamError } from "./errors.ts"
import { TopicHeader } from "./header.ts"
import {
  Subscription,
  SUBSCRIBE_KEY,
  type NativeSub,
  type SubscribeOptions,
  type SubscriptionOwner,
} from "./subscription.ts"

export interface TopicOptions {
  /**
   * Ring bytes (a power of two, 64 KiB … 1 GiB). Default 1 MiB. Given, it is also checked: joining a topic that
   * has another capacity is a SettingsMismatchError (say nothing to join whatever it has).
   */
  capacity?: number
  /** "if-missing" (default): join the topic or create it; "never": join only (NotFoundError); "must": create only (AlreadyExistsError). */
  create?: CreateMode
  /** How long to wait for a member of the topic to answer. Default 5000. */
  timeoutMs?: number
  /** Called with a warning (a malformed late-binding value was skipped). Default: console.warn. */
  onWarning?: (message: string) => void
  /**
   * Spans hosts through a transport passed in: `remote: nats(url)` (`import { nats } from "slotbus/nats"`,
   * docs/PROTOCOL.md §11). One process per host bridges the ring to the others (elected, taken over when it dies);
   * replay (`from`) stays local to each host's ring unless the topic is `durable`.
   */
  remote?: TopicRemote
  /**
   * With `remote`: keep the topic's events in a JetStream stream (docs/PROTOCOL.md §11.6), so
   * `topic.subscribeDurable(filter, { from: id })` replays them on any host, ids being the stream's sequence
   * numbers. `true`, or the limits the stream is created with: `maxBytes` (default 256 MiB), `maxAgeMs` (default
   * 0: none), `replicas` (default 1). A stream that exists is used as it is.
   */
  durable?: boolean | { maxBytes?: number; maxAgeMs?: number; replicas?: number }
}

export interface DurableSubscribeOptions {
  /** How many events are read ahead of the reader at most. Default 256. */
  queue?: number
  /** Where to start: "now" (default), "oldest" (the oldest the stream holds), or after the event with this id (a stream sequence). */
  from?: "now" | "oldest" | number
}

export interface PublishInit {
  type: string
  routing?: Routing
  /** Bytes, a string, or anything JSON.stringify accepts. */
  data?: EventData
}

/** "When an event of `type` carries keys[0], keys[1] and `fill`, remember (keys) → fill; fill it into later events lacking it." */
export interface BindingRule {
  type: string
  keys: [string, string]
  fill: string
}

export interface TopicStats {
  name: string
  capacity: number
  /** Bytes claimed so far (the next event's id). */
  tail: number
  /** The keeper's pid: the creator, then a member that took over within a tick of its close or death (0 meanwhile). */
  keeperPid: number
  /** Records skipped because their publisher died or stalled before finishing them (never published). */
  abandoned: number
  /** Padding claims made to step around another publisher's unfinished bytes (a stalled or stopped publisher). */
  fenced: number
  /** `behind`: bytes of the ring between the subscriber's cursor and the tail, not yet received or counted as lagged. */
  subscribers: {
    pid: number
    filter: string
    queue: number
    received: number
    lagged: number
    behind: number
    parked: boolean
  }[]
  publishers: { pid: number; published: number }[]
}

const TICK_MS = 20 // housekeeping: answer newcomers, collect the dead
const SCRATCH_START = 64 * 1024
const open = new Set<Topic>()
const OPEN_OPTIONS = optionNames<TopicOptions>({
  capacity: true,
  create: true,
  timeoutMs: true,
  onWarning: true,
  remote: true,
  durable: true,
})
const SUBSCRIBE_OPTIONS = optionNames<SubscribeOptions>({ queue: true, idle: true, from: true })
const DURABLE_SUBSCRIBE_OPTIONS = optionNames<DurableSubscribeOptions>({ queue: true, from: true })
const STREAM_LIMITS = optionNames<Exclude<TopicOptions["durable"] & object, boolean>>({
  maxBytes: true,
  maxAgeMs: true,
  replicas: true,
})
const PUBLISH_FIELDS = optionNames<PublishInit>({ type: true, routing: true, data: true })
const RULE_FIELDS = optionNames<BindingRule>({ type: true, keys: true, fill: true })
const FACTORY = Symbol("Topic.open")

function checkQueue(q: unknown = 256): number {
  if (typeof q !== "number") throw new TypeError(`queue must be a number of events, got ${typeof q}`)
  if (!Number.isInteger(q) || q < 1 || q > 1 << 20)
    throw new RangeError(`queue must be a whole number from 1 to ${1 << 20}, got ${q}`)
  return q
}

function checkFrom(from: unknown = "now"): "now" | "oldest" | number {
  if (from === "now" || from === "oldest") return from
  if (Number.isSafeInteger(from) && (from as number) >= 0) return from as number
  if (typeof from === "number")
    throw new RangeError(`from must be "now", "oldest" or an event id (a whole number ≥ 0), got ${from}`)
  throw new TypeError(`from must be "now", "oldest" or an event id, got ${JSON.stringify(from) ?? typeof from}`)
}

/** The stream limits of the `durable` option (§11.6), or undefined when the topic is not durable. */
function streamLimits(durable: TopicOptions["durable"], remote: boolean) {
  if (durable === undefined || durable === false) return undefined
  if (durable !== true && (typeof durable !== "object" || durable === null))
    throw new TypeError(`durable must be true or { maxBytes, maxAgeMs, replicas }, got ${typeof durable}`)
  if (!remote)
    throw new TypeError("durable needs remote: the stream is the transport's (Topic.open(name, { remote, durable }))")
  const o = durable === true ? {} : durable
  checkOptions(o, STREAM_LIMITS, "Topic.open durable", { noun: "durable field" })
  const int = (v: unknown, dflt: number, what: string, min: number) => {
    if (v === undefined) return dflt
    if (!Number.isSafeInteger(v) || (v as number) < min)
      throw new RangeError(`durable.${what} must be a whole number ≥ ${min}, got ${String(v)}`)
    return v as number
  }
  return {
    maxBytes: int(o.maxBytes, 256 * 1024 * 1024, "maxBytes", 1),
    maxAgeMs: int(o.maxAgeMs, 0, "maxAgeMs", 0),
    replicas: int(o.replicas, 1, "replicas", 1),
  }
}

function topicName(name: string): Buffer {
  if (typeof name !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(name))
    throw new TypeError(`topic name must match [A-Za-z0-9._-]{1,64}, got ${JSON.stringify(name)}`)
  return Buffer.from(name + "\0")
}

function checkCapacity(c: number): number {
  if (!Number.isInteger(c) || c < TopicConst.MIN_CAPACITY || c > TopicConst.MAX_CAPACITY || (c & (c - 1)) !== 0)
    throw new TypeError(
      `capacity must be a power of two from ${TopicConst.MIN_CAPACITY} to ${TopicConst.MAX_CAPACITY} bytes, got ${c}`,
    )
  return c
}

/** A named pub/sub topic in shared memory, shared by every local process of this uid that opens it. */
export class Topic implements AsyncDisposable, Disposable, SubscriptionOwner {
  readonly capacity: number
  private readonly out: Uint32Array
  private readonly header: TopicHeader
  private scratch = new Uint8Array(SCRATCH_START)
  private scratchView = new DataView(this.scratch.buffer)
  private readonly subs = new Set<WeakRef<Subscription>>()
  private readonly natives = new Set<NativeSub>() // every open subscription's handle, dropped ones included
  private readonly freeing = new Set<Promise<void>>() // subscriptions closed, their native side not yet freed
  private readonly ticker: ReturnType<typeof setInterval>
  private readonly warn: (message: string) => void
  private bridge: TopicBridge | undefined
  private durable = false
  /** The name of the transport given as `remote` ("nats"), for status views. */
  private transport = ""
  private readonly durables = new Set<DurableSubscription>()
  private closed = false

  private constructor(
    key: symbol,
    readonly name: string,
    readonly ptr: Pointer,
    opts: TopicOptions,
  ) {
    madeBy(key, FACTORY, "Topic", "await Topic.open(name, options)")
    this.capacity = topicNative.sb_topic_capacity(ptr)
    this.out = new Uint32Array(toArrayBuffer(topicNative.sb_topic_out_ptr(ptr)!, 0, TOPIC_OUT_WORDS * 4))
    this.header = new TopicHeader(ptr)
    this.warn = opts.onWarning ?? ((m) => console.warn(`slotbus/events: ${m}`))
    this.ticker = setInterval(() => this.tick(), TICK_MS)
    this.ticker.unref()
    open.add(this)
  }

  /** Opens the topic `name`, creating it if no process holds it. */
  static async open(name: string, opts: TopicOptions = {}): Promise<Topic> {
    const cname = topicName(name)
    checkOptions(opts, OPEN_OPTIONS, "Topic.open")
    const capacity = checkCapacity(opts.capacity ?? 1 << 20)
    const create = checkCreate(opts.create, "Topic.open")
    const timeoutMs = opts.timeoutMs ?? 5000
    if (typeof timeoutMs !== "number")
      throw new TypeError(`timeoutMs must be a number of milliseconds, got ${typeof timeoutMs}`)
    if (!(timeoutMs >= 0))
      throw new RangeError(`timeoutMs must be a number of milliseconds ≥ 0 (Infinity: no limit), got ${timeoutMs}`)
    if (opts.onWarning !== undefined && typeof opts.onWarning !== "function")
      throw new TypeError(`onWarning must be a function, got ${typeof opts.onWarning}`)
    const remote =
      opts.remote === undefined ? undefined : checkRemote<TopicRemote>(opts.remote, TOPIC_PORT, "Topic.open")
    const limits = streamLimits(opts.durable, remote !== undefined)
    await loadNative()
    const topic = await Topic.openLocal(name, cname, opts, capacity, create, timeoutMs)
    if (remote === undefined) return topic
    try {
      topic.bridge = await remote.openTopicBridge(topic.bridgeHost(), limits && { limits, warn: topic.warn })
      topic.transport = String(remote.transport ?? "remote")
      topic.durable = limits !== undefined
    } catch (e) {
      topic.close()
      throw e
    }
    return topic
  }

  private static async openLocal(
    name: string,
    cname: Buffer,
    opts: TopicOptions,
    capacity: number,
    create: CreateMode,
    timeoutMs: number,
  ): Promise<Topic> {
    const deadline = performance.now() + timeoutMs // monotonic: a wall-clock step must not cut the wait short or stretch it
    const err = new Int32Array(1)
    for (;;) {
      const ptr = topicNative.sb_topic_open_start(cname, capacity, CreateModeValue[create], err) as Pointer | null
      const e = err[0]!
      if (!ptr) {
        if (e === E_SOCKET_DIR) throw socketDirError(`cannot open topic "${name}"`)
        if (e === Errno.EPERM) throw new PeerRefusedError(`topic "${name}" is held by a process of another user`)
        // the members' backlog is full (a flood of connections, maybe from another uid): they take 64 a tick
        if (e === Errno.EAGAIN && performance.now() < deadline) {
          await Bun.sleep(5)
          continue
        }
        throw createRefusal(`topic "${name}"`, e) ?? new SlotBusError(`cannot open topic "${name}": errno ${-e}`)
      }
      if (e === 0) return new Topic(FACTORY, name, ptr, opts)
      // Joining: a member answers on its next housekeeping tick (maybe in this very process).
      let r: number
      for (;;) {
        for (const t of open) t.tick() // a member in this very process answers at once, whatever the timeout
        if ((r = topicNative.sb_topic_open_finish(ptr)) !== Errno.EAGAIN || performance.now() > deadline) break
        await Bun.sleep(1)
      }
      if (r === 0) {
        const has = topicNative.sb_topic_capacity(ptr)
        if (opts.capacity === undefined || has === capacity) return new Topic(FACTORY, name, ptr, opts)
        topicNative.sb_topic_close(ptr)
        throw settingMismatch(`topic "${name}"`, "capacity", capacity, has, `a capacity of ${has} bytes`)
      }
      topicNative.sb_topic_close(ptr)
      if (r === Errno.ECONNRESET && performance.now() <= deadline) continue // the members left meanwhile: again
      if (r === Errno.EAGAIN)
        throw new TimeoutError(`topic "${name}": no member answered within ${timeoutMs}ms (all stopped or busy?)`)
      if (r === Errno.EPERM) throw new PeerRefusedError(`topic "${name}" is held by a process of another user`)
      if (r === TopicConst.E_CORRUPT)
        throw new ProtocolError(`topic "${name}": a member sent a malformed hello or region`)
      throw new SlotBusError(`cannot join topic "${name}": errno ${-r}`)
    }
  }

  /** Whether this handle is the keeper: it created the topic, or took over when the keeper closed or died (§8.1). */
  get isKeeper(): boolean {
    return !this.closed && topicNative.sb_topic_is_keeper(this.ptr) === 1
  }

  /** Publishes one event and returns its id. Never blocks, never waits for a subscriber. */
  publish(ev: PublishInit): number {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed; open it again to publish`)
    checkOptions(ev, PUBLISH_FIELDS, "publish", { noun: "event field" })
    let n = encodeEvent(this.scratch, this.scratchView, ev.type, ev.routing, ev.data)
    while (n < 0) n = this.growScratch(ev)
    const r = topicNative.sb_topic_publish(this.ptr, this.scratch, n)
    if (r !== 0) this.publishFailed(r, n)
    const out = this.out
    if (out[TopicOut.flags]! & PubFlag.BAD_BINDING)
      this.warn(
        `event "${ev.type}": a late-binding value was malformed (empty, over 63 bytes, or a control character) and not remembered`,
      )
    return out[TopicOut.posLo]! + out[TopicOut.posHi]! * 4294967296
  }

  /** Subscribes with a filter: `{ type: "session.*", routing: { scroll: id } }`; `{}` receives everything. */
  subscribe(filter: TopicFilter = {}, opts: SubscribeOptions = {}): Subscription {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed; open it again to subscribe`)
    // Every argument is checked before the registry entry (and its wake socket) exists: a mistake costs nothing.
    const { bytes, text } = encodeFilter(filter)
    checkOptions(opts, SUBSCRIBE_OPTIONS, "subscribe")
    const queue = checkQueue(opts.queue)
    tuning(opts.idle, "subscribe idle") // checked here, before the registry entry exists
    const from = checkFrom(opts.from)
    return this.subscribeAt(
      bytes,
      text,
      queue,
      opts,
      from === "now" ? TopicConst.FROM_NOW : from === "oldest" ? TopicConst.FROM_OLDEST : from,
    )
  }

  /** A subscriber from `at` as sb_sub_open takes it (topic.h: now, oldest, after an id, or at a position). */
  private subscribeAt(
    bytes: Uint8Array,
    text: string,
    queue: number,
    opts: SubscribeOptions,
    at: number,
  ): Subscription {
    const err = new Int32Array(1)
    const ptr = topicNative.sb_sub_open(this.ptr, bytes, bytes.length, queue, at, err) as Pointer | null
    if (!ptr) {
      if (err[0] === Errno.ENOSPC)
        throw new TopicFullError(`topic "${this.name}" has ${TopicConst.MAX_SUBS} subscribers already; close some`)
      if (err[0] === E_SOCKET_DIR) throw socketDirError(`cannot subscribe to "${this.name}"`)
      throw new SlotBusError(`cannot subscribe to "${this.name}": errno ${-err[0]!}`)
    }
    const native: NativeSub = { ptr }
    let sub: Subscription
    try {
      sub = new Subscription(SUBSCRIBE_KEY, this, native, text, queue, opts.idle, this.out[TopicOut.restarted] === 1)
    } catch (e) {
      topicNative.sb_sub_close(ptr) // the entry and its wake socket go with the failure
      throw e
    }
    this.natives.add(native)
    this.subs.add(new WeakRef(sub))
    return sub
  }

  /**
   * Subscribes to a durable topic's JetStream stream (docs/PROTOCOL.md §11.6): every host's events in one order,
   * ids the stream's sequence numbers, so `from: id` resumes here or on any other host. Events arrive after a
   * round trip through the transport's server (a ring subscriber gets them in µs).
   */
  async subscribeDurable(filter: TopicFilter = {}, opts: DurableSubscribeOptions = {}): Promise<DurableSubscription> {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed; open it again to subscribe`)
    const { bytes, text } = encodeFilter(filter)
    checkOptions(opts, DURABLE_SUBSCRIBE_OPTIONS, "subscribeDurable")
    const queue = checkQueue(opts.queue)
    const from = checkFrom(opts.from)
    if (!this.durable)
      throw new TopicStreamError(
        `topic "${this.name}" was not opened durable: Topic.open(name, { remote, durable: true }) keeps its stream`,
      )
    const feed = await this.bridge!.openStream(filterType(bytes), from, queue).catch((e) => {
      throw new TopicStreamError(`cannot read the stream of topic "${this.name}": ${(e as Error).message}`, {
        cause: e,
      })
    })
    if (this.closed) {
      feed.close()
      throw new TopicClosedError(`topic "${this.name}" was closed meanwhile`)
    }
    const sub = new DurableSubscription(DURABLE_KEY, feed, encodedMatcher(bytes), text, queue, (s) =>
      this.durables.delete(s),
    )
    this.durables.add(sub)
    return sub
  }

  /** Adds a late-binding rule for every member of the topic (idempotent). */
  bind(rule: BindingRule): void {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
    checkOptions(rule, RULE_FIELDS, "bind", { noun: "rule field", required: ["type", "keys", "fill"] })
    if (!Array.isArray(rule.keys) || rule.keys.length !== 2)
      throw new TypeError("a rule is { type, keys: [A, B], fill: C }")
    const bytes = encodeRule(rule.type, rule.keys[0], rule.keys[1], rule.fill)
    const r = topicNative.sb_topic_add_rule(this.ptr, bytes, bytes.length)
    if (r === Errno.ENOSPC) throw new TopicFullError(`topic "${this.name}" has ${TopicConst.MAX_RULES} rules already`)
    if (r < 0) throw new TypeError(`rule refused: errno ${-r}`)
  }

  /** Live subscribers and publishers of the whole topic (every process), read from shared memory. */
  stats(): TopicStats {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
    this.tick(true) // collects members that died since the last tick (zombies too): the counts are never stale
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" was closed: its header was overwritten`)
    const h = this.header
    const entries = h.subscribers()
    // The tail is read after the cursors: it only grows and no cursor passes it, so behind is never negative.
    const tail = topicNative.sb_topic_tail(this.ptr)
    const subscribers = entries.map((s) => ({
      pid: s.pid,
      filter: s.filter,
      queue: s.queue,
      received: s.received,
      lagged: s.lagged,
      behind: Math.max(0, tail - s.cursor),
      parked: s.parked,
    }))
    return {
      name: this.name,
      capacity: this.capacity,
      tail,
      keeperPid: h.keeperPid(),
      abandoned: h.abandoned(),
      fenced: h.fenced(),
      subscribers,
      publishers: h.publishers(),
    }
  }

  /**
   * The bridge's counts in this process (docs/PROTOCOL.md §11.5): whether it is its host's bridge now, events sent
   * and received, and those lost on the way or never sent, with the reasons. undefined without the `remote` option.
   */
  bridgeStats(): TopicBridgeStats | undefined {
    return this.bridge?.stats()
  }

  /** What `serveStatus` shows of this topic: its members here, and with `remote`, its bridge and stream. */
  async [STATUS](): Promise<StatusSection> {
    const st = this.stats()
    const s = section("topic", this.name)
    s.facts.push(
      ["capacity bytes", st.capacity],
      ["tail (next id)", st.tail],
      ["keeper pid", st.keeperPid || "-"],
      ["abandoned / fenced", `${st.abandoned} / ${st.fenced}`],
    )
    s.tables.push(
      {
        title: "subscribers",
        columns: ["pid", "filter", "queue", "received", "lagged", "behind bytes", "parked"],
        rows: st.subscribers.map((b) => [b.pid, b.filter, b.queue, b.received, b.lagged, b.behind, b.parked]),
      },
      { title: "publishers", columns: ["pid", "published"], rows: st.publishers.map((p) => [p.pid, p.published]) },
    )
    const lagging = st.subscribers.filter((b) => b.lagged > 0).length
    if (lagging > 0)
      s.warnings.push(`${lagging} subscriber${lagging === 1 ? "" : "s"} fell behind and lost events (lagged)`)
    if (!this.bridge) return s
    const b = this.bridge.stats()
    const holder = this.header.bridgePid()
    s.remote = {
      transport: this.transport,
      facts: [
        ["server", this.bridge.server()],
        ["this host's bridge", holder === 0 ? "none yet" : `pid ${holder}${b.bridging ? " (this process)" : ""}`],
        ["subjects bridged", b.subjects.length],
        ["sent / received", `${b.sent} / ${b.received}`],
        ["lost on the way / unsent / refused", `${b.lost} / ${b.unsent} / ${b.refused}`],
        ["resends dropped / resyncs", `${b.resends} / ${b.resyncs}`],
      ],
      tables: [],
    }
    if (b.lost + b.unsent > 0)
      s.warnings.push(`events lost across hosts: ${b.reasons.at(-1) ?? `${b.lost + b.unsent}`}`)
    if (this.durable) {
      const stream = await this.bridge.streamState().catch((e: unknown) => (e as Error).message ?? String(e))
      if (typeof stream === "string") s.warnings.push(`the durable stream cannot be read: ${stream}`)
      else if (stream)
        s.remote.tables.push({
          title: "durable stream",
          columns: ["stream", "first seq", "last seq", "messages", "bytes"],
          rows: [[stream.stream, stream.firstSeq, stream.lastSeq, stream.messages, stream.bytes]],
        })
    }
    return s
  }

  /** What the bridge uses of this topic (a transport knows no Topic). */
  private bridgeHost(): TopicBridgeHost {
    const topic = this
    const header = this.header
    const setBridged = (at: number) => {
      if (!this.closed) header.setBridged(at)
    }
    return {
      name: this.name,
      ringId: header.ringId,
      publishEncoded: (encoded) => {
        if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
        if (encoded.length > this.scratch.length) {
          this.scratch = new Uint8Array(Math.max(encoded.length, this.scratch.length * 2))
          this.scratchView = new DataView(this.scratch.buffer)
        }
        this.scratch.set(encoded)
        clearLost(this.scratchView)
        const r = topicNative.sb_topic_publish(this.ptr, this.scratch, encoded.length)
        if (r !== 0) this.publishFailed(r, encoded.length)
        return this.out[TopicOut.posLo]! + this.out[TopicOut.posHi]! * 4294967296
      },
      publishLost: (type, lost) => {
        if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
        const rec = encodeLoss(type, lost)
        const r = topicNative.sb_topic_publish(this.ptr, rec, rec.length)
        if (r !== 0) this.publishFailed(r, rec.length)
      },
      openReader(at) {
        const { bytes, text } = encodeFilter({})
        const sub = topic.subscribeAt(bytes, text, 1 << 16, {}, TopicConst.FROM_AT - at)
        return {
          ready: () => sub.ready(),
          poll: (fn, max) => {
            const batch = sub.poll(max)
            batch.forEachEncoded(fn)
            return batch.count
          },
          get lagged() {
            return sub.lagged
          },
          restarted: sub.restarted,
          close: () => sub.close(),
        }
      },
      takeBridged: () => {
        const word = header.bridged()
        // the tail through C, whole: publishers move it meanwhile, and its two halves read apart can be 4 GiB off
        const last = { pid: header.bridgePid(), tail: topicNative.sb_topic_tail(this.ptr) }
        header.setBridgePid(process.pid)
        const at = word > 0 ? word - 1 : last.tail // no bridge before: from the tail, and a successor from there too
        if (word === 0) setBridged(at)
        return { ...last, at }
      },
      setBridged: (at) => setBridged(at),
      readBook: (i) => (this.closed ? { bridge: 0, subject: 0, seq: 0, at: 0 } : header.readBook(i)),
      writeBook: (i, bridge, subject, seq, at) => {
        if (!this.closed) header.writeBook(i, { bridge, subject, seq, at })
      },
      filters: () => {
        if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
        return header.filters()
      },
    }
  }

  /** Leaves the topic: this process's subscriptions close; the topic lives on while any member has it open. */
  close() {
    if (this.closed) return
    for (const d of [...this.durables]) d.close() // their consumers stop before the connection drains
    void this.bridge?.close() // steps down at once (another process of this host takes over); drains its connection after
    this.closed = true
    clearInterval(this.ticker)
    open.delete(this)
    // Out of the topic now (publisher entry, the name): only the subscriptions' memory waits for the free below.
    topicNative.sb_topic_leave(this.ptr)
    const subs = [...this.subs].map((w) => w.deref()).filter((s): s is Subscription => s !== undefined)
    for (const s of subs) s.close()
    const freeing = [...this.freeing]
    // Subscriptions free their native side once Bun lets go of their wake sockets; the topic goes after them,
    // and after any subscription that was dropped but not yet finalized.
    Promise.all(freeing).then(() => {
      for (const n of this.natives) if (n.ptr) topicNative.sb_sub_close(n.ptr), (n.ptr = null)
      this.natives.clear()
      topicNative.sb_topic_close(this.ptr)
    })
  }

  async [Symbol.asyncDispose]() {
    const bridge = this.bridge
    this.close()
    await bridge?.close()
  }
  [Symbol.dispose]() {
    this.close()
  }

  /** @internal */
  forget(sub: Subscription, native: NativeSub, freed: Promise<void>) {
    this.natives.delete(native)
    if (native.ptr) {
      this.freeing.add(freed)
      freed.then(() => this.freeing.delete(freed))
    }
    for (const w of this.subs) if (w.deref() === sub || w.deref() === undefined) this.subs.delete(w)
  }

  /** @internal: housekeeping, also run by a process that waits to join (it may be the keeper itself). */
  tick(deep = false) {
    if (this.closed) return
    const r = deep ? topicNative.sb_topic_tick_deep(this.ptr) : topicNative.sb_topic_tick(this.ptr)
    if (r === TopicConst.E_CORRUPT) {
      this.warn(
        `topic "${this.name}": its header was overwritten; closing it here (${topicNative.sb_topic_error(this.ptr)})`,
      )
      this.close()
      return
    }
    for (const w of this.subs) {
      const s = w.deref()
      if (s === undefined) this.subs.delete(w)
      else s.nudge()
    }
  }

  private growScratch(ev: PublishInit): number {
    const max = this.capacity / 4 - 16
    if (this.scratch.length >= max)
      throw new PayloadTooLargeError(
        `event "${ev.type}" is larger than ${max} bytes (a quarter of the topic's capacity); open the topic with a larger capacity`,
      )
    this.scratch = new Uint8Array(Math.min(max, this.scratch.length * 4))
    this.scratchView = new DataView(this.scratch.buffer)
    return encodeEvent(this.scratch, this.scratchView, ev.type, ev.routing, ev.data)
  }

  private publishFailed(r: number, n: number): never {
    if (r === Errno.EMSGSIZE)
      throw new PayloadTooLargeError(`the event (${n} bytes encoded) is larger than a quarter of the topic's capacity`)
    if (r === Errno.EINVAL) throw new TypeError("the event is malformed")
    if (r === Errno.ENOSPC)
      throw new TopicFullError(
        `topic "${this.name}" has ${TopicConst.MAX_PUBS} publishers already; close some handles, or publish through one`,
      )
    throw new SlotBusError(`publish to "${this.name}" failed: errno ${-r}`)
  }
}
