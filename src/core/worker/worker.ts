// The worker side: SlotWorker connects to a hub by name and answers its requests from the slots.
import {
  native,
  Kind,
  Msg,
  E_CORRUPT,
  E_SOCKET_DIR,
  Control,
  Errno,
  ANY_UID,
  loadNative,
  socketDirError,
  type Chan,
} from "../../native/ffi.ts"
import { Backoff } from "../../kit/index.ts"
import { Channel } from "../wire/channel.ts"
import { align8, busName } from "../wire/codec.ts"
import { BusClosedError, HubNotFoundError, PeerRefusedError, ProtocolError } from "../../errors.ts"
import { Pump, STARTUP_POLL_NS, tuning } from "../wire/idle.ts"
import { longTimeout } from "../../kit/index.ts"
import { checkName, checkNumber, checkOptions, checkRemote, madeBy } from "../../kit/index.ts"
import { rpcHandler } from "../rpc/rpc.ts"
import {
  CLOSE_OPTIONS,
  CONNECT_OPTIONS,
  type ConnectOptions,
  EXPOSE_OPTIONS,
  type ExposeOptions,
  type FetchHandler,
  type SlotHandler,
  type WorkerClosed,
} from "./options.ts"
import { SlotRequest } from "./request.ts"
import type { SlotReply } from "./answer.ts"
import { Serving } from "./serve.ts"
import { reportRuntime } from "./runtime-report.ts"
import { exitOnUncaught } from "./uncaught.ts"
import { type RemoteLink, type RemoteTransport, WORKER_PORT } from "../wire/remote.ts"
import { RemoteSink, SlotSink, type SlotPort } from "./worker-sinks.ts"
import {
  FrontFamily,
  frontAddress,
  MAX_FRONTS,
  ORPHAN_LINGER_MS,
  exitWithFronts,
  sharedFrontsExist,
  type FrontMember,
} from "../ops/fronts.ts"
import { frontParent, parentAlive } from "../ops/front-parent.ts"
import { sleep } from "../../runtime/index.ts"

export { SlotRequest }
export type { SlotReply }
export type { ConnectOptions, ExposeOptions, FetchHandler, SlotHandler, WorkerClosed }

const FACTORY = Symbol("SlotWorker.connect")

const { ECONNREFUSED, ECONNRESET, ENOENT, EPERM, EPIPE, EAGAIN, ETIMEDOUT, EUSERS } = Errno
// Attempts to attach start 20 ms apart and spread out to 500 ms: a hub coming back finds its reconnecting
// workers arriving at different moments, and a worker polls a missing hub at most twice a second.
const RETRY = { initialMs: 20, maxMs: 500, jitter: 0.5 }
// No hub, or one dying while we queued on its socket: worth another try.
const RETRYABLE = new Set<number>([ECONNREFUSED, ENOENT, ECONNRESET, EPIPE])
const HELLO_TIMEOUT_MS = 5000

export class SlotWorker {
  readonly closed: Promise<WorkerClosed>
  private resolveClosed!: (c: WorkerClosed) => void
  private chan: Channel | null = null
  private pump: Pump | null = null
  private remote: RemoteLink | null = null
  private stopping: Promise<void> | null = null
  private readonly serving: Serving
  private readonly handler: SlotHandler
  private onDrainAck: (() => void) | null = null
  // The requests this worker holds, by slot, and their generations: what a cancel request is checked against.
  private held: (SlotRequest | null)[] = []
  private heldGen = new Uint32Array(0)
  // The stream window the hub offered each held request (0: answer whole).
  private heldWindow = new Uint32Array(0)
  // Where each slot's answer goes: one sink per slot, made when the channel is, reused by every request.
  private sinks: SlotSink[] = []
  // Streams waiting for credit (their limit to move from `seen`) or a cancel: looked at on every collect.
  private looks: { slot: number; seen: number; req: SlotRequest; resolve: () => void }[] = []
  private cancelSeen = 0
  private readonly err = new Int32Array(1)
  // A shared name's fronts (docs/PROTOCOL.md §15): the root's family of connections, one per front; a sibling's root.
  private family: FrontFamily | null = null
  private root: SlotWorker | null = null
  private index = -1
  // The front that started this process as a worker of this bus's pool (§15.4), 0 when none; whether it is gone.
  private readonly parentPid: number
  private orphan = false
  // A pool's worker takes no request from this front until it serves the one that started it (FrontFamily.untilParent).
  private waiting = false

  private constructor(
    key: symbol,
    readonly name: string,
    handler: SlotHandler,
    private readonly opts: ConnectOptions,
  ) {
    madeBy(key, FACTORY, "SlotWorker", "await SlotWorker.connect(name, handler, options)")
    this.parentPid = frontParent(name)
    this.handler = handler
    this.serving = new Serving(handler)
    this.closed = new Promise(
      (r) =>
        (this.resolveClosed = (c) => {
          this.family?.stop()
          r(c)
          if (c.reason !== "closed" && !this.root) this.exitIfAsked(c.reason)
        }),
    )
  }

  /** Connect to the hub listening as `name` and serve its requests with `handler`. */
  static async connect(name: string, handler: FetchHandler, opts: ConnectOptions & { fetch: true }): Promise<SlotWorker>
  static async connect(
    name: string,
    handler: SlotHandler,
    opts?: ConnectOptions & { fetch?: false },
  ): Promise<SlotWorker>
  static async connect(
    name: string,
    handler: SlotHandler | FetchHandler,
    opts: ConnectOptions = {},
  ): Promise<SlotWorker> {
    if (typeof handler !== "function") throw new TypeError("handler must be a function (req) => reply")
    checkOptions(opts, CONNECT_OPTIONS, "SlotWorker.connect")
    for (const what of ["fetch", "exitWithFront", "exitOnUncaught"] as const)
      if (opts[what] !== undefined && typeof opts[what] !== "boolean")
        throw new TypeError(`SlotWorker.connect: ${what} must be a boolean, got ${typeof opts[what]}`)
    tuning(opts.idle, "SlotWorker.connect idle")
    busName(name)
    exitOnUncaught(opts.exitOnUncaught ?? true)
    await loadNative()
    for (const what of ["waitForHubMs", "helloTimeoutMs"] as const)
      checkNumber(opts[what], { what, where: "SlotWorker.connect", max: Infinity, integer: false, dflt: 0 })
    const h = opts.fetch ? (req: SlotRequest) => (handler as FetchHandler)(req.toRequest()) : (handler as SlotHandler)
    const w = new SlotWorker(FACTORY, name, h, opts)
    if (opts.remote !== undefined)
      await w.attachRemote(checkRemote<RemoteTransport>(opts.remote, WORKER_PORT, "SlotWorker.connect"))
    else await w.attach(opts.waitForHubMs ?? 0)
    return w
  }

  /**
   * Connect to the hub listening as `name` and serve the functions of `api` to its RPC calls (`bus.remote()`,
   * `bus.invoke()`): each runs with `this` the api object, its arguments and result crossing by structured clone.
   * Export `typeof api` for the hub's typing. Functions wrapped in `withSignal` get the call's AbortSignal first.
   */
  static async expose(name: string, api: object, opts: ExposeOptions = {}): Promise<SlotWorker> {
    checkOptions(opts, EXPOSE_OPTIONS, "SlotWorker.expose")
    const { handler, ...connect } = opts
    if (handler !== undefined && typeof handler !== "function")
      throw new TypeError("SlotWorker.expose: handler must be a function (req) => reply")
    return SlotWorker.connect(name, rpcHandler(api, handler) as SlotHandler, connect)
  }

  get connected(): boolean {
    return this.remote ? this.remote.connected : (this.chan?.isOpen ?? false) || (this.family?.connected ?? false)
  }

  /** @internal The front this connection serves (§15), -1 while none; its pid. */
  get frontIndex(): number {
    return this.chan ? this.index : -1
  }
  get hubPid(): number {
    return this.chan?.peerPid ?? 0
  }
  get reconnect(): boolean {
    return this.opts.reconnect === true
  }

  /** @internal Serve front k over a connection the family started (§15.3). */
  async adopt(ptr: Chan, k: number): Promise<boolean> {
    const e = await this.finishConnect(ptr, this.opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS)
    if (e !== 0) return false
    if (this.stopping || this.chan) {
      native.sb_close(ptr)
      return false
    }
    this.index = k
    this.serve(new Channel(ptr))
    return true
  }

  /** @internal Another front of the name, served by a new worker with this one's handler and options. */
  async sibling(ptr: Chan, k: number): Promise<FrontMember | null> {
    const s = new SlotWorker(FACTORY, this.name, this.handler, { ...this.opts, reconnect: false })
    s.root = this
    return (await s.adopt(ptr, k)) ? s : null
  }

  /** @internal Ends a root whose fronts are all gone. */
  finish(reason: "hub-gone" | "hub-closed") {
    this.resolveClosed({ reason })
  }

  /** @internal The front that started it is gone (§15.4): it serves on `lingerMs`, drains, and may exit. */
  orphaned(lingerMs = ORPHAN_LINGER_MS) {
    if (this.orphan) return
    this.orphan = true
    const end = () => void this.close().then(() => this.exitIfAsked("the front that started it is gone"))
    setTimeout(end, lingerMs).unref()
  }

  /** A pool's worker whose front is gone: the judgement of its pool's bus applies (exitWithFront, on by default). */
  private get judged(): boolean {
    return this.parentPid > 0 && !this.root && (this.opts.exitWithFront ?? true)
  }

  private exitIfAsked(why: string) {
    if (this.opts.exitWithFront ?? this.parentPid > 0) exitWithFronts(this.name, why, this.parentPid)
  }

  /** A root just connected: if the name is shared (§15.2), serve every front of it. */
  private joinFamily() {
    if (this.root || this.family || this.remote) return
    if (this.index === 0 && !sharedFrontsExist(this.name, (this.chan?.peerUid ?? -1) >>> 0)) return
    if (!this.family && !this.stopping) this.family = new FrontFamily(this.name, this, this.opts.hubUid)
  }

  /** No front at the plain name: a worker that knows §15 tries the others once. */
  private async anyFront(): Promise<boolean> {
    if (this.root || !sharedFrontsExist(this.name, this.opts.hubUid)) return false
    for (let k = 1; k < MAX_FRONTS && !this.stopping; k++) {
      const ptr = native.sb_connect_start(
        frontAddress(this.name, k),
        this.opts.hubUid ?? ANY_UID,
        this.err,
      ) as Chan | null
      if (ptr && (await this.adopt(ptr, k))) return true
    }
    return false
  }

  /** Serves the hub through the transport given as `remote` (docs/PROTOCOL.md §10). */
  private async attachRemote(transport: RemoteTransport) {
    const slots = checkNumber(this.opts.slots, { what: "slots", dflt: 32, min: 1, max: 4096 })
    const heartbeatMs = checkNumber(this.opts.heartbeatMs, { what: "heartbeatMs", dflt: 500, min: 1, max: 60_000 })
    const label = this.opts.host
    if (label !== undefined) checkName(label, { what: "host", where: "SlotWorker.connect", max: 255, chars: null })
    if (this.opts.closeWhenHubsGone !== undefined && typeof this.opts.closeWhenHubsGone !== "boolean")
      throw new TypeError(`closeWhenHubsGone must be a boolean, got ${typeof this.opts.closeWhenHubsGone}`)
    this.remote = await transport.serveWorker(
      {
        name: this.name,
        request: (kind, id, bytes, headLen, bodyLen, window) =>
          new SlotRequest(
            kind === Kind.RAW ? "raw" : "http",
            id,
            bytes,
            0,
            headLen,
            align8(headLen),
            bodyLen,
            this.name,
            window,
          ),
        serve: (req, out) =>
          this.serving.serve(req as SlotRequest, new RemoteSink(out, (req as SlotRequest).streamWindow)),
        lost: (reason, error) => {
          this.opts.onDisconnect?.(reason)
          this.resolveClosed(error ? { reason, error } : { reason })
        },
      },
      { heartbeatMs, slots, closeWhenHubsGone: this.opts.closeWhenHubsGone === true, host: label },
    )
    this.opts.onConnect?.(0)
  }

  /** Requests answered, and handlers running now. */
  stats() {
    const f = this.family?.stats() ?? { served: 0, active: 0 }
    return { served: this.serving.served + f.served, active: this.serving.active + f.active, connected: this.connected }
  }

  private async attach(waitMs: number) {
    const deadline = performance.now() + waitMs
    const cname = busName(this.name)
    const helloMs = this.opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS
    let busySince = -1 // a hub whose accept queue is full exists: give it helloMs to catch up, whatever waitMs says
    const retry = new Backoff(RETRY)
    for (;;) {
      if (this.stopping) throw new BusClosedError("worker closed while connecting")
      const ptr = native.sb_connect_start(cname, this.opts.hubUid ?? ANY_UID, this.err) as Chan | null
      const e = ptr ? await this.finishConnect(ptr, helloMs) : this.err[0]!
      if (ptr && e === 0) {
        // close() may have come while the hello was on its way: then this connection is not wanted.
        if (this.stopping) {
          native.sb_close(ptr)
          throw new BusClosedError("worker closed while connecting")
        }
        this.index = 0
        return this.serve(new Channel(ptr))
      }
      if (RETRYABLE.has(e) && (await this.anyFront())) return
      if (e === E_SOCKET_DIR) throw socketDirError(`cannot attach to hub "${this.name}"`)
      if (e === EPERM)
        throw new PeerRefusedError(
          `hub "${this.name}" and this worker (uid ${process.getuid?.()}) do not trust each other's uid; see allowUids / hubUid`,
        )
      if (e === EAGAIN) busySince = busySince < 0 ? performance.now() : busySince
      else busySince = -1
      const now = performance.now()
      const late = now >= deadline && (busySince < 0 || now - busySince >= helloMs)
      if (e === EAGAIN && late)
        throw new HubNotFoundError(
          `hub "${this.name}" kept its connection queue full for ${helloMs}ms (busy, or flooded by another process); try again or raise helloTimeoutMs`,
        )
      if (e === EUSERS && late)
        throw new PeerRefusedError(
          `hub "${this.name}" has as many workers as it allows (maxWorkers / maxWorkersPerUid); wait (waitForHubMs) or raise its caps`,
        )
      if (e === ETIMEDOUT && late)
        throw new HubNotFoundError(
          `hub "${this.name}" took the connection but sent no hello in ${helloMs}ms; is its event loop blocked?`,
        )
      if (!RETRYABLE.has(e) && e !== EUSERS && e !== ETIMEDOUT && e !== EAGAIN)
        throw new ProtocolError(`cannot attach to hub "${this.name}": error ${-e}`)
      if (late)
        throw new HubNotFoundError(
          `no hub is listening as "${this.name}"; start it first, or pass waitForHubMs / reconnect`,
        )
      if (this.judged && !this.orphan && !parentAlive(this.parentPid)) {
        this.exitIfAsked("the front that started it is gone")
        throw new HubNotFoundError(
          `the front that started this worker of "${this.name}" (pid ${this.parentPid}) is gone; its pool goes with it`,
        )
      }
      // The last try comes at the give-up time, not a whole (up to 500 ms) delay after it.
      const giveUpAt = busySince < 0 ? deadline : Math.max(deadline, busySince + helloMs)
      await sleep(retry.nextWithin(giveUpAt - now))
    }
  }

  /** Waits for the hub's hello without blocking the event loop: the hub may live on this very thread. */
  private async finishConnect(ptr: Chan, helloMs: number): Promise<number> {
    const deadline = performance.now() + helloMs
    let r: number
    while ((r = native.sb_connect_finish(ptr, 0)) === EAGAIN && performance.now() < deadline && !this.stopping)
      await sleep(1)
    if (r !== 0) native.sb_close(ptr)
    return r === EAGAIN ? ETIMEDOUT : r
  }

  private serve(chan: Channel) {
    this.chan = chan
    this.held = new Array<SlotRequest | null>(chan.slotCount).fill(null)
    this.heldGen = new Uint32Array(chan.slotCount)
    this.heldWindow = new Uint32Array(chan.slotCount)
    this.sinks = Array.from(
      { length: chan.slotCount },
      (_, slot) => new SlotSink(chan, slot, this.held, this.heldGen, this.heldWindow, this.slotPort),
    )
    this.cancelSeen = native.sb_worker_cancel_seq(chan.ptr)
    this.pump = new Pump(chan, this.opts.idle, {
      collect: () => (this.waiting ? 0 : this.collect(chan)),
      wanted: () => true,
      onRingFlood: (rings, parks) =>
        this.lost(chan, "protocol-error", new ProtocolError(`hub rang the doorbell ${rings} times for ${parks} parks`)),
      onError: () => {},
      startupPollNs: STARTUP_POLL_NS,
      crowded: () => chan.crowded,
    })
    let hubClosing = false
    const seen = new Set<number>()
    chan.watchPeer(
      (bytes) => {
        for (const byte of bytes) {
          // Each control byte is legal once per connection (docs/PROTOCOL.md §1).
          if ((byte !== Control.HUB_CLOSING && byte !== Control.DRAIN_ACK) || seen.has(byte))
            return this.lost(
              chan,
              "protocol-error",
              new ProtocolError(
                `hub sent control byte ${byte} ${seen.has(byte) ? "twice" : "that the protocol does not know"}`,
              ),
            )
          seen.add(byte)
          if (byte === Control.HUB_CLOSING) hubClosing = true
          if (byte === Control.DRAIN_ACK) this.onDrainAck?.()
        }
      },
      () => this.lost(chan, hubClosing ? "hub-closed" : "hub-gone"),
    )
    reportRuntime(chan)
    this.opts.onConnect?.(chan.peerPid)
    this.joinFamily()
    // A plain name has one hub: another than the front that started this worker holds it, so that front died
    // before the worker reached it, and the new one starts a pool of its own. (A shared name's family looks.)
    if (!this.family && this.judged && chan.peerPid > 0 && chan.peerPid !== this.parentPid) this.orphaned(0)
    const wait = (this.root ?? this).family?.untilParent(chan.peerPid) ?? null
    this.waiting = wait !== null
    const pump = this.pump
    if (wait)
      void wait.then(() => {
        this.waiting = false
        pump.rouse()
        pump.kick()
      })
    else pump.kick()
  }

  private lost(chan: Channel, reason: WorkerClosed["reason"], error?: Error) {
    if (this.chan !== chan) return
    const gone = new DOMException(
      `the hub of "${this.name}" went away (${reason}); nobody waits for this answer`,
      "AbortError",
    )
    for (const req of this.held) req?.cancel(gone)
    this.wakeStreams(chan)
    this.onDrainAck?.()
    this.pump?.stop()
    chan.close()
    this.chan = null
    this.opts.onDisconnect?.(reason)
    if (this.family && !this.stopping)
      return this.family.lost(chan.peerPid, reason === "hub-closed" ? reason : "hub-gone")
    if (this.judged && chan.peerPid === this.parentPid) this.orphaned()
    if (this.opts.reconnect && !this.stopping) {
      this.attach(Infinity).catch((e: Error) =>
        this.resolveClosed(this.stopping ? { reason: "closed" } : { reason: "hub-gone", error: e }),
      )
    } else this.resolveClosed(error ? { reason, error } : { reason })
  }

  /** The pump's duty: take every request the hub published and start its handler. */
  private collect(chan: Channel): number {
    const m = chan.msg
    let n = 0
    if (chan.isOpen && chan.cancelSeq[0] !== this.cancelSeen) this.readCancels(chan)
    if (this.looks.length > 0) this.wakeStreams(chan)
    // Bounded: each slot is in the ring at most once, so more in one go is a hub that keeps pushing.
    while (n < chan.slotCount) {
      if (!chan.isOpen) break
      const slot = native.sb_worker_poll(chan.ptr)
      if (slot < 0) {
        if (slot === E_CORRUPT)
          this.lost(chan, "protocol-error", new ProtocolError(`hub broke the protocol: ${native.sb_error(chan.ptr)}`))
        break
      }
      n++
      const req = new SlotRequest(
        m[Msg.kind] === Kind.RAW ? "raw" : "http",
        m[Msg.id]!,
        chan,
        slot,
        m[Msg.headLen]!,
        m[Msg.bodyOff]!,
        m[Msg.bodyLen]!,
        this.name,
        m[Msg.window]!,
      )
      this.heldWindow[slot] = req.streamWindow
      this.run(chan, slot, m[Msg.gen]!, req)
    }
    return n
  }

  /** Streams waiting for credit go on once it moved, or their request was given up, or the hub is gone. */
  private wakeStreams(chan: Channel) {
    const stay = this.looks.filter(
      (l) => chan.isOpen && l.req.cancelled === null && chan.streamLimit(l.slot) === l.seen,
    )
    if (stay.length === this.looks.length) return
    const go = this.looks.filter((l) => !stay.includes(l))
    this.looks = stay
    for (const l of go) l.resolve()
  }

  /** The hub asked to cancel something (docs/PROTOCOL.md §3): abort the signal of each held request it named. */
  private readCancels(chan: Channel) {
    this.cancelSeen = native.sb_worker_cancel_seq(chan.ptr)
    for (let slot = 0; slot < this.held.length; slot++) {
      const req = this.held[slot]
      if (req) this.givenUp(chan, slot, this.heldGen[slot]!, req)
    }
  }

  /** Whether the hub gave `req` up (its cancel word names it), aborting its signal the first time it is seen. */
  private givenUp(chan: Channel, slot: number, gen: number, req: SlotRequest): boolean {
    if (req.cancelled === null && chan.isOpen && native.sb_worker_cancelled(chan.ptr, slot, gen) === 1)
      req.cancel(
        new DOMException(
          "the hub gave this request up: its caller aborted or timed out, or its HTTP client went away",
          "AbortError",
        ),
      )
    return req.cancelled !== null
  }

  private run(chan: Channel, slot: number, gen: number, req: SlotRequest) {
    this.held[slot] = req
    this.heldGen[slot] = gen
    chan.hold()
    this.serving.serve(req, this.sinks[slot]!)
  }

  /** What a slot's sink asks of this worker: whether the hub gave a request up, and the credit a stream waits for. */
  private readonly slotPort: SlotPort = {
    givenUp: (chan, slot, gen, req) => this.givenUp(chan, slot, gen, req),
    credit: (slot, seen, req) => {
      const { promise, resolve } = Promise.withResolvers<void>()
      this.looks.push({ slot, seen, req, resolve })
      return promise
    },
  }

  /**
   * Graceful stop: the hub is asked to send nothing new, everything it already sent is answered (for up to
   * timeoutMs, default 5000), then the worker disconnects.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    let timeoutMs: number
    try {
      checkOptions(opts, CLOSE_OPTIONS, "worker.close")
      timeoutMs = checkNumber(opts.timeoutMs, { what: "worker.close: timeoutMs", dflt: 5000 })
    } catch (e) {
      return Promise.reject(e)
    }
    this.stopping ??= (async () => {
      const deadline = performance.now() + timeoutMs
      const siblings = this.family?.close({ timeoutMs })
      if (this.remote) {
        await this.remote.close(timeoutMs)
        return this.resolveClosed({ reason: "closed" })
      }
      const chan = this.chan
      if (chan?.sendControl(Control.DRAIN)) {
        // After the ack the hub publishes nothing more, so one last collect takes all that is left.
        await new Promise<void>((resolve) => {
          this.onDrainAck = resolve
          longTimeout(resolve, deadline - performance.now()).unref()
        })
        if (chan.isOpen) this.collect(chan)
      }
      while (this.serving.active > 0 && this.chan && performance.now() < deadline) await sleep(1)
      if (chan && this.chan === chan) {
        this.pump?.stop()
        chan.close()
        this.chan = null
      }
      await siblings
      this.resolveClosed({ reason: "closed" })
    })()
    return this.stopping
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}
