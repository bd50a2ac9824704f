// The hub's books: a worker as the dispatcher sees it (Endpoint), a worker connection over shared memory (Link)
// with its slots, and a request's life (Pending) from queue to slot returned. Separate because routing, accepting
// and the bus all read and write them.
import { State } from "../native/ffi.ts"
import type { Channel } from "./channel.ts"
import type { Pump } from "./idle.ts"

export interface WorkerInfo {
  pid: number
  uid: number
  /** serving; draining (it asked for nothing new); evicting (too many stuck slots, disconnected soon). */
  state: "serving" | "draining" | "evicting"
  /** Slots out: published and not yet returned (answered, given up, stuck or borrowed). */
  inFlight: number
  /** Requests whose callers still wait for this worker. */
  waiting: number
  /** Slots whose request was given up long ago and that the worker still holds (see stuckAfterMs). */
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

export interface Pending extends Settle {
  phase: RequestPhase
  kind: number
  strings: string[] | null
  body: Uint8Array
  bodyLength: number // as validated by request(): a body detached or shrunk since is refused, not sent short
  borrow: boolean
  timeoutMs: number
  deadline: number
  started: number
  settledAt: number
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  /** The worker it was sent to: a Link (slot is then its slot) or a worker on another host. */
  endpoint: Endpoint | null
  slot: number
  /** The caller asked for the body as a stream (`stream: true`, `bus.fetch`). */
  stream: boolean
  /** A streaming caller that does not read for this long gives the request up (0: never). */
  streamIdleMs: number
  /** The worker answers as a stream (docs/PROTOCOL.md §9): its reader (stream-in.ts). */
  in: StreamReading | null
  /** The caller said running it twice is harmless: a worker gone before answering does not fail it, once. */
  idempotent: boolean
  retried: boolean
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
 * A worker as the dispatcher sees it: on this host over shared memory (a Link) or on another host through the
 * `remote` transport (routing.ts's RemoteEndpoint over the transport's RemotePeer, docs/PROTOCOL.md §10). The
 * dispatcher picks the least busy one, preferring local ones as remotePolicy says, and sends through it without
 * knowing how it is reached.
 */
export interface Endpoint {
  /** Shares memory with the hub (remotePolicy "overflow" sends elsewhere only when no local one has room). */
  readonly local: boolean
  /** It takes new requests now (not draining, evicting or leaving). */
  readonly serving: boolean
  /** Requests it takes at once: its slots. */
  readonly capacity: number
  /** Requests it holds now. */
  readonly inFlight: number
  /** Puts p on this worker: false when it had no room after all (p stays queued); a p that failed counts as sent. */
  send(p: Pending): boolean
  /** p, out on this worker, was given up (timed out, aborted, failed): the worker is told, its answer dropped. */
  cancel(p: Pending): void
  /** It as `bus.workers` lists it. */
  info(): WorkerInfo
}

/**
 * A worker connection's life: `serving` takes requests; `draining` asked for nothing new (control byte D);
 * `evicting` holds too many stuck slots and goes once nobody waits for it. Dropped links leave `links`.
 */
export type LinkState = WorkerInfo["state"]

export interface Link extends Endpoint {
  readonly local: true
  state: LinkState
  chan: Channel
  pump: Pump
  pending: (Pending | null)[] // by slot, until the slot is returned
  lent: (WeakRef<ArrayBuffer> | null)[] // by slot: the buffer under a borrowed body, detached when the slot goes
  inFlight: number // slots out
  waiting: number // in-slot requests whose caller waits
  requests: number
  controlBytes: number
}

export const STATE_NAMES = Object.fromEntries(Object.entries(State).map(([k, v]) => [v, k.toLowerCase()]))
// One monotonic clock in ms for deadlines, ticks and stuck slots: a request reads it once (Bun.nanoseconds).
export const nowMs = () => Bun.nanoseconds() / 1e6
