// Typed listeners for the classes that report what happens to them (Supervisor, the stdio bus).

type Listener<A extends unknown[]> = (...args: A) => void

/** Listeners by event name; `E` maps each event to its arguments. */
export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  private readonly listeners = new Map<keyof E, Set<Listener<never>>>()

  /** Calls `fn` on every `event` until the returned function is called. */
  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(fn as Listener<never>)
    return () => void set.delete(fn as Listener<never>)
  }

  /** Calls every listener of `event`; one that throws does not stop the others or the emitter: its error is
   * rethrown on a microtask, where it is reported as uncaught. */
  emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const fn of set) {
      try {
        ;(fn as Listener<E[K]>)(...args)
      } catch (e) {
        queueMicrotask(() => {
          throw e
        })
      }
    }
  }
}
