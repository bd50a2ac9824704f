// A named topic, the room's facade: open or join, publish, subscribe (a ring or a durable stream), late-binding rules,
// housekeeping and close (docs/PROTOCOL.md §8). Its options are options.ts's, its header header.ts's, its stats and
// status section status.ts's, its side of a bridge across hosts bridge-host.ts's, when it does housekeeping
// housekeeping.ts's.
import type { TopicBridge, TopicBridgeHost, TopicBridgeStats } from "./bridge.ts"
import { CreateModeValue, Errno, topicNative, loadNative } from "../native/ffi.ts"
import { PubFlag, TOPIC_OUT_WORDS, TopicConst, TopicOut } from "../native/topic-layout.ts"
import { idler } from "../core/internal.ts"
import {
  checkOptions,
  closeAtExit,
  madeBy,
  settingMismatch,
  METRICS,
  STATUS,
  type CreateMode,
  type MetricFamily,
  type StatusSection,
} from "../kit/index.ts"
import { topicFamilies } from "./metrics.ts"
import { bridgeHost } from "./bridge-host.ts"
import { publishEnded, publishTrace } from "./trace.ts"
import {
  clearLost,
  encodeEvent,
  encodeLoss,
  encodedMatcher,
  encodeFilter,
  encodeRule,
  filterType,
  maxEncodedEvent,
  type TopicFilter,
} from "./codec.ts"
import { DURABLE_KEY, DurableSubscription } from "./durable.ts"
import { tooLarge, topicError } from "./errno.ts"
import { TopicClosedError, TopicStreamError } from "./errors.ts"
import { TopicHeader } from "./header.ts"
import {
  checkFrom,
  checkOpen,
  checkQueue,
  DURABLE_SUBSCRIBE_OPTIONS,
  PUBLISH_FIELDS,
  RULE_FIELDS,
  SUBSCRIBE_OPTIONS,
  type BindingRule,
  type DurableSubscribeOptions,
  type PublishInit,
  type TopicOptions,
} from "./options.ts"
import { readStats, topicSection, type TopicStats } from "./status.ts"
import {
  Subscription,
  SUBSCRIBE_KEY,
  type NativeSub,
  type SubscribeOptions,
  type SubscriptionOwner,
} from "./subscription.ts"
import { memoryView, sleep, type Pointer } from "../runtime/index.ts"
import { Housekeeping } from "./housekeeping.ts"

const SCRATCH_START = 64 * 1024
const open = new Set<Topic>()
const FACTORY = Symbol("Topic.open")

/** A named pub/sub topic in shared memory, shared by every local process of this uid that opens it. */
export class Topic implements AsyncDisposable, Disposable, SubscriptionOwner {
  readonly capacity: number
  private readonly out: Uint32Array
  private readonly header: TopicHeader
  private scratch = new Uint8Array(SCRATCH_START)
  private scratchView = new DataView(this.scratch.buffer)
  private readonly subs = new Set<WeakRef<Subscription>>()
  private readonly natives = new Set<NativeSub>() // every open subscription's handle, dropped ones included
  private readonly freeing = new Map<NativeSub, Promise<void>>() // subscriptions closed, their native side not yet freed
  private readonly housekeeping: Housekeeping
  private readonly warn: (message: string) => void
  private bridge: TopicBridge | undefined
  private durable = false
  /** The name of the transport given as `remote` ("nats"), for status views. */
  private transport = ""
  private readonly durables = new Set<DurableSubscription>()
  private closed = false
  private freed = false
  private readonly forgetAtExit: () => void

  private constructor(
    key: symbol,
    readonly name: string,
    readonly ptr: Pointer,
    opts: TopicOptions,
  ) {
    madeBy(key, FACTORY, "Topic", "await Topic.open(name, options)")
    this.capacity = topicNative.sb_topic_capacity(ptr)
    this.out = new Uint32Array(memoryView(topicNative.sb_topic_out_ptr(ptr)!, 0, TOPIC_OUT_WORDS * 4))
    this.header = new TopicHeader(ptr)
    this.warn = opts.onWarning ?? ((m) => console.warn(`slotbus/events: ${m}`))
    this.housekeeping = new Housekeeping(
      () => topicNative.sb_topic_tail(ptr),
      (deep) => this.tick(deep),
    )
    open.add(this)
    // a process that exits without close(), or before the native side was freed, leaves no socket file behind
    this.forgetAtExit = closeAtExit({
      close: () => {
        this.close()
        this.free()
      },
    })
  }

  /** Opens the topic `name`, creating it if no process holds it. */
  static async open(name: string, opts: TopicOptions = {}): Promise<Topic> {
    const { cname, capacity, create, timeoutMs, remote, limits } = checkOpen(name, opts)
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
        // the members' backlog is full (a flood of connections, maybe from another uid): they take 64 a tick
        if (e === Errno.EAGAIN && performance.now() < deadline) {
          await sleep(5)
          continue
        }
        throw topicError("open", e, name)
      }
      if (e === 0) return new Topic(FACTORY, name, ptr, opts)
      // Joining: a member's accept thread answers within microseconds, so even timeoutMs 0 gives it one wait of a
      // millisecond; a member in this very process answers at once, whatever the timeout.
      let r: number
      for (let looks = 0; ; looks++) {
        for (const t of open) t.tick()
        r = topicNative.sb_topic_open_finish(ptr)
        if (r !== Errno.EAGAIN || (looks > 0 && performance.now() > deadline)) break
        await sleep(1)
      }
      if (r === 0) {
        const has = topicNative.sb_topic_capacity(ptr)
        if (opts.capacity === undefined || has === capacity) return new Topic(FACTORY, name, ptr, opts)
        topicNative.sb_topic_close(ptr)
        throw settingMismatch(`topic "${name}"`, "capacity", capacity, has, `a capacity of ${has} bytes`)
      }
      topicNative.sb_topic_close(ptr)
      if (r === Errno.ECONNRESET && performance.now() <= deadline) continue // the members left meanwhile: again
      throw topicError("join", r, name, timeoutMs)
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
    const traced = publishTrace(ev, this.name) // null: no context to carry, no SDK
    if (traced !== null) {
      if (traced.span === null) return this.publish(traced.ev) // its context in its routing keys
      let id: number
      try {
        id = this.publish(traced.ev)
      } catch (e) {
        publishEnded(traced.span, undefined, e)
        throw e
      }
      publishEnded(traced.span, id)
      return id
    }
    let n = encodeEvent(this.scratch, this.scratchView, ev.type, ev.routing, ev.data)
    while (n < 0) n = this.growScratch(ev)
    const r = topicNative.sb_topic_publish(this.ptr, this.scratch, n)
    if (r !== 0) throw topicError("publish", r, this.name, n, this.capacity)
    const out = this.out
    const flags = out[TopicOut.flags]!
    if (flags & PubFlag.BAD_BINDING)
      this.warn(
        `event "${ev.type}": a late-binding value was malformed (empty, over 63 bytes, or a control character) and not remembered`,
      )
    if (flags & PubFlag.UNFILLED)
      this.warn(
        `event "${ev.type}": a late-binding rule's key was not added, for want of room (the event carries ${TopicConst.MAX_KEYS} routing keys already, or would pass the size limit); subscribers filtering on that key miss it`,
      )
    return out[TopicOut.posLo]! + out[TopicOut.posHi]! * 4294967296
  }

  /** An encoded event another host sent (§11.2), published as it is but for its lost field; returns its id. */
  private publishEncoded(encoded: Uint8Array): number {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
    if (encoded.length > this.scratch.length) {
      this.scratch = new Uint8Array(Math.max(encoded.length, this.scratch.length * 2))
      this.scratchView = new DataView(this.scratch.buffer)
    }
    this.scratch.set(encoded)
    clearLost(this.scratchView)
    const r = topicNative.sb_topic_publish(this.ptr, this.scratch, encoded.length)
    if (r !== 0) throw topicError("publish", r, this.name, encoded.length, this.capacity)
    return this.out[TopicOut.posLo]! + this.out[TopicOut.posHi]! * 4294967296
  }

  /** A loss record (§8.3): `lost` events of this type never reached the ring. */
  private publishLost(type: Uint8Array, lost: number): void {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
    const rec = encodeLoss(type, lost)
    const r = topicNative.sb_topic_publish(this.ptr, rec, rec.length)
    if (r !== 0) throw topicError("publish", r, this.name, rec.length, this.capacity)
  }

  /** Subscribes with a filter: `{ type: "session.*", routing: { scroll: id } }`; `{}` receives everything. */
  subscribe(filter: TopicFilter = {}, opts: SubscribeOptions = {}): Subscription {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed; open it again to subscribe`)
    // Every argument is checked before the registry entry (and its wake socket) exists: a mistake costs nothing.
    const { bytes, text } = encodeFilter(filter)
    checkOptions(opts, SUBSCRIBE_OPTIONS, "subscribe")
    const queue = checkQueue(opts.queue)
    idler(opts.idle, "subscribe idle") // checked here, before the registry entry exists
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
    if (!ptr) throw topicError("subscribe", err[0]!, this.name)
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
    const queue = checkQueue(opts.queue, "subscribeDurable")
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
    if (r < 0) throw topicError("bind", r, this.name)
  }

  /** Live subscribers and publishers of the whole topic (every process), read from shared memory. */
  stats(): TopicStats {
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" is closed`)
    this.tick(true) // collects members that died since the last tick (zombies too): the counts are never stale
    if (this.closed) throw new TopicClosedError(`topic "${this.name}" was closed: its header was overwritten`)
    return readStats(this.name, this.capacity, this.ptr, this.header)
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
    const remote = this.bridge && {
      bridge: this.bridge,
      transport: this.transport,
      durable: this.durable,
      header: this.header,
    }
    return topicSection(this.stats(), remote)
  }

  /** What GET /metrics (serveStatus) shows of this topic: slotbus_topic_* labelled topic="<name>" (docs/api.md). */
  [METRICS](): MetricFamily[] {
    return topicFamilies(this.stats(), process.pid)
  }

  /** What the bridge uses of this topic (a transport knows no Topic). */
  private bridgeHost(): TopicBridgeHost {
    return bridgeHost({
      name: this.name,
      ptr: this.ptr,
      header: this.header,
      closed: () => this.closed,
      publishEncoded: (encoded) => this.publishEncoded(encoded),
      publishLost: (type, lost) => this.publishLost(type, lost),
      subscribeAt: (bytes, text, queue, at) => this.subscribeAt(bytes, text, queue, {}, at),
    })
  }

  /** Leaves the topic: this process's subscriptions close; the topic lives on while any member has it open. */
  close() {
    if (this.closed) return
    for (const d of [...this.durables]) d.close() // their consumers stop before the connection drains
    void this.bridge?.close() // steps down at once (another process of this host takes over); drains its connection after
    this.closed = true
    this.housekeeping.stop()
    open.delete(this)
    // Out of the topic now (publisher entry, the name): only the subscriptions' memory waits for the free below.
    topicNative.sb_topic_leave(this.ptr)
    const subs = [...this.subs].map((w) => w.deref()).filter((s): s is Subscription => s !== undefined)
    for (const s of subs) s.close()
    // Subscriptions free their native side once Bun lets go of their wake sockets; the topic goes after them,
    // and after any subscription that was dropped but not yet finalized.
    Promise.all(this.freeing.values()).then(() => this.free())
  }

  // The native side: the subscriptions' (their wake sockets unlinked), then the topic's. At exit it runs at once, as
  // no wake socket is read after.
  private free() {
    if (this.freed) return
    this.freed = true
    this.forgetAtExit()
    for (const n of [...this.natives, ...this.freeing.keys()])
      if (n.ptr) topicNative.sb_sub_close(n.ptr), (n.ptr = null)
    this.natives.clear()
    topicNative.sb_topic_close(this.ptr)
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
      this.freeing.set(native, freed)
      freed.then(() => this.freeing.delete(native))
    }
    for (const w of this.subs) if (w.deref() === sub || w.deref() === undefined) this.subs.delete(w)
  }

  /** @internal: housekeeping; deep reads /proc for every member (zombies, reused pids). */
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
    const max = maxEncodedEvent(this.capacity) // never a buffer larger than any event the topic takes
    if (this.scratch.length >= max) throw tooLarge(`event "${ev.type}"`, this.capacity)
    this.scratch = new Uint8Array(Math.min(max, this.scratch.length * 4))
    this.scratchView = new DataView(this.scratch.buffer)
    return encodeEvent(this.scratch, this.scratchView, ev.type, ev.routing, ev.data)
  }
}
