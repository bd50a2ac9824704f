// What a Supervisor (supervisor.ts) does after a crash, timed: the restart its RestartPolicy (restart-policy.ts)
// decides, after a backoff; giving up, which leaves what crashes down; and the recovery once a window passes without
// a crash. The Supervisor spawns and watches the processes; it hands each crash here.
import type { LongTimer } from "../basics/timers.ts"
import { longTimeout } from "../basics/timers.ts"
import type { ExitInfo, Proc, SupervisedInstance, SupervisorEvents, SupervisorState } from "./options.ts"
import { RestartPolicy, type RestartSettings } from "./restart-policy.ts"

/** What the crash side needs of its Supervisor. */
export interface CrashHost {
  readonly instances: SupervisedInstance[]
  state: SupervisorState
  readonly lastExit: ExitInfo | null
  /** Whether process `pid` served (the `served` option), so its crash is no failed start. */
  served(pid: number): boolean
  spawn(inst: SupervisedInstance): void
  /** onGiveUp "stop-all": every instance is ended. */
  giveUpStopsAll(): boolean
  terminateAll(): void
  emit<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): void
}

export class CrashRestarts {
  /** What a crash leads to: restart after a delay, give up, stay down. */
  readonly policy: RestartPolicy
  /** Crashes restarted. */
  total = 0
  /** Why the pool gave up, while it has. */
  failure: string | null = null
  private readonly timers = new Map<SupervisedInstance, LongTimer>()
  private recovery: LongTimer | null = null

  constructor(
    private readonly host: CrashHost,
    settings: RestartSettings,
    knowsServed: boolean,
  ) {
    this.policy = new RestartPolicy(settings, knowsServed)
  }

  /** A (re)start of the pool: crashes count from zero, nothing waits for a recovery. */
  reset(): void {
    this.clearRecovery()
    this.policy.reset()
    this.failure = null
    for (const inst of this.host.instances) inst.failedStarts = 0
  }

  clearRecovery(): void {
    this.recovery?.clear()
    this.recovery = null
  }

  /** `inst`'s restart, if one is due, is called off. */
  cancel(inst: SupervisedInstance): void {
    this.timers.get(inst)?.clear()
    this.timers.delete(inst)
  }

  /** Every restart due is called off (stop). */
  cancelAll(): void {
    for (const t of this.timers.values()) t.clear()
    this.timers.clear()
  }

  /** Whether `proc`, `inst`'s process, crashed during its start: within restart.minUptimeMs of it, before `served` said it started. */
  failedStart(inst: SupervisedInstance, proc: Proc): boolean {
    return this.policy.failedStart(performance.now() - inst.startedAt, this.host.served(proc.pid))
  }

  /** `inst`'s process crashed: it restarts after a backoff, or stays down while the pool has given up. */
  crashed(inst: SupervisedInstance, failedStart: boolean): void {
    const host = this.host
    if (!host.instances.includes(inst) || (host.state !== "running" && host.state !== "failed")) return
    const crash = { index: inst.index, failedStarts: inst.failedStarts, failedStart }
    const verdict = this.policy.crashed(performance.now(), crash, host.state === "failed")
    inst.failedStarts = verdict.failedStarts
    if ("recoverIn" in verdict) {
      inst.state = "down"
      return this.scheduleRecovery(verdict.recoverIn)
    }
    if ("giveUp" in verdict) return this.giveUp(inst, verdict.giveUp)
    inst.state = "backoff"
    this.scheduleRestart(inst, verdict.restartIn)
  }

  private scheduleRestart(inst: SupervisedInstance, delayMs: number): void {
    this.host.emit("restart", inst, { delayMs, recentRestarts: this.policy.crashes })
    this.timers.set(
      inst,
      longTimeout(() => {
        this.timers.delete(inst)
        if (this.host.state !== "running" || inst.proc) return
        inst.restarts++
        this.total++
        try {
          this.host.spawn(inst)
        } catch {
          this.crashed(inst, true) // it could not even be spawned
        }
      }, delayMs),
    )
  }

  /** `inst` failed to start too often, or past the intensity: nothing that crashes is restarted until a window passes without a crash. */
  private giveUp(inst: SupervisedInstance, why: string): void {
    const { windowMs } = this.policy.settings
    inst.state = "down"
    this.failure = `${why}; ${this.total} crash restart${this.total === 1 ? "" : "s"} in all; the last exit: ${describeExit(this.host.lastExit)}`
    this.host.state = "failed"
    for (const [inst, t] of this.timers) {
      t.clear()
      inst.state = "down"
    }
    this.timers.clear()
    if (this.host.giveUpStopsAll()) this.host.terminateAll()
    else this.scheduleRecovery(windowMs)
    this.host.emit("failed", {
      reason: this.failure,
      crashes: this.policy.crashes,
      restarts: this.total,
      windowMs,
      lastExit: this.host.lastExit,
    })
  }

  /** A window from the last crash: then what is down starts again, and crashes count from zero. */
  private scheduleRecovery(windowMs: number): void {
    this.recovery?.clear()
    this.recovery = longTimeout(() => {
      this.recovery = null
      if (this.host.state !== "failed") return
      this.host.state = "running"
      this.failure = null
      this.policy.reset()
      let restarted = 0
      for (const inst of this.host.instances) inst.failedStarts = 0
      for (const inst of this.host.instances)
        if (!inst.proc) {
          this.host.spawn(inst)
          restarted++
        }
      this.host.emit("recovered", { restarted })
    }, windowMs)
  }
}

function describeExit(e: ExitInfo | null): string {
  if (!e) return "none"
  return `pid ${e.pid} ${e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`}`
}
