// Timers a property test's subject arms, tracked so each case can tell it left none running: track() wraps
// setTimeout/clearTimeout (the library's timers go through them), restore() puts the real ones back.
const realSetTimeout = globalThis.setTimeout
const realClearTimeout = globalThis.clearTimeout

/** Each timer armed and not yet fired or cleared, with the stack that armed it. */
export const liveTimers = new Map<unknown, string>()

/** How many live timers were armed by code in `file` (a path's end, e.g. "events/housekeeping.ts"). */
export function liveTimersIn(file: string): number {
  return [...liveTimers.values()].filter((stack) => stack.includes(file)).length
}

export function trackTimers() {
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = realSetTimeout(() => {
      liveTimers.delete(h)
      fn(...args)
    }, ms)
    liveTimers.set(h, new Error().stack ?? "")
    return h
  }) as typeof setTimeout
  globalThis.clearTimeout = ((h: Parameters<typeof clearTimeout>[0]) => {
    liveTimers.delete(h)
    realClearTimeout(h)
  }) as typeof clearTimeout
}

export function restoreTimers() {
  globalThis.setTimeout = realSetTimeout
  globalThis.clearTimeout = realClearTimeout
}
