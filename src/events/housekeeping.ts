// When a topic's member does its housekeeping (PROTOCOL §8.1: collect the dead, pass on the keeper role, nudge a
// subscriber stuck behind a dead writer): every BUSY_TICK_MS while the topic's tail moves and for BUSY_TICKS after,
// then every IDLE_TICK_MS, deep. Newcomers are libslotbus's accept thread's, so an idle topic costs one wake-up a
// second.
const BUSY_TICK_MS = 20
const BUSY_TICKS = 50
const IDLE_TICK_MS = 1000

export class Housekeeping {
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastTail = 0
  private busyTicks = 0
  private stopped = false

  /** `tail()` reads the topic's tail word; `tick(deep)` does the work. Starts at once; stop() ends it. */
  constructor(
    private readonly tail: () => number,
    private readonly tick: (deep: boolean) => void,
  ) {
    this.schedule(BUSY_TICK_MS)
  }

  stop() {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private run() {
    const tail = this.tail()
    if (tail !== this.lastTail) (this.lastTail = tail), (this.busyTicks = BUSY_TICKS)
    const busy = this.busyTicks > 0
    if (busy) this.busyTicks--
    this.tick(!busy) // may stop it (a corrupt header closes the topic)
    if (!this.stopped) this.schedule(busy ? BUSY_TICK_MS : IDLE_TICK_MS)
  }

  private schedule(ms: number) {
    this.timer = setTimeout(() => this.run(), ms)
    this.timer.unref()
  }
}
