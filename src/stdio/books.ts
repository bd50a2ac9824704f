// Requests on the books: put on (track), answered or given up (forget, abandon), swept for deadlines and stuck
// entries, failed when their worker dies. One of the parts a StdioBus owns (bus.ts); it answers through the Router.
import { TimeoutError } from "../core/index.ts"
import { codeOf, idKey } from "./jsonrpc.ts"
import type { Asked, Instance, Pending } from "./pool.ts"
import type { Router } from "./router.ts"
import type { BusClient } from "./types.ts"

/** How long a given-up request may still be answered (and counted late) before it leaves the books. */
const STUCK_GRACE_MS = 1000
/** How often request deadlines are checked: a timeout fires up to this late. */
const SWEEP_MS = 5

export class Books {
  readonly pending = new Map<number, Pending>()
  /** Requests workers sent to clients: the id the client saw → where the answer goes. */
  readonly asked = new Map<string, Asked>()
  nextId = 0
  sweeper: ReturnType<typeof setInterval> | null = null
  /** Pending entries somebody still waits for (stop() drains these, not the given-up ones). */
  awaited = 0
  /** Per client: its requests somebody still waits for, and who waits for them to reach 0. */
  readonly clientLoad = new Map<BusClient, { awaited: number; idle: (() => void)[] }>()
  readonly drained: (() => void)[] = []
  /** Per client: its requests on the books by the id it gave them (idKey), for its own cancels. */
  readonly clientRequests = new Map<BusClient, Map<string | number, number>>()

  constructor(private readonly router: Router) {}

  rejectPending(instance: Instance, error: Error, generation?: number): void {
    for (const id of [...instance.pending]) {
      if (generation !== undefined && this.pending.get(id)?.generation !== generation) continue
      const p = this.forget(id)
      if (!p || p.abandoned) continue
      if (p.reject) p.reject(error)
      else if (p.client)
        this.router.answerError(p.client, p.originalId, codeOf(error), error.message, instance.pool.config.id)
    }
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
        this.router.counters.stuckDropped++
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
      this.router.counters.cancelsSent++
    } catch {
      // the worker is gone
    }
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

  forgetAsked(id: string): void {
    const a = this.asked.get(id)
    if (!a) return
    this.asked.delete(id)
    a.instance.asked.delete(id)
  }
}
