// Requests out: pick the least busy worker, publish, collect answers, fail or time out, find stuck slots. The
// Dispatcher is the part of a SlotBus that owns the workers' books and the queue; the Acceptor (accept.ts) adds and
// drops workers through it, and the bus (bus.ts) is the public API over both. It knows nothing of accepting.
import { native, Kind, Msg, MsgFlag, RespFlag, E_CORRUPT } from "../native/ffi.ts"
import { align8, EMPTY, headLength, readHead, utf8, writeHead } from "./codec.ts"
import { PayloadTooLargeError, ProtocolError, TimeoutError, WorkerGoneError } from "../errors.ts"
import { MAX_TIMER_MS } from "../kit/index.ts"
import { LatencyHistogram } from "./stats.ts"
import { nowMs, type Endpoint, type Link, type Pending, type WorkerInfo } from "./link.ts"
import { BorrowedResponse, forgotten, NO_HEAD, remoteError, SlotResponse, StreamedResponse } from "./response.ts"
import { RemoteFrames, SlotFrames, StreamIn, type StreamHost } from "./stream-in.ts"
import type { RemoteHubHost, RemotePeer } from "./remote.ts"

// Deadlines and stuck slots are checked on a timer while requests are out; an idle bus has no timer at all.
export const TICK_BUSY_MS = 10

/** A worker on another host as an Endpoint: the transport's RemotePeer, sent to through the bus's books. */
export interface RemoteEndpoint extends Endpoint {
  readonly local: false
  readonly peer: RemotePeer
}

/** What a dispatcher is told at its making: its bus's limits. */
export interface DispatchSettings {
  maxBody: number
  /** A slot whose request was given up this long ago and that its worker still holds is stuck. */
  stuckAfterMs: number
  /** A worker holding this many stuck slots is evicted. */
  maxStuck: number
  /** When a remote worker gets a request: only when no local slot is free, by load, or never. */
  remotePolicy: "overflow" | "balance" | "never"
}

/** What a dispatcher asks of the part that owns the connections (the Acceptor). */
export interface DispatchHooks {
  /** A worker broke the protocol: disconnect it. */
  cutOff(link: Link, what: string): void
  /** A worker with too many stuck slots that nobody waits for any more: disconnect it. */
  evict(link: Link): void
  /** A worker on another host joined or left: tell whoever listens. */
  remoteJoined(e: RemoteEndpoint): void
  remoteLeft(e: RemoteEndpoint): void
}

export class Dispatcher {
  /** What a transport for remote workers (the `remote` option) may do to the books. */
  readonly remoteHost: RemoteHubHost
  /** Every worker the dispatcher may pick, those on this host first (the order `bus.workers` lists them in). */
  readonly endpoints: Endpoint[] = []
  /** The workers on this host: their slots, pumps and stuck slots are this file's and accept.ts's duties too. */
  readonly links: Link[] = []
  /** Workers on other hosts by the transport's peer, and the requests they hold. */
  readonly remotes = new Map<RemotePeer, RemoteEndpoint>()
  readonly remoteCalls = new Set<Pending>()
  readonly queue: Pending[] = []
  private ticker: ReturnType<typeof setTimeout> | undefined
  private tickAt = 0
  readonly latency = new LatencyHistogram()
  private stopped = false
  private nextId = 1
  counters = {
    requests: 0,
    responses: 0,
    errors: 0,
    timeouts: 0,
    refusedPeers: 0,
    overCapPeers: 0,
    protocolErrors: 0,
    evictedWorkers: 0,
    internalErrors: 0,
    acceptErrors: 0,
    rejectedMessages: 0,
    bytesOut: 0,
    bytesIn: 0,
  }

  constructor(
    readonly name: string,
    private readonly o: DispatchSettings,
    private readonly hooks: DispatchHooks,
  ) {
    this.remoteHost = this.makeRemoteHost()
  }

  /** Workers connected now, on this host and others. */
  get workerCount(): number {
    return this.endpoints.length
  }

  /**
   * A new request: counted, the ticks started or brought forward to its deadline (an idle bus does not tick),
   * then sent, or queued, or failed with what `refusal` says when nothing may take it.
   */
  add(p: Pending, timeoutMs: number, refusal: () => Error | undefined) {
    this.counters.requests++
    if (this.tickAt === Infinity) this.scheduleTick(Math.min(TICK_BUSY_MS, timeoutMs || TICK_BUSY_MS))
    else if (p.deadline < this.tickAt) this.scheduleTick(Math.max(0, timeoutMs))
    if (this.queue.length === 0 && this.dispatch(p)) return // behind a queue it waits its turn
    const refused = refusal()
    if (refused) return this.fail(p, refused)
    this.queue.push(p)
    this.dispatchQueued()
  }

  /** The bus closed: no more ticks. */
  stop() {
    this.stopped = true
    clearTimeout(this.ticker)
  }

  /** When a remote worker gets a request (remotePolicy). */
  get remotePolicy() {
    return this.o.remotePolicy
  }

  /**
   * The worker a request goes to, or null when none has room: the local one with the fewest requests out, unless
   * remotePolicy sends it to the remote one with the lowest share of its capacity in use ("overflow": only when no
   * local one has room; "balance": when that share is lower than the local one's; "never").
   */
  pick(): Endpoint | null {
    const policy = this.o.remotePolicy
    let local: Endpoint | null = null
    let remote: Endpoint | null = null
    for (const e of this.endpoints) {
      if (!e.serving || e.inFlight >= e.capacity) continue
      if (e.local) {
        if (!local || e.inFlight < local.inFlight) local = e
      } else if (policy !== "never" && (!remote || e.inFlight / e.capacity < remote.inFlight / remote.capacity))
        remote = e
    }
    if (
      remote &&
      (!local || (policy === "balance" && remote.inFlight / remote.capacity < local.inFlight / local.capacity))
    )
      return remote
    return local
  }

  /** Sends p to the least busy worker. False when none has room; p then stays queued. */
  dispatch(p: Pending): boolean {
    const e = this.pick()
    return e !== null && e.send(p)
  }

  /** A Link's send: publishes p in a free slot (docs/PROTOCOL.md §3). False when none is free after all. */
  publish(link: Link, p: Pending): boolean {
    const ptr = link.chan.ptr
    const slot = native.sb_hub_claim(ptr)
    if (slot < 0) return false
    let headLen = 0
    let r: number
    try {
      if (p.body.length !== p.bodyLength)
        throw new TypeError(
          `the request body changed size after request() (${p.bodyLength} → ${p.body.length} bytes: its buffer was transferred or resized); keep a body intact until its request settles`,
        )
      const arena = link.chan.arena(slot, 0)
      headLen = p.strings ? writeHead(arena, p.strings) : 0
      arena.set(p.body, align8(headLen))
      r = native.sb_hub_publish(ptr, slot, p.kind, this.nextId++ >>> 0, headLen, p.body.length)
      if (r < 0)
        throw new PayloadTooLargeError(
          `request of ${headLen} head and ${p.body.length} body bytes does not fit a slot (error ${-r})`,
        )
    } catch (e) {
      native.sb_hub_unclaim(ptr, slot) // nothing was published: the slot goes straight back
      this.fail(p, e)
      return true
    }
    this.counters.bytesOut += p.body.length
    link.pending[slot] = p
    link.inFlight++
    link.waiting++
    link.requests++
    p.phase = "in-slot"
    p.endpoint = link
    p.slot = slot
    if (!p.idempotent) p.body = EMPTY // the bytes are in the slot: do not keep the caller's buffer alive
    link.pump.kick()
    return true
  }

  /** A Link's cancel: the worker sees the slot cancelled; it stays p's until the worker hands it back. */
  cancelInSlot(link: Link, p: Pending) {
    if (link.chan.isOpen && !p.in?.ended) native.sb_hub_cancel(link.chan.ptr, p.slot)
  }

  /** A worker on another host joined: the transport's peer as an Endpoint. */
  private remoteEndpoint(peer: RemotePeer): RemoteEndpoint {
    const e: RemoteEndpoint = {
      local: false,
      peer,
      get serving() {
        return peer.serving
      },
      get capacity() {
        return peer.capacity
      },
      get inFlight() {
        return peer.inFlight
      },
      send: (p) => this.sendRemote(p, e),
      cancel: (p) => {
        if (!this.remoteCalls.has(p)) return
        peer.cancel(p) // its answer, if one comes, finds nobody
        this.remoteDone(p)
      },
      info: () => this.remoteInfo(e),
    }
    return e
  }

  /** A RemoteEndpoint's send (docs/PROTOCOL.md §10.2): head, padding and body as in an arena. Always true. */
  private sendRemote(p: Pending, e: RemoteEndpoint): boolean {
    const { peer } = e
    try {
      if (p.body.length !== p.bodyLength) throw new TypeError("the request body changed size after request()")
      const headLen = p.strings ? headLength(p.strings) : 0
      const payload = new Uint8Array(peer.prefix + align8(headLen) + p.body.length)
      if (p.strings) writeHead(payload.subarray(peer.prefix), p.strings)
      payload.set(p.body, peer.prefix + align8(headLen))
      peer.send(p, payload, headLen)
    } catch (err) {
      this.fail(p, err)
      return true
    }
    this.counters.bytesOut += p.body.length
    peer.inFlight++
    peer.requests++
    this.remoteCalls.add(p)
    p.phase = "in-slot"
    p.endpoint = e
    if (!p.idempotent) p.body = EMPTY
    return true
  }

  private makeRemoteHost(): RemoteHubHost {
    return {
      name: this.name,
      joined: (peer) => {
        if (this.remotes.has(peer)) return
        const e = this.remoteEndpoint(peer)
        this.remotes.set(peer, e)
        this.endpoints.push(e)
        this.hooks.remoteJoined(e)
        this.dispatchQueued()
      },
      left: (peer, err) => {
        const e = this.remotes.get(peer)
        if (!e) return
        this.remotes.delete(peer)
        this.endpoints.splice(this.endpoints.indexOf(e), 1)
        for (const p of [...this.remoteCalls]) if (p.endpoint === e) this.retryOrFail(p, err)
        this.hooks.remoteLeft(e)
      },
      answered: (call, status, flags, headLen, bytes) => {
        const p = call as Pending
        if (!this.remoteCalls.has(p) || p.phase !== "in-slot") return
        this.remoteDone(p)
        const body = bytes.subarray(align8(headLen))
        this.counters.bytesIn += body.length
        const { pid } = (p.endpoint as RemoteEndpoint).peer
        if (flags & RespFlag.ERROR) return this.fail(p, remoteError(readHead(bytes, headLen), utf8(body), pid))
        this.streamEnded(p, status, p.kind === Kind.RAW ? [] : readHead(bytes, headLen), body.slice())
        p.phase = "slot-returned"
      },
      frame: (call, type, status, bytes) => {
        const p = call as Pending
        if (!this.remoteCalls.has(p) || p.phase !== "in-slot") return
        let s = p.in as StreamIn | null
        if (!s) {
          const { peer } = p.endpoint as RemoteEndpoint
          const done = () => this.remoteDone(p)
          p.in = s = new StreamIn(this.streams, new RemoteFrames(peer.pid, (n) => peer.grant(p, n), done), p)
        }
        ;(s.src as RemoteFrames).push(type, status, bytes)
        s.notified(false)
      },
      failed: (p, err) => this.fail(p as Pending, err),
      rejected: () => void this.counters.rejectedMessages++,
    }
  }
  /** A worker on another host as `bus.workers` lists it. */
  private remoteInfo(e: RemoteEndpoint): WorkerInfo {
    const { peer } = e
    let waiting = 0
    for (const p of this.remoteCalls) if (p.endpoint === e) waiting++
    return {
      pid: peer.pid,
      uid: -1,
      state: peer.serving ? "serving" : "draining",
      inFlight: peer.inFlight,
      waiting,
      stuck: 0,
      requests: peer.requests,
      slots: [],
      transport: peer.transport,
      host: peer.host,
    }
  }

  /**
   * p no longer holds a place on its remote worker (answered, failed, cancelled, ended, or the worker left): the
   * place goes to the queue at once, whatever freed it. A Link's places go back in returnSlot's callers.
   */
  private remoteDone(p: Pending) {
    if (!this.remoteCalls.delete(p)) return
    ;(p.endpoint as RemoteEndpoint).peer.inFlight--
    this.dispatchQueued()
  }

  /** The pump's duty: take every answer the worker completed, hand it to its caller, return the slots. */
  collect(link: Link): number {
    const { chan } = link
    const m = chan.msg
    let n = 0
    let now = 0 // read once per pass, at the first answer: every answer of a pass arrived by then
    for (;;) {
      if (!chan.isOpen) break
      const slot = native.sb_hub_poll(chan.ptr)
      if (slot < 0) {
        if (slot === E_CORRUPT) this.hooks.cutOff(link, `corrupted its region (${native.sb_error(chan.ptr)})`)
        break
      }
      n++
      const p = link.pending[slot]
      if (m[Msg.flags]! & MsgFlag.STREAM) {
        // a frame or more of a streamed answer (docs/PROTOCOL.md §9): the slot goes back after its END
        if (p)
          (p.in ??= new StreamIn(this.streams, new SlotFrames(this.streams, link, slot), p)).notified(
            (m[Msg.flags]! & MsgFlag.FINAL) !== 0,
          )
        continue
      }
      let lent = false
      if (p?.phase === "in-slot") {
        if (now === 0) now = Bun.nanoseconds()
        try {
          lent = this.answer(p, link, slot, now)
        } catch (e) {
          this.fail(
            p,
            new ProtocolError(`could not read the answer of worker pid ${chan.peerPid}: ${(e as Error)?.message}`),
          )
        }
      }
      if (!lent) this.returnSlot(link, slot)
    }
    if (n > 0) this.dispatchQueued()
    if (link.state === "evicting" && link.waiting === 0) this.hooks.evict(link)
    return n
  }

  private returnSlot(link: Link, slot: number) {
    const p = link.pending[slot]
    if (p) p.phase = "slot-returned"
    link.pending[slot] = null
    const lent = link.lent[slot]?.deref()
    link.lent[slot] = null
    if (lent && !lent.detached) lent.transfer(0) // stale borrowed views read empty, never the next answer
    if (!link.chan.isOpen) return
    native.sb_hub_release(link.chan.ptr, slot)
    link.inFlight--
  }

  /** Resolves p with the answer in `slot`; true when the slot was lent to the caller (a borrowed response). */
  private answer(p: Pending, link: Link, slot: number, now: number): boolean {
    const { chan } = link
    const m = chan.msg
    const arena = chan.arena(slot, 1)
    const bodyOff = m[Msg.bodyOff]!
    const bodyLen = m[Msg.bodyLen]!
    this.counters.bytesIn += bodyLen
    const flags = m[Msg.flags]!
    if (flags & RespFlag.ERROR) {
      this.fail(
        p,
        remoteError(readHead(arena, m[Msg.headLen]!), utf8(arena.subarray(bodyOff, bodyOff + bodyLen)), chan.peerPid),
      )
      return false
    }
    if (flags & RespFlag.CANCELLED) {
      this.fail(p, new ProtocolError("worker returned a request the hub never cancelled"))
      return false
    }
    const status = m[Msg.status]!
    const headers = p.kind === Kind.RAW ? NO_HEAD : readHead(arena, m[Msg.headLen]!)
    let value: unknown
    let lent = false
    if (p.borrow) {
      // An answer collected while its worker is being dropped cannot keep the slot: it gets a copy.
      if (bodyLen === 0 || !this.links.includes(link))
        value = new BorrowedResponse(status, headers, arena.slice(bodyOff, bodyOff + bodyLen), null)
      else {
        const buf = chan.lend(slot, 1, bodyOff, bodyLen)
        let returned = false
        const give = () => {
          if (returned) return
          returned = true
          forgotten.unregister(give)
          if (link.pending[slot] === p) this.returnSlot(link, slot)
          this.dispatchQueued()
        }
        link.lent[slot] = new WeakRef(buf)
        forgotten.register(buf, give, give)
        value = new BorrowedResponse(status, headers, new Uint8Array(buf), give)
        lent = true
      }
    } else {
      const body = arena.slice(bodyOff, bodyOff + bodyLen)
      if (p.stream) value = new StreamedResponse(status, headers, body)
      else value = p.kind === Kind.RAW ? body : new SlotResponse(status, headers, body)
    }
    this.counters.responses++
    this.latency.record(now - p.started)
    this.settle(p)
    p.resolve(value as never)
    return lent
  }

  /** What a streamed answer's reader (stream-in.ts) may do to the bus's books. */
  private readonly streams: StreamHost = {
    maxBody: () => this.o.maxBody,
    countIn: (bytes) => void (this.counters.bytesIn += bytes),
    streamStarted: (p, status, head, body) => this.streamStarted(p, status, head, body),
    streamEnded: (p, status, head, body) => this.streamEnded(p, status, head, body),
    fail: (p, err) => this.fail(p, err),
    cutOff: (link, what) => this.hooks.cutOff(link, what),
    returnSlot: (link, slot) => {
      this.returnSlot(link, slot)
      this.dispatchQueued()
    },
  }

  private streamStarted(p: Pending, status: number, head: string[], body: ReadableStream<Uint8Array>) {
    p.deadline = Infinity // timeoutMs runs until the HEAD; from here on streamIdleMs watches the reader
    p.resolve(new StreamedResponse(status, head, body) as never)
  }

  private streamEnded(p: Pending, status: number, head: string[], body: Uint8Array | null) {
    this.counters.responses++
    this.latency.record(Bun.nanoseconds() - p.started)
    this.settle(p)
    if (body === null) return // a streaming caller has had its answer since the HEAD
    let value: unknown
    if (p.stream) value = new StreamedResponse(status, head, body)
    else if (p.kind === Kind.RAW) value = body
    else if (p.borrow) value = new BorrowedResponse(status, head, body, null)
    else value = new SlotResponse(status, head, body)
    p.resolve(value as never)
  }

  private settle(p: Pending) {
    if (p.phase === "in-slot" && p.endpoint?.local) {
      p.phase = "settled"
      ;(p.endpoint as Link).waiting--
    } else p.phase = "slot-returned" // it never had a slot, or it was on another host
    if (p.onAbort) p.signal!.removeEventListener("abort", p.onAbort)
  }

  /**
   * The worker holding p is gone (`err`): an idempotent request not yet answered in part goes to another worker
   * (once), any other fails. True when it was sent again.
   */
  retryOrFail(p: Pending, err: unknown): boolean {
    if (!p.idempotent || p.retried || p.phase !== "in-slot" || p.in !== null || !(err instanceof WorkerGoneError)) {
      this.fail(p, err)
      return false
    }
    if (p.endpoint?.local) (p.endpoint as Link).waiting--
    if (this.remoteCalls.delete(p)) (p.endpoint as RemoteEndpoint).peer.inFlight--
    Object.assign(p, { phase: "queued", endpoint: null, slot: -1, retried: true })
    let i = 0 // back in the queue where its arrival puts it
    while (i < this.queue.length && this.queue[i]!.started <= p.started) i++
    this.queue.splice(i, 0, p)
    this.dispatchQueued()
    return true
  }

  fail(p: Pending, err: unknown) {
    if (p.phase !== "queued" && p.phase !== "in-slot") return
    if (p.phase === "queued") {
      const i = this.queue.indexOf(p)
      if (i >= 0) this.queue.splice(i, 1)
    } else p.endpoint?.cancel(p) // a slot stays p's (settled) until the worker hands it back; a late answer is dropped
    this.settle(p)
    p.settledAt = nowMs() // given up: from now on its slot may count as stuck
    if (err instanceof TimeoutError) this.counters.timeouts++
    else this.counters.errors++
    p.body = EMPTY
    p.reject(err)
    p.in?.failed(err) // a caller already reading a stream sees it fail; the rest of it is dropped
  }

  dispatchQueued() {
    while (this.queue.length > 0) {
      const p = this.queue.shift()!
      if (!this.dispatch(p)) {
        this.queue.unshift(p)
        return
      }
    }
  }

  tick() {
    if (this.stopped) return
    try {
      const t = nowMs()
      const expire = (p: Pending | null) => {
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
                : `request to "${this.name}" timed out after ${p.timeoutMs}ms; the worker is overloaded, stuck, or absent`,
            ),
          )
      }
      for (const l of [...this.links]) {
        l.pending.forEach(expire)
        if (l.state === "serving" && this.stuckSlots(l, t) >= this.o.maxStuck) {
          // Its handlers hang: send it nothing more, and let it go once nobody waits for it any longer.
          l.state = "evicting"
          this.counters.evictedWorkers++
          if (l.waiting === 0) this.hooks.evict(l)
          this.dispatchQueued()
        }
      }
      for (const p of [...this.queue]) expire(p)
      for (const p of [...this.remoteCalls]) expire(p)
    } catch {
      this.counters.internalErrors++
    }
    const busy = this.queue.length > 0 || this.remoteCalls.size > 0 || this.links.some((l) => l.inFlight > 0)
    if (busy) this.scheduleTick(TICK_BUSY_MS)
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

  stuckSlots(link: Link, now: number): number {
    let n = 0
    for (let s = 0; s < link.pending.length; s++) {
      const p = link.pending[s]
      if (p?.phase === "settled" && link.lent[s] === null && now - p.settledAt >= this.o.stuckAfterMs) n++
    }
    return n
  }
}
