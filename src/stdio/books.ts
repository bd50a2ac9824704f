// Requests on the books: their ids handed out (issueId), put on (track), answered or given up (forget, abandon),
// swept for deadlines and stuck entries, failed when their worker dies or the bus stops; and the requests workers
// sent to clients (ask). One of the parts a StdioBus owns (bus.ts); it answers through the Router.
import { BusClosedError, TimeoutError } from "../core/index.ts"
import { longTimeout, type LongTimer } from "../kit/index.ts"
import { codeOf, idKey } from "./jsonrpc.ts"
import type { Asked, Instance, Pending } from "./pool.ts"
import type { Router } from "./router.ts"
import type { BusClient, JsonRpcId } from "./types.ts"

/** How long a given-up request may still be answered (and counted late) before it leaves the books. */
const STUCK_GRACE_MS = 1000
/** How often request deadlines are checked: a timeout fires up to this late. */
const SWEEP_MS = 5
/** Requests one worker may have waiting on clients; past it, its own oldest is forgotten. */
const ASKED_MAX = 10_000

export class Books {
  readonly pending = new Map<number, Pending>()
  /** Requests workers sent to clients: the id the client saw → where the answer goes. */
  readonly asked = new Map<string, Asked>()
  /** The last id handed out: every request a worker is sent has its own, so an answer names exactly one. */
  private lastId = 0
  private sweeper: ReturnType<typeof setInterval> | null = null
  /** Pending entries somebody still waits for (stop() drains these, not the given-up ones). */
  private awaited = 0
  /** Per client: its requests somebody still waits for, and who waits for them to reach 0. */
  private readonly clientLoad = new Map<BusClient, { awaited: number; idle: (() => void)[] }>()
  private readonly drained: (() => void)[] = []
  /** Per client: its requests on the books by the id it gave them (idKey), for its own cancels. */
  private readonly clientRequests = new Map<BusClient, Map<string | number, number>>()
  private readonly counts = { stuckDropped: 0, cancelsSent: 0 }

  constructor(private readonly router: Router) {}

  /** What the books counted, for stats(). */
  get counters(): Readonly<typeof this.counts> {
    return this.counts
  }

  /** The id the next request goes to its worker under. */
  issueId(): number {
    return ++this.lastId
  }

  /** Whether `id` was ever handed out (an answer to it that finds no entry came after it was given up). */
  issued(id: unknown): boolean {
    return typeof id === "number" && Number.isInteger(id) && id > 0 && id <= this.lastId
  }

  /** The bus id of the request `client` has on the books under its own id (idKey), if any. */
  idOf(client: BusClient, key: string | number): number | undefined {
    return this.clientRequests.get(client)?.get(key)
  }

  rejectPending(instance: Instance, error: Error, generation?: number): void {
    for (const id of [...instance.pending]) {
      if (generation !== undefined && this.pending.get(id)?.generation !== generation) continue
      const p = this.forget(id)
      if (p) this.fail(p, error)
    }
  }

  /** Resolves once nobody waits for a request any more, or after `ms`. */
  async drain(ms: number): Promise<void> {
    if (this.awaited === 0) return
    let timer: LongTimer | undefined
    await Promise.race([
      new Promise<void>((r) => this.drained.push(r)),
      new Promise<void>((r) => (timer = longTimeout(r, ms))),
    ])
    timer!.clear()
  }

  /** The bus stopped: every request still open gets its answer (BusClosedError), and the books are emptied. */
  close(): void {
    for (const [id, p] of this.pending) {
      this.forget(id)
      if (!p.abandoned) this.fail(p, new BusClosedError("the stdio bus stopped before the worker answered"))
    }
    this.drained.splice(0)
    if (this.sweeper) clearInterval(this.sweeper)
    this.sweeper = null
    for (const id of [...this.asked.keys()]) this.forgetAsked(id)
  }

  /** A request off the books gets `error`: its caller rejects, or its client is answered; nothing if given up. */
  private fail(p: Pending, error: Error): void {
    if (p.abandoned) return
    if (p.reject) p.reject(error)
    else if (p.client)
      this.router.answerError(p.client, p.originalId, codeOf(error), error.message, p.instance.pool.config.id)
  }

  /** A client has left: its requests are given up, and what workers asked it is forgotten. */
  leave(client: BusClient): void {
    for (const [id, p] of this.pending) if (p.client === client) this.abandon(id, p, "the client disconnected")
    for (const [id, a] of this.asked) if (a.client === client) this.forgetAsked(id)
  }

  /** One coarse timer for every request deadline: a setTimeout per request costs more than the routing itself. */
  armSweeper(): void {
    if (this.sweeper) return
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS)
  }

  /** Times out what is due, drops given-up requests past their grace, and stops when nothing is left to watch. */
  private sweep(): void {
    const now = performance.now()
    let watching = false
    for (const [id, p] of this.pending) {
      if (!p.abandoned && p.deadline !== undefined && p.deadline < now)
        p.reject!(new TimeoutError(`${p.method}: no answer within ${p.timeoutMs} ms`))
      if (p.abandoned && now - p.abandonedAt >= STUCK_GRACE_MS) {
        this.forget(id)
        this.counts.stuckDropped++
      } else if (p.abandoned || (p.deadline !== undefined && p.deadline !== Infinity)) watching = true
    }
    if (!watching) {
      clearInterval(this.sweeper!)
      this.sweeper = null
    }
  }

  /** Puts a request on the books: pending, and in its instance's in-flight count. */
  track(id: number, p: Pending): void {
    this.pending.set(id, p)
    p.instance.pending.add(id)
    p.instance.inFlight++
    this.awaited++
    const own = p.client ? idKey(p.originalId) : undefined
    if (own !== undefined) {
      const ids = this.clientRequests.get(p.client!)
      if (ids) ids.set(own, id)
      else this.clientRequests.set(p.client!, new Map([[own, id]]))
    }
    if (p.client) {
      const load = this.clientLoad.get(p.client)
      if (load) load.awaited++
      else this.clientLoad.set(p.client, { awaited: 1, idle: [] })
    }
  }

  /** The request is answered or given up: nobody waits for it any more. */
  private unawait(p: Pending): void {
    if (--this.awaited === 0) for (const r of this.drained.splice(0)) r()
    const load = p.client && this.clientLoad.get(p.client)
    if (load && --load.awaited === 0) {
      this.clientLoad.delete(p.client!)
      for (const r of load.idle) r()
    }
  }

  /** Resolves once every request `client` sent has been answered (or given up). */
  settled(client: BusClient): Promise<void> {
    const load = this.clientLoad.get(client)
    return load ? new Promise((r) => load.idle.push(r)) : Promise.resolve()
  }

  /**
   * Nobody waits for this request any more: its answer will be dropped, and its entry after STUCK_GRACE_MS. The
   * worker is told to cancel it (the pool's `cancel` protocol) if it has been sent the request and not answered,
   * unless `reason` is null (the client's own cancel went to it).
   */
  abandon(id: number, p: Pending, reason: string | null): void {
    if (p.abandoned) return
    p.abandoned = true
    p.abandonedAt = performance.now()
    p.abandonReason = reason
    if (this.pending.get(id) !== p) return
    p.instance.stuck++
    this.armSweeper()
    this.unawait(p)
    if (p.written && reason !== null) this.cancelOnWorker(id, p)
  }

  /** The request's line has reached its worker's outbox; one given up while it waited for room is cancelled now. */
  markWritten(id: number, p: Pending): void {
    p.written = true
    if (p.abandoned && p.abandonReason !== null) this.cancelOnWorker(id, p)
  }

  /** Tells the process that was sent request `id` (the id it saw) to stop working on it; nothing once it answered or died. */
  private cancelOnWorker(id: number, p: Pending): void {
    const { instance } = p
    const protocol = instance.pool.config.cancel
    if (protocol === "none" || this.pending.get(id) !== p || !instance.live || instance.generation !== p.generation)
      return
    // MCP: "the initialize request MUST NOT be cancelled by clients"; LSP: nothing may be sent before its answer.
    if (p.method === "initialize") return
    const message =
      protocol === "lsp"
        ? { jsonrpc: "2.0", method: "$/cancelRequest", params: { id } }
        : {
            jsonrpc: "2.0",
            method: "notifications/cancelled",
            params: { requestId: id, reason: p.abandonReason ?? undefined },
          }
    try {
      // Queued behind the request itself (the outbox keeps order), so the worker never sees the cancel first.
      const queued = instance.out.write(JSON.stringify(message) + "\n")
      if (queued) queued.catch(() => {}) // the worker died or stopped reading: nothing left to cancel
      this.counts.cancelsSent++
    } catch {
      // the worker is gone
    }
  }

  /** A client's own cancel was written to its worker (clients.ts): counted with the bus's own in cancelsSent. */
  countClientCancel(): void {
    this.counts.cancelsSent++
  }

  /** Drops a pending entry and its in-flight count; tells stop() when nobody waits any more. */
  forget(id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (!p) return undefined
    this.pending.delete(id)
    p.instance.pending.delete(id)
    p.instance.inFlight--
    const ids = p.client && this.clientRequests.get(p.client)
    if (ids) {
      const own = idKey(p.originalId)
      if (own !== undefined && ids.get(own) === id) ids.delete(own)
      if (ids.size === 0) this.clientRequests.delete(p.client!)
    }
    if (p.abandoned) p.instance.stuck--
    else this.unawait(p)
    return p
  }

  /** Takes back a request that never reached its worker, if it is still on the books. */
  withdraw(id: number, p: Pending): void {
    if (this.pending.get(id) === p) this.forget(id)
  }

  /** A request a worker sends a client: kept under a new id nobody can guess, which only that client answers. */
  ask(instance: Instance, client: BusClient, originalId: JsonRpcId): string {
    const busId = `sb-${crypto.randomUUID()}`
    if (instance.asked.size >= ASKED_MAX) this.forgetAsked(instance.asked.values().next().value!) // its own oldest, never another worker's
    this.asked.set(busId, { instance, generation: instance.generation, client, originalId })
    instance.asked.add(busId)
    return busId
  }

  /**
   * The request in flight on `instance` a request the worker sends now most likely comes of, among those `may`
   * allows: a stdio server names no session in what it asks, and a tool asks as it starts, in the order its calls
   * came: the oldest with the fewest asks counted so far.
   */
  askee(instance: Instance, may: (p: Pending) => boolean): Pending | undefined {
    let best: Pending | undefined
    for (const id of instance.pending) {
      const p = this.pending.get(id)
      if (p && !p.abandoned && p.client && may(p) && (!best || (p.asks ?? 0) < (best.asks ?? 0))) best = p
    }
    if (best) best.asks = (best.asks ?? 0) + 1
    return best
  }

  /** The bus id under which `instance` asked a client what it knows as `originalId` (its cancel names that). */
  askedAs(instance: Instance, originalId: unknown): string | undefined {
    const key = idKey(originalId)
    if (key === undefined) return undefined
    for (const busId of instance.asked) if (idKey(this.asked.get(busId)?.originalId) === key) return busId
    return undefined
  }

  forgetAsked(id: string): void {
    const a = this.asked.get(id)
    if (!a) return
    this.asked.delete(id)
    a.instance.asked.delete(id)
  }

  /** A request of the bus's own to one worker process: resolves with its result, which nobody else sees. */
  requestOn(instance: Instance, method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    const id = this.issueId()
    const entry: Pending = {
      instance,
      generation: instance.generation,
      client: null,
      originalId: id,
      sessionKey: null,
      resolve,
      reject: (e: Error) => {
        this.abandon(id, entry, e.message)
        reject(e)
      },
      deadline: performance.now() + timeoutMs,
      timeoutMs,
      method,
      abandoned: false,
      abandonedAt: 0,
      written: false,
    }
    this.track(id, entry)
    this.armSweeper()
    const failed = (e: Error) => {
      this.withdraw(id, entry)
      entry.reject!(e)
    }
    try {
      const queued = instance.out.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`)
      if (queued) queued.then(() => this.markWritten(id, entry), failed)
      else this.markWritten(id, entry)
    } catch (e) {
      failed(e as Error)
    }
    return promise
  }
}
