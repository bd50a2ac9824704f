// The port the core owns for workers on other hosts (docs/PROTOCOL.md §10): what a transport implements and the
// caller passes in (`SlotBus.listen(name, { remote: nats(url) })`, src/nats). The core imports no transport.

/** A request as a transport sees it (the hub's Pending): its kind and timeout, and itself as a key. */
export interface RemoteCall {
  readonly kind: number
  readonly timeoutMs: number
}

/** A request as a worker-side transport holds it (a SlotRequest): it can be told the hub gave it up. */
export interface RemoteRequest {
  cancel(reason: unknown): void
  /** Why it was given up, or null. */
  readonly cancelled: unknown
}

/**
 * Where a SlotRequest's bytes live: a slot's arenas (a Channel), or a message that came over another transport
 * (src/nats). `lend` gives an ArrayBuffer of its own over bytes of an arena, detached when the handler settles.
 */
export interface SlotBytes {
  /** `lend` gives copies, not views of the arena: a reply view (`req.reply()`) is copied into it when answered. */
  readonly copies?: boolean
  /** The start of an arena, at least `need` bytes long (all of it, `arenaSize`, if fewer). */
  arena(slot: number, response: 0 | 1, need: number): Uint8Array
  readonly arenaSize: number
  lend(slot: number, response: 0 | 1, off: number, len: number): ArrayBuffer
}

/**
 * What a DATA frame of `bytes` costs of a stream's credit (docs/PROTOCOL.md §10.4): at least 64, so the frames a
 * hub holds are bounded by number (window / 64) as well as by bytes.
 */
export const frameCharge = (bytes: number) => (bytes > 64 ? bytes : 64)

/** A worker on another host, as the hub's routing sees it. */
export interface RemotePeer {
  readonly id: string
  readonly host: string
  readonly pid: number
  readonly transport: string
  /** Requests it takes at once (its slots). */
  readonly capacity: number
  /** It takes new requests (not draining or leaving). */
  readonly serving: boolean
  /** Bytes `send` wants free before the head, for its own framing. */
  readonly prefix: number
  /** Publishes the request: after `prefix` free bytes, its head and body as in an arena (docs/PROTOCOL.md §10.2). */
  send(p: RemoteCall, payload: Uint8Array, headLen: number): void
  /** The request was given up: tell the worker (its answer is dropped). */
  cancel(p: RemoteCall): void
  /** p's streamed answer: its caller has taken `taken` DATA bytes (docs/PROTOCOL.md §10.4, credit). */
  grant(p: RemoteCall, taken: number): void
}

/** What a transport may do to the hub's books. */
export interface RemoteHubHost {
  readonly name: string
  joined(peer: RemotePeer): void
  /** The worker is gone (`err`); `undelivered`: a call the transport knows never reached it (NATS: no responders). */
  left(peer: RemotePeer, err: Error, undelivered?: RemoteCall): void
  /** The answer to p: `bytes` as an answer arena holds it (head, padding, body). */
  answered(p: RemoteCall, status: number, flags: number, headLen: number, bytes: Uint8Array): void
  failed(p: RemoteCall, err: Error): void
  /**
   * p's worker refused it unrun: it is leaving (§10.3), or runs its slots already (other hubs' requests too, §10.2).
   * p waits in the queue again by its arrival, idempotent or not, for another worker (or this one, once it has room)
   * within its timeoutMs; its one retry stays unused.
   */
  unrun(p: RemoteCall): void
  /** p's answer may have been lost (a connection came back): as if its worker died holding it, p retried or failed. */
  lost(p: RemoteCall, err: Error): void
  /** `peer` may take requests again (its room came back): the queue goes on. */
  ready(peer: RemotePeer): void
  /** A frame of p's streamed answer (docs/PROTOCOL.md §10.4), in order: Frame.HEAD, DATA or END; `bytes` its own. */
  frame(p: RemoteCall, type: number, status: number, bytes: Uint8Array): void
  /** A message was refused as not slotbus protocol (counted in the bus's stats). */
  rejected(): void
}

/** An answer as encoded into an arena (docs/PROTOCOL.md §6). */
export interface Answer {
  status: number
  flags: number
  headLen: number
  bodyLen: number
}

/** Where a worker-side transport takes a request's answer (RemoteWorkerHost.serve). */
export interface RemoteAnswerSink {
  /** The arena to encode the answer into. */
  answerArena(): Uint8Array
  /** The answer is in `answerArena()`: called right after it was encoded, once. */
  done(answer: Answer): void
  /** The handler answered with a stream: send it (§10.4), then call `over()` once it ended, failed or was given up. */
  stream(s: RemoteStream): void
}

/** A handler's streamed answer, for a transport to send. */
export interface RemoteStream {
  body: ReadableStream<unknown>
  status: number
  /** Its head pairs as §6 encodes them. */
  head: Uint8Array
  /** The stream is over: the handler's request is let go. */
  over(): void
}

/** What a transport may ask of a worker. */
export interface RemoteWorkerHost {
  readonly name: string
  /**
   * Builds the SlotRequest a handler gets for a request of `kind` (0 raw, 1 http) read from `bytes`; `window`:
   * the stream window its hub offered (0: answer whole).
   */
  request(kind: number, id: number, bytes: SlotBytes, headLen: number, bodyLen: number, window: number): RemoteRequest
  /**
   * Runs the handler. Once it settled, its answer is encoded into `out.answerArena()` (head, padding, body) and
   * `out.done` called at once, in the same turn: an arena shared by every request will do, if `done` copies the
   * answer out. A handler that returns (not a promise) is answered before `serve` returns. When the request
   * offered a window and the handler answered with a stream, `out.stream` gets it instead (docs/PROTOCOL.md §10.4).
   */
  serve(req: RemoteRequest, out: RemoteAnswerSink): void
  /** The transport lost its connection for good (closed, or an unrecoverable error). */
  lost(reason: "closed" | "hub-gone", error?: Error): void
}

export interface RemoteLink {
  readonly connected: boolean
  /** The server it is connected to now (host:port), for status views. */
  server?(): string
  /** Stops: a worker says it is leaving and finishes what it runs (up to timeoutMs); a hub stops listening. */
  close(timeoutMs: number): Promise<void>
}

export interface TransportOptions {
  /** How often presence is announced (docs/PROTOCOL.md §10.3). */
  heartbeatMs: number
  /** A hub's: a worker silent this long is gone (§10.3); 4 × heartbeatMs by default. */
  peerTimeoutMs?: number
  /** A worker's: it is lost ("hub-gone") once every hub it heard from went silent (§10.3). */
  closeWhenHubsGone?: boolean
  /** A worker's slots: what it announces it takes at once. */
  slots?: number
  /** A worker's host name as hubs show it (its presence's `host`); default the machine's hostname. */
  host?: string
  /** A hub's stream window (docs/PROTOCOL.md §10.4): DATA bytes a streamed answer may have unread; 0: answers whole. */
  streamWindow?: number
}

/** A transport for workers on other hosts, as a caller passes it in: `nats(url)` from "slotbus/nats" is one. */
export interface RemoteTransport {
  /** Its name where workers are listed ("nats"): a worker's `transport`, the status view's "across hosts (…)". */
  readonly transport: string
  /** Serves a hub: workers on other hosts join it and take its requests. */
  serveHub(host: RemoteHubHost, opts: TransportOptions): Promise<RemoteLink>
  /** Serves a worker: it joins the hubs of its name and answers their requests. */
  serveWorker(host: RemoteWorkerHost, opts: TransportOptions): Promise<RemoteLink>
  /**
   * Whether `other` reaches the same servers with the same credentials: a hot reload keeps a bus only then.
   * Without it, a transport is the same as itself only.
   */
  sameAs?(other: RemoteTransport): boolean
}

/** The methods a bus's and a worker's `remote` option must have. */
export const HUB_PORT = ["serveHub"] as const satisfies readonly (keyof RemoteTransport)[]
export const WORKER_PORT = ["serveWorker"] as const satisfies readonly (keyof RemoteTransport)[]
