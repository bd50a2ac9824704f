// An event as a subscriber reads it out of its private batch (docs/PROTOCOL.md §8.3): one event (TopicEvent), the
// events of one poll (EventBatch), and `for await` over receive().
import { receivedContext, type OtelLink as Link, type TraceContext } from "../kit/index.ts"
import type { Routing } from "./codec.ts"
import { linkTo } from "./trace.ts"

const utf8 = new TextDecoder()
const TWO_32 = 4294967296

/**
 * One event as a subscriber sees it. From receive() and `for await` it keeps its bytes; from a poll()'s or
 * batches()' batch, `data` is a view valid until the subscriber reads on: copy it to keep it.
 */
export class TopicEvent {
  private routingCache: Routing | undefined
  private trace: TraceContext | undefined
  constructor(
    /** Its position in the topic: ids grow in topic order; resume after one with `subscribe(…, { from: id })`. */
    readonly id: number,
    readonly type: string,
    /** Bytes as published (strings and JSON as UTF-8). */
    readonly data: Uint8Array,
    /** "bytes", "string" or "json": how it was published. */
    readonly encoding: "bytes" | "string" | "json",
    private readonly keys: Uint8Array,
    private readonly keyCount: number,
  ) {}

  /** Its routing keys (without the trace context's, `traceparent` and `tracestate`). */
  get routing(): Routing {
    if (this.routingCache === undefined) this.decodeKeys()
    return this.routingCache!
  }
  /** The publisher's W3C trace context (docs/PROTOCOL.md §8.3), if the event carries one the W3C parser takes. */
  get traceparent(): string | undefined {
    if (this.routingCache === undefined) this.decodeKeys()
    return this.trace?.traceparent
  }
  get tracestate(): string | undefined {
    if (this.routingCache === undefined) this.decodeKeys()
    return this.trace?.tracestate
  }
  /**
   * An OpenTelemetry span link to the publisher's context, for the span that processes the event:
   * `tracer.startSpan("process", { links: event.link ? [event.link] : [] })`. Undefined without a context or the API.
   */
  get link(): Link | undefined {
    return linkTo(this.traceparent, this.tracestate)
  }
  private decodeKeys() {
    const routing = decodeRouting(this.keys, this.keyCount)
    const { traceparent, tracestate } = routing
    if (traceparent !== undefined || tracestate !== undefined) {
      this.trace = receivedContext(traceparent, tracestate) // another host's keys too: checked, never passed on raw
      delete routing.traceparent
      delete routing.tracestate
    }
    this.routingCache = routing
  }
  text(): string {
    return utf8.decode(this.data)
  }
  json<T = unknown>(): T {
    return JSON.parse(utf8.decode(this.data)) as T
  }
}

function decodeRouting(b: Uint8Array, count: number): Routing {
  const out: Routing = {}
  let off = 0
  for (let i = 0; i < count; i++) {
    const kl = b[off]!,
      vl = b[off + 1]!
    out[utf8.decode(b.subarray(off + 2, off + 2 + kl))] = utf8.decode(b.subarray(off + 2 + kl, off + 2 + kl + vl))
    off += 2 + kl + vl
  }
  return out
}

const ENCODINGS = ["bytes", "string", "json"] as const
const NO_BYTES = new Uint8Array(0)
/** A copy as an array of its own, never a subarray of one: JSC keeps a small one without a separate ArrayBuffer. */
const copied = (b: Uint8Array) => (b.length === 0 ? NO_BYTES : new Uint8Array(b))

/** Events read by one poll: a batch in the subscriber's private memory, valid until its next poll. */
export class EventBatch {
  constructor(
    private readonly buf: Uint8Array,
    private readonly view: DataView,
    /** How many events. */
    readonly count: number,
    private readonly start = 0,
  ) {}

  /** Its subscription was closed: the memory is gone and the batch reads as empty. */
  private get stale(): boolean {
    return this.buf.byteLength === 0
  }

  /** The batch buffer itself, for forEachSpan. */
  get bytes(): Uint8Array {
    return this.buf
  }

  /** The leanest reader: fn gets each event's id and where its data lies in `bytes` (nothing is allocated). */
  forEachSpan(fn: (id: number, dataStart: number, dataLength: number) => void) {
    if (this.stale) return
    const v = this.view
    let off = this.start
    for (let i = 0; i < this.count; i++) {
      const len = v.getUint32(off + 8, true)
      const dataLen = v.getUint32(off + 24, true)
      fn(v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO_32, off + len - dataLen, dataLen)
      off += (len + 15) & ~15
    }
  }

  /** Calls fn for each event: the type comes raw, data is a view (valid until next poll). */
  forEachRaw(fn: (id: number, typeBytes: Uint8Array, data: Uint8Array) => void) {
    if (this.stale) return
    let off = this.start
    for (let i = 0; i < this.count; i++) {
      const len = this.view.getUint32(off + 8, true)
      const typeLen = this.view.getUint16(off + 20, true)
      const dataLen = this.view.getUint32(off + 24, true)
      const id = this.view.getUint32(off, true) + this.view.getUint32(off + 4, true) * TWO_32
      fn(id, this.buf.subarray(off + 32, off + 32 + typeLen), this.buf.subarray(off + len - dataLen, off + len))
      off += (len + 15) & ~15
    }
  }

  /** @internal (a remote transport's bridge): fn gets each event's id, its type's bytes and the encoded event (§8.3 bytes 16 … len). */
  forEachEncoded(fn: (id: number, typeBytes: Uint8Array, encoded: Uint8Array) => void) {
    if (this.stale) return
    let off = this.start
    for (let i = 0; i < this.count; i++) {
      const len = this.view.getUint32(off + 8, true)
      const typeLen = this.view.getUint16(off + 20, true)
      const id = this.view.getUint32(off, true) + this.view.getUint32(off + 4, true) * TWO_32
      fn(id, this.buf.subarray(off + 32, off + 32 + typeLen), this.buf.subarray(off + 16, off + len))
      off += (len + 15) & ~15
    }
  }

  *[Symbol.iterator](): IterableIterator<TopicEvent> {
    if (this.stale) return
    let off = this.start
    for (let i = 0; i < this.count; i++) {
      yield eventAt(this.buf, this.view, off)
      off += (this.view.getUint32(off + 8, true) + 15) & ~15
    }
  }
}

/** `for await` over a subscription's receive(); leaving the loop early closes it. */
export function eventIterator(sub: {
  receive(): Promise<TopicEvent | undefined>
  close(): void
}): AsyncIterator<TopicEvent> {
  return {
    next: async () => {
      const ev = await sub.receive()
      return ev ? { value: ev, done: false } : { value: undefined, done: true }
    },
    return: async () => {
      sub.close()
      return { value: undefined, done: true }
    },
  }
}

/** The event at off; `own`: its keys and data copied out of buf (receive()'s events outlive the next read). */
export function eventAt(buf: Uint8Array, view: DataView, off: number, own = false): TopicEvent {
  const len = view.getUint32(off + 8, true)
  const typeLen = view.getUint16(off + 20, true)
  const keyCount = buf[off + 22]!
  const enc = buf[off + 23]!
  const dataLen = view.getUint32(off + 24, true)
  const id = view.getUint32(off, true) + view.getUint32(off + 4, true) * TWO_32
  const type = utf8.decode(buf.subarray(off + 32, off + 32 + typeLen))
  const keysStart = off + 32 + typeLen
  const dataStart = off + len - dataLen
  const data = buf.subarray(dataStart, off + len)
  const keys = buf.subarray(keysStart, dataStart)
  return own
    ? new TopicEvent(id, type, copied(data), ENCODINGS[enc] ?? "bytes", copied(keys), keyCount)
    : new TopicEvent(id, type, data, ENCODINGS[enc] ?? "bytes", keys, keyCount)
}
