// Timers a property test's subject arms, tracked so each case can tell it left none running: track() wraps
// setTimeout/clearTimeout (the library's timers go through them), restore() puts the real ones back.
const realSetTimeout = globalThis.setTimeout
const realClearTimeout = globalThis.clearTimeout

export const liveTimers = new Set<unknown>()

export function trackTimers() {
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = realSetTimeout(() => {
      liveTimers.delete(h)
      fn(...args)
    }, ms)
    liveTimers.add(h)
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
