// Many fronts, one pool (docs/PROTOCOL.md §15): several processes listen under one name with `{ shared: true }`,
// each on its own address ("name", then "name~1", "name~2", … the lowest free), and every worker of the name serves
// all of them. Here: a front's address and its seat among the fronts (the election whose holder is the name's
// leader: the marker that the name is shared, and the front that supervises a shared pool), and a worker's family
// of connections, one per front, found by a rescan every RESCAN_MS. A name listened to without `shared` runs none
// of this.
import { native, Errno, E_SOCKET_DIR, ANY_UID, socketDirError, hostHolderOf, type Chan } from "../../native/ffi.ts"
import { warnSocketDirTaken } from "../../native/socket-dir.ts"
import { euid, HostSeat, seatHeld, stoppedProcess } from "../../kit/index.ts"
import { NameInUseError, SharingMismatchError, SlotBusError } from "../../errors.ts"
import { frontParent } from "./front-parent.ts"
import { listening, unlisten } from "./listening.ts"

export { unlisten }

/** Fronts of one name: front 0 is the plain name (what a worker that knows only §1 finds), k > 0 is "name~k". */
export const MAX_FRONTS = 64
/** How often a worker of a shared name looks for fronts it does not serve yet. */
export const RESCAN_MS = 250
/** Each rescan tries the indices up to NEAR past the highest seen (a new front takes the lowest free one, so it is
 * there), and every FULL_EVERY-th rescan all MAX_FRONTS: a new front is served within RESCAN_MS · FULL_EVERY. */
const NEAR = 4
const FULL_EVERY = 4
/** A worker whose starting front (the pool's supervisor, §15.4) died goes on serving this long, then drains and exits. */
export const ORPHAN_LINGER_MS = 2000

/** The C string of front k's address of `name`. */
export function frontAddress(name: string, k: number): Buffer {
  return Buffer.from(k === 0 ? `${name}\0` : `${name}~${k}\0`)
}

const ELECTION = "slotbus.fronts."

/**
 * Whether shared fronts of `name` run as `uid` on this host: a process of that uid holds the election's socket file
 * (§15.2) in this user's socket directory (another uid's is out of sight: false).
 */
export function sharedFrontsExist(name: string, uid = euid()): boolean {
  return seatHeld(ELECTION, name, uid)
}

/**
 * A shared front's seat in its name's election (§15.2): the holder of the socket file slotbus.fronts.<name> is the
 * leader. The others hold a connection to it and stand again the moment it closes.
 */
export class FrontSeat {
  private readonly seat: HostSeat
  private closed = false
  private readonly listeners = new Set<() => void>()
  private readonly leaving = new Set<() => void>()
  /** This front's index: 0 (the plain name) or k of "name~k". */
  index = -1
  // the leader's pid (SO_PEERCRED), asked once per leader this front watches (§15.5); -1: to ask
  private holderPid = -1
  private coveredPid = 0

  private constructor(readonly name: string) {
    this.seat = HostSeat.stand(ELECTION, name, {
      elected: () => this.elected(),
      watching: () => void (this.holderPid = -1),
    })
  }

  /** The leader's pid while another front leads; 0 when this front leads, none does, or the OS does not say. */
  leaderPid(): number {
    if (this.leader || this.closed) return 0
    if (this.holderPid < 0) {
      const h = hostHolderOf(ELECTION, this.name)
      if (typeof h === "string") return 0 // between two leaders, or its queue full: asked again next time
      this.holderPid = h.pid
    }
    return this.holderPid
  }

  /** The stopped leader's pid while this front runs the name's pool for it (§15.5), else 0. */
  get coveringFor(): number {
    return this.leader ? 0 : this.coveredPid
  }

  /** This front runs the pool for the stopped leader `pid` (0: no more). */
  covers(pid: number) {
    this.coveredPid = pid
  }

  /** Whether this front runs the name's pool: it leads, or covers for a stopped leader. */
  get runsPool(): boolean {
    return this.leader || this.coveringFor > 0
  }

  static join(name: string): FrontSeat {
    return new FrontSeat(name)
  }

  get leader(): boolean {
    return this.seat.held
  }

  /** Calls `f` when this front becomes the leader (at once if it is); returns the unsubscribe function. */
  onLeader(f: () => void): () => void {
    this.listeners.add(f)
    if (this.leader) queueMicrotask(() => this.listeners.has(f) && f())
    return () => void this.listeners.delete(f)
  }

  /** Calls `f` once when this front gives its seat up (its bus closes). */
  onClose(f: () => void) {
    this.leaving.add(f)
  }

  private elected() {
    for (const f of [...this.listeners]) f()
  }

  close() {
    if (this.closed) return
    this.closed = true
    for (const f of this.leaving) f()
    this.leaving.clear()
    this.listeners.clear()
    this.seat.close()
  }
}

function listenError(name: string, fd: number): Error {
  if (fd === E_SOCKET_DIR) return socketDirError(`cannot listen as "${name}"`)
  return new SlotBusError(`cannot listen as "${name}": errno ${-fd}`)
}

/**
 * Binds a hub's listening socket: the plain name, or with `shared` the lowest free front address of the name
 * (§15.1). Refuses a plain listen where shared fronts are, and the reverse, with SharingMismatchError.
 */
export async function listenFront(name: string, shared: boolean): Promise<{ fd: number; seat: FrontSeat | null }> {
  if (!shared) {
    const fd = listening(native.sb_listen(frontAddress(name, 0)))
    if (fd === Errno.EADDRINUSE) {
      if (sharedFrontsExist(name))
        throw new SharingMismatchError(
          `"${name}" is listened to by shared fronts (SlotBus.listen(name, { shared: true })); pass { shared: true } to be one more of them, or pick another name`,
          true,
        )
      throw new NameInUseError(
        `a hub named "${name}" is already listening on this machine; pick another name or close it`,
      )
    }
    if (fd < 0) throw listenError(name, fd)
    if (sharedFrontsExist(name)) {
      unlisten(fd)
      throw new SharingMismatchError(
        `"${name}" is listened to by shared fronts (SlotBus.listen(name, { shared: true })); pass { shared: true } to be one more of them, or pick another name`,
        true,
      )
    }
    warnSocketDirTaken()
    return { fd, seat: null }
  }
  const seat = FrontSeat.join(name)
  const alone = seat.leader // nobody held the election before this front: no other shared front lives
  for (let k = 0; k < MAX_FRONTS; k++) {
    const fd = listening(native.sb_listen(frontAddress(name, k)))
    if (fd >= 0) {
      seat.index = k
      warnSocketDirTaken()
      return { fd, seat }
    }
    if (fd !== Errno.EADDRINUSE) {
      seat.close()
      throw listenError(name, fd)
    }
    if (k === 0 && alone) {
      seat.close()
      throw new SharingMismatchError(
        `a hub named "${name}" that is not shared already listens on this machine; shared fronts need every front of the name shared: close it, or pick another name`,
        false,
      )
    }
  }
  seat.close()
  throw new NameInUseError(`all ${MAX_FRONTS} fronts of "${name}" are taken on this machine`)
}

/**
 * The door of a bus that allows other uids (docs/PROTOCOL.md §1.1): the socket file of front `index` in this user's
 * door directory (mode 0711), for workers of another uid, who cannot see this user's socket directory. -1 on the
 * portable backend, which has none.
 */
export function listenDoor(name: string, index: number): number {
  const fd = listening(native.sb_listen_door(frontAddress(name, index)))
  if (fd === Errno.ENOTSUP) return -1
  if (fd === Errno.EADDRINUSE)
    throw new NameInUseError(
      `the door of "${name}" for workers of other uids (allowUids; the socket file "slotbus.${name}${index ? `~${index}` : ""}" in this user's door directory, /tmp/slotbus-door-<euid> or $SLOTBUS_DOOR_DIR, docs/PROTOCOL.md §1.1) is held by another process of this user, one whose socket directory is another (SLOTBUS_SOCKET_DIR): this bus would not reach its workers. Stop that process, or pick another name`,
    )
  if (fd < 0) throw listenError(name, fd)
  return fd
}

/** A hub's sockets under its name: its front (and seat, when shared) and, when it allows other uids, its door. */
export interface NameSockets {
  fd: number
  door: number
  seat: FrontSeat | null
  /** Gives them all back (a bus that could not be made). */
  unbind(): void
}

/**
 * SlotBus.listen's sockets: listenFront (`shared` fronts or not), then listenDoor when it allows uids (workers of
 * other uids cannot see this user's socket directory, §1.1).
 */
export async function listenName(name: string, opts: { shared?: unknown; allowUids?: unknown }): Promise<NameSockets> {
  if (opts.shared !== undefined && typeof opts.shared !== "boolean")
    throw new TypeError(`SlotBus.listen: shared must be a boolean, got ${typeof opts.shared}`)
  const { fd, seat } = await listenFront(name, opts.shared === true)
  const s: NameSockets = {
    fd,
    door: -1,
    seat,
    unbind: () => {
      seat?.close()
      for (const f of [s.fd, s.door]) if (f >= 0) unlisten(f)
    },
  }
  try {
    if (Array.isArray(opts.allowUids) && opts.allowUids.length > 0) s.door = listenDoor(name, seat?.index ?? 0)
  } catch (e) {
    s.unbind()
    throw e
  }
  return s
}

/** A worker's connection to one front, as the family sees it (a SlotWorker: the one connect() made, or a sibling). */
export interface FrontMember {
  /** The front it serves now, or -1 while it serves none. */
  readonly frontIndex: number
  /** That front's pid, 0 while it serves none. */
  readonly hubPid: number
  readonly closed: Promise<unknown>
  close(opts?: { timeoutMs?: number }): Promise<void>
  stats(): { served: number; active: number; connected: boolean }
}

/** What the family asks of the worker connect() made (the root). */
export interface FrontRoot extends FrontMember {
  /** Serve front k over the connection `ptr` started: true once its hello came and it serves. */
  adopt(ptr: Chan, k: number): Promise<boolean>
  /** A new connection to front k, served by a new worker with the root's handler and options. */
  sibling(ptr: Chan, k: number): Promise<FrontMember | null>
  /** Whether it keeps looking for fronts with none left (connect's `reconnect`). */
  readonly reconnect: boolean
  /** Ends it as a worker whose hub went away. */
  finish(reason: "hub-gone" | "hub-closed"): void
  /** The front that started it is gone: it serves on ORPHAN_LINGER_MS, then drains and goes (§15.4). */
  orphaned(): void
}

/**
 * A worker's connections to every front of a shared name (§15.3): the root's own, and one sibling per other front.
 * Every RESCAN_MS it tries each front address nobody of the family serves; a front found while the root serves
 * none becomes the root's, any other a new sibling's.
 */
export class FrontFamily {
  readonly siblings = new Map<number, FrontMember>()
  private readonly timer: ReturnType<typeof setInterval>
  private scanning = false
  private ticks = 0
  // the highest index a front of this name answered on: each tick looks up to NEAR past it, every FULL_EVERY-th all
  private top = 0
  private stopped = false
  private lastReason: "hub-gone" | "hub-closed" = "hub-gone"
  private readonly parentPid: number
  private orphaned = false
  private parentLooked = false
  // Until it serves the front that started it (or knows that front is gone), a pool's worker takes no request from
  // another front: that front (the pool's supervisor) then saw it join, so a crash on another front's request is no
  // failed start there (§15.4), whichever index the leader has.
  private readonly parentReached = Promise.withResolvers<void>()
  private parentKnown = false

  constructor(
    private readonly name: string,
    private readonly root: FrontRoot,
    private readonly hubUid: number | undefined,
  ) {
    this.parentPid = frontParent(name)
    this.timer = setInterval(() => void this.scan(), RESCAN_MS)
    void this.scan()
  }

  private serving(k: number): boolean {
    return this.root.frontIndex === k || this.siblings.has(k)
  }

  async scan() {
    if (this.scanning || this.stopped) return
    this.scanning = true
    let full = false
    try {
      const err = new Int32Array(1)
      this.top = Math.max(this.top, this.root.frontIndex)
      full = this.ticks++ % FULL_EVERY === 0
      const end = full ? MAX_FRONTS : Math.min(MAX_FRONTS, this.top + NEAR + 1)
      for (let k = 0; k < end && !this.stopped; k++) {
        if (this.serving(k)) continue
        const ptr = native.sb_connect_start(frontAddress(this.name, k), this.hubUid ?? ANY_UID, err) as Chan | null
        if (!ptr) continue
        this.top = Math.max(this.top, k)
        if (this.root.frontIndex < 0) {
          await this.root.adopt(ptr, k)
          continue
        }
        const sib = await this.root.sibling(ptr, k)
        if (!sib) continue
        if (this.stopped || this.siblings.has(k)) {
          void sib.close({ timeoutMs: 0 })
          continue
        }
        this.siblings.set(k, sib)
        const pid = sib.hubPid
        if (pid === this.parentPid) this.knowParent()
        void sib.closed.then(() => {
          if (this.siblings.get(k) === sib) this.siblings.delete(k)
          this.lost(pid)
        })
      }
    } finally {
      this.scanning = false
    }
    // The first look at every front found no connection to the front that started this worker: it died or closed
    // before the worker reached it (kill -9 just after a reload spawned it), so it is gone as if lost. One that is
    // only stopped (SIGSTOP, §15.5) sent no hello yet: it is looked for again at the next full scan.
    if (full && !this.parentLooked && !this.stopped && !stoppedProcess(this.parentPid)) {
      this.parentLooked = true
      if (this.parentPid > 0 && !this.serves(this.parentPid)) this.orphan()
    }
    if (this.parentLooked) this.knowParent()
    if (!this.stopped && this.root.frontIndex < 0 && this.siblings.size === 0 && !this.root.reconnect) {
      this.stop()
      this.root.finish(this.lastReason)
    }
  }

  /** One of the family's connections ended: its front died (kill -9 too) or closed. */
  lost(hubPid: number, reason?: "hub-gone" | "hub-closed") {
    if (reason) this.lastReason = reason
    if (this.stopped) return
    // The front that started this worker (its pool's supervisor, §15.4) is gone: a surviving front starts the
    // pool afresh, so this one serves on a while (no request waits for a worker meanwhile), then drains and goes.
    if (this.parentPid > 0 && hubPid === this.parentPid) this.orphan()
    if (this.root.frontIndex < 0 && this.siblings.size === 0) void this.scan()
  }

  /**
   * Null when a connection to the front of `hubPid` may take requests now; else what it waits for first: this pool
   * worker's connection to the front that started it, or the first look at every front finding that front gone.
   */
  untilParent(hubPid: number): Promise<void> | null {
    if (this.parentKnown || this.parentPid === 0 || hubPid === this.parentPid) return null
    return this.parentReached.promise
  }

  private knowParent() {
    if (this.parentKnown) return
    this.parentKnown = true
    this.parentReached.resolve()
  }

  private orphan() {
    if (this.orphaned) return
    this.orphaned = true
    this.root.orphaned()
  }

  private serves(hubPid: number): boolean {
    return this.root.hubPid === hubPid || [...this.siblings.values()].some((s) => s.hubPid === hubPid)
  }

  get connected(): boolean {
    return this.root.frontIndex >= 0 || [...this.siblings.values()].some((s) => s.frontIndex >= 0)
  }

  /** The siblings' served and active requests. */
  stats(): { served: number; active: number } {
    let served = 0
    let active = 0
    for (const s of this.siblings.values()) {
      const st = s.stats()
      served += st.served
      active += st.active
    }
    return { served, active }
  }

  stop() {
    this.stopped = true
    this.knowParent()
    clearInterval(this.timer)
  }

  /** Stops looking and closes every sibling (each drains as close() does). */
  async close(opts: { timeoutMs?: number }) {
    this.stop()
    await Promise.all([...this.siblings.values()].map((s) => s.close(opts)))
  }
}
