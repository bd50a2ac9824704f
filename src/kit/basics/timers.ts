// Timers that keep their word past 2^31−1 ms. Node and Bun store a timer's delay in 32 bits: a longer one
// (a limit of 1e7 s, say) fires at once (BUN_QUIRKS.TIMER_OVERFLOW, src/runtime/bun/quirks.ts). Every delay in
// slotbus that comes from a user goes through here.

/** The longest delay a single setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** A pending `longTimeout`: `clear()` cancels it, `unref()` lets the process exit while it waits. */
export interface LongTimer {
  clear(): void
  unref(): LongTimer
}

/**
 * `fn` runs once, `ms` from now (a negative or NaN delay is 0), however long that is: a delay past
 * `MAX_TIMER_MS` is a chain of shorter timers. `Infinity` never fires and holds no timer at all.
 */
export function longTimeout(fn: () => void, ms: number): LongTimer {
  const due = performance.now() + (ms > 0 ? ms : 0)
  let timer: ReturnType<typeof setTimeout> | undefined
  let unrefd = false
  const arm = () => {
    if (due === Infinity) return
    timer = setTimeout(
      () => (performance.now() >= due ? fn() : arm()),
      Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(due - performance.now()))),
    )
    if (unrefd) timer.unref()
  }
  arm()
  const handle: LongTimer = {
    clear: () => clearTimeout(timer),
    unref: () => ((unrefd = true), timer?.unref(), handle),
  }
  return handle
}

/** A promise that resolves after `ms` (any length, as `longTimeout`). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => longTimeout(resolve, ms))
}
