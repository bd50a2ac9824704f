// A subscriber: C filters and copies matching records into a private batch; JS reads events out of it.
import type { IdleStrategy } from "../core/index.ts"
import { Pump, type Parking } from "../core/internal.ts"
import { checkNumber, checkOptions, longTimeout, madeBy, optionNames, type LongTimer } from "../kit/index.ts"
import { topicNative } from "../native/ffi.ts"
import { topicError } from "./errno.ts"
import { eventAt, eventIterator, EventBatch, type TopicEvent } from "./event.ts"
import { memoryView, nanoseconds, type Pointer } from "../runtime/index.ts"
import { dropped, freeNative, listenBell, type NativeSub } from "./native-sub.ts"

const now = nanoseconds
/**
 * The subscriptions a reader awaits, held while it waits: the bell holds them weakly (native-sub.ts), and a reader's
 * pending promise is reachable only through its subscription (`consume(topic.subscribe(filter))`).
 */
const awaited = new Set<Subscription>()
// A reader hands the event loop back after this many events or this long, whichever comes first (as the
// request pump does): a publisher faster than its reader must not starve the reader's timers and I/O.
const TURN_EVENTS = 4096
const TURN_NS = 1_000_000

/** How long `receive()`/`ready()` wait: milliseconds, or no limit without `timeoutMs`. */
export interface ReceiveOptions {
  timeoutMs?: number
}
const RECEIVE_OPTIONS = optionNames<ReceiveOptions>({ timeoutMs: true })

/** A wait in ms for receive()/ready(): { timeoutMs } or the number alone; none is no limit (Infinity allowed). */
export function checkWait(wait: ReceiveOptions | number | undefined, what: string): number {
  if (wait === undefined) return Infinity
  let timeoutMs: unknown = wait
  if (typeof wait === "object" && wait !== null) timeoutMs = checkOptions(wait, RECEIVE_OPTIONS, what).timeoutMs
  else if (typeof wait !== "number")
    throw new TypeError(
      `${what} takes { timeoutMs } (milliseconds, or a number alone), got ${wait === null ? "null" : typeof wait}`,
    )
  return checkNumber(timeoutMs, { what: "timeoutMs", where: what, max: Infinity, integer: false, dflt: Infinity })
}

/** The monotonic ns by which a wait of `ms` ends (Infinity: never; no clock read then). */
function deadlineOf(ms: number): number {
  return ms === Infinity ? Infinity : now() + ms * 1e6
}

/** A batch bound for poll()/batches(): a whole number ≥ 1 (Infinity allowed); the queue bound caps it. */
function checkMax(max: number, queue: number, what: string): number {
  return Math.min(checkNumber(max, { what: "max", where: what, min: 1, infinite: true }), queue)
}

export interface SubscribeOptions {
  /** How many matching events may wait for this subscriber before it loses the newer ones (counted in `lagged`). */
  queue?: number
  /** How to wait for events: "spin", "adaptive" (default), "park", or { spinMicros, parkAfterMs }. */
  idle?: IdleStrategy
  /** Where to start: "now" (default), "oldest" (the oldest event still in the ring), or after the event with this id. */
  from?: "now" | "oldest" | number
}

/** What the topic needs of a subscriber it owns. */
export interface SubscriptionOwner {
  readonly name: string
  readonly ptr: Pointer
  forget(sub: Subscription, native: NativeSub, freed: Promise<void>): void
}

export type { NativeSub }

// The batch memory is the native side's: a view into it (an event's data, a batch) keeps its subscription, and
// so that memory, alive; close() detaches it first, so a stale view reads empty instead of freed memory.
const batchOwner = new WeakMap<ArrayBuffer, Subscription>()

/** What topic.subscribe() passes to the constructor; not exported from the package, so `new Subscription` is refused. */
export const SUBSCRIBE_KEY = Symbol("topic.subscribe")

/** A filtered stream of a topic's events: `for await (const ev of sub)`, `receive()`, or `poll()`/`batches()` for volume. */
export class Subscription implements AsyncIterable<TopicEvent>, AsyncDisposable, Disposable {
  /** Whether `from: id` could not start right after that event (overwritten, or no event's start here): it began at the oldest. */
  readonly restarted: boolean
  private readonly native: NativeSub
  private readonly batchMemory: ArrayBuffer
  private readonly buf: Uint8Array
  private readonly view: DataView
  private readonly pump: Pump
  private readonly waiters = new Set<(ready: boolean) => void>()
  private count = 0
  private index = 0
  private offset = 0
  private closed = false
  private turnStart = now() // when this reader last let the event loop turn
  private turnEvents = 0 // events it read since
  private turnLooks = 0 // turnDue() calls: it reads the clock on every 16th
  /** @internal: the pump's, called when the wake socket rang (native-sub.ts). */
  onRing: ((count: number) => void) | undefined

  /** @internal: use topic.subscribe() */
  constructor(
    key: symbol,
    private readonly owner: SubscriptionOwner,
    native: NativeSub,
    /** The filter, printable. */
    readonly filter: string,
    /** The queue bound. */
    readonly queue: number,
    idle: IdleStrategy | undefined,
    restarted: boolean,
  ) {
    madeBy(key, SUBSCRIBE_KEY, "Subscription", "topic.subscribe(filter, options)")
    this.native = native
    const ptr = native.ptr!
    this.restarted = restarted
    const ab = memoryView(topicNative.sb_sub_batch(ptr)!, 0, topicNative.sb_sub_batch_capacity(ptr))
    this.batchMemory = ab
    batchOwner.set(ab, this)
    this.buf = new Uint8Array(ab)
    this.view = new DataView(ab)
    // Waiting for events is the request pump's duty cycle (idle strategy, busy-machine detection, parking):
    // it polls while a reader waits and rests while none does, so a reader busy elsewhere is not rung.
    this.pump = new Pump(this.parking(), idle, {
      collect: () => {
        const ptr = this.native.ptr
        if (this.waiters.size === 0 || !ptr || topicNative.sb_sub_pending(ptr) !== 1) return 0
        this.wake(true)
        return 1
      },
      wanted: () => this.waiters.size > 0,
      rest: true,
      parkAfterGaps: true, // events a millisecond apart: poll across the gap instead of parking before each
    })
    dropped.register(this, this.native, this) // one dropped without close() (garbage-collected) leaves the registry
  }

  /** Matching events this subscriber received so far. */
  get received(): number {
    return this.native.ptr ? topicNative.sb_sub_received(this.native.ptr) : 0
  }
  /** Matching events it lost by falling behind (queue bound or ring lapping): received + lagged = matching published. */
  get lagged(): number {
    return this.native.ptr ? topicNative.sb_sub_lagged(this.native.ptr) : 0
  }
  /** Records skipped because a publisher wrote garbage into the ring (they match nobody). */
  get corrupt(): number {
    return this.native.ptr ? topicNative.sb_sub_corrupt(this.native.ptr) : 0
  }
  /** Times `lagged` had to be estimated (+1) because records were lost unread; while 0, it is exact. */
  get estimates(): number {
    return this.native.ptr ? topicNative.sb_sub_estimates(this.native.ptr) : 0
  }
  get isClosed(): boolean {
    return this.closed
  }

  /** Reads what is there now (up to max events, at most `queue`), without waiting. The batch is valid until the next read. */
  poll(max: number = this.queue): EventBatch {
    max = checkMax(max, this.queue, "poll")
    if (this.index < this.count) {
      // events receive() has read but not yet handed out come first, at most max of them
      const k = Math.min(max, this.count - this.index)
      const rest = new EventBatch(this.buf, this.view, k, this.offset)
      for (let i = 0; i < k; i++, this.index++) this.offset += (this.view.getUint32(this.offset + 8, true) + 15) & ~15
      return rest
    }
    const n = this.fill(max)
    this.index = this.count // the batch's events are handed out as a batch, not by receive()
    return new EventBatch(this.buf, this.view, n)
  }

  /** The next event, or undefined once closed or after `timeoutMs` (if given) with nothing. A number alone is timeoutMs. */
  async receive(wait?: ReceiveOptions | number): Promise<TopicEvent | undefined> {
    const deadline = deadlineOf(checkWait(wait, "receive"))
    for (;;) {
      if (this.index < this.count) {
        if (this.turnDue()) await this.yieldTurn() // close() meanwhile forgets the batch
        if (this.index < this.count) return this.next1()
      }
      if (this.closed) return undefined
      if (this.fill(this.queue) > 0) return this.next1()
      if (!(await this.waitForEvents(deadline))) return undefined
    }
  }

  /** Resolves true when a poll may find events (without reading them), false after `timeoutMs` or once closed. */
  async ready(wait?: ReceiveOptions | number): Promise<boolean> {
    const deadline = deadlineOf(checkWait(wait, "ready"))
    if (this.turnDue()) await this.yieldTurn()
    if (this.index < this.count) return true
    return this.waitForEvents(deadline)
  }

  /** Batches as they arrive (each valid until the next): the fast path, many events per wake-up. */
  async *batches(max: number = this.queue): AsyncGenerator<EventBatch, void, undefined> {
    max = checkMax(max, this.queue, "batches")
    try {
      while (!this.closed) {
        if (this.turnDue()) await this.yieldTurn()
        const batch = this.poll(max)
        if (batch.count > 0) yield batch
        else if (!(await this.waitForEvents(Infinity))) return
      }
    } finally {
      this.close()
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<TopicEvent> {
    return eventIterator(this)
  }

  /** @internal: settles once the native side is freed (after Bun let go of the wake socket). */
  freed: Promise<void> = Promise.resolve()

  /** Leaves the topic at once (other members see it gone); a pending receive() resolves undefined. */
  close() {
    if (this.closed) return
    this.closed = true
    this.count = this.index = this.offset = 0 // the batch memory goes with the native side
    if (!this.batchMemory.detached) this.batchMemory.transfer(0) // events and batches still held read empty
    dropped.unregister(this)
    this.pump.stop()
    this.wake(false)
    this.freed = freeNative(this.native)
    this.owner.forget(this, this.native, this.freed)
  }

  async [Symbol.asyncDispose]() {
    this.close()
  }
  [Symbol.dispose]() {
    this.close()
  }

  /** @internal: the topic's housekeeping tick wakes a parked subscriber that has something to read. */
  nudge() {
    if (this.pump.isParked && this.native.ptr && topicNative.sb_sub_pending(this.native.ptr) === 1) this.pump.rouse()
  }

  private next1(): TopicEvent {
    const ev = eventAt(this.buf, this.view, this.offset, true)
    this.offset += (this.view.getUint32(this.offset + 8, true) + 15) & ~15
    this.index++
    return ev
  }

  private fill(max: number): number {
    if (this.closed || !this.native.ptr) return 0
    const n = topicNative.sb_sub_poll(this.native.ptr, max)
    if (n < 0) {
      this.close()
      throw topicError("poll", n, this.owner.name)
    }
    this.count = n
    this.index = this.offset = 0
    this.turnEvents += n
    return n
  }

  /** Whether this reader has held the event loop for TURN_EVENTS events or TURN_NS since it last let it turn. */
  private turnDue(): boolean {
    // the clock is read every 16th look only (a read is ~30 ns, an event handed out ~100)
    return this.turnEvents >= TURN_EVENTS || (++this.turnLooks % 16 === 0 && now() - this.turnStart >= TURN_NS)
  }

  /** Lets timers and I/O run (setImmediate comes after them), then starts a new turn. */
  private async yieldTurn() {
    await new Promise<void>((r) => setImmediate(r))
    this.turnTaken()
  }

  private turnTaken() {
    this.turnStart = now()
    this.turnEvents = 0
  }

  /** Waits until a poll may find something (true), or the deadline or close (false). */
  private async waitForEvents(deadline: number): Promise<boolean> {
    // A flood of events this filter refuses keeps pending() true and every read empty: without this the
    // loop below and receive() would go round forever without the event loop turning.
    if (!this.closed && this.turnDue()) await this.yieldTurn()
    const ptr = this.native.ptr
    if (!ptr || this.closed) return false
    if (topicNative.sb_sub_pending(ptr) === 1 && (deadline === Infinity || now() < deadline)) return true
    const start = now()
    if (start >= deadline) return false
    const ready = await new Promise<boolean>((resolve) => {
      let timer: LongTimer | undefined
      const done = (ready: boolean) => {
        timer?.clear()
        this.waiters.delete(done)
        if (this.waiters.size === 0) awaited.delete(this)
        resolve(ready)
      }
      this.waiters.add(done)
      awaited.add(this)
      if (deadline !== Infinity) timer = longTimeout(() => done(false), (deadline - start) / 1e6) // past 2^31-1 ms a bare setTimeout fires at once
      this.pump.resume()
    })
    // A wait this long went through at least one fruitless pump run, which ends by letting the loop turn.
    if (now() - start >= TURN_NS) this.turnTaken()
    return ready && !this.closed
  }

  private wake(ready: boolean) {
    for (const w of [...this.waiters]) w(ready)
  }

  /** The pump's view of this subscriber: its parked flag in the topic, and its wake socket as the doorbell. */
  private parking(): Parking {
    const sub = this
    return {
      get isOpen() {
        return !sub.closed && sub.native.ptr !== null
      },
      park: () => {
        const ptr = this.native.ptr
        if (!ptr || this.closed) return 1
        listenBell(this.native, ptr, this)
        return topicNative.sb_sub_park(ptr)
      },
      unpark: () => {
        if (this.native.ptr) topicNative.sb_sub_unpark(this.native.ptr)
      },
      listenDoorbell: (onRing) => {
        this.onRing = onRing
      },
    }
  }
}
