// The per-host election (docs/PROTOCOL.md §1.1, §11.4, §15.2): of the processes of this host and user that stand for a
// name, one holds it (a topic's bridge, a shared name's leader). Standing binds the socket file <prefix><name> of the
// user's socket directory under the directory's lock, after sb_host_stand recovered a stale one (its holder died); a
// loser holds a connection to the holder, which the kernel closes the moment the holder dies (kill -9 included), and
// stands again then, and every ELECT_MS. The directory is the user's own (mode 0700): no other uid can hold, block or
// stand in for the name. A process that exits holding it without close() (process.exit(), an uncaught error) unlinks
// its file on the way out. Users: core/ops/fronts.ts and nats/topic-bridge.ts.
import { rmSync } from "node:fs"
import { hostHolder, standForHostName } from "../../native/ffi.ts"
import { closeAtExit } from "../basics/at-exit.ts"
import { connect, listen } from "../../runtime/index.ts"

/** How often a seat that does not hold its name stands again (besides at once when the holder's connection closes). */
const ELECT_MS = 100

export const euid = (): number => process.geteuid?.() ?? 0

/** Whether a process of `uid` holds the election prefix+name of this user's socket directory: one connect. */
export function seatHeld(prefix: string, name: string, uid = euid()): boolean {
  return hostHolder(prefix, name) === uid
}

export interface SeatEvents {
  /** This process holds the name now. */
  elected(): void
  /** This process watches a holder (a new one after each election it lost). */
  watching?(): void
}

/** A process's seat in the election of prefix+name: it holds the name (`held`) or stands until it does. */
export class HostSeat {
  private socket: { stop(force?: boolean): void } | null = null
  private watch: { end(): void } | null = null
  private watching = false
  private timer: ReturnType<typeof setInterval> | undefined
  private closed = false
  private forgetAtExit = () => {}

  private constructor(
    readonly prefix: string,
    readonly name: string,
    private readonly on: SeatEvents,
  ) {}

  /** Stands at once (so `held` says the outcome on return), then until closed. */
  static stand(prefix: string, name: string, on: SeatEvents): HostSeat {
    const seat = new HostSeat(prefix, name, on)
    seat.stand()
    seat.timer = setInterval(() => seat.stand(), ELECT_MS)
    seat.timer.unref()
    return seat
  }

  get held(): boolean {
    return this.socket !== null
  }

  private stand() {
    if (this.closed || this.held) return
    // Bound under the directory's lock (SocketDirError when the directory cannot be used): a file being bound looks
    // stale for an instant, and a candidate probing it then would unlink it and bind a second holder.
    const { path, bound } = standForHostName(this.prefix, this.name, (path) => {
      try {
        return listen({ unix: path, socket: { data() {} } })
      } catch {
        return null
      }
    })
    if (bound) {
      this.socket = bound
      // the runtime's listener unlinks it as it stops; under Node that is on a later turn, which exit never runs
      this.forgetAtExit = closeAtExit({ close: () => rmSync(path, { force: true }) })
      return this.on.elected()
    }
    if (!this.watching) this.watchHolder(path)
  }

  /** The name is held by a process of this user (nobody else can bind in the directory): its connection is watched. */
  private watchHolder(path: string) {
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
    connect({ unix: path, socket: { data() {}, close: again, error: again, connectError: again } }).then((w) => {
      if (this.closed) return w.end()
      this.watch = w
      this.on.watching?.()
    }, again)
  }

  /** Gives the name up (or stops standing); the next holder is elected at once. */
  close() {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.forgetAtExit()
    this.socket?.stop(true) // Bun unlinks the file, then closes the socket (never the other order)
    this.socket = null
    this.watch?.end()
    this.watch = null
  }
}
