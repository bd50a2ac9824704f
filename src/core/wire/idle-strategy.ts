// Idle strategies: how a side waits for its peer, as data. One mechanism (the Pump, pump.ts), two knobs.
import { checkNumber, checkOptions, optionNames } from "../../kit/index.ts"

/**
 * `spin`: busy-poll while there is work to wait for (lowest latency, burns a core).
 * `park`: sleep on the doorbell at once (~0 CPU idle, a wake costs a syscall and ~30 µs here).
 * `adaptive` (default): poll between event-loop turns while traffic flows, park after `parkAfterMs` quiet.
 */
export type IdleStrategy = "spin" | "adaptive" | "park" | { spinMicros: number; parkAfterMs: number }

export interface Tuning {
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
