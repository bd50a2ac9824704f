// Workers on this host coming and going: the accept thread's doorbell, a new worker's SlotEndpoint, and dropping one
// (cut off, evicted, gone). The Acceptor is the part of a SlotBus that owns the connections; workers join and leave
// the Dispatcher's books (dispatcher.ts) through its join() and leave(), and the bus (bus.ts) is the public API over
// both. It also keeps the bus's listeners and waitForWorkers's callers, told of every worker, here or remote.
import { native, HubConfig, FullMask, Control, Errno, type Chan } from "../../native/ffi.ts"
import { Channel } from "../wire/channel.ts"
import { ProtocolError, SlotBusError, TimeoutError, WorkerGoneError } from "../../errors.ts"
import { longTimeout } from "../../kit/index.ts"
import type { IdleStrategy } from "../wire/idle-strategy.ts"
import type { Endpoint, WorkerEvent, WorkerInfo } from "../endpoint/endpoint.ts"
import { stackless } from "../endpoint/response.ts"
import type { Dispatcher } from "./dispatcher.ts"
import { SlotEndpoint } from "../endpoint/slot-endpoint.ts"
import type { FlightRecorder } from "../probe/recorder.ts"
import { Crowd } from "./at-work.ts"
import { fdReader, type Pointer } from "../../runtime/index.ts"
import { unlisten } from "../ops/listening.ts"

// Accept work per event-loop turn; a turn that refused someone waits before the next.
const ACCEPTS_PER_TURN = 8
const REFUSED_PAUSE_MS = 20
// At most one line a bus per this long says it is out of fds (a pool restarting its workers tries again and again).
const FDS_LOG_EVERY_MS = 10_000

/** What an acceptor is told at its making: the listening socket and the bus's limits on workers. */
export interface AcceptSettings {
  listenFd: number
  /** The door for workers of other uids (docs/PROTOCOL.md §1.1), -1 when the bus has none. */
  doorFd: number
  /** The hello's words (slots, arena, …, the allowed uids): the full mask is written into it before each accept. */
  config: Uint32Array
  idle: IdleStrategy | undefined
  maxWorkers: number
  maxPerUid: number
  uids: number[]
  /** A slot its worker still holds this long past its request's deadline (or giving up, if later) is stuck. */
  stuckAfterMs: number
  /** A worker holding this many stuck slots is evicted. */
  maxStuck: number
  /** The bus's flight recorder (docs/PROTOCOL.md §16), or null. */
  recorder: FlightRecorder | null
}

export class Acceptor {
  private readonly err = new Int32Array(2)
  /** waitForWorkers's callers: resolved when `n` workers are connected. */
  readonly waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = []
  /** onWorker's listeners. */
  readonly listeners = new Set<(e: WorkerEvent) => void>()
  /** The workers on this host, connected now. */
  private readonly endpoints = new Set<SlotEndpoint>()
  private closing = false
  private crowd = new Crowd()
  /** One accept thread per listening socket (the socket file, and the door when there is one). */
  private readonly watches: { fd: number; w: Pointer; reader: { cancel(): Promise<void> } | null }[] = []

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly name: string,
    private readonly settings: AcceptSettings,
  ) {}

  evict(endpoint: SlotEndpoint) {
    if (!this.endpoints.has(endpoint)) return
    endpoint.chan.sendControl(Control.HUB_CLOSING)
    this.drop(
      endpoint,
      new WorkerGoneError(
        `worker pid ${endpoint.chan.peerPid} of "${this.name}" was disconnected: its handlers hung on ${this.settings.maxStuck}+ requests`,
      ),
    )
  }

  /** Its worker closed the socket or died (EOF), or exited while a child it forked holds the socket (a tick saw). */
  gone(endpoint: SlotEndpoint) {
    const pid = endpoint.chan.peerPid
    this.drop(
      endpoint,
      stackless(
        () =>
          new WorkerGoneError(
            `worker pid ${pid} of "${this.name}" disconnected or died before answering; retry the request`,
          ),
      ),
    )
  }

  /** Each listening socket is watched by a "slotbus-accept" thread, which rings an eventfd when a peer waits. */
  watch() {
    for (const fd of [this.settings.listenFd, this.settings.doorFd]) {
      if (fd < 0) continue
      const w = native.sb_accept_watch_start(fd, this.err) as Pointer | null
      if (!w) throw new SlotBusError(`cannot start the accept thread of "${this.name}": errno ${-this.err[0]!}`)
      const watch = { fd, w, reader: null }
      this.watches.push(watch)
      this.readAccepts(watch)
    }
  }

  /** One read of the thread's eventfd per wake-up, for as long as the bus is open. */
  readAccepts(watch: Acceptor["watches"][number]) {
    const { w, fd } = watch
    const reader = fdReader(native.sb_accept_watch_fd(w))
    watch.reader = reader
    const next = (): void => {
      reader.read().then(
        (r) => {
          if (this.closing) return
          if (r.done) return this.acceptFailed(watch, new Error("the doorbell stream ended"))
          let refused = false
          try {
            refused = this.acceptSome(fd)
          } catch {
            this.dispatcher.counters.internalError()
          }
          const rearm = () => {
            if (this.closing) return
            native.sb_accept_watch_rearm(w)
            next()
          }
          // Whoever floods the socket with refused connections gets ACCEPTS_PER_TURN of them per pause.
          if (refused) setTimeout(rearm, REFUSED_PAUSE_MS)
          else setImmediate(rearm)
        },
        (e) => this.acceptFailed(watch, e),
      )
    }
    next()
  }

  /** Reading the accept doorbell failed: say so, count it, and read again on a fresh stream, so accepting never stops in silence. */
  acceptFailed(watch: Acceptor["watches"][number], e: unknown) {
    if (this.closing) return
    this.dispatcher.counters.acceptError()
    console.warn(
      `slotbus: bus "${this.name}" lost its accept doorbell (${e instanceof Error ? e.message : String(e)}); accepting again in ${REFUSED_PAUSE_MS} ms`,
    )
    setTimeout(() => {
      if (this.closing) return
      native.sb_accept_watch_rearm(watch.w)
      this.readAccepts(watch)
    }, REFUSED_PAUSE_MS)
  }

  /** Accepts up to ACCEPTS_PER_TURN waiting peers; true if any was refused. */
  acceptSome(listenFd: number): boolean {
    let refused = false
    for (let i = 0; i < ACCEPTS_PER_TURN && !this.closing; i++) {
      this.settings.config[HubConfig.fullMask] = this.fullMask()
      const ptr = native.sb_accept(listenFd, this.settings.config, this.err, this.err.subarray(1)) as Chan | null
      if (ptr) {
        this.addLink(new Channel(ptr, "hub"))
        continue
      }
      const e = this.err[0]
      if (e === Errno.EPERM || e === Errno.EUSERS) this.dispatcher.counters.refusedPeer(e === Errno.EUSERS)
      else if (e === Errno.EMFILE || e === Errno.ENFILE)
        return this.outOfFds(e) // the worker was told so (§1)
      else return refused // EAGAIN (nobody else waits), or a failure with this one peer: the watcher looks again
      refused = true
    }
    return refused
  }

  private fdsLoggedAt = Number.NEGATIVE_INFINITY
  private fdsUnlogged = 0

  /** A worker refused for want of fds: counted, and said on stderr at most every FDS_LOG_EVERY_MS; then a pause. */
  outOfFds(e: number): true {
    this.dispatcher.counters.acceptError()
    this.fdsUnlogged++
    const now = performance.now()
    if (now - this.fdsLoggedAt < FDS_LOG_EVERY_MS) return true
    const code =
      e === Errno.EMFILE
        ? "EMFILE: this process is at its open-file limit, ulimit -n"
        : "ENFILE: the system is at its open-file limit, fs.file-max"
    const count = this.fdsUnlogged === 1 ? "" : ` (${this.fdsUnlogged} refused since this was last said)`
    console.warn(
      `slotbus: bus "${this.name}" cannot accept a worker: out of file descriptors (${code}); refused it and told it why${count}. Raise the limit, or run fewer workers`,
    )
    this.fdsLoggedAt = now
    this.fdsUnlogged = 0
    return true
  }

  fullMask(): number {
    if (this.endpoints.size >= this.settings.maxWorkers) return FullMask.ALL
    let mask = 0
    const own = process.getuid?.() ?? -1
    const count = (uid: number) => {
      let n = 0
      for (const l of this.endpoints) if (l.chan.peerUid === uid) n++
      return n
    }
    if (count(own) >= this.settings.maxPerUid) mask |= FullMask.OWN_UID
    this.settings.uids.forEach((u, i) => {
      if (u !== own && count(u) >= this.settings.maxPerUid) mask |= 1 << i
    })
    return mask
  }

  addLink(chan: Channel) {
    this.settings.recorder?.attach(chan.ptr)
    const endpoint = new SlotEndpoint(
      chan,
      this.dispatcher,
      {
        cutOff: (l, what) => this.cutOff(l, what),
        evict: (l) => this.evict(l),
        gone: (l) => this.gone(l),
        sent: (l) => this.crowd.sent(l),
      },
      this.settings,
    )
    chan.watchPeer(
      (bytes) => {
        // Each control byte is legal once per connection (docs/PROTOCOL.md §1); a worker sends only DRAIN.
        endpoint.controlBytes += bytes.length
        if (endpoint.controlBytes > 1 || bytes[0] !== Control.DRAIN)
          return this.cutOff(endpoint, `sent ${endpoint.controlBytes} control bytes (only one "D" is allowed)`)
        endpoint.drain()
        chan.sendControl(Control.DRAIN_ACK)
        this.dispatcher.freed()
      },
      () => this.gone(endpoint),
    )
    this.endpoints.add(endpoint)
    this.crowd.members.add(this)
    chan.tellProcesses(this.crowd.atWork)
    this.dispatcher.join(endpoint)
  }

  /** Each worker of this bus hears how many processes on this host are at work for it (its idle strategy reads it). */
  tellProcesses(n: number) {
    for (const l of this.endpoints) l.chan.tellProcesses(n)
  }

  /** Counts this bus's worker processes with those of `crowd`'s other buses from now on. */
  joinCrowd(crowd: Crowd) {
    const busy = [...this.endpoints].filter((l) => l.inFlight > 0)
    for (const l of this.endpoints) this.crowd.left(l)
    this.crowd.members.delete(this)
    this.crowd = crowd
    if (this.endpoints.size > 0) crowd.members.add(this)
    for (const l of busy) crowd.sent(l)
    crowd.tell(true)
  }

  cutOff(endpoint: SlotEndpoint, what: string) {
    if (!this.endpoints.has(endpoint)) return
    this.dispatcher.counters.protocolError()
    this.drop(
      endpoint,
      new ProtocolError(`worker pid ${endpoint.chan.peerPid} of "${this.name}" ${what}; it was disconnected`),
    )
  }

  drop(endpoint: SlotEndpoint, err: Error) {
    if (!this.endpoints.delete(endpoint)) return
    if (this.endpoints.size === 0) this.crowd.members.delete(this)
    this.crowd.left(endpoint)
    this.dispatcher.leave(endpoint, err)
  }

  /** The bus closed (`err`): every worker on this host is told and let go. */
  dropAll(err: Error) {
    for (const l of [...this.endpoints]) {
      l.chan.sendControl(Control.HUB_CLOSING)
      this.drop(l, err)
    }
  }

  emitInfo(type: WorkerEvent["type"], worker: WorkerInfo) {
    for (const f of [...this.listeners])
      try {
        f({ type, worker })
      } catch (e) {
        queueMicrotask(() => {
          throw e // the listener's bug, reported as an uncaught error; the bus goes on
        })
      }
  }

  /**
   * waitForWorkers's wait, once the bus found nothing to refuse: resolves once `n` workers are connected; rejects with
   * TimeoutError after `timeoutMs` (0: never) or with `signal`'s reason.
   */
  waitFor(n: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const w = { n, resolve: () => done(resolve), reject: (e: Error) => done(() => reject(e)) }
    const timer =
      timeoutMs > 0
        ? longTimeout(() => {
            const had = this.dispatcher.workerCount
            w.reject(new TimeoutError(`${had} of ${n} workers connected to "${this.name}" after ${timeoutMs}ms`))
          }, timeoutMs)
        : undefined
    const onAbort = () => done(() => reject(signal!.reason))
    signal?.addEventListener("abort", onAbort, { once: true })
    const done = (f: () => void) => {
      timer?.clear()
      signal?.removeEventListener("abort", onAbort)
      const i = this.waiters.indexOf(w)
      if (i >= 0) this.waiters.splice(i, 1)
      f()
    }
    this.waiters.push(w)
    return promise
  }

  /** A worker, here or on another host, joined the books: its listeners hear of it, waitForWorkers may be done. */
  joined(e: Endpoint) {
    if (this.listeners.size > 0) this.emitInfo("join", e.info())
    for (const w of [...this.waiters]) if (this.dispatcher.workerCount >= w.n) w.resolve()
  }

  left(worker: WorkerInfo) {
    this.emitInfo("leave", worker)
  }

  /** Stops accepting: the accept thread, then the listening socket. */
  async stop() {
    this.closing = true
    // Bun lets go of the thread's eventfd first (it never closes it itself), then the thread is joined and
    // its fds closed, then nobody polls the listening socket and it can close.
    const watches = this.watches.splice(0)
    for (const watch of watches) await watch.reader?.cancel().catch(() => {})
    for (const watch of watches) native.sb_accept_watch_stop(watch.w)
    for (const fd of [this.settings.listenFd, this.settings.doorFd]) {
      if (fd < 0) continue
      unlisten(fd) // the socket file (docs/PROTOCOL.md §1.1), before the socket closes
    }
  }
}
