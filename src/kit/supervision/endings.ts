// How a supervisor's processes end when it asks them to: why each was asked (its exit is then no crash), drained
// first when retired, then SIGTERM, SIGKILL after a grace period, and gone from where it served.
import { sleep } from "../basics/timers.ts"
import type { ExitCause, Proc, SupervisorSettings } from "./options.ts"
import { within } from "./process-wait.ts"

export class Endings {
  /** Processes asked to end, and why: their exit is not a crash. */
  readonly asked = new WeakMap<Proc, ExitCause>()

  constructor(private readonly opts: Pick<SupervisorSettings, "retire" | "drainTimeoutMs" | "gone">) {}

  /** Retires a process asked to end: drained (retire, bounded by drainTimeoutMs), then terminated. */
  async retire(proc: Proc, cause: ExitCause, graceMs: number): Promise<void> {
    this.asked.set(proc, cause)
    if (this.opts.retire) await within(this.opts.retire(proc.pid), this.opts.drainTimeoutMs)
    await this.terminate(proc, cause, graceMs)
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once it exited and is gone (bounded by graceMs). */
  async terminate(proc: Proc, cause: ExitCause, graceMs: number): Promise<void> {
    this.end(proc, cause, "SIGTERM")
    const exited = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)])
    if (!exited) proc.kill("SIGKILL")
    await proc.exited
    if (this.opts.gone) await within(this.opts.gone(proc.pid, graceMs), graceMs)
  }

  /** Sends `signal`, the process asked to end for `cause` (unless it was asked already, for another). */
  end(proc: Proc, cause: ExitCause, signal: NodeJS.Signals): void {
    if (!this.asked.has(proc)) this.asked.set(proc, cause)
    proc.kill(signal)
  }
}
