// The MCP handshakes a pool with `initialize: "replay"` keeps: each session's initialize request, whether it sent
// notifications/initialized, and which worker process has seen them. A session outlives its worker (its next
// message is pinned to a live instance), so before passing the message on, the bus replays the handshake to that
// instance (ready()). Kept apart from the pins (router.ts) because a pin dies with its worker and a handshake must
// not.
import type { Books } from "./books.ts"
import { JsonRpcError } from "./errors.ts"
import type { Instance, Pool } from "./pool.ts"
import type { Router } from "./router.ts"
import type { BusClient } from "./types.ts"

/** Handshakes kept over the whole bus; past it the oldest is forgotten (that session initializes again itself). */
export const HANDSHAKES_MAX = 10_000
/** How long a restarted worker may take to answer a session's replayed initialize. */
const REPLAY_TIMEOUT_MS = 30_000
const INITIALIZED_LINE = `${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`

export interface Handshake {
  /** The params of the session's last initialize request. */
  params: unknown
  /** The session sent notifications/initialized after it. */
  initialized: boolean
  owner: BusClient | null
  /** The process that has seen it (instance and generation). */
  instance: Instance
  generation: number
  /** A replay under way; the session's messages wait for it. */
  replay: { instance: Instance; generation: number; done: Promise<void> } | null
}

export class Handshakes {
  private readonly bySession = new Map<string, Handshake>()

  constructor(
    private readonly books: Books,
    private readonly router: Router,
  ) {}

  /**
   * Notes a session's handshake messages and, before any other message of a session whose worker process has not
   * seen its handshake (a restarted or another instance), replays it there; resolves when the message may go.
   */
  ready(
    pool: Pool,
    sessionKey: string | null,
    owner: BusClient | null,
    instance: Instance,
    method: string,
    params: unknown,
  ): Promise<void> | undefined {
    if (sessionKey === null || pool.config.initialize !== "replay") return undefined
    const h = method === "initialize" ? undefined : this.unseen(sessionKey, instance)
    if (!h) return void this.note(sessionKey, owner, instance, method, params)
    let replay = h.replay
    if (!replay || replay.instance !== instance || replay.generation !== instance.generation) {
      const r = { instance, generation: instance.generation, done: this.replay(h, instance) }
      const done = () => {
        if (h.replay === r) h.replay = null
      }
      r.done.then(done, done)
      h.replay = replay = r
    }
    return replay.done.then(() => this.note(sessionKey, owner, instance, method, params))
  }

  /** Sends a session's initialize (its answer swallowed) and, if the session had sent it, notifications/initialized. */
  private async replay(h: Handshake, instance: Instance): Promise<void> {
    const generation = instance.generation
    await this.send(h.params, h.initialized, instance)
    h.instance = instance
    h.generation = generation
  }

  private async send(params: unknown, initialized: boolean, instance: Instance): Promise<void> {
    try {
      await this.books.requestOn(instance, "initialize", params, REPLAY_TIMEOUT_MS)
    } catch (e) {
      if (!(e instanceof JsonRpcError)) throw e
      this.router.log(
        instance,
        instance.proc?.pid ?? 0,
        "warn",
        `the replayed initialize was refused (${e.message}); the session's messages go on to the worker`,
      )
    }
    if (initialized) await instance.out.write(INITIALIZED_LINE)
  }

  /**
   * A reload's successor `to` gets the handshakes of the sessions in `keys` (those pinned to the instance it
   * replaces), answered before it counts as ready. The function it resolves with, called once the sessions moved to
   * `to`, marks them seen there; one the session redid meanwhile is replayed as usual on its next message.
   */
  async prepare(keys: Iterable<string>, to: Instance): Promise<() => void> {
    const sent: { h: Handshake; params: unknown; initialized: boolean }[] = []
    for (const key of [...keys]) {
      const h = this.bySession.get(key)
      if (!h) continue
      const { params, initialized } = h
      await this.send(params, initialized, to)
      sent.push({ h, params, initialized })
    }
    const generation = to.generation
    return () => {
      for (const { h, params, initialized } of sent)
        if (h.params === params && h.initialized === initialized) {
          h.instance = to
          h.generation = generation
        }
    }
  }

  /** Notes a message a session sends to `instance`, if it is part of the handshake. */
  private note(sessionKey: string, owner: BusClient | null, instance: Instance, method: string, params: unknown): void {
    if (method === "initialize") {
      this.bySession.delete(sessionKey) // the newest goes last, so the oldest is forgotten first
      if (this.bySession.size >= HANDSHAKES_MAX) this.bySession.delete(this.bySession.keys().next().value!)
      this.bySession.set(sessionKey, {
        params,
        initialized: false,
        owner,
        instance,
        generation: instance.generation,
        replay: null,
      })
    } else if (method === "notifications/initialized") {
      const h = this.bySession.get(sessionKey)
      if (h) h.initialized = true
    }
  }

  /** The session's handshake if `instance`'s current process has not seen it. */
  private unseen(sessionKey: string, instance: Instance): Handshake | undefined {
    const h = this.bySession.get(sessionKey)
    return h && (h.instance !== instance || h.generation !== instance.generation) ? h : undefined
  }

  /** Whether the session's initialize declared `capability`; true when no handshake is kept (nothing says not). */
  declares(sessionKey: string, capability: string): boolean {
    const h = this.bySession.get(sessionKey)
    if (!h) return true
    const caps = (h.params as { capabilities?: unknown } | null)?.capabilities
    return typeof caps === "object" && caps !== null && capability in caps
  }

  has(sessionKey: string): boolean {
    return this.bySession.has(sessionKey)
  }

  forget(sessionKey: string): void {
    this.bySession.delete(sessionKey)
  }

  forgetOwner(owner: BusClient): void {
    for (const [key, h] of this.bySession) if (h.owner === owner) this.bySession.delete(key)
  }

  clear(): void {
    this.bySession.clear()
  }

  get size(): number {
    return this.bySession.size
  }
}
