// The hub side: SlotBus listens under a name and spreads requests over its workers. It is the public API (listen,
// the calls and their checks, stats, close) over the parts it owns and wires together: the Dispatcher
// (dispatcher.ts: the queue, the pick, deadlines), the Acceptor (accept.ts: workers on this host) and, with a
// `remote` transport, remoteHubHost (remote-endpoint.ts: workers on other hosts).
import { Kind, loadNative } from "../../native/ffi.ts"
import { type BodyInit, busName, toBytes } from "../wire/codec.ts"
import { checkOptions, madeBy } from "../../kit/index.ts"
import { BusClosedError } from "../../errors.ts"
import type { BusStats } from "../observe/stats.ts"
import type { HeldBody, Pending, ReadAnswer, WorkerEvent, WorkerInfo } from "../endpoint/endpoint.ts"
import { startClock, startsAtPublish } from "../endpoint/endpoint.ts"
import {
  closeSettings,
  FETCH_OPTIONS,
  hubConfig,
  LISTEN_OPTIONS,
  remoteOptions,
  resolveOptions,
  waitSettings,
  type CloseOptions,
  type ListenOptions,
  type ListenSettings,
  type RemoteOptions,
  type FetchOptions,
  type RequestOptions,
  type WaitOptions,
  type SlotRequestInit,
} from "./options.ts"
import { addTrace, admit, CALL, checkBodySize, encodeHead, FETCH, newPending, REQUEST, type Entry } from "./submit.ts"
import type { BorrowedResponse, SlotResponse, StreamedResponse } from "../endpoint/response.ts"
import { Acceptor } from "./accept.ts"
import { ControlSocket } from "../ops/control.ts"
import { Dispatcher } from "./dispatcher.ts"
import { remoteHubHost } from "../endpoint/remote-endpoint.ts"
import { decodeReply, encodeCall, remoteProxy, type Remote } from "../rpc/rpc.ts"
import type { RemoteLink } from "../wire/remote.ts"
import { BusPools } from "./pools.ts"
import { closedMessage, warnEarlyDispose } from "./early-dispose.ts"
import { asResponse, bodyUpTo, HeldBodies, pathOf } from "./fetch-body.ts"
import {
  exchangeOf,
  httpRoute,
  METRICS,
  METRICS_TAP,
  STATUS,
  type MetricFamily,
  type MetricLabels,
  type StatusSection,
} from "../../kit/index.ts"
import { listenName, type FrontSeat } from "../ops/fronts.ts"
import { openBus, openBuses } from "./open-buses.ts"
import { FlightRecorder } from "../probe/recorder.ts"
import { refuseMethod, sleep } from "../../runtime/index.ts"

const FACTORY = Symbol("SlotBus.listen")

/**
 * The hub: the public API over two parts it owns, the Dispatcher (dispatcher.ts: the workers' books, the queue, answers,
 * deadlines) and the Acceptor (accept.ts: the accept thread, workers joining and leaving).
 */
export class SlotBus {
  private disposed = false
  private readonly createdAt = performance.now()
  private readonly settings: ListenSettings
  private remoteLink: RemoteLink | null = null
  /** @internal superviseWorkers' pools: their failures, what they ask, their stop at close */ readonly pools: BusPools
  private readonly dispatcher: Dispatcher
  /** bus.fetch's bodies: maxBodyBytes each, maxHeldBodyBytes held in all */ private readonly bodies: HeldBodies
  private readonly gaveUp = () => this.pools.gaveUp() // made once: what refuses a request once the pools gave up
  /** @internal */ readonly acceptor: Acceptor // (crowdTogether: the processes of a group of buses count together)
  /** The control socket `slotbus call` reaches the workers through (docs/PROTOCOL.md §14); null without one. */
  private control: ControlSocket | null = null
  /** @internal The seat of a shared front among the fronts of its name (docs/PROTOCOL.md §15); null when not shared. */
  front: FrontSeat | null = null
  /** @internal Set once close() began. */ closing: Promise<void> | null = null

  private constructor(
    key: symbol,
    readonly name: string,
    listenFd: number,
    doorFd: number,
    opts: ListenOptions,
  ) {
    madeBy(key, FACTORY, "SlotBus", "await SlotBus.listen(name, options)")
    const s = (this.settings = resolveOptions(opts))
    const recorder = s.recorder > 0 ? FlightRecorder.create(name, s.recorder) : null
    this.bodies = new HeldBodies(
      s.maxBodyBytes,
      s.maxHeldBodyBytes,
      `bus "${name}"`,
      "raise maxHeldBodyBytes (or the slots or workers that take them) in SlotBus.listen's options",
    )
    this.dispatcher = new Dispatcher(
      name,
      { maxBody: s.maxBodyBytes, remotePolicy: s.remotePolicy, metricsRoutes: s.metricsRoutes, recorder },
      { joined: (e) => this.acceptor.joined(e), left: (worker) => this.acceptor.left(worker) },
    )
    this.pools = new BusPools(
      this.dispatcher,
      (err) => {
        for (const p of [...this.dispatcher.queue]) this.dispatcher.fail(p, err)
        for (const w of [...this.acceptor.waiters]) w.reject(err)
      },
      () => (this.closing ? this.closedError() : null),
      { name, maxWorkers: Math.min(s.maxWorkers, s.maxWorkersPerUid) },
    )
    this.acceptor = new Acceptor(this.dispatcher, name, {
      listenFd,
      doorFd,
      config: hubConfig(s),
      idle: s.idle,
      maxWorkers: s.maxWorkers,
      maxPerUid: s.maxWorkersPerUid,
      uids: s.allowUids,
      stuckAfterMs: s.stuckAfterMs,
      maxStuck: s.maxStuckSlots,
      recorder,
    })
  }

  /** Start serving `name`: workers connect to it with `SlotWorker.connect(name, handler)`. */
  static async listen(name: string, opts: ListenOptions = {}): Promise<SlotBus> {
    const cname = busName(name)
    checkOptions(opts, LISTEN_OPTIONS, "SlotBus.listen")
    if (opts.hot !== undefined && typeof opts.hot !== "boolean") throw new TypeError("hot must be a boolean")
    const mine = openBus<SlotBus>(name, opts)
    if (mine) return mine
    await loadNative()
    const { fd, door, seat, unbind } = await listenName(name, opts)
    let bus: SlotBus
    try {
      bus = new SlotBus(FACTORY, name, fd, door, opts)
    } catch (e) {
      unbind()
      throw e
    }
    try {
      bus.front = seat
      bus.acceptor.watch()
      const control = () =>
        ControlSocket.open(
          name,
          cname,
          { fetch: (req, o) => bus.fetch(req, o), reload: (command, o) => bus.pools.shared.reload(command, o) },
          seat !== null,
        )
      // a shared name's control socket is its leader's, the front that runs the pool (docs/PROTOCOL.md §14.4)
      if (seat) seat.onLeader(() => void (bus.control ??= bus.closing ? null : control()))
      else bus.control = control()
    } catch (e) {
      unbind()
      bus.dispatcher.observer.close()
      throw e
    }
    openBuses.add(bus, opts)
    bus.dispatcher.tick()
    if (bus.settings.remote) {
      try {
        await bus.listenRemote(bus.settings.remote)
      } catch (e) {
        await bus.close({ drain: false })
        throw e
      }
    }
    return bus
  }

  /** Takes workers on other hosts too, through the transport given as `remote` (docs/PROTOCOL.md §10). */
  private async listenRemote({ transport, heartbeatMs, peerTimeoutMs }: NonNullable<ListenSettings["remote"]>) {
    const host = remoteHubHost(this.dispatcher, () => void this.dispatcher.counters.rejectedMessage())
    const streamWindow = this.settings.streamWindowBytes
    this.remoteLink = await transport.serveHub(host, { heartbeatMs, peerTimeoutMs, streamWindow })
  }

  /** Send an HTTP-like request to the least busy worker. */
  request(init: SlotRequestInit, opts: RequestOptions & { stream: true }): Promise<StreamedResponse>
  request(init: SlotRequestInit, opts: RequestOptions & { borrow: true }): Promise<BorrowedResponse>
  request(init: SlotRequestInit, opts?: RequestOptions & { borrow?: false }): Promise<SlotResponse>
  request(init: SlotRequestInit, opts?: RequestOptions): Promise<SlotResponse | BorrowedResponse | StreamedResponse>
  request(init: SlotRequestInit, opts?: RequestOptions): Promise<SlotResponse | BorrowedResponse | StreamedResponse> {
    return this.submit(REQUEST, init, opts) as Promise<SlotResponse>
  }

  /**
   * @internal A client's request (the HTTP hub's; nodeHandler's, HEAD_FETCH) cancelled by its signal as bus.fetch's;
   * `held`, its body's bytes counted by the caller, given back once the body is in a slot or the request is over.
   */
  requestFor(
    request: { readonly signal: AbortSignal },
    init: SlotRequestInit,
    opts: RequestOptions & { stream: true },
    entry: Entry = REQUEST,
    held: HeldBody | null = null,
  ): Promise<StreamedResponse> {
    return this.submit(entry, init, opts, null, request, held) as Promise<StreamedResponse>
  }

  /** Send raw bytes; resolves with the worker's raw reply (with `borrow`, a BorrowedResponse over it). */
  call(body: BodyInit, opts: RequestOptions & { stream: true }): Promise<StreamedResponse>
  call(body: BodyInit, opts: RequestOptions & { borrow: true }): Promise<BorrowedResponse>
  call(body: BodyInit, opts?: RequestOptions & { borrow?: false }): Promise<Uint8Array>
  call(body: BodyInit, opts?: RequestOptions): Promise<Uint8Array | BorrowedResponse | StreamedResponse>
  call(body: BodyInit, opts?: RequestOptions): Promise<Uint8Array | BorrowedResponse | StreamedResponse> {
    return this.submit(CALL, { body }, opts) as Promise<Uint8Array>
  }

  /**
   * Hands a Web Request to the least busy worker and answers with its Response: one line in a `Bun.serve` route
   * (`fetch: (req) => bus.fetch(req)`). The worker sees the path and query, method, headers and body; the request's
   * signal (or `opts.signal`) cancels it (the request's own is read once the request has been out for a tick of
   * the bus, ≤ 10 ms: a quicker answer never makes Bun build it). The Response comes at the worker's status and
   * headers and its body streams as the worker produces it. Failures reject as with `request()` (TimeoutError,
   * RemoteError, …); a failure after the headers errors the body. CONNECT, TRACE and TRACK get 501 here.
   */
  fetch(request: Request, opts?: FetchOptions): Promise<Response> {
    try {
      if (!(request instanceof Request)) throw new TypeError("bus.fetch() takes a Request")
      const o = checkOptions(opts, FETCH_OPTIONS, "bus.fetch")
      const refused = refuseMethod(request.method) // as every slotbus server: no worker's Request carries them
      if (refused) return Promise.resolve(refused)
      // no body (a GET): nothing to read, and no turn spent waiting for it
      if (request.body === null) return this.fetchWith(request, o, undefined)
      return bodyUpTo(request, this.bodies, o.timeoutMs ?? this.settings.timeoutMs, o.signal).then(
        (read) => this.fetchWith(request, o, read?.body, read?.held),
        (e) => this.refused(e, request.signal.aborted || o.signal?.aborted === true),
      )
    } catch (e) {
      return this.refused(e)
    }
  }

  private fetchWith(request: Request, opts: FetchOptions, body?: Uint8Array, held?: HeldBody): Promise<Response> {
    // opts.signal is watched at once; the Request's own only once the request is out at a tick (Pending.signalOf)
    const signal =
      opts.signal && opts.signal !== request.signal ? AbortSignal.any([opts.signal, request.signal]) : undefined
    const { timeoutMs, streamIdleMs, idempotent, traceparent, tracestate } = opts
    // inside instrument(): the route names the front's span and histogram sample; one named there is carried on
    const route = opts.route ?? exchangeOf(request)?.route
    if (opts.route !== undefined) httpRoute(request, opts.route)
    const res = this.submit(
      FETCH,
      { method: request.method, path: pathOf(request.url), headers: request.headers, body },
      { timeoutMs, streamIdleMs, idempotent, signal, stream: true, traceparent, tracestate, route },
      null,
      signal ? null : request,
      held ?? null,
    ) as Promise<StreamedResponse | Response>
    return res.then((r) => asResponse(r, this))
  }

  /**
   * The functions workers expose (`SlotWorker.expose`), as methods that return promises of their results, typed
   * by the worker's API type: `bus.remote<Api>().resize(img, 300)`. `opts` apply to every call made through it;
   * for one call's signal, make one for that call: `bus.remote<Api>({ signal }).resize(img, 300)`.
   */
  remote<Api extends object>(opts: RemoteOptions = {}): Remote<Api> {
    const o = remoteOptions(opts, "bus.remote")
    return remoteProxy<Api>((method, args) => this.rpc(method, args, o))
  }

  /** One call of the function `method` a worker exposes, by name: what `bus.remote()`'s methods do. */
  invoke(method: string, args: readonly unknown[] = [], opts: RemoteOptions = {}): Promise<unknown> {
    try {
      if (!Array.isArray(args)) throw new TypeError(`bus.invoke takes the arguments as an array, got ${typeof args}`)
      return this.rpc(method, args, remoteOptions(opts, "bus.invoke"))
    } catch (e) {
      return this.refused(e)
    }
  }

  private rpc(method: string, args: readonly unknown[], opts: RemoteOptions): Promise<unknown> {
    try {
      if (typeof method !== "string" || method === "" || method.includes("\0"))
        throw new TypeError(`a remote function's name is a non-empty string without NUL, got ${String(method)}`)
      const { verb, body } = encodeCall(method, args, this.settings.maxBodyBytes)
      // the reply is decoded where it lies in the slot (no copy, no view lent to anyone), then the slot goes back
      const read = (status: number, bytes: Uint8Array) => decodeReply(method, status, bytes)
      return this.submit(REQUEST, { method: verb, path: method, body }, opts, read)
    } catch (e) {
      return this.refused(e)
    }
  }

  private closedError(): BusClosedError {
    return new BusClosedError(closedMessage(this.name, this.disposed))
  }

  /** Tells `listener` each time a worker joins or leaves; returns the unsubscribe function. */
  onWorker(listener: (event: WorkerEvent) => void): () => void {
    if (typeof listener !== "function") throw new TypeError("onWorker takes a function (event) => void")
    this.acceptor.listeners.add(listener)
    return () => void this.acceptor.listeners.delete(listener)
  }

  /** A request's way in (the steps are submit.ts's): checked, encoded, traced, then queued for a worker. */
  private submit(
    entry: Entry,
    init: SlotRequestInit,
    options?: RequestOptions,
    read: ReadAnswer | null = null,
    signalOf: { readonly signal: AbortSignal } | null = null,
    held: HeldBody | null = null,
  ) {
    try {
      if (this.closing) throw this.closedError()
      const opts = admit(entry, init, options)
      if (init.body instanceof Blob)
        return init.body
          .bytes()
          .then((body): Promise<unknown> => this.submit(entry, { ...init, body }, opts, read, signalOf))
      const s = this.settings
      const body = toBytes(init.body, "body")
      const strings = entry.kind === Kind.HTTP ? encodeHead(init, s.maxHeadBytes) : null
      checkBodySize(body, s.maxBodyBytes)
      const p = newPending(entry, strings, body, opts, s, read, held)
      if (p.signal?.aborted) return this.refused(p.signal.reason, true, held)
      p.signalOf = signalOf
      this.dispatcher.checkRoom(s.queue)
      addTrace(p, opts, entry, this.name, s.maxHeadBytes)
      return this.enqueue(p)
    } catch (e) {
      return this.refused(e, false, held)
    }
  }

  /** A request failing before it is queued: counted (stats(), GET /metrics) as failed or cancelled; its body let go. */
  private refused(e: unknown, cancelled = false, held: HeldBody | null = null): Promise<never> {
    held?.giveBack()
    this.dispatcher.observer.refused(e, cancelled)
    return Promise.reject(e)
  }

  /** Hands the request to the Dispatcher, which settles its promise: its clock starts (startClock), a signal aborts it. */
  private enqueue(p: Pending): Promise<unknown> {
    const promise = new Promise<unknown>((res, rej) => ((p.resolve = res), (p.reject = rej))) // half withResolvers' cost
    if (!startsAtPublish(p)) startClock(p)
    if (p.signal) this.dispatcher.watch(p, p.signal)
    this.dispatcher.add(p, p.timeoutMs, this.gaveUp)
    return promise
  }

  /**
   * Resolves once at least `n` workers are connected. `timeoutMs` (default 10 000; 0 waits forever) rejects with
   * TimeoutError, `signal` with its reason. The old form `waitForWorkers(n, timeoutMs)` still works.
   */
  waitForWorkers(n = 1, opts: number | WaitOptions = {}): Promise<void> {
    let o: { timeoutMs: number; signal?: AbortSignal }
    try {
      o = waitSettings(n, opts)
    } catch (e) {
      return Promise.reject(e)
    }
    if (this.dispatcher.workerCount >= n) return Promise.resolve()
    if (this.closing) return Promise.reject(new BusClosedError(`bus "${this.name}" is closed`))
    const gaveUp = this.pools.gaveUp()
    if (gaveUp) return Promise.reject(gaveUp)
    return this.acceptor.waitFor(n, o.timeoutMs, o.signal)
  }

  /**
   * @internal The HTTP hub's pick (a bus per worker process): a worker of this bus on this host holds fewer requests
   * than its packCap, so a request sent now is taken without another worker being woken (dispatcher.ts's pick).
   */
  get packRoom(): boolean {
    return this.dispatcher.packRoom()
  }

  /** Workers connected now, on this host and others. */
  get workerCount(): number {
    return this.dispatcher.workerCount
  }

  /** Each worker connected now: on this host (transport "shm"), then on others (the remote transport's name). */
  get workers(): WorkerInfo[] {
    return this.dispatcher.endpoints.map((e) => e.info())
  }

  stats(): BusStats {
    return this.dispatcher.observer.stats(this.workers, this.dispatcher.queue.length, this.bodies.bytes)
  }

  /** What `serveStatus` shows of this bus: its workers here and on other hosts, slots, latency, pools. */
  [STATUS](): StatusSection {
    const link = this.remoteLink
    return this.dispatcher.observer.section(this.stats(), {
      upMs: performance.now() - this.createdAt,
      pools: this.pools.describe(),
      front: this.front && { index: this.front.index, leader: this.front.leader, covering: this.front.coveringFor },
      remote: link && {
        transport: String(this.settings.remote!.transport.transport ?? "remote"),
        server: link.server?.() ?? "?",
        connected: link.connected,
        policy: this.dispatcher.remotePolicy,
      },
    })
  }

  /** What GET /metrics (serveStatus) shows of this bus: the slotbus_* families of docs/api.md, labelled bus="<name>". */
  [METRICS](): MetricFamily[] {
    const leads = this.front === null || this.front.runsPool
    return this.dispatcher.observer.families(this.stats(), this.pools.describe(), leads)
  }

  /** OpenTelemetry (reportToMeter, kit/telemetry/otel-metrics.ts): each duration and queue wait, as it is recorded. */
  [METRICS_TAP](record: (family: string, labels: MetricLabels, seconds: number) => void): () => void {
    return this.dispatcher.observer.tap(record)
  }

  /**
   * Stop accepting requests and workers, and stop the superviseWorkers pools that feed it. With `drain` (default)
   * requests already accepted may finish for up to `timeoutMs` (default 5000); what is left fails with BusClosedError.
   * Resolves once the pools' worker processes exited too.
   */
  async close(opts: CloseOptions = {}): Promise<void> {
    const o = closeSettings(opts) // a bad option: a rejection
    openBuses.remove(this)
    this.closing ??= this.shutdown(o.drain, o.timeoutMs)
    return this.closing
  }

  private async shutdown(drain: boolean, timeoutMs: number) {
    const pools = this.pools.closing() // before their workers see the hub go: that is no crash
    await this.acceptor.stop()
    // a shared front's control socket goes with its seat, before the next leader (running the pool now) opens it
    if (this.front) await this.control?.close()
    this.front?.close()
    for (const w of [...this.acceptor.waiters])
      w.reject(new BusClosedError(`bus "${this.name}" closed while waiting for workers`))
    const deadline = performance.now() + timeoutMs
    while (drain && this.dispatcher.drainable && performance.now() < deadline) await sleep(1)
    await this.control?.close()
    this.dispatcher.stop()
    const err = new BusClosedError(`bus "${this.name}" closed before the request finished`)
    this.dispatcher.failAll(err)
    await this.remoteLink?.close(0)
    this.acceptor.dropAll(err)
    this.dispatcher.observer.close()
    await pools // their processes exited: a test runner or a process exiting after close() sees none left
  }

  /** `await using bus = …` closes the bus where its scope ends (at a server module's top, too soon: early-dispose.ts). */
  [Symbol.asyncDispose]() {
    this.disposed = true
    warnEarlyDispose(this.name, this.createdAt, this.dispatcher.counters.requests)
    return this.close()
  }
}

/** The index of `x` among the shared fronts of its name (docs/PROTOCOL.md §15), or null: no SlotBus, or not shared. */
export const frontIndexOf = (x: unknown): number | null => (x instanceof SlotBus ? (x.front?.index ?? null) : null)
