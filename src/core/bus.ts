// The hub side: SlotBus listens under a name, maps one region per connected worker, spreads requests.
import { closeSync } from "node:fs"
import { native, Kind, Msg, RespFlag, E_CORRUPT, HUB_CONFIG_WORDS, MAX_ALLOW_UIDS, State, Control, Errno, loadNative, type Chan } from "../native/ffi.ts"
import { Channel } from "./channel.ts"
import { align8, busName, headerPairs, headLength, pairsToRecord, readHead, toBytes, utf8, writeHead } from "./codec.ts"
import type { BodyInit, HeaderInit } from "./codec.ts"
import {
  BusClosedError, BusFullError, NameInUseError, PayloadTooLargeError, ProtocolError, RemoteError, SlotBusError,
  TimeoutError, WorkerGoneError,
} from "../errors.ts"
import { Pump, tuning, type IdleStrategy } from "./idle.ts"
import { LatencyHistogram, type LatencySummary } from "./stats.ts"

export interface ListenOptions {
  /** Requests in flight per worker (1..4096). Default 32. */
  slots?: number
  /** Largest request body; responses get at least as much. Default 64 MiB. */
  maxBodyBytes?: number
  /** Largest encoded method + path + headers. Default 16 KiB. */
  maxHeadBytes?: number
  /** Requests that may wait for a free slot before `request()` rejects with BusFullError. Default 4096. */
  queue?: number
  /** Default timeout of each request in ms; 0 waits forever. Default 30 000. */
  timeoutMs?: number
  /** How the hub waits for responses. Default "adaptive". */
  idle?: IdleStrategy
  /** uids allowed to connect besides the hub's own (which always is). At most 8. */
  allowUids?: number[]
  /** Arena bytes kept resident per slot after a large message; the rest is returned to the kernel. Default 1 MiB. */
  trimBytes?: number
}

export interface SlotRequestInit {
  method?: string
  path?: string
  headers?: HeaderInit
  body?: BodyInit
}

export interface RequestOptions {
  /** Overrides the bus's timeoutMs; 0 waits forever. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface WorkerInfo {
  pid: number
  uid: number
  inFlight: number
  requests: number
  /** Each slot's state: free, writing, ready, claimed, done, cancelled. */
  slots: string[]
}

export interface BusStats {
  name: string
  workers: WorkerInfo[]
  inFlight: number
  queued: number
  requests: number
  responses: number
  errors: number
  timeouts: number
  refusedPeers: number
  bytesOut: number
  bytesIn: number
  latency: LatencySummary
}

/** The answer to `request()`. `body` is a copy: it stays valid after the slot is reused. */
export class SlotResponse {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string>,
    readonly body: Uint8Array,
  ) {}
  text(): string {
    return utf8(this.body)
  }
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T
  }
}

type Settle = { resolve: (v: never) => void; reject: (e: Error) => void }

interface Pending extends Settle {
  kind: number
  strings: string[] | null
  body: Uint8Array
  timeoutMs: number
  deadline: number
  started: number
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  link: Link | null
  slot: number
  settled: boolean
}

interface Link {
  chan: Channel
  pump: Pump
  pending: (Pending | null)[]
  inFlight: number
  requests: number
  draining: boolean // the worker is shutting down: send it nothing new
}

const STATE_NAMES = Object.fromEntries(Object.entries(State).map(([k, v]) => [v, k.toLowerCase()]))
// New workers are accepted and deadlines checked on a timer: often while requests are out, rarely when idle.
const TICK_BUSY_MS = 10
const TICK_IDLE_MS = 100
const MiB = 1024 * 1024

function positiveInt(v: number | undefined, dflt: number, what: string, max = 2 ** 31): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} must be an integer in 0..${max}, got ${v}`)
  return v
}

export class SlotBus {
  private readonly links: Link[] = []
  private readonly queue: Pending[] = []
  private readonly config: Uint32Array
  private readonly err = new Int32Array(2)
  private ticker: ReturnType<typeof setTimeout>
  private readonly latency = new LatencyHistogram()
  private readonly waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = []
  private closing: Promise<void> | null = null
  private stopped = false
  private nextId = 1
  private counters = { requests: 0, responses: 0, errors: 0, timeouts: 0, refusedPeers: 0, bytesOut: 0, bytesIn: 0 }
  private readonly maxBody: number
  private readonly maxHead: number
  private readonly maxQueue: number
  private readonly timeoutMs: number
  private readonly idle: IdleStrategy | undefined

  private constructor(readonly name: string, private readonly listenFd: number, opts: ListenOptions) {
    const slots = positiveInt(opts.slots, 32, "slots", 4096)
    if (slots === 0) throw new RangeError("slots must be at least 1")
    this.maxBody = positiveInt(opts.maxBodyBytes, 64 * MiB, "maxBodyBytes", 2 ** 32 - 1024 * MiB)
    this.maxHead = positiveInt(opts.maxHeadBytes, 16 * 1024, "maxHeadBytes", 16 * MiB)
    this.maxQueue = positiveInt(opts.queue, 4096, "queue")
    this.timeoutMs = positiveInt(opts.timeoutMs, 30_000, "timeoutMs")
    tuning(opts.idle) // validate now, not on the first connection
    this.idle = opts.idle
    const uids = opts.allowUids ?? []
    if (uids.length > MAX_ALLOW_UIDS || !uids.every((u) => Number.isInteger(u) && u >= 0 && u < 2 ** 32))
      throw new RangeError(`allowUids takes at most ${MAX_ALLOW_UIDS} uids`)
    this.config = new Uint32Array(HUB_CONFIG_WORDS)
    this.config.set([slots, align8(this.maxHead) + this.maxBody, positiveInt(opts.trimBytes, MiB, "trimBytes"), uids.length, ...uids])
    this.ticker = setTimeout(() => this.tick(), 0)
  }

  /** Start serving `name`: workers connect to it with `SlotWorker.connect(name, handler)`. */
  static async listen(name: string, opts: ListenOptions = {}): Promise<SlotBus> {
    const cname = busName(name)
    await loadNative()
    const fd = native.sb_listen(cname)
    if (fd === Errno.EADDRINUSE) throw new NameInUseError(`a hub named "${name}" is already listening on this machine; pick another name or close it`)
    if (fd < 0) throw new SlotBusError(`cannot listen as "${name}": errno ${-fd}`)
    try {
      return new SlotBus(name, fd, opts)
    } catch (e) {
      closeSync(fd)
      throw e
    }
  }

  /** Send an HTTP-like request to the least busy worker. */
  request(init: SlotRequestInit, opts?: RequestOptions): Promise<SlotResponse> {
    return this.submit(Kind.HTTP, init, opts) as Promise<SlotResponse>
  }

  /** Send raw bytes; resolves with the worker's raw reply. */
  call(body: BodyInit, opts?: RequestOptions): Promise<Uint8Array> {
    return this.submit(Kind.RAW, { body }, opts) as Promise<Uint8Array>
  }

  private submit(kind: number, init: SlotRequestInit, opts: RequestOptions = {}): Promise<unknown> {
    try {
      if (this.closing) throw new BusClosedError(`bus "${this.name}" is closed`)
      const body = toBytes(init.body, "body")
      let strings: string[] | null = null
      if (kind === Kind.HTTP) {
        const method = init.method ?? "GET"
        const path = init.path ?? "/"
        if (typeof method !== "string" || typeof path !== "string" || /[\0\s]/.test(method) || path.includes("\0"))
          throw new TypeError("method and path must be strings without NUL (method without spaces)")
        strings = [method, path, ...headerPairs(init.headers)]
        const head = headLength(strings)
        if (head > this.maxHead)
          throw new PayloadTooLargeError(`request head is ${head} bytes, over maxHeadBytes ${this.maxHead}`)
      }
      if (body.length > this.maxBody)
        throw new PayloadTooLargeError(`request body is ${body.length} bytes, over maxBodyBytes ${this.maxBody}; raise maxBodyBytes on the hub`)
      const timeoutMs = positiveInt(opts.timeoutMs, this.timeoutMs, "timeoutMs")
      const signal = opts.signal
      if (signal?.aborted) return Promise.reject(signal.reason)
      if (this.queue.length >= this.maxQueue && !this.hasFreeSlot())
        throw new BusFullError(`bus "${this.name}": all slots busy and ${this.queue.length} requests queued; raise slots or queue`)

      const { promise, resolve, reject } = Promise.withResolvers<unknown>()
      const p: Pending = {
        kind, strings, body, resolve, reject, signal, onAbort: undefined, timeoutMs,
        deadline: timeoutMs > 0 ? performance.now() + timeoutMs : Infinity,
        started: Bun.nanoseconds(), link: null, slot: -1, settled: false,
      }
      if (signal) {
        p.onAbort = () => this.fail(p, signal.reason)
        signal.addEventListener("abort", p.onAbort, { once: true })
      }
      this.counters.requests++
      if (!this.dispatch(p)) this.queue.push(p)
      return promise
    } catch (e) {
      return Promise.reject(e)
    }
  }

  private hasFreeSlot() {
    return this.links.some((l) => !l.draining && l.inFlight < l.chan.slotCount)
  }

  private dispatch(p: Pending): boolean {
    let link: Link | null = null
    for (const l of this.links)
      if (!l.draining && l.inFlight < l.chan.slotCount && (!link || l.inFlight < link.inFlight)) link = l
    if (!link) return false
    const ptr = link.chan.ptr
    const slot = native.sb_hub_claim(ptr)
    if (slot < 0) return false
    const arena = link.chan.arena(slot, 0)
    const headLen = p.strings ? writeHead(arena, p.strings) : 0
    arena.set(p.body, align8(headLen))
    native.sb_hub_publish(ptr, slot, p.kind, this.nextId++ >>> 0, headLen, p.body.length)
    this.counters.bytesOut += p.body.length
    link.pending[slot] = p
    link.inFlight++
    link.requests++
    p.link = link
    p.slot = slot
    link.pump.kick()
    return true
  }

  private drain(link: Link): number {
    const { chan } = link
    const m = chan.msg
    let n = 0
    for (;;) {
      const slot = native.sb_hub_poll(chan.ptr)
      if (slot < 0) {
        if (slot === E_CORRUPT) this.drop(link, new ProtocolError(`worker pid ${chan.peerPid} corrupted its region (${native.sb_error(chan.ptr)}); it was disconnected`))
        break
      }
      n++
      const p = link.pending[slot]
      link.pending[slot] = null
      if (p && !p.settled) this.answer(p, chan, m)
      native.sb_hub_release(chan.ptr, slot)
      link.inFlight--
    }
    if (n > 0) this.dispatchQueued()
    return n
  }

  private answer(p: Pending, chan: Channel, m: Uint32Array) {
    const arena = chan.arena(m[Msg.slot]!, 1)
    const bodyOff = m[Msg.bodyOff]!
    const body = arena.slice(bodyOff, bodyOff + m[Msg.bodyLen]!)
    this.counters.bytesIn += body.length
    const flags = m[Msg.flags]!
    if (flags & RespFlag.ERROR) return this.fail(p, new RemoteError(utf8(body)))
    if (flags & RespFlag.CANCELLED) return this.fail(p, new ProtocolError("worker returned a request the hub never cancelled"))
    this.counters.responses++
    this.latency.record(Bun.nanoseconds() - p.started)
    const value = p.kind === Kind.RAW
      ? body
      : new SlotResponse(m[Msg.status]!, pairsToRecord(readHead(arena, m[Msg.headLen]!), 0), body)
    this.settle(p)
    p.resolve(value as never)
  }

  private settle(p: Pending) {
    p.settled = true
    if (p.onAbort) p.signal!.removeEventListener("abort", p.onAbort)
  }

  private fail(p: Pending, err: Error) {
    if (p.settled) return
    this.settle(p)
    if (err instanceof TimeoutError) this.counters.timeouts++
    else this.counters.errors++
    if (p.link && p.link.pending[p.slot] === p) {
      // Stays in pending (settled) until the worker hands the slot back; a late answer is then dropped.
      native.sb_hub_cancel(p.link.chan.ptr, p.slot)
    } else {
      const i = this.queue.indexOf(p)
      if (i >= 0) this.queue.splice(i, 1)
    }
    p.reject(err)
  }

  private dispatchQueued() {
    while (this.queue.length > 0 && this.dispatch(this.queue[0]!)) this.queue.shift()
  }

  private tick() {
    this.acceptAll()
    const t = performance.now()
    const expire = (p: Pending | null) => {
      if (p && !p.settled && p.deadline <= t)
        this.fail(p, new TimeoutError(`request to "${this.name}" timed out after ${p.timeoutMs}ms; the worker is overloaded, stuck, or absent`))
    }
    let busy = this.queue.length > 0
    for (const l of this.links) {
      l.pending.forEach(expire)
      busy ||= l.inFlight > 0
    }
    for (const p of [...this.queue]) expire(p)
    if (!this.stopped) this.ticker = setTimeout(() => this.tick(), busy ? TICK_BUSY_MS : TICK_IDLE_MS)
  }

  private acceptAll() {
    if (this.closing) return
    for (;;) {
      const ptr = native.sb_accept(this.listenFd, this.config, this.err, this.err.subarray(1)) as Chan | null
      if (!ptr) {
        if (this.err[0] === Errno.EPERM) { this.counters.refusedPeers++; continue }
        return // EAGAIN, or a transient failure retried on the next tick
      }
      this.addLink(new Channel(ptr))
    }
  }

  private addLink(chan: Channel) {
    const pending = new Array<Pending | null>(chan.slotCount).fill(null)
    const link: Link = { chan, pump: null as unknown as Pump, pending, inFlight: 0, requests: 0, draining: false }
    link.pump = new Pump(chan, this.idle, () => this.drain(link), () => link.inFlight > 0)
    chan.watchPeer(
      (byte) => {
        if (byte !== Control.DRAIN) return
        link.draining = true
        chan.sendControl(Control.DRAIN_ACK)
      },
      () => this.drop(link, new WorkerGoneError(`worker pid ${chan.peerPid} of "${this.name}" disconnected or died before answering; retry the request`)),
    )
    this.links.push(link)
    for (const w of [...this.waiters]) if (this.links.length >= w.n) w.resolve()
    this.dispatchQueued()
  }

  private drop(link: Link, err: Error) {
    const i = this.links.indexOf(link)
    if (i < 0) return
    this.links.splice(i, 1)
    link.pump.stop()
    if (!(err instanceof ProtocolError)) this.drain(link) // answers completed before the worker went
    for (const p of link.pending) if (p) { p.link = null; this.fail(p, err) }
    link.chan.close()
    this.dispatchQueued()
  }

  /** Resolves once at least `n` workers are connected. */
  waitForWorkers(n = 1, timeoutMs = 10_000): Promise<void> {
    if (this.links.length >= n) return Promise.resolve()
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const w = { n, resolve: () => done(resolve), reject: (e: Error) => done(() => reject(e)) }
    const timer = setTimeout(() => done(() => reject(new TimeoutError(`${this.links.length} of ${n} workers connected to "${this.name}" after ${timeoutMs}ms`))), timeoutMs)
    const done = (f: () => void) => {
      clearTimeout(timer)
      this.waiters.splice(this.waiters.indexOf(w), 1)
      f()
    }
    this.waiters.push(w)
    return promise
  }

  /** Workers connected now. */
  get workerCount(): number {
    return this.links.length
  }

  get workers(): WorkerInfo[] {
    return this.links.map(({ chan, inFlight, requests }) => ({
      pid: chan.peerPid,
      uid: chan.peerUid,
      inFlight,
      requests,
      slots: Array.from({ length: chan.slotCount }, (_, s) => STATE_NAMES[native.sb_slot_state(chan.ptr, s) & 0xff] ?? "corrupt"),
    }))
  }

  stats(): BusStats {
    const workers = this.workers
    return {
      name: this.name,
      workers,
      inFlight: workers.reduce((n, w) => n + w.inFlight, 0),
      queued: this.queue.length,
      ...this.counters,
      latency: this.latency.summary(),
    }
  }

  /**
   * Stop accepting requests and workers. With `drain` (default) requests already accepted may finish for
   * up to `timeoutMs` (default 5000); whatever is left is rejected with BusClosedError.
   */
  close(opts: { drain?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(opts.drain ?? true, opts.timeoutMs ?? 5000)
    return this.closing
  }

  private async shutdown(drain: boolean, timeoutMs: number) {
    closeSync(this.listenFd)
    for (const w of [...this.waiters]) w.reject(new BusClosedError(`bus "${this.name}" closed while waiting for workers`))
    const deadline = performance.now() + timeoutMs
    while (drain && (this.queue.length > 0 || this.links.some((l) => l.pending.some((p) => p && !p.settled))) && performance.now() < deadline)
      await Bun.sleep(1)
    this.stopped = true
    clearTimeout(this.ticker)
    const err = new BusClosedError(`bus "${this.name}" closed before the request finished`)
    for (const p of [...this.queue]) this.fail(p, err)
    for (const l of [...this.links]) {
      l.chan.sendControl(Control.HUB_CLOSING)
      this.drop(l, err)
    }
  }

  [Symbol.asyncDispose]() {
    return this.close()
  }
}
