// Requests out: the queue, the pick of the least busy worker, deadlines, and a request's settling. The Dispatcher is
// the part of a SlotBus that holds the queue and the books of which worker holds what; each kind of worker
// (slot-endpoint.ts on this host, remote-endpoint.ts on others) keeps its own requests and joins and leaves
// through join() and leave(). It knows neither kind, nor how workers are accepted.
import { BusFullError, PoisonRequestError, TimeoutError, WorkerGoneError } from "../../errors.ts"
import { MAX_TIMER_MS } from "../../kit/index.ts"
import { BusObserver } from "../observe/observe.ts"
import type { BusCounters } from "../probe/counters.ts"
import {
  isRpcCall,
  letGo,
  nowMs,
  startClock,
  type Endpoint,
  type EndpointHost,
  type Pending,
  type StreamHost,
  type WorkerInfo,
} from "../endpoint/endpoint.ts"
import { StreamedResponse } from "../endpoint/response.ts"
import { answerValue } from "../endpoint/answer-value.ts"
import type { FlightRecorder } from "../probe/recorder.ts"
import { nanoseconds } from "../../runtime/index.ts"

// Deadlines and stuck slots are checked on a timer while requests are out; an idle bus has no timer at all.
export const TICK_BUSY_MS = 10
const ONCE = { once: true }

/** What a dispatcher is told at its making: its bus's limits. */
export interface DispatchSettings {
  maxBody: number
  /** When a remote worker gets a request: only when no local slot is free, by load, or never. */
  remotePolicy: "overflow" | "balance" | "never"
  /** Distinct routes (or RPC methods) whose durations /metrics shows apart; 0: none. */
  metricsRoutes: number
  /** The bus's flight recorder (docs/PROTOCOL.md §16), or null. */
  recorder: FlightRecorder | null
}

/** Whom a dispatcher tells of workers joining and leaving (the bus's listeners and waitForWorkers, accept.ts). */
export interface DispatchHooks {
  joined(e: Endpoint): void
  left(worker: WorkerInfo): void
}

export class Dispatcher implements EndpointHost {
  /** Every worker the dispatcher may pick, nearest first (the order `bus.workers` lists them in). */
  readonly endpoints: Endpoint[] = []
  readonly queue: Pending[] = []
  private ticker: ReturnType<typeof setTimeout> | undefined
  private tickAt = 0
  /** Told of each request's moments: counters, metrics, the flight recorder, traces (observe.ts). */
  readonly observer: BusObserver
  readonly counters: BusCounters
  private stopped = false
  /** Whom a worker's request limit tells (retireAfter). */
  private readonly due = new WeakMap<Endpoint, () => void>()
  /**
   * Workers kept for retried requests (retryOrFail), by the one each holds, or null while it drains for the next:
   * a retry runs alone on its worker, so a death while holding it names it and no bystander (pickAlone).
   */
  private readonly alone = new Map<Endpoint, Pending | null>()

  constructor(
    readonly name: string,
    private readonly settings: DispatchSettings,
    private readonly hooks: DispatchHooks,
  ) {
    this.observer = new BusObserver(name, settings.metricsRoutes, settings.recorder)
    this.counters = this.observer.counters
  }

  /** Workers connected now, on this host and others. */
  get workerCount(): number {
    return this.endpoints.length
  }

  get maxBody(): number {
    return this.settings.maxBody
  }

  get recorder() {
    return this.settings.recorder
  }

  /** Requests whose callers still wait: queued, or held by a worker. */
  get busy(): boolean {
    return this.queue.length > 0 || this.endpoints.some((e) => e.waiting > 0)
  }

  /** Busy, with a worker connected that could finish it (with none, what is queued would wait for nothing). */
  get drainable(): boolean {
    return this.endpoints.length > 0 && this.busy
  }

  /**
   * A new request: counted, the ticks started or brought forward to its deadline (an idle bus does not tick),
   * then sent, or queued behind the requests already waiting, or failed with what `refusal` says when nothing may
   * take it.
   */
  add(p: Pending, timeoutMs: number, refusal: () => Error | undefined) {
    this.counters.request()
    const sent = this.queue.length === 0 && this.dispatch(p) // behind a queue it waits its turn
    if (p.started === 0) startClock(p) // a small call not published in a slot: queued, refused, or sent to another host
    if (this.tickAt === Infinity) this.scheduleTick(Math.min(TICK_BUSY_MS, timeoutMs || TICK_BUSY_MS))
    else if (p.deadline < this.tickAt) this.scheduleTick(Math.max(0, timeoutMs))
    if (sent) return
    const refused = refusal()
    if (refused) return this.fail(p, refused)
    p.waited = true
    p.queuedAt = p.started
    this.queue.push(p)
    this.freed()
    this.observer.queued(this.queue.length)
  }

  /** A queue of `limit` requests, full, refuses a request (BusFullError), unless a worker has a slot free after all. */
  checkRoom(limit: number) {
    if (this.queue.length >= limit && !this.pick())
      throw new BusFullError(
        `bus "${this.name}": all slots busy and ${this.queue.length} requests queued; raise slots or queue`,
      )
  }

  /** The bus closed: no more ticks. */
  stop() {
    this.stopped = true
    clearTimeout(this.ticker)
  }

  /** When a remote worker gets a request (remotePolicy). */
  get remotePolicy() {
    return this.settings.remotePolicy
  }

  /**
   * The worker a request goes to, or null when none has room: the first near one (in join order) under its packCap,
   * which answers quickly and so takes it without another worker being woken; else the near one with the fewest
   * requests out; unless remotePolicy sends it to the far one with the lowest share of its capacity in use
   * ("overflow": only when no near one has room; "balance": when that share is lower than the near one's; "never").
   * A retiring one (past its request limit, its successor on the way) only while no other serves, full or not.
   */
  pick(): Endpoint | null {
    const policy = this.settings.remotePolicy
    let near: Endpoint | null = null
    let far: Endpoint | null = null
    let retiring: Endpoint | null = null
    let open = false // a worker serves, with room or not
    let packed: Endpoint | null = null // the first near one under its packCap: it takes the request, no other wakes
    const choice = this.endpoints.length > 1 // (one worker: nothing to pack, and no packCap to work out per request)
    for (const e of this.endpoints) {
      if (this.alone.size > 0 && this.alone.has(e)) continue // kept for a retry
      if (!e.serving) {
        if (e.retiring && e.inFlight < e.capacity && (!retiring || e.inFlight < retiring.inFlight)) retiring = e
      } else if (e.distance === 0) {
        open = true
        if (choice && packed === null && e.inFlight < e.packCap) packed = e
        if (e.inFlight < e.capacity && (!near || e.inFlight < near.inFlight)) near = e
      } else if (policy !== "never") {
        open = true
        if (e.inFlight < e.capacity && (!far || e.inFlight / e.capacity < far.inFlight / far.capacity)) far = e
      }
    }
    near = packed ?? near
    if (far && (!near || (policy === "balance" && far.inFlight / far.capacity < near.inFlight / near.capacity)))
      return far
    return near ?? (open ? null : retiring)
  }

  /** Workers are connected, but remotePolicy "never" keeps every one of them (all on other hosts) from requests. */
  private farOnly(): boolean {
    return this.settings.remotePolicy === "never" && this.endpoints.every((e) => e.distance > 0)
  }

  /** A serving worker on this host holds fewer requests than its packCap: pick would pack the next onto it. */
  packRoom(): boolean {
    for (const e of this.endpoints)
      if (e.serving && e.distance === 0 && e.inFlight < e.packCap && !this.alone.has(e)) return true
    return false
  }

  /**
   * The worker a retried request (one its worker died holding) goes to: a serving one that holds no other caller's
   * request, and then takes no other until this one settles. While there is none, one worker (the least busy) is
   * kept from new requests until it has drained; null meanwhile. A retiring one, as in pick, only while no other
   * serves: a pool whose every worker is held (a reload's successor, a restart on probation) answers its retries too.
   */
  private pickAlone(): Endpoint | null {
    const never = this.settings.remotePolicy === "never"
    const open = this.endpoints.some((e) => e.serving && (e.distance === 0 || !never))
    let draining = false
    let least: Endpoint | null = null
    for (const e of this.endpoints) {
      if (!(open ? e.serving : e.retiring) || (e.distance > 0 && never)) continue
      const kept = this.alone.get(e)
      if (kept) continue // it holds another retry
      if (e.waiting === 0 && e.inFlight < e.capacity) return e
      if (kept === null) draining = true
      else if (!least || e.waiting < least.waiting) least = e
    }
    if (!draining && least) this.alone.set(least, null)
    return null
  }

  /** Sends p to the least busy worker (a retried one alone: pickAlone). False when none has room; p then stays queued. */
  dispatch(p: Pending): boolean {
    const e = p.retried ? this.pickAlone() : this.pick()
    if (e === null || !e.send(p)) return false
    if (p.endpoint !== e) return true // its publish failed: p failed, nothing reached the worker
    if (p.retried) this.alone.set(e, p)
    if (e.requests >= e.requestLimit) this.limitReached(e)
    this.observer.sent(p)
    return true
  }

  /**
   * Once `e` has taken `n` requests (those it took count) it retires (pick), and `due` is called once, after the send
   * that reached it: its pool replaces it (superviseWorkers's recycle.maxRequests).
   */
  retireAfter(e: Endpoint, n: number, due: () => void) {
    e.requestLimit = n
    this.due.set(e, due)
    if (e.requests >= n) this.limitReached(e)
  }

  private limitReached(e: Endpoint) {
    e.requestLimit = Infinity // told once
    e.retire()
    const due = this.due.get(e)
    this.due.delete(e)
    if (due) queueMicrotask(due)
  }

  /** A worker joined: listed after the others as near as it (nearest first), told of, and given the queue. */
  join(e: Endpoint) {
    let i = this.endpoints.length
    while (i > 0 && this.endpoints[i - 1]!.distance > e.distance) i--
    this.endpoints.splice(i, 0, e)
    e.workerIndex = this.observer.joined(e)
    this.hooks.joined(e)
    this.freed()
  }

  /** A worker left (`err`): out of the books, what it held goes elsewhere or fails, then it is told of. */
  leave(e: Endpoint, err: Error) {
    const i = this.endpoints.indexOf(e)
    if (i < 0) return
    const info = e.info() // as it was when it left
    this.endpoints.splice(i, 1)
    this.alone.delete(e)
    this.observer.left(e.workerIndex)
    e.left(err)
    this.hooks.left(info)
    this.freed()
  }

  /**
   * Places were freed on a worker (or one joined): the queue goes on, in arrival order; a retry that waits for a
   * worker of its own (pickAlone) keeps its place and the requests behind it go on.
   */
  freed() {
    if (this.alone.size > 0) this.keepForRetries()
    let i = 0
    while (i < this.queue.length) {
      const p = i === 0 ? this.queue.shift()! : this.queue.splice(i, 1)[0]!
      if (this.dispatch(p)) continue
      this.queue.splice(i, 0, p)
      if (!p.retried) break
      i++
    }
    this.observer.queued(this.queue.length)
  }

  /** A worker drained for a retry is given back once no retry waits. */
  private keepForRetries() {
    if (this.queue.some((q) => q.retried)) return
    for (const [e, kept] of this.alone) if (kept === null) this.alone.delete(e)
  }

  answered(p: Pending, value: unknown, at: number, status = (value as { status?: number }).status ?? 0) {
    this.observer.answered(p, at - p.started, status)
    this.settle(p)
    p.resolve(value as never)
  }

  /** What a streamed answer's reader (stream-in.ts) may do to the books. */
  readonly streams: StreamHost = {
    maxBody: () => this.settings.maxBody,
    countIn: (bytes) => this.counters.receivedBytes(bytes),
    streamStarted: (p, status, head, body) => {
      p.deadline = Infinity // timeoutMs runs until the HEAD; from here on streamIdleMs watches the reader
      p.resolve(new StreamedResponse(status, head, body) as never)
    },
    streamEnded: (p, status, head, body) => this.streamEnded(p, status, head, body),
    fail: (p, err) => this.fail(p, err),
  }

  private streamEnded(p: Pending, status: number, head: string[], body: Uint8Array | null) {
    if (body === null) {
      // a streaming caller has had its answer since the HEAD
      this.observer.answered(p, nanoseconds() - p.started, status)
      return this.settle(p)
    }
    let value: unknown
    try {
      value = answerValue(p, status, head, body, 0, body.length, null)
    } catch (e) {
      return this.fail(p, e)
    }
    this.answered(p, value, nanoseconds(), isRpcCall(p) ? status : undefined)
  }

  /** p fails with `signal`'s reason when it aborts (its listener goes when p settles). */
  watch(p: Pending, signal: AbortSignal) {
    p.signal = signal
    p.onAbort = () => this.fail(p, signal.reason)
    signal.addEventListener("abort", p.onAbort, ONCE)
  }

  private settle(p: Pending) {
    const kept = p.retried && this.alone.size > 0 && p.endpoint !== null && this.alone.get(p.endpoint) === p
    if (kept) this.alone.set(p.endpoint!, null) // for the next retry, if one waits (keepForRetries)
    if (p.phase === "in-slot") p.endpoint!.settled(p)
    else p.phase = "slot-returned" // it never had a slot
    if (p.onAbort) p.signal!.removeEventListener("abort", p.onAbort)
    if (p.held !== null) letGo(p) // an idempotent one's, kept for a retry that can no longer come
    // the next retry may go now: a worker on another host gave back its place before this, telling the queue then
    if (kept) this.freed()
  }

  /**
   * The worker holding p is gone (`err`): an idempotent request not yet answered in part goes to another worker
   * (once, alone: pickAlone), any other fails; one whose second worker died holding it, and nothing else, is poison.
   * One the transport knows never reached its worker (`undelivered`: NATS's no responders) is sent again without
   * using up its retry, and is never poison. True when it was sent again.
   */
  retryOrFail(p: Pending, err: unknown, undelivered = false): boolean {
    const gone = p.phase === "in-slot" && err instanceof WorkerGoneError
    if (!p.idempotent || (p.retried && !undelivered) || !gone || p.in !== null) {
      if (p.retried && !undelivered && gone) {
        this.counters.poisonRequest()
        err = new PoisonRequestError(
          `a request to "${this.name}" was retried once (idempotent) after its worker died holding it, and worker pid ${p.endpoint!.pid} died holding it too: it is taken for a poison request and not sent again; find what in it kills workers (their exit status and logs)`,
          { cause: err },
        )
      }
      this.fail(p, err)
      return false
    }
    this.requeue(p, p.retried || !undelivered)
    return true
  }

  /**
   * p, sent but not run (its worker gone, full or leaving: docs/PROTOCOL.md §10.2–10.3), waits in the queue again
   * where its arrival puts it, within its own deadline; `retried` says whether it has used its one retry.
   */
  requeue(p: Pending, retried = p.retried) {
    const e = p.endpoint!
    e.forget(p)
    if (this.alone.get(e) === p) this.alone.set(e, null) // a worker kept for it is for the next retry (settle)
    Object.assign(p, { phase: "queued", endpoint: null, slot: -1, retried, waited: true, queuedAt: nanoseconds() })
    let i = 0
    while (i < this.queue.length && this.queue[i]!.started <= p.started) i++
    this.queue.splice(i, 0, p)
    this.freed()
  }

  fail(p: Pending, err: unknown) {
    if (p.phase !== "queued" && p.phase !== "in-slot") return
    if (p.started === 0) startClock(p) // it failed on its way out (startClock)
    if (p.phase === "queued") {
      const i = this.queue.indexOf(p)
      if (i >= 0) this.queue.splice(i, 1)
      this.observer.queued(this.queue.length)
    } else p.endpoint!.cancel(p, err) // a slot stays p's (settled) until the worker hands it back; a late answer is dropped
    this.observer.failed(p, err, nanoseconds() - p.started) // before settle: p.endpoint is still its worker
    this.settle(p)
    // Given up: its slot may count as stuck from its own deadline on (a caller that left early leaves the handler its
    // time), or from now when that passed or it has none.
    const now = nowMs()
    p.stuckFrom = p.timeoutMs > 0 ? Math.max(now, p.started / 1e6 + p.timeoutMs) : now
    letGo(p)
    p.reject(err)
    p.in?.failed(err) // a caller already reading a stream sees it fail; the rest of it is dropped
  }

  /** Every request still waiting fails with `err` (the bus closed). */
  failAll(err: Error) {
    for (const p of [...this.queue]) this.fail(p, err)
    for (const e of this.endpoints) for (const p of [...e.held()]) if (p?.phase === "in-slot") this.fail(p, err)
  }

  tick() {
    if (this.stopped) return
    try {
      const t = nowMs()
      const expire = (p: Pending | null) => {
        if (p?.signalOf && (p.phase === "queued" || p.phase === "in-slot")) {
          const signal = p.signalOf.signal // made now, aborted if its client left meanwhile
          p.signalOf = null
          if (signal.aborted) return this.fail(p, signal.reason)
          this.watch(p, signal)
        }
        const stalled = p?.in?.stalledSince
        if (p?.phase === "in-slot" && stalled && p.streamIdleMs > 0 && t - stalled >= p.streamIdleMs)
          return this.fail(
            p,
            new TimeoutError(
              `the stream from "${this.name}" was not read for ${p.streamIdleMs}ms (streamIdleMs); it was given up`,
            ),
          )
        if (p && (p.phase === "queued" || p.phase === "in-slot") && p.deadline <= t)
          this.fail(
            p,
            new TimeoutError(
              p.phase === "queued" && this.endpoints.length === 0
                ? `request to "${this.name}" timed out after ${p.timeoutMs}ms: 0 workers connected to "${this.name}"; start one (SlotWorker.connect("${this.name}", …)) or await bus.waitForWorkers()`
                : p.phase === "queued" && this.farOnly()
                  ? `request to "${this.name}" timed out after ${p.timeoutMs}ms: its ${this.endpoints.length} workers are all on other hosts, and remotePolicy "never" sends them nothing; start one on this host, or listen with remotePolicy "overflow"`
                  : `request to "${this.name}" timed out after ${p.timeoutMs}ms; the worker is overloaded, stuck, or absent`,
            ),
          )
      }
      for (const e of [...this.endpoints]) {
        for (const p of e.held()) expire(p)
        e.tick(t)
      }
      for (const p of [...this.queue]) expire(p)
    } catch {
      this.counters.internalError()
    }
    if (this.queue.length > 0 || this.endpoints.some((e) => e.inFlight > 0)) this.scheduleTick(TICK_BUSY_MS)
    else {
      clearTimeout(this.ticker)
      this.tickAt = Infinity
    }
  }

  private scheduleTick(ms: number) {
    if (this.stopped) return
    clearTimeout(this.ticker)
    this.tickAt = nowMs() + ms
    this.ticker = setTimeout(() => this.tick(), Math.min(ms, MAX_TIMER_MS)) // a later deadline: the tick re-arms
  }
}
