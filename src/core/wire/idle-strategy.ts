// Idle strategies as objects behind one interface, as Agrona's IdleStrategy (BusySpin, Backoff, Sleeping): each
// decides from the work it is told of and a clock alone; the Pump (pump.ts) owns the polling, the wake-up and the
// signals that may overrule it (idle-signals.ts).
import { checkNumber, checkOptions, optionNames } from "../../kit/index.ts"

/**
 * `spin`: busy-poll while there is work to wait for (lowest latency, burns a core).
 * `park`: sleep on the doorbell at once (~0 CPU idle, a wake costs a syscall and ~30 µs here).
 * `adaptive` (default): poll between event-loop turns while traffic flows, park after `parkAfterMs` quiet.
 */
export type IdleStrategy = "spin" | "adaptive" | "park" | { spinMicros: number; parkAfterMs: number }

const SPIN_NS = 50_000
// 20 µs a turn: longer than the caller's think time between an answer and its next request, so a worker does not
// leave for an event-loop turn (~7 µs) just before it lands (2 µs made 1-in-flight p50s bimodal, 1.5 or 9 µs;
// docs/perf/request-path.md, round four).
const ADAPTIVE_SPIN_NS = 20_000
const ADAPTIVE_PARK_AFTER_NS = 1_000_000

/** What a pump does after a run that found nothing; times are ns on one clock. */
export interface Idler {
  /** How long a fruitless run busy-polls, synchronously, before it gives the turn back (0: not at all). */
  readonly spinNs: number
  /** Whether it ever parks ("spin" never does: busy machines and waiting I/O do not end its polling either). */
  readonly parks: boolean
  /** It parks after every fruitless run, without a yield first, and a parked pump stays parked when kicked. */
  readonly parksAtOnce: boolean
  /** It gives way to a crowded bus (more processes than CPUs) by parking at once: the default strategy only. */
  readonly yieldsToCrowd: boolean
  /** Work was done at t (`work` false: a wake-up or a kick, no work yet): the quiet time starts again (Agrona's
   * reset()). */
  reset(t: number, work?: boolean): void
  /** A run at t found nothing: whether to park now (true) or poll again in a later turn (Agrona's idle(0)). */
  idle(t: number): boolean
}

/** How a pump starts: at `startedAt`, polling for `startupPollNs` before it may first park, tuned by arrival gaps. */
export interface IdlerStart {
  startedAt?: number
  /** PumpDuties.startupPollNs: an adaptive pump polls this long after `startedAt` before it parks for want of work. */
  startupPollNs?: number
  /** PumpDuties.parkAfterGaps: an adaptive pump polls for up to twice the recent time between arrivals. */
  parkAfterGaps?: boolean
}

/** Polls every turn and never parks. */
export class SpinIdler implements Idler {
  readonly parks = false
  readonly parksAtOnce = false
  readonly yieldsToCrowd = false
  constructor(readonly spinNs = SPIN_NS) {}
  reset() {}
  idle(): boolean {
    return false
  }
}

/** Parks after every fruitless run, once its spin (none by default) found nothing. */
export class ParkIdler implements Idler {
  readonly parks = true
  readonly parksAtOnce = true
  readonly yieldsToCrowd = false
  constructor(readonly spinNs = 0) {}
  reset() {}
  idle(): boolean {
    return true
  }
}

/** Polls between turns while work comes, parks once nothing came for `parkAfterNs` (and the startup poll ended). */
export class AdaptiveIdler implements Idler {
  readonly parks = true
  readonly parksAtOnce = false
  private lastWork: number
  private pollUntil = 0
  private startupPollNs: number // until the first work: then pollUntil is set from it, and this is 0
  private readonly byGaps: boolean
  private gapNs = 0 // the recent time between arrivals (an exponential average of the gaps under 100 ms)
  private parkAfterNs: number

  constructor(
    readonly spinNs: number,
    private readonly baseParkAfterNs: number,
    readonly yieldsToCrowd: boolean,
    start: IdlerStart = {},
  ) {
    this.lastWork = start.startedAt ?? 0
    this.startupPollNs = start.startupPollNs ?? 0
    this.byGaps = start.parkAfterGaps === true
    this.parkAfterNs = baseParkAfterNs
  }

  reset(t: number, work = true) {
    // the startup poll opens at the first work, not at the connection: an idle bus's fresh worker would hold a CPU
    // for nothing (docs/perf/round-nine-cliffs.md)
    if (work && this.startupPollNs > 0) (this.pollUntil = t + this.startupPollNs), (this.startupPollNs = 0)
    const gap = t - this.lastWork
    this.lastWork = t
    if (!this.byGaps || gap <= 0 || gap >= 100_000_000) return
    this.gapNs = this.gapNs === 0 ? gap : this.gapNs * 0.75 + gap * 0.25
    this.parkAfterNs = Math.min(Math.max(this.baseParkAfterNs, 2 * this.gapNs), 10 * this.baseParkAfterNs)
  }

  idle(t: number): boolean {
    return t - this.lastWork >= this.parkAfterNs && t >= this.pollUntil
  }
}

/** The longest synchronous spin per event-loop turn an idle strategy may ask for: 1 ms, as MAX_MICROTASK_NS. */
export const MAX_SPIN_MICROS = 1000

const IDLE_OBJECT = optionNames<Exclude<IdleStrategy, string>>({ spinMicros: true, parkAfterMs: true })

/** The idler an idle strategy names, checked; `where` names the option in messages ("SlotBus.listen idle"). */
export function idler(idle: IdleStrategy = "adaptive", where = "idle", start: IdlerStart = {}): Idler {
  if (idle === "spin") return new SpinIdler()
  if (idle === "adaptive") return new AdaptiveIdler(ADAPTIVE_SPIN_NS, ADAPTIVE_PARK_AFTER_NS, true, start)
  if (idle === "park") return new ParkIdler()
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
    if (parkAfterMs === Infinity) return new SpinIdler(spinMicros * 1000)
    if (parkAfterMs === 0) return new ParkIdler(spinMicros * 1000)
    return new AdaptiveIdler(spinMicros * 1000, parkAfterMs * 1e6, false, start)
  }
  throw new TypeError(
    `idle must be "spin", "adaptive", "park" or { spinMicros, parkAfterMs }, got ${JSON.stringify(idle)}`,
  )
}
