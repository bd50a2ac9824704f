// The stdio bus's lifecycle: created → starting → running → stopping → stopped, and from stopped (or a start()
// that failed) starting again. Only the bus moves it (bus.ts); the Router and the Workers read it, through
// LifecycleView.
import { InvalidStateError } from "./errors.ts"
import type { BusState } from "./types.ts"

/** What the bus's parts may know of its lifecycle: they read it, never move it. */
export interface LifecycleView {
  readonly state: BusState
  /** Throws InvalidStateError naming `operation` unless the bus is running. */
  assertRunning(operation: string): void
}

export class Lifecycle implements LifecycleView {
  private current: BusState = "created"

  get state(): BusState {
    return this.current
  }

  assertRunning(operation: string): void {
    if (this.current !== "running") throw new InvalidStateError(operation, ["running"], this.current)
  }

  /** start(): allowed when created or stopped. */
  starting(): void {
    if (this.current !== "created" && this.current !== "stopped")
      throw new InvalidStateError("start()", ["created", "stopped"], this.current)
    this.current = "starting"
  }

  /** The spawns have settled: running, unless stop() came meanwhile. */
  started(): void {
    if (this.current === "starting") this.current = "running"
  }

  stopping(): void {
    this.current = "stopping"
  }

  /** stop() is done, or start() failed. */
  stopped(): void {
    this.current = "stopped"
  }
}
