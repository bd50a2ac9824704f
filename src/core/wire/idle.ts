// Idle strategies: how a side waits for its peer. One mechanism, two knobs.
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { native } from "../../native/ffi.ts"
import { checkNumber, checkOptions, optionNames } from "../../kit/index.ts"
import { nanoseconds } from "../../runtime/index.ts"

/**
 * `spin`: busy-poll while there is work to wait for (lowest latency, burns a core).
 * `park`: sleep on the doorbell at once (~0 CPU idle, a wake costs a syscall and ~30 µs here).
 * `adaptive` (default): poll between event-loop turns while traffic flows, park after `parkAfterMs` quiet.
 */
export type IdleStrategy = "spin" | "adaptive" | "park" | { spinMicros: number; parkAfterMs: number }

interface Tuning {
  spinNs: number // synchronous busy-poll budget per turn
  parkAfterNs: number // quiet time before parking
}

/** The longest synchronous spin per event-loop turn an idle strategy may ask for: 1 ms, as MAX_MICROTASK_NS. */
export const MAX_SPIN_MICROS = 1000

const IDLE_OBJECT = optionNames<Exclude<IdleStrategy, string>>({ spinMicros: true, parkAfterMs: true })

/** The tuning of an idle strategy, checked; `where` names the option in messages ("SlotBus.listen idle"). */
export function tuning(idle: IdleStrategy = "adaptive", where = "idle"): Tuning {
  if (idle === "spin") return { spinNs: 50_000, parkAfterNs: Infinity }
  // 20 µs a turn: longer than the caller's think time between an answer and its next request, so a worker
  // does not leave for an event-loop turn (~7 µs) just before it lands (2 µs made 1-in-flight p50s bimodal,
  // 1.5 or 9 µs; docs/perf/request-path.md, round four).
  if (idle === "adaptive") return { spinNs: 20_000, parkAfterNs: 1_000_000 }
  if (idle === "park") return { spinNs: 0, parkAfterNs: 0 }
  if (typeof idle === "object" && idle !== null) {
    checkOptions(idle, IDLE_OBJECT, where, { required: ["spinMicros", "parkAfterMs"] })
    // A spin is synchronous: one longer than a turn's budget would keep timers and I/O waiting that long.
    const spinMicros = checkNumber(idle.spinMicros, {
      what: "idle.spinMicros",
      where,
      integer: false,
      max: MAX_SPIN_MICROS,
      note: 'a spin blocks the event loop; spin longer with "spin", which yields every turn',
    })
    const parkAfterMs = checkNumber(idle.parkAfterMs, {
      what: "idle.parkAfterMs",
      where,
      integer: false,
      infinite: true,
    })
    return { spinNs: spinMicros * 1000, parkAfterNs: parkAfterMs * 1e6 }
  }
  throw new TypeError(
    `idle must be "spin", "adaptive", "park" or { spinMicros, parkAfterMs }, got ${JSON.stringify(idle)}`,
  )
}

const now = nanoseconds
const MAX_MICROTASK_NS = 1_000_000 // let timers and I/O in at least once a millisecond
const YIELD_EVERY_NS = 5_000
const POLLS_PER_CLOCK = 8
/** How long a new connection's pumps poll before they first park for want of work (PumpDuties.startupPollNs). */
export const STARTUP_POLL_NS = 250_000_000
// A run that found work reads no clock; a chain of them looks at it every this many runs (≤ 16 × a 20 µs spin).
const CLOCK_EVERY_RUNS = 16
// A pump that found its event loop's I/O waiting this recently asks again before it spins (idle()).
const IO_RECENT_NS = 10_000_000
// A sched_yield that kept this side off the CPU this long ran a third process (a peer sharing our CPU answers
// sooner): the machine is oversubscribed. Yielding then costs a whole time slice of the other process, while a
// parked side that is woken preempts it; so a pump that may park does, at once, for the next while.
const CONTENDED_YIELD_NS = 50_000
const CONTENDED_FOR_NS = 50_000_000
// A machine that stays busy would cost tens of ms of polling against it at the end of every spell: the first
// run_delay period after a spell decides, and one still over the share doubles the next spell, up to this.
const CONTENDED_MAX_NS = 1_000_000_000
// Slow yields in a row that mean "contended": one alone is often just a timer tick, a neighbour's burst or one
// of our own runtime's threads (JIT, GC).
const CONTENDED_AFTER_SLOW_YIELDS = 3
// The other sign, for when slow yields are rare (~1 in 150 with two CPU burners: most yields return at once,
// and a poller then holds its CPU until its time slice ends while its peer waits for one): this thread spent
// 3/4 of each of the last two 20 ms periods or more runnable but waiting for a CPU (the kernel's run_delay).
// 3/4 sits between the shares a busy and an idle machine show (measured: docs/perf/request-path.md).
const RUN_DELAY_EVERY_NS = 20_000_000
const RUN_DELAY_SHARE = 0.75
// Both sides' threads on one CPU (the other one busy, e.g. with a fresh process's JIT threads): a poll finds the
// peer's answer only after this side gives the CPU up, so spinning YIELD_EVERY_NS between yields made every hop
// ~5 µs (13 µs round trips, measured with both threads seen on one CPU). A yield that switched to another thread
// (it took this long) followed by work is the sign; QUICK_YIELDS_TO_CLEAR yields in a row that returned at once
// (nobody else wanted this CPU) end it.
const SWITCHED_YIELD_NS = 2_000
const QUICK_YIELDS_TO_CLEAR = 16
const NOTE_CPU_EVERY = 64
// After a connection's first 3 s, the peer's CPU word (docs/PROTOCOL.md §5.1) can deny the sign: the time went to
// another thread of this CPU's (V8's GC helpers), and yielding after every poll only handed it more (Node pairs:
// 2.5 µs round trips against 6). Before, the sign stands alone: fresh processes' JIT threads then want more CPU
// than there is, and yielding after every poll measured better (a Node pair's first 0.6 s: 12 µs against 24; a
// Bun pair's round trips a second from 1 to 2.5 s: -16% with the word heeded; docs/perf/cpu-words-2026-11-27.md).
const CPU_WORDS_AFTER_NS = 3_000_000_000
// A peer may ring only after it found this side parked (docs/PROTOCOL.md §5): at most one ring per park.
// The slack covers rings still in flight when the count is read; a flooder passes it within one read.
const RING_SLACK = 64

let turns = 0
let loopFds: Int32Array | undefined

/**
 * The epoll fds of this process's event loops (Linux: one a Bun process, two under `bun test`, one more per Worker
 * thread), at most 8, found once: a pump asks them whether the loop has I/O waiting. Empty elsewhere.
 */
function eventLoopFds(): Int32Array {
  if (loopFds) return loopFds
  const fds: number[] = []
  try {
    // Bun makes its loops early, so they have low numbers: a server's thousands of sockets are not looked at.
    for (const fd of readdirSync("/proc/self/fd"))
      try {
        if (Number(fd) < 256 && readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:[eventpoll]") fds.push(Number(fd))
      } catch {}
  } catch {}
  loopFds = Int32Array.from(fds.sort((a, b) => a - b).slice(0, 8))
  return loopFds
}

/**
 * How many times a pump of this process has run in an event-loop turn of its own (a setImmediate run, a ring) or
 * left parking: while it reads the same, every pump ran in the microtask drain of the turn that read it, so an
 * answer collected then is its caller's turn's (docs/perf/bun-late-write.md says why that matters).
 */
export function pumpTurns(): number {
  return turns
}

/** ns this thread has spent runnable but not running (/proc/thread-self/schedstat), null where unknown. */
export function runDelayNs(): number | null {
  try {
    const ns = Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[1])
    return Number.isFinite(ns) ? ns : null
  } catch {
    return null
  }
}

/**
 * Whether the machine is oversubscribed, so that a pump that may park should park at once: told of every
 * sched_yield's duration and, every RUN_DELAY_EVERY_NS outside a spell, reading this thread's run_delay.
 * Either sign starts a spell (`until`); the first run_delay period after a spell decides whether the next
 * one is twice as long (still waiting) or back to CONTENDED_FOR_NS (calm). Times are ns on one clock.
 */
export class Contention {
  /** Park at once before this time. */
  until = 0
  private spell = CONTENDED_FOR_NS
  private probing = false // a spell ended and the first run_delay period after it has not been judged
  private slowYields = 0 // in a row
  private delayAt = 0 // when runDelay was read (Infinity: not on this system)
  private runDelay = 0
  private waitedBefore = false // the previous period was over RUN_DELAY_SHARE

  constructor(private readonly readRunDelay: () => number | null = runDelayNs) {}

  /** A sched_yield that ended at `t` after `ns`. */
  yielded(t: number, ns: number) {
    if (ns < CONTENDED_YIELD_NS) this.slowYields = 0
    else if (++this.slowYields >= CONTENDED_AFTER_SLOW_YIELDS) this.start(t)
  }

  /** Reads run_delay if a period is due (never during a spell). */
  sample(t: number) {
    if (t < this.until || t - this.delayAt < RUN_DELAY_EVERY_NS) return
    const d = this.readRunDelay()
    if (d === null) {
      this.delayAt = Infinity
      return
    }
    // a period that began before the spell ended is not judged: it would count the spell's sleep as not waiting
    const judged = this.delayAt > 0 && this.delayAt >= this.until
    const waited = judged && d - this.runDelay >= RUN_DELAY_SHARE * (t - this.delayAt)
    if (waited && (this.waitedBefore || this.probing)) this.start(t)
    else {
      if (judged) this.probing = false
      this.waitedBefore = waited
    }
    this.delayAt = t
    this.runDelay = d
  }

  private start(t: number) {
    this.spell = this.probing ? Math.min(2 * this.spell, CONTENDED_MAX_NS) : CONTENDED_FOR_NS
    this.until = t + this.spell
    this.probing = this.delayAt !== Infinity // without run_delay nothing judges the period after a spell
    this.slowYields = 0
    this.waitedBefore = false
  }
}

/**
 * Whether this side's peer runs on this side's CPU, so that a poll that finds nothing should give the CPU up at
 * once (the peer can answer only then): told of every sched_yield's duration and of the poll after it. A yield that
 * ran another thread, followed by work, is the sign, unless the peer's CPU word names another CPU
 * (docs/PROTOCOL.md §5.1): then the time went to some other thread of this CPU's (a runtime's JIT or GC helpers),
 * and yielding after every poll would only hand it more.
 */
export class CpuSharing {
  /** Yield after every empty poll. */
  shared = false
  private switched = false // the last yield ran another thread: does the next poll find work?
  private quick = 0 // yields in a row that ran nobody else, while shared
  private cpu = -1 // this thread's CPU after its last yield (-1: unknown)

  /** `peerCpu`: the CPU the peer last said it runs on, -1 if it did not say. */
  constructor(private readonly peerCpu: () => number = () => -1) {}

  /** A sched_yield that took `ns`, after which this thread ran on `cpu` (-1: unknown). */
  yielded(ns: number, cpu = -1) {
    this.switched = ns >= SWITCHED_YIELD_NS
    this.cpu = cpu
    if (!this.shared) return
    if (this.switched) this.quick = 0
    else if (++this.quick >= QUICK_YIELDS_TO_CLEAR) (this.shared = false), (this.quick = 0)
  }

  /** The poll after a yield found `work` items. */
  polled(work: number) {
    if (this.switched && work > 0) this.shared = this.peerMayShare()
    this.switched = false
  }

  private peerMayShare(): boolean {
    const peer = this.cpu < 0 ? -1 : this.peerCpu()
    return peer < 0 || peer === this.cpu
  }
}

/**
 * What a pump sleeps on: a parked word the peer checks after handing something over, and a doorbell it rings
 * when it found this side parked. A request/response Channel is one; a topic subscription is another.
 */
export interface Parking {
  readonly isOpen: boolean
  /** Announces sleep: 1 if something arrived meanwhile (not parked: poll again), 0 if parked. */
  park(): number
  /** Withdraws the announcement: this side polls again without having been rung. */
  unpark(): void
  /** Calls onRing with the number of rings each time the doorbell rings. */
  listenDoorbell(onRing: (count: number) => void): void
  /** Tells the peer the CPU this side runs on (-1: unknown), docs/PROTOCOL.md §5.1. */
  noteCpu?(cpu: number): void
  /** The CPU the peer last said it runs on, -1 if it did not say (§5.1). */
  peerCpu?(): number
}

export interface PumpDuties {
  /** Takes whatever the peer has handed over and returns how many items it took (the work count). */
  collect: () => number
  /** Whether anything is expected from the peer: if not, the pump parks at once (or rests, see `rest`). */
  wanted: () => boolean
  /**
   * With `rest: true`, a pump nobody wants anything from neither polls nor parks (a reader that is busy
   * elsewhere is not woken for each event); `resume()` or `kick()` starts it again. By default it parks. A
   * function decides each time (a hub with no slot out rests: nothing can come that would need a ring, and the
   * next request's kick then costs no unpark).
   */
  rest?: boolean | (() => boolean)
  /** The peer rang the doorbell more often than this side parked: it is flooding it. Without it rings are not counted. */
  onRingFlood?: (rings: number, parks: number) => void
  /** collect threw: the pump goes on regardless (it never stops without parking). */
  onError?: (e: unknown) => void
  /**
   * A new connection's pumps poll this long before they first park for want of work (adaptive; park mode parks
   * anyway, and a busy machine's spells still park). A fresh worker's JIT threads hold a CPU for its first
   * ~200 ms; a side that parks then is woken by the scheduler onto its waker's CPU, and hub and worker take turns
   * on one CPU until the scheduler parts them (2.7 µs round trips against 1.3 µs; docs/perf/request-path.md).
   */
  startupPollNs?: number
  /**
   * Poll for up to twice the recent time between arrivals (an average of the gaps under 100 ms) before parking,
   * between parkAfterMs and 10× it: a subscriber fed an event a millisecond otherwise parks just before each one
   * and pays a wake-up for every event (adaptive only).
   */
  parkAfterGaps?: boolean
  /**
   * More processes serve this bus on this host than there are CPUs (the default strategy only): no spinning, no
   * yield, park at once, as `park` does. Every process's polling then takes a CPU some handler is waiting for.
   */
  crowded?: () => boolean
  /**
   * A request sent in this event-loop turn waits, and its answer is likely big enough (over ~16 KiB) that landing
   * it in its caller's turn, which Bun.serve writes in one send (docs/perf/bun-late-write.md), is worth a spin even
   * with I/O waiting.
   */
  answerInTurnPays?: () => boolean
  /**
   * This side's own answers are being made in microtasks (a handler returned a promise, or a Response whose body
   * is read): a synchronous spin would hold them up until it ends. A fruitless run then queues itself behind them
   * instead, for up to the spin budget of a turn (a fetch-mode worker's answer took ~37 µs from its request,
   * against ~2 µs for a plain handler, for its spin: a bus.fetch with one client waited 51 µs).
   */
  answering?: () => boolean
  /**
   * The owner's event loop serves other I/O that a spin would hold up (a hub link: its front's HTTP connections).
   * Its spins then ask the loop at their yield points and end when I/O waits (idle()). A worker's does not: its
   * loop has little else, and asking made the HTTP hub's workers dearer.
   */
  yieldsToIo?: boolean
}

/**
 * Drives `collect` on the JS thread: polls while `wanted()` says there may be something to wait for, parks on
 * the doorbell otherwise. Whatever collect does, each run ends in exactly one of: scheduled again, parked
 * (the shared parked word says so), or stopped.
 */
export class Pump {
  private readonly t: Tuning
  private scheduled = false
  private kicked = false // new work since the last run: counts as progress (kick() reads no clock)
  private parked = false
  private resting = false
  private stopped = false
  private lastProgress = now()
  private readonly pollUntil: number
  private readonly sharing: CpuSharing
  private chainStart = 0
  private chainRuns = 0
  private progressed = false // work was done since the clock was last read in idle(): lastProgress is due
  private gapNs = 0 // parkAfterGaps: the recent time between arrivals (an exponential average)
  private readonly byGaps: boolean // parkAfterGaps on an adaptive pump (a finite, non-zero parkAfter to tune)
  private parkAfterNs: number
  private parks = 0
  private yields = 0
  private rings = 0
  private readonly mayCrowd: boolean // the default strategy, told when the bus is crowded
  private readonly loopFds = eventLoopFds()
  private ioSeenAt = -Infinity
  private answeringSince = 0 // when fruitless runs began to queue behind this side's answers (duties.answering)

  constructor(
    private readonly chan: Parking,
    idle: IdleStrategy | undefined,
    private readonly duties: PumpDuties,
    /** Whether the machine is too busy to poll (a test passes one that never says so). */
    private readonly contention = new Contention(),
  ) {
    this.t = tuning(idle)
    const settled = now() + CPU_WORDS_AFTER_NS
    this.sharing = new CpuSharing(chan.peerCpu && (() => (now() < settled ? -1 : chan.peerCpu!())))
    this.parkAfterNs = this.t.parkAfterNs
    this.byGaps = duties.parkAfterGaps === true && this.t.parkAfterNs > 0 && this.t.parkAfterNs < Infinity
    this.pollUntil = this.t.parkAfterNs > 0 ? now() + (duties.startupPollNs ?? 0) : 0
    this.resting = duties.rest === true // a resting pump starts on resume(); one that parks starts on kick()
    this.mayCrowd = (idle === undefined || idle === "adaptive") && duties.crowded !== undefined
    chan.listenDoorbell((count) => {
      if (this.stopped) return
      turns++
      this.rings += count
      if (this.duties.onRingFlood && this.rings > this.parks + RING_SLACK)
        return this.duties.onRingFlood(this.rings, this.parks)
      this.woken()
    })
  }

  /** New work was handed to the peer: start polling for its answer, unless this side sleeps by choice. */
  kick() {
    if (this.stopped) return
    if (this.parked) {
      if (this.t.parkAfterNs === 0 || this.isCrowded()) return // park mode: the doorbell will ring
      turns++ // what it collects from here on may be an earlier turn's
      this.chan.unpark()
      this.parked = false
    }
    this.resting = false
    this.kicked = true
    this.schedule(true)
  }

  /**
   * Something is wanted again (a reader waits): a resting pump runs its duty cycle from where it left off,
   * polling if it saw progress within `parkAfterMs`, parking otherwise. A parked pump stays parked (the
   * doorbell will ring); nothing here counts as progress.
   */
  resume() {
    if (this.stopped || !this.resting) return
    this.resting = false
    this.schedule(true)
  }

  /** Whether it sleeps until the doorbell rings. */
  get isParked(): boolean {
    return this.parked
  }

  /** Runs as if the doorbell had rung (a parked pump that was not rung although something is there). */
  rouse() {
    if (this.stopped || !this.parked) return
    turns++
    this.chan.unpark()
    this.woken()
  }

  /** Rung (or roused): run again, counting the wake-up as progress. */
  private woken() {
    this.chan.noteCpu?.(native.sb_cpu())
    this.parked = false
    this.resting = false
    this.progressAt(now())
    this.schedule(true) // in this turn: the ring was its I/O (a ring while a run is scheduled costs nothing more)
  }

  stop() {
    this.stopped = true
  }

  private schedule(soon: boolean) {
    if (this.scheduled || this.stopped) return
    this.scheduled = true
    // the clock is read every CLOCK_EVERY_RUNS microtask runs only (a read is ~30 ns, a run with work ~0.3 µs)
    if (soon && (++this.chainRuns % CLOCK_EVERY_RUNS !== 0 || now() - this.chainStart < MAX_MICROTASK_NS))
      queueMicrotask(this.run)
    else {
      this.chainStart = now()
      setImmediate(this.runLater)
    }
  }

  private runLater = () => {
    turns++
    this.run()
  }

  /** Progress at t; with parkAfterGaps, the gap since the last one tunes how long to poll before parking. */
  private progressAt(t: number) {
    const gap = t - this.lastProgress
    this.lastProgress = t
    if (!this.byGaps || gap <= 0 || gap >= 100_000_000) return
    this.gapNs = this.gapNs === 0 ? gap : this.gapNs * 0.75 + gap * 0.25
    this.parkAfterNs = Math.min(Math.max(this.t.parkAfterNs, 2 * this.gapNs), 10 * this.t.parkAfterNs)
  }

  /** Nothing is wanted: rest if the owner allows it now, else park. */
  private restOrPark() {
    const rest = this.duties.rest
    if (typeof rest === "function" ? rest() : rest === true) this.resting = true
    else this.park()
  }

  private collect(): number {
    try {
      return this.duties.collect()
    } catch (e) {
      this.duties.onError?.(e)
      return 0 // as if nothing came: the usual duty cycle follows (poll a while, then park truthfully)
    }
  }

  private run = () => {
    this.scheduled = false
    if (this.stopped || !this.chan.isOpen) return
    const work = this.collect()
    this.sharing.polled(work)
    this.idle(work)
  }

  /** The duty cycle after a run that did `workCount` items (Agrona's IdleStrategy.idle(workCount)). */
  private idle(workCount: number) {
    // Fruitless polling gives the CPU away now and then: if the peer shares this CPU, spinning only
    // delays its answer (costs ~0.2 µs when nobody else wants the CPU).
    const crowded = workCount === 0 && this.isCrowded() // read only where it decides: spin, yield or park
    // A front's event loop has its HTTP connections' I/O to do: a spin only holds it up, and what it waits for is
    // collected in a later turn anyway. So where a spin would yield (every YIELD_EVERY_NS) it first asks the loop's
    // epoll fds whether I/O waits (one poll(2)) and, if so, ends the run there without yielding; a pump that saw
    // I/O waiting within IO_RECENT_NS asks before it starts to spin. A quick answer without I/O around costs no
    // syscall. "spin" (never parks) keeps spinning.
    let io = false
    if (workCount === 0 && this.t.spinNs > 0 && !crowded && this.wanted()) {
      if (this.behindAnswers()) return this.schedule(true) // (a pump that parks holds nothing up)
      let t = now()
      if (t - this.ioSeenAt < IO_RECENT_NS) io = this.ioWaiting(t)
      const until = t + this.t.spinNs
      let yieldAt = t + YIELD_EVERY_NS
      // A poll is one FFI call (~10 ns), a clock read ~30-100 ns: look at the clock every POLLS_PER_CLOCK polls.
      for (let i = 1; workCount === 0 && !io && !this.stopped; i++) {
        workCount = this.collect()
        this.sharing.polled(workCount)
        if (workCount !== 0) break
        if (!this.sharing.shared && i % POLLS_PER_CLOCK !== 0) continue
        if ((t = now()) >= until) break
        if (this.sharing.shared || t > yieldAt) {
          if (t > yieldAt && (io = this.ioWaiting(t))) break
          native.sb_yield()
          const back = now()
          this.sharing.yielded(back - t, this.whereAfterYield(back - t))
          yieldAt = back + YIELD_EVERY_NS
        }
      }
    }
    if (this.stopped || !this.chan.isOpen) return
    if (workCount > 0) {
      // progress: no clock, no yield, no park-after check (the next fruitless run dates it)
      this.progressed = true
      this.kicked = false
      if (!this.wanted()) return this.restOrPark()
      return this.schedule(true)
    }
    let t = now()
    const mayPark = this.t.parkAfterNs !== Infinity
    if (mayPark) this.contention.sample(t)
    // (park mode parks below whatever happens: a yield first would only delay what arrives meanwhile)
    if (this.t.parkAfterNs !== 0 && !crowded && !io && !(mayPark && t < this.contention.until)) {
      native.sb_yield()
      const back = now()
      this.contention.yielded(back, back - t)
      this.sharing.yielded(back - t, this.whereAfterYield(back - t))
      t = back
    }
    if (this.progressed || this.kicked) this.progressAt(t)
    this.progressed = this.kicked = false
    if (!this.wanted()) return this.restOrPark()
    if (t - this.lastProgress >= this.parkAfterNs && t >= this.pollUntil) return this.park()
    if (crowded || (mayPark && t < this.contention.until)) return this.park()
    this.schedule(false)
  }

  /**
   * After a yield that took `ns`: the CPU this thread runs on, published in its CPU word (docs/PROTOCOL.md §5.1),
   * or -1 unread. Read after a yield that ran another thread (where the sign needs it) and every NOTE_CPU_EVERY
   * yields (so a peer's word is never long stale), not after each: a publish per yield cost a fresh Bun pair ~12%
   * of its round trips a second (docs/perf/cpu-words-2026-11-27.md).
   */
  private whereAfterYield(ns: number): number {
    if (ns < SWITCHED_YIELD_NS && ++this.yields % NOTE_CPU_EVERY !== 0) return -1
    const cpu = native.sb_cpu()
    this.chan.noteCpu?.(cpu)
    return cpu
  }

  /** Whether a fruitless run should queue itself behind this side's answers in the making, not spin. */
  private behindAnswers(): boolean {
    if (this.duties.answering?.() !== true) {
      this.answeringSince = 0
      return false
    }
    const t = now()
    if (this.answeringSince === 0) this.answeringSince = t
    return t - this.answeringSince < this.t.spinNs
  }

  /** At t the event loop has I/O waiting, and no answer that could land in its caller's turn is worth a spin. */
  private ioWaiting(t: number): boolean {
    if (
      this.t.parkAfterNs === Infinity ||
      this.duties.yieldsToIo !== true ||
      this.loopFds.length === 0 ||
      this.duties.answerInTurnPays?.() === true ||
      native.sb_any_readable(this.loopFds, this.loopFds.length) !== 1
    )
      return false
    this.ioSeenAt = t
    return true
  }

  private isCrowded(): boolean {
    if (!this.mayCrowd) return false
    try {
      return this.duties.crowded!()
    } catch (e) {
      this.duties.onError?.(e)
      return false
    }
  }

  private wanted(): boolean {
    try {
      return this.duties.wanted()
    } catch (e) {
      this.duties.onError?.(e)
      return true
    }
  }

  private park() {
    this.parks++
    if (this.chan.park() === 1) return this.schedule(true) // work arrived while announcing
    this.parked = true
  }
}
