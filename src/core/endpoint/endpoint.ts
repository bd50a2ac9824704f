// The hub's books: a request's life (Pending) from queue to slot returned, a worker as the dispatcher sees it
// (Endpoint, implemented by slot-endpoint.ts and remote-endpoint.ts) and what an endpoint may do to the
// dispatcher's books (EndpointHost). Separate because the dispatcher, both kinds of worker and the bus read them.
import { Kind, State } from "../../native/ffi.ts"
import type { BusCounters } from "../probe/counters.ts"
import type { ClientTrace } from "../probe/trace.ts"
import type { FlightRecorder } from "../probe/recorder.ts"
import { EMPTY } from "../wire/codec.ts"
import { nanoseconds } from "../../runtime/index.ts"

export interface WorkerInfo {
  pid: number
  uid: number
  /**
   * serving; retiring (took its pool's recycle.maxRequests, and is replaced, or is a reload's successor within its
   * pool's minReadyMs: it gets a request only while no other worker serves); draining (it asked for nothing new, or is being retired); evicting (too many stuck slots,
   * disconnected soon).
   */
  state: "serving" | "retiring" | "draining" | "evicting"
  /** Slots out: published and not yet returned (answered, given up, stuck or borrowed). */
  inFlight: number
  /** Requests whose callers still wait for this worker. */
  waiting: number
  /** Slots the worker still holds long past their request's deadline (see stuckAfterMs). */
  stuck: number
  requests: number
  /** Each slot's state (docs/PROTOCOL.md §3): free, writing, ready, claimed, done, cancelled. Empty for a remote worker. */
  slots: string[]
  /** How it is reached: "shm" (shared memory, this host) or the name of the remote transport ("nats", §10). */
  transport: string
  /** The host it runs on (its hostname, as it announced it). */
  host: string
}

export type WorkerEvent = { type: "join" | "leave"; worker: WorkerInfo }

/**
 * A request's life, named after the slot states of docs/PROTOCOL.md §3: waiting for a slot (`queued`),
 * published in one (`in-slot`), answered or failed while the worker still holds its slot (`settled`: given
 * up, or borrowed), and over (`slot-returned`: its slot is back on the free list, or it never had one).
 */
export type RequestPhase = "queued" | "in-slot" | "settled" | "slot-returned"

export type Settle = { resolve: (v: never) => void; reject: (e: unknown) => void }

/** Where a whole answer's body is copied: a buffer, or what gives one for the body's length. */
export type Into = Uint8Array | ((length: number) => Uint8Array)

/**
 * What a request's caller gets from its answer (answer-value.ts), decided once when the request is made: an RPC
 * call's value read where the answer lies (`read`), the body lent in its slot (`borrow`), a Web Response that streams
 * from the HEAD when the worker streams (`response`, bus.fetch), a StreamedResponse (`stream`), or the body whole, in
 * its own bytes or `into` the caller's (`whole`: bus.call's bytes, bus.request's SlotResponse). Every Want has the
 * same three fields, in the same order, so the hot path reads one object shape.
 */
export type Want =
  | { readonly as: "read"; readonly read: ReadAnswer; readonly into: null }
  | { readonly as: "borrow" | "response"; readonly read: null; readonly into: null }
  | { readonly as: "stream" | "whole"; readonly read: null; readonly into: Into | null }

/** Whether `p`'s caller takes the answer as it streams, from its HEAD (a StreamedResponse, bus.fetch's Response). */
export function streamsFromHead(p: Pending): boolean {
  return p.want.as === "stream" || p.want.as === "response"
}

/** Whether `p` is an RPC call's: its answer's status is read as RPC's (rpc-status.ts), not HTTP's. */
export function isRpcCall(p: Pending): boolean {
  return p.want.as === "read"
}

export interface Pending extends Settle {
  phase: RequestPhase
  kind: number
  strings: string[] | null
  body: Uint8Array
  bodyLength: number // as validated by request(): a body detached or shrunk since is refused, not sent short
  /** What the caller gets from the answer. */
  want: Want
  timeoutMs: number
  deadline: number
  /** nanoseconds() when its clock started (startClock); 0 until then: a small call's starts once it is published. */
  started: number
  /** Given up: when its slot starts to count toward stuck (its deadline, or its giving up if later or it has none). */
  stuckFrom: number
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  /**
   * bus.fetch's Request, whose signal is read only if the request is still out at a tick of the dispatcher (Bun
   * makes a Request's signal when first read, aborted if its client already left): a quick answer never makes it.
   */
  signalOf: { readonly signal: AbortSignal } | null
  /** The worker it was sent to (on this host, `slot` is then its slot; on another). */
  endpoint: Endpoint | null
  slot: number
  /** A streaming caller that does not read for this long gives the request up (0: never). */
  streamIdleMs: number
  /** The worker answers as a stream (docs/PROTOCOL.md §9): its reader (stream-in.ts). */
  in: StreamReading | null
  /** The caller said running it twice is harmless: a worker gone before answering does not fail it, once. */
  idempotent: boolean
  retried: boolean
  /** It waited in the queue (its dispatch time is not its start): set when the dispatcher queues it. */
  waited: boolean
  /** nanoseconds() when it last went into the queue: its start, or its requeue (a retry, a refusal unrun). */
  queuedAt: number
  /** Its trace (trace.ts): the context it carries and the hub's span, or null. */
  trace: ClientTrace | null
  /** The caller's route pattern (RequestOptions.route), what GET /metrics labels it by; null: none given. */
  route: string | null
  /** bus.fetch's body, read whole: its bytes count against the bus's maxHeldBodyBytes until it is let go; else null. */
  held: HeldBody | null
}

/** A body's bytes counted against its bus's maxHeldBodyBytes (hub/fetch-body.ts), given back once. */
export interface HeldBody {
  giveBack(): void
}

/** p's body is needed no more (it is in a slot, or p is over): its buffer let go, its held bytes given back. */
export function letGo(p: Pending) {
  p.body = EMPTY
  if (p.held !== null) {
    p.held.giveBack()
    p.held = null
  }
}

/** Reads an answer's body, valid only during the call, into the value its request resolves with (may throw). */
export type ReadAnswer = (status: number, body: Uint8Array) => unknown

/** `read`'s value, or a promise rejected with what it threw: the answer came, the caller's promise rejects. */
export function readAnswer(read: ReadAnswer, status: number, body: Uint8Array): unknown {
  try {
    return read(status, body)
  } catch (e) {
    return Promise.reject(e)
  }
}

/** What the books need of a streamed answer's reader (stream-in.ts's StreamIn). */
export interface StreamReading {
  /** Its END was read: the worker is done with it. */
  readonly ended: boolean
  /** Since when its caller has not been reading (0: a read is pending). */
  readonly stalledSince: number
  /** sb_hub_poll returned its slot with a stream notification (`final`: the last one). */
  notified(final: boolean): void
  /** The request failed: the caller's stream errors, the rest of it is dropped. */
  failed(err: unknown): void
}

/**
 * A worker as the dispatcher sees it: on this host over shared memory (slot-endpoint.ts) or on another host through
 * the `remote` transport (remote-endpoint.ts, docs/PROTOCOL.md §10). Each kind keeps the books of the requests it
 * holds; the dispatcher picks the least busy one and sends through it without knowing how it is reached.
 */
export interface Endpoint {
  /** Its index among the bus's workers (bus-metrics.ts), set when it joins: its `worker` label, a small number reused. */
  workerIndex: number
  /**
   * How far it is: 0 shares memory with the hub, 1 is reached through a transport. remotePolicy says when a far
   * one gets requests ("overflow": only when no near one has room).
   */
  readonly distance: 0 | 1
  /** Its process (on its own host). */
  readonly pid: number
  /** It takes new requests now (not retiring, draining, evicting or leaving). */
  readonly serving: boolean
  /** It took its request limit: it gets a request only while no worker serves. */
  readonly retiring: boolean
  /** Requests sent to it. */
  readonly requests: number
  /** Requests it takes before it retires (the dispatcher's retireAfter); Infinity: no limit. */
  requestLimit: number
  /** Requests it takes at once: its slots. */
  readonly capacity: number
  /** Requests it holds now (a given-up request counts until the worker lets go of it). */
  readonly inFlight: number
  /**
   * Requests it may hold before the dispatcher sends the next to another worker (dispatcher.ts's pick): as many as
   * it answers within a short wait at its recent rate (slot-endpoint.ts's packCap), at least 1.
   */
  readonly packCap: number
  /** Requests it holds whose callers still wait. */
  readonly waiting: number
  /** Puts p on this worker (p.endpoint is then this): false when it had no room after all (p stays queued); true too
   * when its publish failed and p failed with it (p.endpoint unset). */
  send(p: Pending): boolean
  /** p, out on this worker, was given up (timed out, aborted, failed): the worker is told, its answer dropped. */
  cancel(p: Pending, why?: unknown): void
  /** p's caller has its answer or its error: p no longer waits on this worker (its phase says what it still holds). */
  settled(p: Pending): void
  /** p goes to another worker (this one left before answering): forgotten here, the worker is not told. */
  forget(p: Pending): void
  /** The requests it holds, for their deadlines (a copy where expiring one changes the books). */
  held(): Iterable<Pending | null>
  /** Its own checks on each of the dispatcher's ticks (stuck slots). */
  tick(now: number): void
  /** It left the books (`err`): every request it held goes elsewhere or fails (EndpointHost.retryOrFail). */
  left(err: Error): void
  /** It gets no new request from now on (it is being retired); what it holds is answered. */
  drain(): void
  /**
   * It took its request limit, or is a reload's successor within its pool's minReadyMs: from now on it gets a
   * request only while no worker serves (retiring), until serve().
   */
  retire(): void
  /** A retiring one serves again (a reload's successor that stayed up). */
  serve(): void
  /** It as `bus.workers` lists it. */
  info(): WorkerInfo
}

/** What an endpoint may do to the dispatcher's books (dispatcher.ts implements it). */
export interface EndpointHost {
  readonly name: string
  /** The bus's counters: an endpoint counts bytes, its internal errors and evictions through their methods. */
  readonly counters: BusCounters
  /** The largest body a buffered caller takes. */
  readonly maxBody: number
  /** Places were freed on a worker: the queue goes on. The one home of "capacity freed, serve the queue". */
  freed(): void
  /** p's answer is `value`: its caller gets it (`at`: when it arrived, nanoseconds(); `status`: the answer's, when `value` is not a response). */
  answered(p: Pending, value: unknown, at: number, status?: number): void
  /** p fails with `err` (its worker told, its caller rejected), if it still waits. */
  fail(p: Pending, err: unknown): void
  /** A worker left while holding p: an idempotent p goes elsewhere once (`undelivered`: it never reached it), any other fails. */
  retryOrFail(p: Pending, err: unknown, undelivered?: boolean): boolean
  /** p's worker refused it unrun (full, leaving): p waits in the queue again by its arrival, its retry unused. */
  requeue(p: Pending): void
  /** What a streamed answer's reader may do to the books (stream-in.ts). */
  readonly streams: StreamHost
  /** The bus's flight recorder (docs/PROTOCOL.md §16), or null: what a worker on another host holds goes in it too. */
  readonly recorder: FlightRecorder | null
}

/** What a streamed answer's reader (stream-in.ts) may do to the books. */
export interface StreamHost {
  /** The largest body a buffered caller takes. */
  maxBody(): number
  countIn(bytes: number): void
  /** The caller asked for a stream: answer it now, at the HEAD. */
  streamStarted(p: Pending, status: number, head: string[], body: ReadableStream<Uint8Array>): void
  /** The END arrived: a buffered caller gets its answer (`body`), a streaming one only its books settled. */
  streamEnded(p: Pending, status: number, head: string[], body: Uint8Array | null): void
  fail(p: Pending, err: unknown): void
}

export const STATE_NAMES = Object.fromEntries(Object.entries(State).map(([k, v]) => [v, k.toLowerCase()]))
// One monotonic clock in ms for deadlines, ticks and stuck slots: a request reads it once (the runtime's nanoseconds).
export const nowMs = () => nanoseconds() / 1e6

/**
 * A request's clock starts at `t` (nanoseconds()): its duration and deadline count from there. A small call's
 * starts just after its publish, when its worker already has it (SlotEndpoint.send): the read (~30 ns here) is then
 * off its round trip, and what it leaves out, its checks, is well under a microsecond. Any other's starts when made.
 */
export function startClock(p: Pending, t = nanoseconds()) {
  p.started = t
  if (p.timeoutMs > 0) p.deadline = t / 1e6 + p.timeoutMs
}

/** Requests whose clock starts once they are published: a bus.call whose body copies in well under a microsecond. */
export const startsAtPublish = (p: Pending) => p.kind === Kind.RAW && p.bodyLength < CLOCK_AT_PUBLISH_BYTES
const CLOCK_AT_PUBLISH_BYTES = 4096
