// The MCP handshakes a pool with `initialize: "replay"` keeps: each session's initialize request, whether it sent
// notifications/initialized, and which worker process has seen them. A session outlives its worker (its next
// message is pinned to a live instance), so the bus can initialize that instance for it before passing the message
// on. Kept apart from the pins (router.ts) because a pin dies with its worker and a handshake must not.
import type { Instance } from "./pool.ts"
import type { BusClient } from "./types.ts"

/** Handshakes kept over the whole bus; past it the oldest is forgotten (that session initializes again itself). */
export const HANDSHAKES_MAX = 10_000

export interface Handshake {
  /** The params of the session's last initialize request. */
  params: unknown
  /** The session sent notifications/initialized after it. */
  initialized: boolean
  owner: BusClient | null
  /** The process that has seen it (instance and generation). */
  instance: Instance
  generation: number
  /** A replay under way; the session's messages wait for it. */
  replay: { instance: Instance; generation: number; done: Promise<void> } | null
}

export class Handshakes {
  private readonly bySession = new Map<string, Handshake>()

  /** Notes a message a session sends to `instance`, if it is part of the handshake. */
  note(sessionKey: string, owner: BusClient | null, instance: Instance, method: string, params: unknown): void {
    if (method === "initialize") {
      this.bySession.delete(sessionKey) // the newest goes last, so the oldest is forgotten first
      if (this.bySession.size >= HANDSHAKES_MAX) this.bySession.delete(this.bySession.keys().next().value!)
      this.bySession.set(sessionKey, {
        params,
        initialized: false,
        owner,
        instance,
        generation: instance.generation,
        replay: null,
      })
    } else if (method === "notifications/initialized") {
      const h = this.bySession.get(sessionKey)
      if (h) h.initialized = true
    }
  }

  /** The session's handshake if `instance`'s current process has not seen it. */
  unseen(sessionKey: string, instance: Instance): Handshake | undefined {
    const h = this.bySession.get(sessionKey)
    return h && (h.instance !== instance || h.generation !== instance.generation) ? h : undefined
  }

  has(sessionKey: string): boolean {
    return this.bySession.has(sessionKey)
  }

  forget(sessionKey: string): void {
    this.bySession.delete(sessionKey)
  }

  forgetOwner(owner: BusClient): void {
    for (const [key, h] of this.bySession) if (h.owner === owner) this.bySession.delete(key)
  }

  clear(): void {
    this.bySession.clear()
  }

  get size(): number {
    return this.bySession.size
  }
}
