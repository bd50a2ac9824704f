// What a bus measures for GET /metrics (serveStatus) and its status view: request duration and queue wait as
// histograms, per bus and per worker index, per route (metricsRoutes of them: the caller's route pattern with each
// method it was sent, never the path; or an RPC method); failures by the error's class with the last message of
// each, a request its caller aborted counted apart (a client that went away is no error); and the slowest recent
// requests. The bus's observer (observe.ts) calls in at the moments the Dispatcher already knows (a request sent,
// answered, failed), the Dispatcher when a worker joins or leaves, with times already measured. Its duration
// histogram is also bus.stats()'s latency (stats.ts).
import { BoundedLabels, Histogram, type HistogramSnapshot } from "../../kit/index.ts"
import { TimeoutError } from "../../errors.ts"
import { isRpcCall, type Endpoint, type Pending } from "../endpoint/endpoint.ts"
import { Kind } from "../../native/ffi.ts"
import type { Channel } from "../wire/channel.ts"
import { readVitals, type WorkerVitals } from "../wire/vitals-block.ts"
import { isRpcVerb, rpcErrorOf } from "../wire/rpc-status.ts"
import { nanoseconds } from "../../runtime/index.ts"
import { methodLabel } from "../probe/trace.ts"

/** Distinct error classes counted by name; more are counted as "other". */
const MAX_ERROR_KINDS = 16
/** The slowest requests kept per window, and how long a window lasts: the view shows this window's and the last. */
const SLOWEST = 10
const SLOW_WINDOW_NS = 60e9
/** The last message of an error class is kept up to this many characters. */
const MAX_MESSAGE = 300

/** One of the slowest recent requests. */
export interface SlowRequest {
  /** When it settled (ms since the epoch). */
  at: number
  /** "GET /path", an RPC method, or "call" (bus.call). */
  what: string
  /** The worker's index (its `worker` label in /metrics) and pid; -1 and 0 when it never reached one. */
  worker: number
  pid: number
  seconds: number
  /** "ok", the answer's HTTP status, or the error's class. */
  outcome: string
}

/** Failures of one error class: how many, and the last one's message and time. */
export interface ErrorKind {
  kind: string
  count: number
  lastMessage: string
  lastAt: number
}

/** What the bus measured, as read at one moment. */
export interface BusMetricsSnapshot {
  duration: HistogramSnapshot
  queueWait: HistogramSnapshot
  /** Per worker index: an index is taken by a joining worker and given back when it leaves, so they stay few. */
  workers: {
    index: number
    pid: number | null
    duration: HistogramSnapshot
    p50: number
    p99: number
    /** A worker on this host: its vitals as it last reported them (docs/PROTOCOL.md §2, line 8); null: none. */
    vitals: WorkerVitals | null
  }[]
  routes: { route: string; duration: HistogramSnapshot }[]
  errors: ErrorKind[]
  timeouts: number
  slowest: SlowRequest[]
}

/**
 * Whether p's caller gave it up (its signal; for bus.fetch, the client went away; or it cancelled the streamed body):
 * no error of the bus or its workers, whose own failures are typed errors, never an AbortError.
 */
export const isCancel = (p: Pending, err: unknown): boolean =>
  (p.signal?.aborted === true && p.signal.reason === err) || (err instanceof DOMException && err.name === "AbortError")

const whatOf = (p: Pending) => {
  const s = p.strings
  if (!s) return p.kind === Kind.RAW ? "call" : "request"
  return isRpcVerb(s[0]!) ? s[1]! : `${s[0]} ${s[1]!.split("?", 1)[0]}`
}

/** A worker on this host (a SlotEndpoint, which holds its channel) reports its vitals in its region. */
const vitalsOf = (e: Endpoint | null | undefined) => {
  const chan = (e as { chan?: Channel } | null | undefined)?.chan
  return chan === undefined ? null : readVitals(chan)
}

export class BusMetrics {
  readonly duration = new Histogram()
  readonly queueWait = new Histogram()
  private readonly perWorker: Histogram[] = []
  /** Which worker indexes are taken, by which endpoint. */
  private readonly holders: (Endpoint | null)[] = []
  /**
   * The routes counted against metricsRoutes: an HTTP request's pattern ("": none) → its method's label (RFC 9110's,
   * PATCH or _OTHER, so at most 10) → its histogram; an RPC method's name (or "call") → its histogram. A client picks
   * methods, not routes: every method it sends to one route stays that route's.
   */
  private readonly httpRoutes = new Map<string, Map<string, Histogram>>()
  private readonly rpcRoutes = new Map<string, Histogram>()
  /** Each series by its label, in the order it came ("GET /items/:id", "GET", "add", "other"). */
  private readonly routes = new Map<string, Histogram>()
  private readonly kinds = new BoundedLabels(MAX_ERROR_KINDS)
  private readonly errorsByKind: ErrorKind[] = []
  timeouts = 0
  /** With OpenTelemetry on (kit/telemetry/otel-metrics.ts): told of each duration (its worker index) and queue wait as recorded. */
  tap: ((what: "duration" | "wait", ns: number, workerIndex: number) => void) | null = null
  private slow: SlowRequest[] = []
  private lastSlow: SlowRequest[] = []
  /** A request slower than this enters the slowest list (-1 while it has room). */
  private slowFloor = -1
  private windowStart = 0

  constructor(private readonly maxRoutes: number) {}

  /** A worker joined: it takes the lowest free index. */
  takeWorkerIndex(e: Endpoint): number {
    let i = this.holders.indexOf(null)
    if (i < 0) {
      i = this.holders.length
      this.holders.push(null)
      this.perWorker.push(new Histogram())
    }
    this.holders[i] = e
    return i
  }

  /** A worker left: its index is free for the next to join (its counts go on under the same label). */
  freeWorkerIndex(i: number) {
    if (i >= 0 && i < this.holders.length) this.holders[i] = null
  }

  /**
   * p was answered (`status`: the answer's, 0 for bus.call) after `ns` since it was made. An RPC call's (p.read) is
   * an error when its caller gets one (rpcErrorOf): a thrown value, or no such function.
   */
  answered(p: Pending, ns: number, status: number) {
    this.duration.observeNs(ns)
    const w = p.endpoint?.workerIndex ?? -1
    if (w >= 0) this.perWorker[w]!.observeNs(ns)
    if (this.maxRoutes > 0) this.routeOf(p).observeNs(ns)
    if (this.tap) this.tap("duration", ns, w)
    const rpcError = isRpcCall(p) ? rpcErrorOf(status) : null
    if (rpcError !== null)
      this.count(rpcError, "an RPC method threw, was not found or met a plain handler: the caller got the error")
    else if (status >= 500 && status < 600) this.count("http5xx", `${whatOf(p)} answered ${status}`) // a handler failed, or said so
    if (ns > this.slowFloor) this.noteSlow(p, ns, rpcError ?? (status === 0 || isRpcCall(p) ? "ok" : String(status)))
  }

  /** A request went to a worker after waiting `ns` in the queue (0: a slot was free at once). */
  waited(ns: number) {
    this.queueWait.observeNs(ns)
    if (this.tap) this.tap("wait", ns, -1)
  }

  /** p's caller gave it up after `ns` (isCancel): no error, one of the slowest at most (BusCounters counts it). */
  cancelled(p: Pending, ns: number) {
    if (ns > this.slowFloor) this.noteSlow(p, ns, "cancelled")
  }

  /** p failed with `err` after `ns`, not by its caller (isCancel): a timeout counted apart as well as by class. */
  failed(p: Pending, err: unknown, ns: number) {
    const kind = this.countError(err)
    if (ns > this.slowFloor) this.noteSlow(p, ns, kind)
  }

  /** Counts `err`, a request's failure (at its refusal or later: failed()), by its class; returns that kind. */
  countError(err: unknown): string {
    const kind =
      err instanceof DOMException ? err.name : err instanceof Error ? err.constructor.name || err.name : typeof err
    if (err instanceof TimeoutError) this.timeouts++
    this.count(kind, err instanceof Error ? err.message : String(err))
    return kind
  }

  private count(kind: string, message: string) {
    const i = this.kinds.indexOf(kind)
    const k = (this.errorsByKind[i] ??= {
      kind: i < MAX_ERROR_KINDS ? kind : "other",
      count: 0,
      lastMessage: "",
      lastAt: 0,
    })
    k.count++
    k.lastMessage = message.slice(0, MAX_MESSAGE)
    k.lastAt = Date.now()
  }

  /** p's route histogram: one or two Map lookups for a route and method seen before, no string made. */
  private routeOf(p: Pending): Histogram {
    const s = p.strings
    if (s === null || isRpcVerb(s[0]!)) {
      const name = s === null ? "call" : s[1]!
      const h = this.rpcRoutes.get(name)
      if (h !== undefined) return h
      if (this.full()) return this.series("other")
      const made = this.series(name)
      this.rpcRoutes.set(name, made)
      return made
    }
    const method = methodLabel(s[0]!)
    const route = p.route === null ? "" : p.route
    let byMethod = this.httpRoutes.get(route)
    const h = byMethod?.get(method)
    if (h !== undefined) return h
    if (byMethod === undefined) {
      if (this.full()) return this.series("other")
      this.httpRoutes.set(route, (byMethod = new Map()))
    }
    const made = this.series(route === "" ? method : `${method} ${route}`)
    byMethod.set(method, made)
    return made
  }

  private full(): boolean {
    return this.httpRoutes.size + this.rpcRoutes.size >= this.maxRoutes
  }

  /** The histogram of a label (an RPC method named "GET" and requests without a route share "GET"). */
  private series(label: string): Histogram {
    let h = this.routes.get(label)
    if (h === undefined) this.routes.set(label, (h = new Histogram()))
    return h
  }

  /** A window that has passed becomes the last one (two that have passed: none is kept). */
  private rotate(now: number) {
    if (now - this.windowStart <= SLOW_WINDOW_NS) return
    this.lastSlow = now - this.windowStart > 2 * SLOW_WINDOW_NS ? [] : this.slow
    this.slow = []
    this.slowFloor = -1
    this.windowStart = now
  }

  private noteSlow(p: Pending, ns: number, outcome: string) {
    this.rotate(nanoseconds())
    const e = p.endpoint
    const entry: SlowRequest = {
      at: Date.now(),
      what: whatOf(p),
      worker: e?.workerIndex ?? -1,
      pid: e?.pid ?? 0,
      seconds: ns / 1e9,
      outcome,
    }
    const list = this.slow
    let i = list.length
    while (i > 0 && list[i - 1]!.seconds < entry.seconds) i--
    list.splice(i, 0, entry)
    if (list.length > SLOWEST) list.length = SLOWEST
    this.slowFloor = list.length < SLOWEST ? -1 : list[list.length - 1]!.seconds * 1e9
  }

  snapshot(): BusMetricsSnapshot {
    this.rotate(nanoseconds()) // a quiet bus's old slow requests age out even if nothing slower comes
    const routes: BusMetricsSnapshot["routes"] = []
    for (const [route, h] of this.routes) routes.push({ route, duration: h.snapshot() })
    return {
      duration: this.duration.snapshot(),
      queueWait: this.queueWait.snapshot(),
      workers: this.perWorker.map((h, index) => ({
        index,
        pid: this.holders[index]?.pid ?? null,
        duration: h.snapshot(),
        p50: h.quantile(0.5),
        p99: h.quantile(0.99),
        vitals: vitalsOf(this.holders[index]),
      })),
      routes,
      errors: this.errorsByKind.filter(Boolean).map((k) => ({ ...k })),
      timeouts: this.timeouts,
      slowest: [...this.slow, ...this.lastSlow].sort((a, b) => b.seconds - a.seconds).slice(0, SLOWEST),
    }
  }
}
