// A standby front covers a stopped leader (docs/PROTOCOL.md §15.5). A leader that is SIGSTOPped (docker pause, a
// debugger, a cgroup freeze) keeps its election socket, so no front is elected and nobody replaces the pool's
// workers that die meanwhile. A standby whose pool waits (superviseWorkers was called on it) reads the leader's
// state from /proc every COVER_TICK_MS; once the leader has been stopped for COVER_AFTER_MS the standbys stand for a
// second socket file, slotbus.fronts-cover.<name>, and its holder runs its pool until the leader runs again (then
// drains it, as stop() does, and gives the file up) or dies (then the normal election makes a leader). A reload of
// the cover's pool is the name's deploy: meanwhile the stopped leader's workers get requests only while none of the
// cover's serves, and the leader, once it runs again, reloads its pool before the cover's drains. Linux only:
// elsewhere there is no /proc to read and nothing of this runs.
import { HostSeat, procState, stoppedProcess, type Supervisor } from "../../kit/index.ts"
import { hostHolderOf } from "../../native/ffi.ts"
import { controlReload } from "./control-client.ts"
import type { FrontSeat } from "./fronts.ts"

/** How often a standby front reads the leader's state. */
export const COVER_TICK_MS = 250
/** How long the leader must have been stopped before a standby covers for it. */
export const COVER_AFTER_MS = 2000
const COVER = "slotbus.fronts-cover."

// Pools whose cover ended: stopped, and standing by again as a pool in state `created` does.
const resting = new WeakSet<Supervisor>()

/** The pid of the front that covers for the stopped leader of `name` (§15.5), 0 when none does. */
export function coveringFront(name: string): number {
  const h = hostHolderOf(COVER, name)
  return typeof h === "string" ? 0 : h.pid
}

/** Whether a shared front's pool waits for this front to lead (or cover): created, or stopped after a cover. */
export function standsBy(pool: Supervisor): boolean {
  return pool.state === "created" || (pool.state === "stopped" && resting.has(pool))
}

/** Whether a pool is stopped for good (its timers end): stopping or stopped, and not a cover ending. */
export function stoppedForGood(pool: Supervisor): boolean {
  return (pool.state === "stopped" || pool.state === "stopping") && !resting.has(pool)
}

/** What a shared front's pool row says of its state where it does not run the pool itself, else null. */
export function standbyRow(front: FrontSeat, pool: Supervisor): string | null {
  if (front.coveringFor > 0 && pool.state !== "stopped" && pool.state !== "created")
    return `${pool.state}, covering (leader front ${front.coveringFor} is stopped)`
  return standsBy(pool) ? "standby (another front runs the name's pool)" : null
}

/** What the cover needs of the front's bus: its workers, and BusPools' hold/release of one. */
interface CoverBus {
  readonly workers: readonly { readonly pid: number; readonly state: string }[]
  readonly pools: { hold(pid: number): void; release(pid: number): void }
}

interface CoveredPool {
  readonly pool: Supervisor
  /** Its command: the leader's pool of it reloads when this one reloaded while covering. */
  readonly command: string[]
  readonly bus: CoverBus | null
  /** Starts the pool if it stands by (superviseWorkers' own start on election). */
  start(): void
  log(line: string): void
}

const covers = new WeakMap<FrontSeat, FrontCover>()

/** Starts a shared front's pool when the front is elected, and while it covers for a stopped leader (§15.5). */
export function runWhenLeading(front: FrontSeat, pool: CoveredPool) {
  front.onLeader(pool.start)
  if (process.platform !== "linux") return // no /proc to read the leader's state from
  let c = covers.get(front)
  if (!c) covers.set(front, (c = new FrontCover(front)))
  c.add(pool)
}

class FrontCover {
  private readonly pools = new Set<CoveredPool>()
  private timer: ReturnType<typeof setInterval> | undefined
  private stoppedPid = 0
  private stoppedSince = -1
  private lastTick = 0
  private seat: HostSeat | null = null
  private covering = 0 // the stopped leader's pid while this front runs its pools for it
  private ending: Promise<void> | null = null
  private closed = false
  // pools reloaded while covering, and the workers of other pools (the stopped leader's) held on the bus since
  private readonly deployed = new Map<CoveredPool, Set<number>>()

  constructor(private readonly front: FrontSeat) {
    front.onClose(() => {
      this.closed = true
      clearInterval(this.timer)
      this.seat?.close()
      for (const p of this.pools) resting.delete(p.pool)
    })
  }

  add(p: CoveredPool) {
    this.pools.add(p)
    p.pool.on("start", () => resting.delete(p.pool)) // it runs again: stopped next time is for good
    p.pool.on("reloaded", (e) => {
      if (!e && this.covering > 0 && !this.closed) this.preferOwn(p)
    })
    if (this.covering > 0) this.start(p)
    this.timer ??= setInterval(() => this.tick(), COVER_TICK_MS)
    this.timer.unref()
  }

  private tick() {
    if (this.closed || this.ending) return
    if (this.front.leader) return this.elected()
    const now = performance.now()
    // A tick late by far: this front was stopped itself (or starved), so it did not watch the leader meanwhile.
    const watched = now - this.lastTick < 4 * COVER_TICK_MS
    this.lastTick = now
    const pid = this.front.leaderPid()
    const stopped = stoppedProcess(pid)
    if (!stopped) this.stoppedSince = -1
    else if (this.stoppedPid !== pid || this.stoppedSince < 0 || !watched) {
      this.stoppedPid = pid
      this.stoppedSince = now
    }
    if (this.covering > 0) {
      // The leader runs again, or another front leads now: its pool is the name's. A leader that died (no state)
      // is followed by an election, which this front may win: until then it covers on.
      if (procState(pid) !== null && !stopped) void this.uncover(pid === this.covering ? "runs again" : "")
      return
    }
    const due = stopped && now - this.stoppedSince >= COVER_AFTER_MS
    if (!due) return this.release() // the leader ran again (before this front won the cover)
    if (this.seat || ![...this.pools].some((p) => standsBy(p.pool))) return
    try {
      this.seat = HostSeat.stand(COVER, this.front.name, { elected: () => this.cover() })
    } catch {} // the socket directory cannot be used now (SocketDirError): the next tick stands again
  }

  /** This front holds the cover seat: its pools run for the stopped leader. */
  private cover() {
    const pid = this.stoppedPid
    if (this.closed || this.front.leader || this.covering > 0 || !stoppedProcess(pid)) return this.release()
    this.covering = pid
    this.front.covers(pid)
    for (const p of this.pools) this.start(p)
  }

  private start(p: CoveredPool) {
    if (!standsBy(p.pool)) return
    p.log(`leader front ${this.covering} is stopped; this front runs the pool until it runs again`)
    p.start()
  }

  /** The leader runs again: the pools this front ran for it drain and stop, and the cover seat is given up. */
  private async uncover(why: string) {
    const pid = this.covering
    const ending = (async () => {
      for (const p of this.pools) {
        if (standsBy(p.pool)) continue
        if (this.deployed.has(p)) await this.redeploy(p)
        this.unprefer(p)
        p.log(`leader front ${pid} ${why || "is no longer the leader"}; this front's pool drains and stops`)
        resting.add(p.pool)
        await p.pool.stop()
      }
    })()
    this.ending = ending
    try {
      await ending
    } finally {
      this.ending = null
      this.covering = 0
      this.front.covers(0)
      this.release()
      // elected while its pools drained: they start now, as the election's own start found them stopping
      if (this.front.leader && !this.closed) for (const p of this.pools) p.start()
    }
  }

  /** Won the name's election while covering: the pools run on as the leader's, and the cover seat is given up. */
  private elected() {
    clearInterval(this.timer)
    for (const p of this.pools) this.unprefer(p)
    this.covering = 0
    this.front.covers(0)
    this.release()
  }

  /**
   * The cover's pool reloaded (a deploy): the bus's other workers, the stopped leader's of the code before, get a
   * request only while none of this pool's serves, until unprefer().
   */
  private preferOwn(p: CoveredPool) {
    const held = this.deployed.get(p) ?? new Set<number>()
    this.deployed.set(p, held)
    const own = new Set(p.pool.instances.map((i) => i.pid))
    for (const w of p.bus?.workers ?? [])
      if (!own.has(w.pid) && w.state === "serving") {
        p.bus!.pools.hold(w.pid)
        held.add(w.pid)
      }
  }

  private unprefer(p: CoveredPool) {
    for (const pid of this.deployed.get(p) ?? []) p.bus?.pools.release(pid)
    this.deployed.delete(p)
  }

  /** The cover's pool reloaded: the name's leader reloads its own before the cover's drains, else the deploy is undone. */
  private async redeploy(p: CoveredPool) {
    const pid = this.front.leaderPid()
    p.log(`this front's pool reloaded while covering: leader front ${pid} reloads its pool before this one drains`)
    try {
      await controlReload(this.front.name, p.command, {})
      p.log(`the name's leader reloaded its pool`)
    } catch (e) {
      p.log(
        `the name's leader did not reload its pool (${(e as Error).message}); this front's pool drains anyway, so the name runs the leader's pool as it was before this front's reload: reload() again`,
      )
    }
  }

  private release() {
    this.seat?.close()
    this.seat = null
  }
}
