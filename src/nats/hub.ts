// The hub's side of workers on other hosts over NATS (docs/PROTOCOL.md §10): it hears their presence, sends them
// requests, takes their answers on an inbox of its own, and sends cancels.
import type { Msg, NatsConnection } from "@nats-io/transport-node"
import { Frame, RespFlag } from "../native/ffi.ts"
import { PayloadTooLargeError, ProtocolError, WorkerGoneError } from "../core/index.ts"
import { printable } from "../kit/index.ts"
import {
  align8,
  frameCharge,
  stackless,
  type RemoteCall,
  type RemoteHubHost,
  type RemoteLink,
  type RemotePeer,
  type TransportOptions,
} from "../core/internal.ts"
import {
  clampHeartbeat,
  guarded,
  ID,
  newId,
  PREFIX,
  readPresence,
  readPrefix,
  stallMeter,
  StreamFlag,
  subjects,
  writePrefix,
  type HubPresence,
} from "./wire.ts"
import type { NatsUse, SharedConnection } from "./shared.ts"

/** The flags an END frame may carry (§10.4). */
const END_FLAGS = StreamFlag.END | StreamFlag.FAILED | StreamFlag.CANCELLED

/** A request out, with its streamed answer's books (§10.4): the next frame's number, DATA received and taken. */
interface Call {
  p: RemoteCall
  peer: NatsPeer
  frames: number
  received: number
  taken: number
  granted: number
}

/** Workers a hub takes over NATS at once: presences of more are dropped (and counted), §10.6. */
const MAX_PEERS = 1024

class NatsPeer implements RemotePeer {
  readonly transport = "nats"
  readonly prefix = PREFIX
  seen = performance.now()
  state = "serving"
  /** Its presence's epoch (§10.3): a new one says answers it made may have been lost. */
  epoch = 0
  /**
   * Silent this long, it is gone (§10.3): the hub's peerTimeoutMs, or 4 × the heartbeatMs its presence announces if
   * longer, so a worker that announces itself less often than the hub checks is not counted gone between two.
   */
  patience: number
  /** It refused a request as running its slots already (§10.2): sent nothing more until it answers or announces. */
  full = false
  /** Its request subject, made once. */
  readonly subject: string

  get serving() {
    return this.state === "serving"
  }
  get capacity() {
    return this.full ? 0 : this.slots
  }

  constructor(
    readonly id: string,
    readonly host: string,
    readonly pid: number,
    readonly slots: number,
    private readonly hub: NatsHub,
    subject: string,
    patience: number,
  ) {
    this.subject = subject
    this.patience = patience
  }
  send(p: RemoteCall, payload: Uint8Array, headLen: number) {
    this.hub.send(this, p, payload, headLen)
  }
  cancel(p: RemoteCall) {
    this.hub.cancel(this, p)
  }
  grant(p: RemoteCall, taken: number) {
    this.hub.grant(this, p, taken)
  }
}

class NatsHub implements RemoteLink {
  private readonly id = newId()
  /** Reply subjects' stem (§10.2): `slotbus.<bus>.re.<hub>.<key>`, the key never announced. */
  private readonly inbox: string
  private readonly s
  private readonly peers = new Map<string, NatsPeer>()
  private readonly calls = new Map<number, Call>()
  private readonly numbers = new WeakMap<RemoteCall, number>()
  private next = 0
  private timer: ReturnType<typeof setInterval> | undefined
  private liveness: ReturnType<typeof setInterval> | undefined
  private lastRegrant = 0
  private lastEager = Number.NEGATIVE_INFINITY
  private subs: { unsubscribe(): void }[] = []
  private closed = false
  private readonly maxPayload: number
  private readonly nc: NatsConnection

  constructor(
    private readonly host: RemoteHubHost,
    private readonly use: NatsUse,
    private readonly heartbeatMs: number,
    private readonly peerTimeoutMs: number,
    private readonly window: number,
  ) {
    this.nc = use.nc
    this.s = subjects(host.name)
    this.inbox = this.s.replies(this.id, newId())
    this.maxPayload = this.nc.info?.max_payload ?? 1024 * 1024
  }

  get connected() {
    return this.use.up
  }

  server() {
    return this.use.server()
  }

  async start() {
    const { nc } = this
    const refused = () => this.host.rejected()
    this.subs.push(nc.subscribe(`${this.inbox}.*`, { callback: guarded((msg) => this.onAnswer(msg), refused) }))
    this.subs.push(nc.subscribe(this.s.hb, { callback: guarded((msg) => this.onPresence(msg), refused) }))
    await nc.flush()
    this.announce()
    this.timer = setInterval(() => this.announce(), this.heartbeatMs)
    // §10.3: checked every eighth of the timeout, gone after seven eighths, so gone at most peerTimeoutMs after
    // the last heartbeat came
    const tick = this.peerTimeoutMs / 8
    const stalled = stallMeter(tick)
    this.liveness = setInterval(() => {
      const now = performance.now()
      const late = stalled()
      for (const peer of this.peers.values())
        if (now - (peer.seen = Math.min(now, peer.seen + late)) > peer.patience - tick)
          this.gone(peer, `sent no heartbeat for ${Math.round(now - peer.seen)}ms`)
      // a lost grant costs one heartbeat (§10.4)
      if (now - this.lastRegrant >= this.heartbeatMs) {
        this.lastRegrant = now
        for (const [n, c] of this.calls) if (c.granted > 0) this.sendGrant(n, c)
      }
    }, tick)
    // Answers sent to this hub while it was away were lost (nobody subscribed meanwhile): what it sent is given up
    this.use.onStatus((st) => {
      if (st.type === "reconnect")
        this.lost(() => true, "may have answered while this hub's NATS connection was down (the answer is lost)")
    })
    this.use.onClosed(() => {
      clearInterval(this.timer)
      clearInterval(this.liveness)
      for (const peer of [...this.peers.values()]) this.gone(peer, "is out of reach: the hub's NATS connection closed")
    })
  }

  private announce() {
    const p: HubPresence = { v: 1, hub: this.id, heartbeatMs: this.heartbeatMs }
    if (!this.nc.isClosed()) this.nc.publish(this.s.hub, JSON.stringify(p))
  }

  private onPresence(msg: Msg) {
    const p = readPresence(msg.data)
    if (!p || typeof p.worker !== "string" || !ID.test(p.worker)) return this.host.rejected()
    // its heartbeat, if it says (a worker of before does not): its patience, for at most 4 minutes (§10.1)
    const hb = p.heartbeatMs
    if (hb !== undefined && !(typeof hb === "number" && hb > 0)) return this.host.rejected()
    const patience = hb === undefined ? this.peerTimeoutMs : Math.max(this.peerTimeoutMs, 4 * clampHeartbeat(hb))
    let peer = this.peers.get(p.worker)
    const epoch = Number.isSafeInteger(p.epoch) ? (p.epoch as number) : 0
    if (peer && peer.epoch !== epoch) {
      peer.epoch = epoch
      this.lost((c) => c.peer === peer, "lost its NATS connection for a while (an answer it made then is lost)")
    }
    // a heartbeat since it refused as full: it may have room again (one refusal a heartbeat at most, §10.2)
    const full = peer?.full === true
    if (peer) peer.full = false
    if (p.state === "leaving") {
      if (!peer) return
      // it takes nothing new and answers what it runs (its close() waits for them, saying "leaving" meanwhile): gone
      // once they have settled, or when its heartbeats stop; a forged "leaving" costs it new requests until its next
      peer.state = "leaving"
      peer.seen = performance.now()
      peer.patience = patience
      return this.settled(peer)
    }
    if (!peer) {
      if (this.peers.size >= MAX_PEERS) return this.host.rejected()
      const slots = Number.isInteger(p.slots) && (p.slots as number) > 0 ? Math.min(p.slots as number, 4096) : 1
      const pid = Number.isInteger(p.pid) ? (p.pid as number) : 0
      // anyone may publish a presence: its host goes into errors and logs with control characters escaped
      const host = typeof p.host === "string" ? printable(p.host.slice(0, 255)) : "?"
      peer = new NatsPeer(p.worker, host, pid, slots, this, this.s.req(p.worker), patience)
      peer.epoch = epoch
      this.peers.set(peer.id, peer)
      peer.state = p.state === "draining" ? "draining" : "serving"
      this.host.joined(peer)
      // a new worker hears of this hub at once, not a heartbeat later (it judges the hub's life by it, §10.3);
      // however many new workers there are, once per 100 ms
      const now = performance.now()
      if (now - this.lastEager >= 100) {
        this.lastEager = now
        this.announce()
      }
    }
    peer.seen = performance.now()
    peer.patience = patience
    peer.state = p.state === "draining" ? "draining" : "serving"
    if (full) this.host.ready(peer)
  }

  /** A call of `peer` ended: a leaving worker whose calls have all ended is gone (§10.3). */
  private settled(peer: NatsPeer) {
    if (peer.state !== "leaving") return
    for (const c of this.calls.values()) if (c.peer === peer) return
    this.gone(peer, "left")
  }

  /**
   * The calls `which` picks may have had their answers lost (§10.3): each is given up, its worker told, and sent
   * again if idempotent, as when its worker dies; a late answer finds nobody.
   */
  private lost(which: (c: Call) => boolean, why: string) {
    const peers = new Set<NatsPeer>()
    for (const [n, c] of [...this.calls]) {
      if (!which(c)) continue
      this.calls.delete(n)
      peers.add(c.peer)
      if (!this.nc.isClosed()) this.nc.publish(this.s.cancel(c.peer.id), `${this.inbox}.${n}`)
      const who = `worker ${c.peer.id} (pid ${c.peer.pid} on ${c.peer.host}, over NATS) of "${this.host.name}"`
      this.host.lost(c.p, new WorkerGoneError(`${who} ${why}; retry the request`))
    }
    for (const peer of peers) this.settled(peer)
  }

  private gone(peer: NatsPeer, why: string, undelivered?: RemoteCall) {
    if (this.peers.get(peer.id) !== peer) return
    this.peers.delete(peer.id)
    // each call it held is cancelled too: a worker counted gone may only be stopped (SIGSTOP, a long pause), and
    // comes back to handlers nobody waits for, holding its slots for good unless it is told (§10.3)
    for (const [n, c] of this.calls) {
      if (c.peer !== peer) continue
      this.calls.delete(n)
      if (!this.nc.isClosed()) this.nc.publish(this.s.cancel(peer.id), `${this.inbox}.${n}`)
    }
    this.host.left(
      peer,
      stackless(
        () =>
          new WorkerGoneError(
            `worker ${peer.id} (pid ${peer.pid} on ${peer.host}, over NATS) of "${this.host.name}" ${why}; retry the request`,
          ),
      ),
      undelivered,
    )
  }

  send(peer: NatsPeer, p: RemoteCall, payload: Uint8Array, headLen: number) {
    if (payload.length > this.maxPayload)
      throw new PayloadTooLargeError(
        `request of ${payload.length} bytes is over the NATS server's max_payload ${this.maxPayload}; raise max_payload or send less`,
      )
    const n = ++this.next
    this.calls.set(n, { p, peer, frames: 0, received: 0, taken: 0, granted: 0 })
    this.numbers.set(p, n)
    writePrefix(payload, p.kind, headLen, Math.min(p.timeoutMs, 2 ** 32 - 1), this.window)
    this.nc.publish(peer.subject, payload, { reply: `${this.inbox}.${n}` })
  }

  cancel(peer: NatsPeer, p: RemoteCall) {
    const n = this.numbers.get(p)
    if (n === undefined || !this.calls.delete(n)) return
    if (!this.nc.isClosed()) this.nc.publish(this.s.cancel(peer.id), `${this.inbox}.${n}`)
    this.settled(peer)
  }

  grant(peer: NatsPeer, p: RemoteCall, taken: number) {
    const n = this.numbers.get(p)
    const call = n === undefined ? undefined : this.calls.get(n)
    if (!call || call.peer !== peer) return
    call.taken = taken
    if (taken - call.granted >= this.window / 4) this.sendGrant(n!, call)
  }

  private sendGrant(n: number, call: Call) {
    call.granted = call.taken
    if (!this.nc.isClosed()) this.nc.publish(this.s.credit(call.peer.id), `${this.inbox}.${n} ${call.taken}`)
  }

  private onAnswer(msg: Msg) {
    const n = Number(msg.subject.slice(this.inbox.length + 1))
    const call = this.calls.get(n)
    if (!call) return // given up, or not ours
    try {
      this.take(n, call, msg)
    } catch {
      // a head that does not decode, say: the worker's fault, and this call's end (§10.2)
      this.calls.delete(n)
      this.host.rejected()
      this.host.failed(
        call.p,
        new WorkerGoneError(`worker ${call.peer.id} sent an answer that is not slotbus protocol (§10.2)`),
      )
    }
    if (!this.calls.has(n)) this.settled(call.peer)
  }

  private take(n: number, call: Call, msg: Msg) {
    // A plain view of the client's Buffer (whose subarray and slice cost more, its slice no copy): the books copy
    // the body out of it.
    const d = msg.data
    const data = new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
    const p = readPrefix(data)
    if (p && p.kindOrFlags & (StreamFlag.HEAD | StreamFlag.DATA | StreamFlag.END)) return this.onFrame(n, call, p, data)
    this.calls.delete(n)
    // no responders: the request reached no worker, so it may go to another as it is (never a poison request)
    if (msg.headers?.code === 503)
      return this.gone(call.peer, "has no subscription any more (NATS: no responders)", call.p)
    const bytes = data.subarray(PREFIX)
    if (p?.kindOrFlags === 1 && p.a === 503 && p.b === 0 && call.frames === 0) {
      // Not run, so the request waits in the queue again, idempotent or not (§10.2–10.3). A leaving worker said so
      // in its presence first, and is sent nothing new; else it runs its slots already, for hubs besides this one,
      // and gets nothing more from here until its next presence
      if (call.peer.state !== "leaving") call.peer.full = true
      return this.host.unrun(call.p)
    }
    if (!p || p.kindOrFlags > 1 || align8(p.b) > bytes.length || call.frames > 0) {
      this.host.rejected()
      return this.host.failed(
        call.p,
        new WorkerGoneError(`worker ${call.peer.id} sent an answer that is not slotbus protocol (§10.2)`),
      )
    }
    call.peer.full = false // it had room for this one: one is free again
    this.host.answered(call.p, p.a, p.kindOrFlags, p.b, bytes)
  }

  /** A frame of a streamed answer (§10.4): numbered in order, a HEAD first, DATA within credit. */
  private onFrame(
    n: number,
    call: Call,
    f: { kindOrFlags: number; a: number; b: number; c: number },
    data: Uint8Array,
  ) {
    const flags = f.kindOrFlags
    const type = flags & StreamFlag.HEAD ? Frame.HEAD : flags & StreamFlag.DATA ? Frame.DATA : Frame.END
    const known = type === Frame.HEAD ? StreamFlag.HEAD : type === Frame.DATA ? StreamFlag.DATA : END_FLAGS
    const bytes = data.slice(PREFIX) // a copy: held until the caller reads it
    const who = `worker ${call.peer.id} (pid ${call.peer.pid} on ${call.peer.host})`
    let err: Error | null = null
    if (f.a !== call.frames)
      err = new WorkerGoneError(
        `lost frame ${call.frames} of a streamed answer from ${who} over NATS (frame ${f.a} came instead; a slow consumer?); retry the request`,
      )
    else if (
      (type === Frame.HEAD) !== (f.a === 0) ||
      (flags & ~known) !== 0 ||
      (type === Frame.DATA ? bytes.length === 0 || f.b !== 0 || f.c !== 0 : f.c !== bytes.length)
    )
      err = new ProtocolError(`${who} sent a streamed answer that is not slotbus protocol (§10.4)`)
    else if (type === Frame.DATA && (call.received += frameCharge(bytes.length)) > call.taken + this.window)
      err = new ProtocolError(`${who} sent a streamed answer past the credit it was given (§10.4)`)
    if (err) {
      if (err instanceof ProtocolError) this.host.rejected()
      return this.host.failed(call.p, err) // which cancels it (§10.4)
    }
    call.frames++
    if (type === Frame.END) {
      this.calls.delete(n)
      call.peer.full = false
    }
    const status =
      type === Frame.HEAD
        ? f.b
        : (flags & StreamFlag.FAILED ? RespFlag.ERROR : 0) | (flags & StreamFlag.CANCELLED ? RespFlag.CANCELLED : 0)
    this.host.frame(call.p, type, status, bytes)
  }

  async close() {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    clearInterval(this.liveness)
    for (const sub of this.subs) sub.unsubscribe()
    await this.use.release()
  }
}

export async function serveHub(
  host: RemoteHubHost,
  shared: SharedConnection,
  opts: TransportOptions,
): Promise<RemoteLink> {
  const use = await shared.use()
  const hub = new NatsHub(
    host,
    use,
    opts.heartbeatMs,
    opts.peerTimeoutMs ?? 4 * opts.heartbeatMs,
    opts.streamWindow ?? 0,
  )
  try {
    await hub.start()
  } catch (e) {
    await hub.close()
    throw e
  }
  return hub
}
