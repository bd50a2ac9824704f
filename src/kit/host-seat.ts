// The per-host election (docs/PROTOCOL.md §11.4, §15.2): of the processes of this host and user that stand for a
// name, one holds it (a topic's bridge, a shared name's leader). Standing binds the abstract socket
// "\0" + prefix + name; a loser holds a connection to the holder, which the kernel closes the moment the holder dies
// (kill -9 included), and stands again then, and every ELECT_MS. Any uid can bind an abstract name, so a holder
// counts only when it runs as this euid (SO_PEERCRED, sb_host_holder): one of another uid is not watched, is named
// once through `squatted`, and the seat stands every ELECT_MS until it is gone. The portable backend has no abstract
// names: an exclusive flock of <socket dir>/<prefix><name>.lock, a directory only its owner can write (§13.2).
// Users: core/ops/fronts.ts and nats/topic-bridge.ts stand; leases/mode.ts asks holderOf about its markers (§12.5).
// Imports src/native only.
import { hostHolder, lockHost, portableBackend, unlockHost } from "../native/ffi.ts"

/** How often a seat that does not hold its name stands again (besides at once when the holder's connection closes). */
const ELECT_MS = 100

export const euid = (): number => process.geteuid?.() ?? 0

/** A holder of a name that is not this user's: its uid, or "busy" when its connection queue is full. */
export type Squatter = number | "busy"

/**
 * Who listens on the host-wide name prefix+name: "ours" when a process of `uid` does, "none" when nobody does, else
 * that holder (another uid, or "busy"). One connect (SO_PEERCRED); the holder sees a connection that closes at once.
 */
export function holderOf(prefix: string, name: string, uid = euid()): "ours" | "none" | Squatter {
  const holder = hostHolder(prefix, name)
  return holder === uid ? "ours" : holder
}

/** Whether a process of `uid` holds the election prefix+name (portable backend: anyone, the directory is ours). */
export function seatHeld(prefix: string, name: string, uid = euid()): boolean {
  if (portableBackend()) {
    const fd = lockHost(prefix, name, false)
    if (fd === null) return true
    unlockHost(fd)
    return false
  }
  return holderOf(prefix, name, uid) === "ours"
}

/** A process of another uid holds the name, or one whose connection queue is full: a sentence for messages. */
export function squatterText(holder: Squatter): string {
  return holder === "busy" ? "a process whose connection queue is full" : `a process of uid ${holder}`
}

export interface SeatEvents {
  /** This process holds the name now. */
  elected(): void
  /** A holder that is not this user's was found; called again only after this user's process held the name. */
  squatted?(holder: Squatter): void
}

/** A process's seat in the election of prefix+name: it holds the name (`held`) or stands until it does. */
export class HostSeat {
  private socket: { stop(force?: boolean): void } | null = null
  private lockFd = -1
  private watch: { end(): void } | null = null
  private watching = false
  private timer: ReturnType<typeof setInterval> | undefined
  private closed = false
  /** Who holds the name when it is not this user's process (another uid), else null. */
  squatter: Squatter | null = null

  private constructor(
    readonly prefix: string,
    readonly name: string,
    private readonly on: SeatEvents,
  ) {}

  /** Stands at once (so `held` and `squatter` say the outcome on return), then until closed. */
  static stand(prefix: string, name: string, on: SeatEvents): HostSeat {
    const seat = new HostSeat(prefix, name, on)
    seat.stand()
    seat.timer = setInterval(() => seat.stand(), ELECT_MS)
    seat.timer.unref()
    return seat
  }

  get held(): boolean {
    return this.socket !== null || this.lockFd >= 0
  }

  private stand() {
    if (this.closed || this.held) return
    if (portableBackend()) {
      const fd = lockHost(this.prefix, this.name, true)
      if (fd === null) return
      this.lockFd = fd
      return this.on.elected()
    }
    const unix = `\0${this.prefix}${this.name}`
    try {
      this.socket = Bun.listen({ unix, socket: { data() {} } })
    } catch {
      if (!this.watching) this.watchHolder(unix)
      return
    }
    this.squatter = null
    this.on.elected()
  }

  /** The name is held: by this user's process, whose connection is watched, or by anyone else, whom nothing waits on. */
  private watchHolder(unix: string) {
    const holder = holderOf(this.prefix, this.name)
    if (holder === "none") return // it just went: stand again at the next tick
    if (holder !== "ours") {
      if (this.squatter === null) this.on.squatted?.(holder)
      this.squatter = holder
      return
    }
    this.squatter = null
    this.watching = true
    const since = performance.now()
    let done = false
    const again = () => {
      if (done) return
      done = true
      this.watching = false
      this.watch = null
      // at once; a connection that did not even last a moment was refused (the dying holder's connections can close
      // before its name is free): stand again shortly, never in a tight loop
      if (performance.now() - since > 5) this.stand()
      else setTimeout(() => this.stand(), 1).unref()
    }
    Bun.connect({ unix, socket: { data() {}, close: again, error: again, connectError: again } }).then((w) => {
      if (this.closed) w.end()
      else this.watch = w
    }, again)
  }

  /** Gives the name up (or stops standing); the next holder is elected at once. */
  close() {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.socket?.stop(true)
    this.socket = null
    if (this.lockFd >= 0) unlockHost(this.lockFd)
    this.lockFd = -1
    this.watch?.end()
    this.watch = null
  }
}
