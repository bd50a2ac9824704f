// Idle strategies: how a side waits for its peer. One mechanism, two knobs.
import { native } from "../native/ffi.ts"
import type { Channel } from "./channel.ts"

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

export function tuning(idle: IdleStrategy = "adaptive"): Tuning {
  if (idle === "spin") return { spinNs: 50_000, parkAfterNs: Infinity }
  if (idle === "adaptive") return { spinNs: 2_000, parkAfterNs: 1_000_000 }
  if (idle === "park") return { spinNs: 0, parkAfterNs: 0 }
  if (
    typeof idle === "object" && idle !== null &&
    Number.isFinite(idle.spinMicros) && idle.spinMicros >= 0 &&
    idle.parkAfterMs >= 0 && !Number.isNaN(idle.parkAfterMs)
  )
    return { spinNs: idle.spinMicros * 1000, parkAfterNs: idle.parkAfterMs * 1e6 }
  throw new TypeError(`idle must be "spin", "adaptive", "park" or { spinMicros, parkAfterMs }, got ${JSON.stringify(idle)}`)
}

const now = Bun.nanoseconds
const MAX_MICROTASK_NS = 1_000_000 // let timers and I/O in at least once a millisecond
const YIELD_EVERY_NS = 5_000

/**
 * Drives `drain` (which handles whatever is ready and returns how many) on the JS thread: polls while
 * `wanted()` says there may be something to wait for, parks on the doorbell otherwise.
 */
export class Pump {
  private readonly t: Tuning
  private scheduled = false
  private parked = false
  private stopped = false
  private lastProgress = now()
  private chainStart = 0

  constructor(
    private readonly chan: Channel,
    idle: IdleStrategy | undefined,
    private readonly drain: () => number,
    private readonly wanted: () => boolean,
  ) {
    this.t = tuning(idle)
    chan.listenDoorbell(() => {
      this.parked = false
      this.lastProgress = now()
      this.schedule(false)
    })
  }

  /** New work was handed to the peer: start polling for its answer, unless this side sleeps by choice. */
  kick() {
    if (this.stopped) return
    if (this.parked) {
      if (this.t.parkAfterNs === 0) return // park mode: the doorbell will ring
      native.sb_unpark(this.chan.ptr)
      this.parked = false
    }
    this.lastProgress = now()
    this.schedule(true)
  }

  stop() {
    this.stopped = true
  }

  private schedule(soon: boolean) {
    if (this.scheduled || this.stopped) return
    this.scheduled = true
    const t = now()
    if (soon && t - this.chainStart < MAX_MICROTASK_NS) queueMicrotask(this.run)
    else {
      this.chainStart = t
      setImmediate(this.run)
    }
  }

  private run = () => {
    this.scheduled = false
    if (this.stopped || !this.chan.isOpen) return
    let done = this.drain()
    // Fruitless polling gives the CPU away now and then: if the peer shares this CPU, spinning only
    // delays its answer (costs ~0.2 µs when nobody else wants the CPU).
    if (done === 0 && this.t.spinNs > 0 && this.wanted()) {
      let t = now()
      const until = t + this.t.spinNs
      let yieldAt = t + YIELD_EVERY_NS
      while (done === 0 && (t = now()) < until) {
        done = this.drain()
        if (t > yieldAt) {
          native.sb_yield()
          yieldAt = t + YIELD_EVERY_NS
        }
      }
    }
    if (done === 0) native.sb_yield()
    const t = now()
    if (done > 0) this.lastProgress = t
    if (!this.wanted() || t - this.lastProgress >= this.t.parkAfterNs) return this.park()
    this.schedule(done > 0)
  }

  private park() {
    if (native.sb_park(this.chan.ptr) === 1) return this.schedule(true) // work arrived while announcing
    this.parked = true
  }
}
