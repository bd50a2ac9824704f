// One NATS connection per `nats()` value (index.ts), shared by every bus, worker, topic bridge and lease table
// opened with it: the first opens it, the last to let go closes it. Each user reaches the connection's lifecycle
// only through its NatsUse, whose listeners it detaches when it lets go: a listener attached to the connection
// itself (a closed() reaction, a status() iterator) would keep every user that ever used it alive as long as it.
import type { NatsConnection, Status } from "@nats-io/transport-node"
import { openConnection } from "./wire.ts"

/** What one user holds of the shared connection. */
export interface NatsUse {
  readonly nc: NatsConnection
  /** The server it uses, for status views: `host:port`, with "(reconnecting)" or "(remote closed)" while it is. */
  server(): string
  /** Up now: neither away reconnecting nor closed for good. */
  readonly up: boolean
  /** `fn` runs once the connection closed for good (the client gave up reconnecting), unless let go first. */
  onClosed(fn: (err: Error | undefined) => void): void
  /** `fn` gets the connection's status changes (disconnect, reconnect, …) until let go. */
  onStatus(fn: (s: Status) => void): void
  /**
   * Detaches this user's listeners. The last user of a connection slotbus opened closes it (drained); any other
   * flushes, so what it published is sent before it returns.
   */
  release(): Promise<void>
}

/** The one closed() reaction and status() iterator a connection gets, passing them on to its users' listeners. */
class Watch {
  readonly closed = new Set<(err: Error | undefined) => void>()
  readonly status = new Set<(s: Status) => void>()
  /** The connection closed: a listener added now runs at once. */
  fired: Error | undefined | null = null
  /** Between a disconnect and the reconnect that follows it. */
  away = false

  constructor(private readonly nc: NatsConnection) {}

  watchClosed() {
    const { closed } = this
    this.nc.closed().then((e) => {
      const err = e instanceof Error ? e : undefined
      this.fired = err
      // each its own reaction, as if it had one of its own: one that throws does not keep the rest from running
      for (const fn of closed) void Promise.resolve(err).then(fn)
      closed.clear()
    })
  }

  /** Read from the first user on, until the connection closes (a connection of the caller's: one reader, ever). */
  watchStatus() {
    const { status } = this
    const iter = this.nc.status()
    void (async () => {
      for await (const s of iter) {
        if (s.type === "disconnect") this.away = true
        else if (s.type === "reconnect") this.away = false
        for (const fn of [...status])
          try {
            fn(s)
          } catch {} // a user's listener that throws ends neither this reader nor the other users' listeners
      }
    })().catch(() => {})
  }
}

// By connection, so a connection of the caller's shared by several nats() values still gets one reaction of each
const watches = new WeakMap<NatsConnection, Watch>()

function watchOf(nc: NatsConnection): Watch {
  let w = watches.get(nc)
  if (!w) {
    w = new Watch(nc)
    watches.set(nc, w)
    w.watchClosed()
    w.watchStatus() // from the first user on: whether it is away is known when a status view asks
  }
  return w
}

/** One connection as opened: by slotbus (`owned`) or the caller's; its users now; let go by its last one. */
interface Opened {
  readonly nc: NatsConnection
  readonly owned: boolean
  users: number
  letGo: boolean
}

/**
 * The connection a `nats()` value stands for, opened on first use. A user that comes while it connects waits for
 * the same connect; one that comes after the last let go, or after it closed for good, opens a new one.
 */
export class SharedConnection {
  private opening: Promise<Opened> | null = null
  private opened: Opened | null = null

  constructor(private readonly option: unknown) {}

  async use(): Promise<NatsUse> {
    // twice at most: a connection that closed for good since it was opened, then a fresh one
    for (let attempt = 0; ; attempt++) {
      const opening = (this.opening ??= this.open())
      let c: Opened
      try {
        c = await opening
      } catch (e) {
        if (this.opening === opening) this.opening = null
        throw e
      }
      if (c.owned && (c.letGo || c.nc.isClosed()) && attempt === 0) {
        if (this.opening === opening) this.forget(c)
        continue
      }
      c.users++
      return new Use(this, c)
    }
  }

  private async open(): Promise<Opened> {
    const { nc, owned } = await openConnection(this.option)
    const c: Opened = { nc, owned, users: 0, letGo: false }
    this.opened = c
    return c
  }

  /** `c` is not for new users: the next opens a new connection. */
  forget(c: Opened) {
    if (this.opened !== c) return
    this.opened = null
    this.opening = null
  }
}

class Use implements NatsUse {
  private released = false
  private readonly closedFns: ((err: Error | undefined) => void)[] = []
  private readonly statusFns: ((s: Status) => void)[] = []
  readonly nc: NatsConnection

  constructor(
    private readonly shared: SharedConnection,
    private readonly c: Opened,
  ) {
    this.nc = c.nc
    watchOf(this.nc)
  }

  get up() {
    return !this.nc.isClosed() && !watchOf(this.nc).away
  }

  server() {
    const where = this.nc.getServer()
    if (this.nc.isClosed()) return `${where} (remote closed)`
    return watchOf(this.nc).away ? `${where} (reconnecting)` : where
  }

  onClosed(fn: (err: Error | undefined) => void) {
    if (this.released) return
    const w = watchOf(this.nc)
    if (w.fired !== null) return void queueMicrotask(() => this.released || fn(w.fired ?? undefined))
    this.closedFns.push(fn)
    w.closed.add(fn)
  }

  onStatus(fn: (s: Status) => void) {
    if (this.released) return
    this.statusFns.push(fn)
    watchOf(this.nc).status.add(fn)
  }

  async release() {
    if (this.released) return
    this.released = true
    const w = watches.get(this.nc)
    for (const fn of this.closedFns) w?.closed.delete(fn)
    for (const fn of this.statusFns) w?.status.delete(fn)
    this.closedFns.length = this.statusFns.length = 0
    const { c, nc } = this
    // away, nothing can be sent (the client drops what it buffered at each reconnect attempt): no wait for it
    const up = this.up
    if (--c.users === 0 && c.owned) {
      c.letGo = true
      this.shared.forget(c)
      if (!nc.isClosed()) await (up ? drainOrClose(nc) : nc.close().catch(() => {}))
    } else if (up) await nc.flush().catch(() => {})
  }
}

/** How long a drain may take before the connection is closed outright: a server that stopped answering. */
export const DRAIN_MS = 5000

/**
 * Drains `nc` (what was published is sent, then it closes), closing it outright when the server goes away meanwhile
 * or after DRAIN_MS. A drain the server's death cuts off would never end (the client reconnects without end, and its
 * drain waits for a reply it then never gets), so the connection and its timers would outlive its last user.
 */
async function drainOrClose(nc: NatsConnection): Promise<void> {
  const cut = () => void nc.close().catch(() => {})
  const w = watchOf(nc)
  const away = (s: Status) => s.type === "disconnect" && cut()
  w.status.add(away)
  const timer = setTimeout(cut, DRAIN_MS)
  nc.drain().catch(cut)
  await nc.closed() // a drain ends in a close; so does a cut
  clearTimeout(timer)
  w.status.delete(away)
}
