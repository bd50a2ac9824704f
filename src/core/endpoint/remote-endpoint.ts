// A worker on another host as an Endpoint: the remote transport's RemotePeer and the calls it holds (docs/PROTOCOL.md
// §10). It sends a request as head, padding and body, takes its answer or its stream's frames, and frees the place
// at once when a call ends, whichever way. remoteHubHost is what the transport may do to the bus: workers join and
// leave the dispatcher's books through it, and answers reach the endpoint that holds the call.
import { Kind, RespFlag } from "../../native/ffi.ts"
import { align8, headLength, readHead, utf8, writeHead } from "../wire/codec.ts"
import { letGo, type Endpoint, type EndpointHost, type Pending, type WorkerInfo } from "./endpoint.ts"
import { answerHead, remoteError } from "./response.ts"
import { readsBodyOnce } from "./answer-value.ts"
import { RemoteFrames, StreamIn } from "./stream-in.ts"
import type { RemoteCall, RemoteHubHost, RemotePeer } from "../wire/remote.ts"
import { givenUpAs } from "../probe/recorder.ts"
import { RecOutcome } from "../../native/recorder-layout.ts"

export class RemoteEndpoint implements Endpoint {
  workerIndex = -1
  readonly distance = 1
  /** The calls it holds whose callers wait, each with its flight recorder record's number (0: none, §16.3). */
  private readonly calls = new Map<Pending, number>()
  /** Requests it holds now: its books, not the transport's. */
  inFlight = 0
  readonly packCap = 1 // far ones are picked by load (remotePolicy)
  /** Requests sent to it. */
  requests = 0

  constructor(
    readonly peer: RemotePeer,
    private readonly host: EndpointHost,
  ) {}

  /** Past its request limit (Dispatcher.retireAfter), or retired by this bus: sent nothing more, whatever it says. */
  private mode: "serving" | "retiring" | "draining" = "serving"
  requestLimit = Infinity

  get pid() {
    return this.peer.pid
  }
  get serving() {
    return this.peer.serving && this.mode === "serving"
  }
  get retiring() {
    return this.peer.serving && this.mode === "retiring"
  }

  drain() {
    this.mode = "draining"
  }

  retire() {
    if (this.mode === "serving") this.mode = "retiring"
  }
  serve() {
    if (this.mode === "retiring") this.mode = "serving"
  }
  get capacity() {
    return this.peer.capacity
  }
  get waiting() {
    return this.calls.size
  }

  /** Sends p (docs/PROTOCOL.md §10.2): head, padding and body as in an arena. Always true. */
  send(p: Pending): boolean {
    const { peer } = this
    try {
      if (p.body.length !== p.bodyLength) throw new TypeError("the request body changed size after request()")
      const headLen = p.strings ? headLength(p.strings) : 0
      const payload = new Uint8Array(peer.prefix + align8(headLen) + p.body.length)
      if (p.strings) writeHead(payload.subarray(peer.prefix), p.strings)
      payload.set(p.body, peer.prefix + align8(headLen))
      peer.send(p, payload, headLen)
      const rec = this.host.recorder
      const head = payload.subarray(peer.prefix, peer.prefix + headLen)
      this.calls.set(p, rec === null ? 0 : rec.farSent(p.started, p.waited, p.kind, peer.pid, head, p.body.length))
    } catch (err) {
      this.host.fail(p, err)
      return true
    }
    this.inFlight++
    this.requests++
    p.phase = "in-slot"
    p.endpoint = this
    return true // its body is kept until it is answered: a worker may refuse it unrun, and it goes again (unrun())
  }

  cancel(p: Pending, why?: unknown) {
    if (!this.calls.has(p)) return
    this.peer.cancel(p) // its answer, if one comes, finds nobody
    this.release(p, givenUpAs(why))
  }

  settled(p: Pending) {
    p.phase = "slot-returned" // no slot here: its place was freed when the call ended
  }

  /** p goes back to the queue, unrun or for a retry: it left this worker without an answer (§16.3). */
  forget(p: Pending) {
    this.drop(p, RecOutcome.WORKER_GONE)
  }

  held(): Iterable<Pending> {
    return [...this.calls.keys()]
  }

  tick() {}

  /** The call its transport knows never reached the worker (left() says so to the books). */
  undelivered: Pending | null = null

  left(err: Error) {
    for (const p of [...this.calls.keys()]) this.host.retryOrFail(p, err, p === this.undelivered)
  }

  /** p no longer holds a place on the worker (answered, failed, cancelled, ended): the place goes to the queue. */
  private release(p: Pending, outcome: number, status = 0, bytes = 0) {
    if (this.drop(p, outcome, status, bytes)) this.host.freed()
  }

  /** p leaves the calls it holds, and its record ends (`outcome`, an answer's status and bytes); false if not held. */
  private drop(p: Pending, outcome: number, status = 0, bytes = 0): boolean {
    const at = this.calls.get(p)
    if (at === undefined) return false
    this.calls.delete(p)
    this.inFlight--
    if (at !== 0) this.host.recorder?.farEnded(at, outcome, status, bytes)
    return true
  }

  answered(p: Pending, status: number, flags: number, headLen: number, bytes: Uint8Array) {
    if (!this.calls.has(p) || p.phase !== "in-slot") return
    const body = bytes.subarray(align8(headLen))
    this.release(p, flags & RespFlag.ERROR ? RecOutcome.ERROR : RecOutcome.ANSWERED, status, body.length)
    if (!p.idempotent) letGo(p)
    this.host.counters.receivedBytes(body.length)
    if (flags & RespFlag.ERROR)
      return this.host.fail(p, remoteError(readHead(bytes, headLen), utf8(body), this.peer.pid))
    let head: string[] = []
    try {
      if (p.kind !== Kind.RAW) head = answerHead(bytes, headLen, this.peer.pid)
    } catch (e) {
      return this.host.fail(p, e)
    }
    // the transport's buffer is lent for this call only: copied unless the value is made from it now
    this.host.streams.streamEnded(p, status, head, readsBodyOnce(p) ? body : body.slice())
    p.phase = "slot-returned"
  }

  /** Its worker refused p unrun, full or leaving (docs/PROTOCOL.md §10.2–10.3): p waits in the queue again. */
  unrun(p: Pending) {
    if (this.calls.has(p) && p.phase === "in-slot") this.host.requeue(p)
  }

  /** p's answer may have been lost (docs/PROTOCOL.md §10.3): as when its worker dies, retried if idempotent, else failed. */
  lost(p: Pending, err: Error) {
    if (this.calls.has(p) && p.phase === "in-slot") this.host.retryOrFail(p, err)
  }

  frame(p: Pending, type: number, status: number, bytes: Uint8Array) {
    if (!this.calls.has(p) || p.phase !== "in-slot") return
    let s = p.in as StreamIn | null
    if (!s) {
      if (!p.idempotent) letGo(p) // it runs: never sent again
      const frames = new RemoteFrames(
        this.peer.pid,
        (n) => this.peer.grant(p, n),
        () => this.release(p, RecOutcome.ANSWERED), // the outcome a failure set first stays (§16.3)
      )
      p.in = s = new StreamIn(this.host.streams, frames, p)
      const at = this.calls.get(p)!
      if (at !== 0) this.host.recorder?.farHead(at, status)
    }
    ;(s.src as RemoteFrames).push(type, status, bytes)
    s.notified(false)
  }

  info(): WorkerInfo {
    const { peer } = this
    return {
      pid: peer.pid,
      uid: -1,
      state: this.serving ? "serving" : this.retiring ? "retiring" : "draining",
      inFlight: this.inFlight,
      waiting: this.calls.size,
      stuck: 0,
      requests: this.requests,
      slots: [],
      transport: peer.transport,
      host: peer.host,
    }
  }
}

/** What the transport of a bus (its `remote` option) may do to the bus: RemoteHubHost over the dispatcher's books. */
export function remoteHubHost(
  books: EndpointHost & { join(e: Endpoint): void; leave(e: Endpoint, err: Error): void },
  rejected: () => void,
): RemoteHubHost {
  const endpoints = new Map<RemotePeer, RemoteEndpoint>()
  const holder = (call: RemoteCall) => {
    const e = (call as Pending).endpoint
    return e instanceof RemoteEndpoint ? e : null
  }
  return {
    name: books.name,
    joined: (peer) => {
      if (endpoints.has(peer)) return
      const e = new RemoteEndpoint(peer, books)
      endpoints.set(peer, e)
      books.join(e)
    },
    left: (peer, err, undelivered) => {
      const e = endpoints.get(peer)
      if (!e) return
      endpoints.delete(peer)
      e.undelivered = (undelivered as Pending | undefined) ?? null
      books.leave(e, err)
    },
    answered: (call, status, flags, headLen, bytes) =>
      holder(call)?.answered(call as Pending, status, flags, headLen, bytes),
    frame: (call, type, status, bytes) => holder(call)?.frame(call as Pending, type, status, bytes),
    failed: (call, err) => books.fail(call as Pending, err),
    unrun: (call) => holder(call)?.unrun(call as Pending),
    lost: (call, err) => holder(call)?.lost(call as Pending, err),
    ready: () => books.freed(),
    rejected,
  }
}
