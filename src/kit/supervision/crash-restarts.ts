// What a Supervisor (supervisor.ts) does after a crash, timed: the restart its RestartPolicy (restart-policy.ts)
// decides, after a backoff; giving up, which leaves what crashes down; and the recovery once a window passes without
// a crash. The Supervisor spawns and watches the processes; it hands each crash here.
import type { LongTimer } from "../basics/timers.ts"
import { longTimeout } from "../basics/timers.ts"
import type {
  ExitInfo,
  Proc,
  SupervisedInstance,
  SupervisorEvents,
  SupervisorSettings,
  SupervisorState,
} from "./options.ts"
import { RestartPolicy } from "./restart-policy.ts"

/** What the crash side needs of its Supervisor. */
export interface CrashHost {
  readonly instances: SupervisedInstance[]
  state: SupervisorState
  readonly lastExit: ExitInfo | null
  spawn(inst: SupervisedInstance): void
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
    /** served, stable: whether a process served, and whether its run was stable whatever its uptime. */
    private readonly opts: Pick<SupervisorSettings, "restart" | "served" | "stable" | "onGiveUp">,
  ) {
    this.policy = new RestartPolicy(opts.restart, opts.served !== undefined)
  }

  /** A (re)start of the pool: crashes count from zero, nothing waits for a recovery. */
  reset(): void {
    this.clearRecovery()
    this.policy.reset()
    this.failure = null
    for (const inst of this.host.instances) inst.failedStarts = inst.earlyCrashes = 0
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

  /**
   * `inst`'s process `proc` crashed (null: it could not even be spawned): it restarts after a backoff, or stays down
   * while the pool has given up.
   */
  crashed(inst: SupervisedInstance, proc: Proc | null): void {
    const host = this.host
    const now = performance.now()
    // a failed start: within restart.minUptimeMs of its start, before `served` said it started
    const failedStart =
      proc === null || this.policy.failedStart(now - inst.startedAt, this.opts.served?.(proc.pid) ?? false)
    const stable = proc !== null && (this.opts.stable?.(proc.pid) ?? false)
    if (!host.instances.includes(inst) || (host.state !== "running" && host.state !== "failed")) return
    const uptimeMs = inst.startedAt > 0 ? now - inst.startedAt : 0
    const { failedStarts, earlyCrashes } = inst
    const verdict = this.policy.crashed(
      now,
      { index: inst.index, failedStarts, failedStart, earlyCrashes, uptimeMs, stable },
      host.state === "failed",
    )
    inst.failedStarts = verdict.failedStarts
    inst.earlyCrashes = verdict.earlyCrashes
    if ("recoverIn" in verdict) {
      inst.state = "down"
      return this.scheduleRecovery(verdict.recoverIn)
    }
    if ("giveUp" in verdict) return this.giveUp(inst, verdict.giveUp)
    inst.state = "backoff"
    // The last worker running restarts after the first step if it joined, however early it crashed: one that
    // serves a second between crashes answers more than none (bench/soak/crash-loop.ts); the others wait longer.
    const last = !failedStart && !host.instances.some((i) => i !== inst && i.state === "running")
    const delayMs = last ? this.policy.delayMs(0) : verdict.restartIn
    this.host.emit("restart", inst, {
      delayMs,
      recentRestarts: verdict.crashes,
      exit: proc && {
        pid: proc.pid,
        code: proc.exitCode,
        signal: proc.signalCode === null ? null : String(proc.signalCode),
        expected: false,
        cause: "crash",
      },
      uptimeMs,
      earlyCrashes: verdict.earlyCrashes,
      earlyInRow: this.policy.earlyCrashes,
      crashLoop: this.policy.crashLoop(now),
    })
    this.scheduleRestart(inst, delayMs)
  }

  private scheduleRestart(inst: SupervisedInstance, delayMs: number): void {
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
          this.crashed(inst, null) // it could not even be spawned
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
    if (this.opts.onGiveUp === "stop-all") this.host.terminateAll()
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
      const restarted = this.recover()
      if ((this.host.state as SupervisorState) === "running") this.host.emit("recovered", { restarted }) // (not if it gave up again)
    }, windowMs)
  }

  /**
   * The pool that gave up runs again (a quiet window passed, or a reload started every instance): crashes count
   * from zero, what is down starts. How many started.
   */
  recover(): number {
    this.reset()
    this.host.state = "running"
    let restarted = 0
    for (const inst of this.host.instances)
      if (!inst.proc) {
        try {
          this.host.spawn(inst)
          restarted++
        } catch {
          this.crashed(inst, null) // it could not even be spawned (a deploy took its file away, say)
        }
      }
    return restarted
  }
}

function describeExit(e: ExitInfo | null): string {
  if (!e) return "none"
  return `pid ${e.pid} ${e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`}`
}
