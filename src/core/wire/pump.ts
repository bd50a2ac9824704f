// The Pump: drives a side's duties (collect what the peer handed over) on the JS thread, polling while work is
// expected and parking on the doorbell otherwise; how long it polls and when it parks is its idler's
// (idle-strategy.ts), and whether it may poll at all the signals' (idle-signals.ts).
import { native } from "../../native/ffi.ts"
import { nanoseconds } from "../../runtime/index.ts"
import { type Contention, CpuKeeper, CpuSharing, SWITCHED_YIELD_NS, threadContention } from "./idle-signals.ts"
import { type IdleStrategy, type Idler, idler } from "./idle-strategy.ts"
import { countTurn, eventLoopFds } from "./loop-probe.ts"

const now = nanoseconds
const MAX_MICROTASK_NS = 1_000_000 // let timers and I/O in at least once a millisecond
const YIELD_EVERY_NS = 5_000
const POLLS_PER_CLOCK = 8
// A pump that found its event loop's I/O waiting asks again before each spin, until this many asks in a row found none.
export const IO_ASKS_AFTER_SEEN = 64
/** How long a new connection's pumps poll from their first work before they park for want of it (startupPollNs). */
export const STARTUP_POLL_NS = 250_000_000
// A run that found work reads no clock; a chain of them looks at it every this many runs (≤ 16 × a 20 µs spin).
const CLOCK_EVERY_RUNS = 16
// The CPU word is published after a yield that ran another thread, and after every this many yields (whereAfterYield).
const NOTE_CPU_EVERY = 64
// A peer may ring only after it found this side parked (docs/PROTOCOL.md §5): at most one ring per park.
// The slack covers rings still in flight when the count is read; a flooder passes it within one read.
const RING_SLACK = 64

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
   * A new connection's pumps poll this long from the first work they find before they park for want of it
   * (adaptive; park mode parks anyway, and a busy machine's spells still park). A fresh worker's JIT threads hold a
   * CPU for its first ~200 ms; a side that parks then is woken by the scheduler onto its waker's CPU, and hub and
   * worker take turns on one CPU until the scheduler parts them (2.7 µs round trips against 1.3 µs;
   * docs/perf/request-path.md). Not before the first work: an idle bus's fresh worker would hold a CPU for nothing,
   * and put the busy buses' pairs of a 2-CPU front on one CPU (docs/perf/round-nine-cliffs.md).
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
  /**
   * This side keeps its thread off its peer's CPU while they share one and the pair is busy (CpuKeeper), until it
   * parks for want of work. One side of a pair (a worker's): two keepers would move together.
   */
  keepsOffPeerCpu?: boolean
}

/** The process's CpuKeeper: a thread has one affinity mask, whichever of its pumps narrowed it. */
let processKeeper: CpuKeeper | undefined
const keeperOfProcess = () => (processKeeper ??= new CpuKeeper((cpu) => native.sb_keep_off_cpu(cpu)))

/**
 * Drives `collect` on the JS thread: polls while `wanted()` says there may be something to wait for, parks on
 * the doorbell otherwise. Whatever collect does, each run ends in exactly one of: scheduled again, parked
 * (the shared parked word says so), or stopped.
 */
export class Pump {
  private readonly idler: Idler
  private scheduled = false
  private kicked = false // new work since the last run: counts as progress (kick() reads no clock)
  private parked = false
  private resting = false
  private stopped = false
  private readonly sharing: CpuSharing
  private chainStart = 0
  private chainRuns = 0
  private progressed = false // work was done since the clock was last read in idle(): the idler's reset is due
  private parks = 0
  private yields = 0
  private rings = 0
  private readonly mayCrowd: boolean // the default strategy, told when the bus is crowded
  private readonly loopFds = eventLoopFds()
  private ioAsksLeft = 0 // spins that ask the event loop before they start (ioWaiting())
  private answeringSince = 0 // when fruitless runs began to queue behind this side's answers (duties.answering)
  private readonly keeper: CpuKeeper | undefined

  constructor(
    private readonly chan: Parking,
    idle: IdleStrategy | undefined,
    private readonly duties: PumpDuties,
    /** Whether the machine is too busy to poll: the thread's (a test passes one that never says so). */
    private readonly contention: Contention = threadContention(),
    /** Where duties.keepsOffPeerCpu: the process's keeper (a test passes its own). */
    keeper?: CpuKeeper,
  ) {
    this.keeper = duties.keepsOffPeerCpu === true ? (keeper ?? keeperOfProcess()) : undefined
    const startedAt = now()
    this.idler = idler(idle, "idle", {
      startedAt,
      startupPollNs: duties.startupPollNs,
      parkAfterGaps: duties.parkAfterGaps,
    })
    // The peer's CPU word (docs/PROTOCOL.md §5.1) can deny the sign from the start: the time went to another thread
    // of this CPU's (its own JIT or GC helpers), and yielding after every poll would only hand it more
    // (docs/perf/round-nine-cliffs.md: a fresh pair's rounds at ~10 µs, each side on its own CPU).
    this.sharing = new CpuSharing(chan.peerCpu && (() => chan.peerCpu!()))
    this.resting = duties.rest === true // a resting pump starts on resume(); one that parks starts on kick()
    this.mayCrowd = this.idler.yieldsToCrowd && duties.crowded !== undefined
    chan.listenDoorbell((count) => {
      if (this.stopped) return
      countTurn()
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
      if (this.idler.parksAtOnce || this.isCrowded()) return // park mode: the doorbell will ring
      countTurn() // what it collects from here on may be an earlier turn's
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
    countTurn()
    this.chan.unpark()
    this.woken()
  }

  /** Rung (or roused): run again, counting the wake-up as progress. */
  private woken() {
    this.chan.noteCpu?.(native.sb_cpu())
    this.parked = false
    this.resting = false
    this.idler.reset(now(), false)
    this.schedule(true) // in this turn: the ring was its I/O (a ring while a run is scheduled costs nothing more)
  }

  stop() {
    this.stopped = true
    this.keeper?.release(this)
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
    countTurn()
    this.run()
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
    // epoll fds whether I/O waits (one poll(2)) and, if so, ends the run there without yielding; a pump that found
    // I/O waiting asks before it starts to spin, until IO_ASKS_AFTER_SEEN asks in a row found none. A quick answer
    // without I/O around costs no syscall, nor does one long after a stray wake-up of the loop's (under Node, V8
    // posts its GC's tasks through the loop: "asks while it saw I/O in the last 10 ms" made that a poll(2) every
    // round trip, 1.0 → 2.2 µs, docs/perf/round-nine-node.md). "spin" (never parks) keeps spinning.
    let io = false
    if (workCount === 0 && this.idler.spinNs > 0 && !crowded && this.wanted()) {
      if (this.behindAnswers()) return this.schedule(true) // (a pump that parks holds nothing up)
      let t = now()
      if (this.ioAsksLeft > 0) io = this.ioWaiting()
      const until = t + this.idler.spinNs
      let yieldAt = t + YIELD_EVERY_NS
      // A poll is one FFI call (~10 ns), a clock read ~30-100 ns: look at the clock every POLLS_PER_CLOCK polls.
      for (let i = 1; workCount === 0 && !io && !this.stopped; i++) {
        workCount = this.collect()
        this.sharing.polled(workCount)
        if (workCount !== 0) break
        if (!this.sharing.shared && i % POLLS_PER_CLOCK !== 0) continue
        if ((t = now()) >= until) break
        if (this.sharing.shared || t > yieldAt) {
          if (t > yieldAt && (io = this.ioWaiting())) break
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
    const mayPark = this.idler.parks
    if (mayPark) this.contention.sample(t)
    // (park mode parks below whatever happens: a yield first would only delay what arrives meanwhile)
    if (!this.idler.parksAtOnce && !crowded && !io && !(mayPark && t < this.contention.until)) {
      native.sb_yield()
      const back = now()
      this.contention.yielded(back, back - t)
      this.sharing.yielded(back - t, this.whereAfterYield(back - t))
      t = back
    }
    if (this.progressed || this.kicked) this.idler.reset(t, this.progressed)
    this.progressed = this.kicked = false
    if (!this.wanted()) return this.restOrPark()
    if (this.idler.idle(t)) return this.park()
    if (crowded) return this.park()
    if (mayPark && t < this.contention.until) {
      // slow yields alone keep a kept-off thread so (a helper thread of the peer's sharing its CPU yields slowly)
      if (this.contention.starved) this.keeper?.starved(this, t)
      return this.park(false)
    }
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
    let cpu = native.sb_cpu()
    if (this.keeper && this.sharing.shared) cpu = this.keeper.sharing(this, now(), cpu, this.chan.peerCpu?.() ?? -1)
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
    return t - this.answeringSince < this.idler.spinNs
  }

  /** The event loop has I/O waiting, and no answer that could land in its caller's turn is worth a spin. */
  private ioWaiting(): boolean {
    if (
      !this.idler.parks ||
      this.duties.yieldsToIo !== true ||
      this.loopFds.length === 0 ||
      this.duties.answerInTurnPays?.() === true
    )
      return false
    if (native.sb_any_readable(this.loopFds, this.loopFds.length) !== 1) {
      if (this.ioAsksLeft > 0) this.ioAsksLeft--
      return false
    }
    this.ioAsksLeft = IO_ASKS_AFTER_SEEN
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

  /** Announces sleep; with `release` (for want of work, a crowded bus) the scheduler places this thread freely again. */
  private park(release = true) {
    this.parks++
    if (release) this.keeper?.release(this)
    if (this.chan.park() === 1) return this.schedule(true) // work arrived while announcing
    this.parked = true
  }
}
