// Where a message goes (its pool, its session's pin, else the least busy live instance; the owners of an unasked
// one), the sessions' pins, the inbox of messages(), and what the bus says when it cannot route one. The Router is
// one of the parts a StdioBus owns (bus.ts): the other parts get it through their constructors.
import { BusClosedError } from "../core/index.ts"
import { Emitter } from "../kit/index.ts"
import { BusErrorCode, JsonRpcError, poolFailed } from "./errors.ts"
import type { LifecycleView } from "./lifecycle.ts"
import type { Instance, Pool } from "./pool.ts"
import type { BusClient, BusMessage, JsonRpcId, JsonRpcMessage, LogLevel, StdioBusEvents } from "./types.ts"

const MESSAGE_QUEUE_MAX = 10_000
/** What messages() keeps unread of the lines the messages came in, in characters (oldest dropped first). */
const MESSAGE_QUEUE_SIZE_MAX = 64 * 1024 * 1024
/** Session pins kept over the whole bus, and per socket client; past either, the least recently used is forgotten. */
export const SESSIONS_MAX = 10_000
export const CLIENT_SESSIONS_MAX = 1_000

interface Pin {
  instance: Instance
  /** The socket client whose message made it; null or `embedded` for the bus's own caller. */
  owner: BusClient | null
}

export class Router {
  readonly pools = new Map<string, Pool>()
  /** The pool a message without `pool` goes to: the configuration's first. */
  readonly defaultPool: Pool
  /** sessionKey() → the instance it is pinned to and the client that owns it; least recently used first. */
  readonly sessions = new Map<string, Pin>()
  /** Each socket client's pins, least recently used first. */
  private readonly pinsOf = new Map<BusClient, Set<string>>()
  /** Socket clients that have left: nothing is pinned for them any more (a message of theirs may still be routed). */
  private readonly left = new WeakSet<BusClient>()
  /** The pin used last: using it again needs no reordering. */
  private newest: string | null = null
  private readonly counts = { routingErrors: 0, droppedMessages: 0, sessionsDropped: 0 }
  /** What messages() has not taken yet, each with its size (the length of the line it came in); their sum. */
  private readonly inbox: { message: BusMessage; size: number }[] = []
  private inboxSize = 0
  private readonly inboxWaiters: ((r: IteratorResult<BusMessage>) => void)[] = []
  readonly events = new Emitter<StdioBusEvents>()
  /** The embedded caller of send(): its answers and unasked worker messages go to messages(). */
  readonly embedded: BusClient = {
    id: 0,
    sessionPerClient: false,
    deliver: (message, pool, instance, size = 0) => this.pushInbox({ message, pool, instance }, size),
  }

  constructor(
    pools: Pool[],
    private readonly lifecycle: LifecycleView,
  ) {
    for (const p of pools) this.pools.set(p.config.id, p)
    this.defaultPool = pools[0]!
  }

  /** What the router counted, for stats(). */
  get counters(): Readonly<typeof this.counts> {
    return this.counts
  }

  // ── routing ────────────────────────────────────────────────────────────────────────────────────────────

  poolFor(id: string | undefined): Pool | undefined {
    return id === undefined ? this.defaultPool : this.pools.get(id)
  }

  /** A named session's key; a client's own session is `${pool.index}\u0001${client.id}`, which no name can spell. */
  sessionKey(pool: Pool, session: string): string {
    return `${pool.index}\0${session}`
  }

  /** The instance for the next message: the session's pin if alive, else the least busy live one (pinned from then on). */
  routeNow(pool: Pool, sessionKey: string | null, owner: BusClient | null): Instance | null {
    if (pool.failure) throw poolFailed(pool.config.id, pool.failure)
    const state = this.lifecycle.state
    if (state !== "running") throw new BusClosedError(`the stdio bus is ${state}`)
    if (sessionKey !== null) {
      const pinned = this.sessions.get(sessionKey)
      if (pinned?.instance.live) {
        if (this.newest !== sessionKey) this.touch(sessionKey, pinned)
        return pinned.instance
      }
    }
    const best = pool.leastBusy()
    if (best && sessionKey !== null) this.pin(sessionKey, best, owner)
    return best
  }

  private pin(key: string, instance: Instance, owner: BusClient | null): void {
    this.unpin(key)
    if (owner && this.left.has(owner)) return
    const client = owner && owner !== this.embedded ? owner : null
    const mine = client && this.pinsOf.get(client)
    if (mine && mine.size >= CLIENT_SESSIONS_MAX) this.drop(mine.values().next().value!)
    if (this.sessions.size >= SESSIONS_MAX) this.drop(this.sessions.keys().next().value!)
    this.sessions.set(key, { instance, owner })
    instance.sessions.add(key)
    if (client) {
      const own = this.pinsOf.get(client) // looked up again: a drop above may have emptied and removed it
      if (own) own.add(key)
      else this.pinsOf.set(client, new Set([key]))
    }
    this.newest = key
  }

  /** Moves a pin to the most recently used end. */
  private touch(key: string, pin: Pin): void {
    this.sessions.delete(key)
    this.sessions.set(key, pin)
    const own = pin.owner && this.pinsOf.get(pin.owner)
    if (own) {
      own.delete(key)
      own.add(key)
    }
    this.newest = key
  }

  /** A pin forgotten for a cap: the session's next message goes to the least busy instance. */
  private drop(key: string): void {
    this.unpin(key)
    this.counts.sessionsDropped++
  }

  /** routeNow, waiting (until `deadline`) while the pool has no live instance. */
  async route(pool: Pool, sessionKey: string | null, owner: BusClient | null, deadline: number): Promise<Instance> {
    for (;;) {
      const instance = this.routeNow(pool, sessionKey, owner)
      if (instance) return instance
      await pool.waitForLive(deadline)
    }
  }

  unpin(key: string): void {
    const s = this.sessions.get(key)
    if (!s) return
    s.instance.sessions.delete(key)
    this.sessions.delete(key)
    const own = s.owner && this.pinsOf.get(s.owner)
    if (own) {
      own.delete(key)
      if (own.size === 0) this.pinsOf.delete(s.owner!)
    }
  }

  /** A reload replaced `from` with `to`: the sessions pinned to `from` are pinned to `to`, with their owners. */
  movePins(from: Instance, to: Instance): void {
    for (const key of from.sessions) {
      const pin = this.sessions.get(key)
      if (!pin) continue
      pin.instance = to
      to.sessions.add(key)
    }
    from.sessions.clear()
  }

  /** A socket client has left: its pins go, and none is made for it from now on. */
  leave(owner: BusClient): void {
    this.left.add(owner)
    for (const key of this.pinsOf.get(owner) ?? []) this.unpin(key)
  }

  /** Forgets every pin (the bus stopped). */
  clearPins(): void {
    for (const key of [...this.sessions.keys()]) this.unpin(key)
  }

  /** Who gets a message a worker sent unasked: the owner of its sessionId, else the clients pinned to that worker. */
  ownersOf(instance: Instance, msg: JsonRpcMessage): BusClient[] {
    if (typeof msg.sessionId === "string") {
      const s = this.sessions.get(this.sessionKey(instance.pool, msg.sessionId))
      if (s) return [s.owner ?? this.embedded]
    }
    const owners = new Set<BusClient>()
    for (const key of instance.sessions) {
      const owner = this.sessions.get(key)?.owner
      if (owner && owner !== this.embedded) owners.add(owner)
    }
    return [...owners]
  }

  // ── errors, logs, events ──────────────────────────────────────────────────────────────────────────────

  refuse(client: BusClient, id: JsonRpcId | undefined, code: number, message: string, reason: string): void {
    this.routingError(reason)
    if (id !== undefined) this.answerError(client, id, code, message, this.defaultPool.config.id)
  }

  answerError(client: BusClient, id: JsonRpcId, code: number, message: string, pool: string): void {
    client.deliver({ jsonrpc: "2.0", id, error: { code, message } }, pool, -1)
  }

  /** A message a client could not take (nor the inbox keep), dropped. */
  dropped(): void {
    this.counts.droppedMessages++
  }

  routingError(reason: string, instance?: Instance): void {
    this.counts.routingErrors++
    this.emit("routing-error", { reason, pool: instance?.pool.config.id, instance: instance?.index })
  }

  unknownPool(id: string): JsonRpcError {
    this.routingError("unknown pool")
    return new JsonRpcError(
      BusErrorCode.UnknownPool,
      `unknown pool ${JSON.stringify(id)}; pools: ${[...this.pools.keys()].join(", ")}`,
    )
  }

  log(instance: Instance, pid: number, level: LogLevel, line: string): void {
    this.emit("log", { pool: instance.pool.config.id, instance: instance.index, pid, level, line })
  }

  /** The next message for messages(): waits for one; done once the bus is stopped. */
  nextMessage(): Promise<IteratorResult<BusMessage>> {
    const queued = this.inbox.shift()
    if (queued) {
      this.inboxSize -= queued.size
      return Promise.resolve({ value: queued.message, done: false })
    }
    const state = this.lifecycle.state
    if (state === "stopped" || state === "created") return Promise.resolve({ value: undefined, done: true })
    return new Promise((r) => this.inboxWaiters.push(r))
  }

  /** The bus stopped: whoever waits in messages() is done. */
  endMessages(): void {
    for (const w of this.inboxWaiters.splice(0)) w({ value: undefined, done: true })
  }

  private pushInbox(m: BusMessage, size: number): void {
    const waiter = this.inboxWaiters.shift()
    if (waiter) return waiter({ value: m, done: false })
    while (
      this.inbox.length > 0 &&
      (this.inbox.length >= MESSAGE_QUEUE_MAX || this.inboxSize + size > MESSAGE_QUEUE_SIZE_MAX)
    ) {
      this.inboxSize -= this.inbox.shift()!.size
      this.counts.droppedMessages++
    }
    this.inbox.push({ message: m, size })
    this.inboxSize += size
  }

  emit<K extends keyof StdioBusEvents>(event: K, ...args: StdioBusEvents[K]): void {
    this.events.emit(event, ...args)
  }
}
