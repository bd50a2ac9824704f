// A durable topic's stream subscriber (docs/PROTOCOL.md §11.6): events from the topic's JetStream stream, ids the
// stream's sequence numbers (the same on every host). It reads as a ring Subscription does: receive(), for await,
// poll()/batches() of EventBatch in the ring batch layout, so TopicEvent and EventBatch serve both.
import { madeBy } from "../kit/index.ts"
import { longTimeout, type LongTimer } from "../kit/index.ts"
import type { StreamFeed } from "./bridge.ts"
import { TopicStreamError } from "./errors.ts"
import { EventBatch, eventIterator, type TopicEvent } from "./event.ts"
import { checkWait, type ReceiveOptions } from "./subscription.ts"

const PREFIX = 24 // §11.2's prefix before the encoded event
const TWO_32 = 4294967296

/** What topic.subscribeDurable() passes to the constructor (not exported from the package). */
export const DURABLE_KEY = Symbol("topic.subscribeDurable")

/** The checks a batch of stream messages passes through: the filter (true, false) or not an event (null). */
export type EncodedMatcher = (encoded: Uint8Array) => boolean | null

/**
 * Events of a durable topic from its JetStream stream, on any host: `for await (const ev of sub)`, `receive()`,
 * `poll()`/`batches()`. An event's `id` is its stream sequence: resume after it with
 * `topic.subscribeDurable(filter, { from: id })` here or on any other host.
 */
export class DurableSubscription implements AsyncIterable<TopicEvent>, AsyncDisposable, Disposable {
  /** Whether `from: id` could not start right after that event (the stream's limits discarded it): it started at the oldest. */
  readonly restarted: boolean
  /** Why it restarted: the event after `from` was discarded by the stream's limits, or `from` is past its last event. */
  readonly restartReason: "discarded" | "from-the-future" | null
  private readonly q: { seq: number; encoded: Uint8Array }[] = [] // read ahead, at most `queue`
  private head = 0
  private got = 0
  private skipped = 0
  private closed = false
  private failure: Error | undefined
  private waiter: (() => void) | undefined // a reader waiting for events
  private room: (() => void) | undefined // the pull loop waiting for the reader

  /** @internal: use topic.subscribeDurable() */
  constructor(
    key: symbol,
    private readonly feed: StreamFeed,
    private readonly match: EncodedMatcher,
    /** The filter, printable. */
    readonly filter: string,
    /** How many events are read ahead of the reader at most. */
    readonly queue: number,
    private readonly onClose: (sub: DurableSubscription) => void,
  ) {
    madeBy(key, DURABLE_KEY, "DurableSubscription", "topic.subscribeDurable(filter, options)")
    this.restarted = feed.restarted
    this.restartReason = feed.restartReason
    void this.pull()
  }

  /** Matching events handed to the reader so far. */
  get received(): number {
    return this.got
  }
  /** Always 0: JetStream keeps what a slow reader has not taken (events its limits discard are not counted, §11.6). */
  get lagged(): number {
    return 0
  }
  /** Stream messages that were not readable events (another program's, or malformed), skipped. */
  get corrupt(): number {
    return this.skipped
  }
  /** Always 0: nothing here is estimated. */
  get estimates(): number {
    return 0
  }
  get isClosed(): boolean {
    return this.closed
  }

  /** Reads what is there now (up to max events), without waiting. */
  poll(max: number = this.queue): EventBatch {
    this.throwFailure()
    const n = Math.min(max, this.q.length - this.head)
    let bytes = 0
    for (let i = 0; i < n; i++) bytes += (16 + this.q[this.head + i]!.encoded.length + 15) & ~15
    const buf = new Uint8Array(bytes)
    const view = new DataView(buf.buffer)
    let off = 0
    for (let i = 0; i < n; i++) {
      const { seq, encoded } = this.q[this.head++]!
      view.setUint32(off, seq % TWO_32, true)
      view.setUint32(off + 4, Math.floor(seq / TWO_32), true)
      view.setUint32(off + 8, 16 + encoded.length, true)
      buf.set(encoded, off + 16)
      off += (16 + encoded.length + 15) & ~15
    }
    this.got += n
    if (this.head > 1024 && this.head * 2 > this.q.length) this.q.splice(0, this.head), (this.head = 0)
    this.room?.()
    return new EventBatch(buf, view, n)
  }

  /** The next event, or undefined once closed or after `timeoutMs` (if given) with nothing. A number alone is timeoutMs. */
  async receive(wait?: ReceiveOptions | number): Promise<TopicEvent | undefined> {
    if (!(await this.ready(checkWait(wait, "receive")))) return undefined
    for (const ev of this.poll(1)) return ev
    return undefined
  }

  /** Resolves true when a poll will find events, false after timeoutMs or once closed. Throws if the stream failed. */
  async ready(wait?: ReceiveOptions | number): Promise<boolean> {
    const timeoutMs = checkWait(wait, "ready")
    for (;;) {
      this.throwFailure()
      if (this.head < this.q.length) return true
      if (this.closed) return false
      let timer: LongTimer | undefined
      let timedOut = false
      await new Promise<void>((resolve) => {
        this.waiter = resolve
        if (timeoutMs !== Infinity) timer = longTimeout(() => ((timedOut = true), resolve()), timeoutMs)
      })
      timer?.clear()
      this.waiter = undefined
      if (timedOut && this.head >= this.q.length) return false
    }
  }

  /** Batches as they arrive (each valid until the next). */
  async *batches(max: number = this.queue): AsyncGenerator<EventBatch, void, undefined> {
    try {
      while (await this.ready()) yield this.poll(max)
    } finally {
      this.close()
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<TopicEvent> {
    return eventIterator(this)
  }

  /** Stops reading the stream (its consumer goes); a pending receive() resolves undefined. */
  close() {
    if (this.closed) return
    this.closed = true
    this.q.length = this.head = 0
    this.feed.close()
    this.waiter?.()
    this.room?.()
    this.onClose(this)
  }

  async [Symbol.asyncDispose]() {
    this.close()
  }
  [Symbol.dispose]() {
    this.close()
  }

  /** Takes messages from the feed while fewer than `queue` wait for the reader. */
  private async pull() {
    try {
      while (!this.closed) {
        while (this.q.length - this.head >= this.queue && !this.closed) await new Promise<void>((r) => (this.room = r))
        this.room = undefined
        if (this.closed) return
        const m = await this.feed.next()
        if (m === null || this.closed) break
        const ok =
          m.data.length >= PREFIX + 16 && m.data[0] === 1 && m.data[1] === 1
            ? this.match(m.data.subarray(PREFIX))
            : null
        if (ok === null) this.skipped++
        else if (ok) {
          this.q.push({ seq: m.seq, encoded: m.data.subarray(PREFIX) })
          this.waiter?.()
        }
      }
      if (!this.closed) this.fail(new TopicStreamError("the topic's stream ended (its connection closed)"))
    } catch (e) {
      if (!this.closed)
        this.fail(new TopicStreamError(`reading the topic's stream failed: ${(e as Error).message}`, { cause: e }))
    }
  }

  private fail(e: Error) {
    this.failure = e
    this.waiter?.()
  }

  /** A failed stream is thrown once the events read before it were taken; then the subscription is closed. */
  private throwFailure() {
    if (this.failure && this.head >= this.q.length) {
      const e = this.failure
      this.failure = undefined
      this.close()
      throw e
    }
  }
}
