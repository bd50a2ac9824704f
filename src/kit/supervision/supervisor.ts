// Process supervision for N copies of one command, told apart from what it is asked to do. A crash (an exit unasked)
// is restarted, or not, as its RestartPolicy (restart-policy.ts) decides: after a backoff that grows only while an
// instance keeps failing to start; the pool gives up loudly when one keeps failing, or past the opt-in restart
// intensity, and once no crash came for a window restarts what is down (crash-restarts.ts). What the app or the
// library asks for (kill, reload, recycle, a resize) is never a crash: not counted, no backoff, and a replacement is
// surge-first (the successor ready, and for a reload up `minReadyMs`, before the old one is retired). Stopping
// drains, then SIGTERM, then SIGKILL. Used by the stdio bus (slotbus/stdio) and superviseWorkers() (src/core).
import { Emitter } from "../basics/emitter.ts"
import { checkOptions } from "../checks/option-check.ts"
import {
  type ExitCause,
  type ExitInfo,
  type Proc,
  RELOAD_OPTIONS,
  INSTANCES,
  newInstance,
  type ReloadOptions,
  reloadSettings,
  ReplaceError,
  STOP_OPTIONS,
  type SupervisedInstance,
  type SupervisorEvents,
  SupervisorError,
  type SupervisorHooks,
  type SupervisorOptions,
  type SupervisorSettings,
  supervisorSettings,
  type SupervisorState,
  type SupervisorStopOptions,
} from "./options.ts"
import { CrashRestarts } from "./crash-restarts.ts"
import type { RestartSettings } from "./restart-policy.ts"
import { describeProc, upFor, within } from "./process-wait.ts"
import { checkNumber } from "../checks/value-check.ts"
import { WorkerLogs } from "./worker-logs.ts"
import { launch } from "./launch.ts"
import { Endings } from "./endings.ts"

export class Supervisor {
  readonly instances: SupervisedInstance[]
  private readonly opts: SupervisorSettings
  private _state: SupervisorState = "created"
  /** Reload successors getting ready or dwelling, each with what fails its wait (an eviction): stop() drains and ends them. */
  private readonly successors = new Map<Proc, (e: Error) => void>()
  /** What a crash leads to: restart after a delay, give up, stay down (crash-restarts.ts). */
  private readonly crashes: CrashRestarts
  /** Processes asked to end, and why (their exit is not a crash), and how they end (endings.ts). */
  private readonly endings: Endings
  /** Instances whose process is being replaced: a crash of the old one waits for its successor. */
  private readonly replacing = new Set<SupervisedInstance>()
  /** Replacements and resizes, one after another; how many are queued or running. */
  private changes: Promise<unknown> = Promise.resolve()
  private queued = 0
  /** Recycles running outside the queue, side by side: a queued change waits for them. */
  private readonly recycling = new Set<Promise<void>>()
  private readonly events = new Emitter<SupervisorEvents>()
  private last: ExitInfo | null = null
  /** Processes ended on purpose, by cause (crashes are `restarts`). */
  readonly replacements = { kill: 0, reload: 0, recycle: 0, scale: 0, evict: 0 }
  /** Its workers' output, read line by line unless `logs: "inherit"` (worker-logs.ts): lines, dropped, truncated. */
  readonly logs: WorkerLogs

  constructor(
    options: SupervisorOptions,
    /** @internal what its owner decides for it (src/core's shared fronts: core/ops/front-pool.ts) */
    private readonly hooks: SupervisorHooks = {},
  ) {
    const o = supervisorSettings(options)
    this.opts = o
    this.endings = new Endings(o)
    this.logs = new WorkerLogs(o.logs, o.command, o.stdout, o.stderr)
    this.instances = Array.from({ length: o.instances }, (_, index) => newInstance(index))
    const sup = this
    this.crashes = new CrashRestarts(
      {
        instances: this.instances,
        get state() {
          return sup._state
        },
        set state(s) {
          sup._state = s
        },
        get lastExit() {
          return sup.last
        },
        spawn: (inst) => this.spawn(inst),
        terminateAll: () => void this.terminateAll(o.killGraceMs),
        emit: (event, ...args) => this.emit(event, ...args),
      },
      o,
    )
  }

  get state(): SupervisorState {
    return this._state
  }
  private get up(): boolean {
    return this._state === "running" || this._state === "failed" // failed: gave up on a crash, what runs runs on
  }
  /** Why the pool gave up (an instance kept failing to start, or past the intensity), while it has; null otherwise. */
  get failureReason(): string | null {
    return this.crashes.failure
  }
  /** Crashes restarted. */
  get restarts(): number {
    return this.crashes.total
  }
  /** Its `restart` group, with each default filled in. */
  get restartSettings(): Readonly<RestartSettings> {
    return this.opts.restart
  }
  /** How long a process has between its SIGTERM and its SIGKILL. */
  get killGraceMs(): number {
    return this.opts.killGraceMs
  }
  /** How long a new process may take to be ready. */
  get readyTimeoutMs(): number {
    return this.opts.readyTimeoutMs
  }
  /** Whether the pool is in a crash loop: its last 3 crashes or more within restart.windowMs were early (restart.stableAfterMs). */
  get crashLoop(): boolean {
    return this._state !== "stopped" && this.crashes.policy.crashLoop(performance.now())
  }
  /** How the last instance to exit ended, or null. */
  get lastExit(): ExitInfo | null {
    return this.last
  }
  get runningCount(): number {
    return this.instances.filter((i) => i.state === "running").length
  }

  on<K extends keyof SupervisorEvents>(event: K, fn: (...args: SupervisorEvents[K]) => void): () => void {
    return this.events.on(event, fn)
  }

  /**
   * Spawns every instance; if the command cannot be spawned, stops those started and throws SupervisorError (cause:
   * why). A superviseWorkers pool whose bus closed throws BusClosedError and starts nothing.
   */
  start(): void {
    if (this._state !== "created" && this._state !== "stopped" && this._state !== "failed")
      throw new SupervisorError(`start() needs a created, stopped or failed supervisor; this one is ${this._state}`)
    const refused = this.hooks.refuseStart?.()
    if (refused) throw refused
    this.crashes.reset()
    this._state = "running"
    try {
      for (const inst of this.instances) if (!inst.proc) this.spawn(inst)
    } catch (e) {
      for (const inst of this.instances) if (inst.proc) this.endings.end(inst.proc, "stop", "SIGKILL")
      this._state = "stopped"
      const message = `cannot start the command ${this.opts.command.join(" ")}: ${(e as Error)?.message}`
      throw new SupervisorError(message, { cause: e })
    }
  }

  /** Ends one instance's process with `signal`; asked for, so it is restarted at once and not counted as a crash. */
  kill(index: number, signal: NodeJS.Signals = "SIGKILL"): void {
    const proc = this.instances[index]?.proc
    if (proc) this.endings.end(proc, "kill", signal)
  }

  /**
   * Ends the instance process `pid`, which its bus evicted (its handlers hang): SIGTERM, SIGKILL after killGraceMs;
   * replaced at once and counted in `replacements.evict`, never as a crash. A replacement's successor not yet
   * adopted is ended at once and its replacement rejects. False when no process of the pool is `pid`.
   */
  evict(pid: number): boolean {
    const proc = this.instances.find((i) => i.pid === pid)?.proc
    if (proc) void this.endings.terminate(proc, "evict", this.opts.killGraceMs)
    const successor = [...this.successors].find(([p]) => p.pid === pid)
    if (successor) this.endings.asked.set(successor[0], "evict")
    successor?.[1](new Error("was evicted by its bus (its handlers hang) before it was adopted"))
    return proc !== undefined || successor !== undefined
  }

  /**
   * Replaces every running instance with a fresh process of the command, surge-first: the successor starts, must
   * be ready (the `ready` option) within readyTimeoutMs and then stay up minReadyMs before the old process is
   * retired (drained, then SIGTERM). `maxSurge` instances at a time. Rejects, leaving the old instances that are
   * left serving, when a successor is not ready in time or exits before its minReadyMs are over.
   */
  reload(options: ReloadOptions = {}): Promise<void> {
    const elsewhere = this.hooks.reloadElsewhere?.(options)
    if (elsewhere) return elsewhere
    checkOptions(options, RELOAD_OPTIONS, "supervisor.reload")
    let surge: number
    let readyMs: number
    let dwellMs: number
    try {
      ;({ surge, readyMs, dwellMs } = reloadSettings(options, this.opts))
    } catch (e) {
      return Promise.reject(e)
    }
    const reload = this.queue(async () => {
      const todo = [...this.instances]
      while (todo.length > 0)
        await Promise.all(
          todo.splice(0, surge).map(async (inst) => {
            const old = await this.replace(inst, "reload", readyMs, dwellMs)
            if (old) await this.endings.retire(old, "reload", this.opts.killGraceMs)
          }),
        )
      if (this._state === "failed") this.crashes.recover() // each instance started and stayed up: the failure is over
    })
    reload.then(
      () => this.emit("reloaded", null),
      (e: Error) => this.emit("reloaded", e),
    )
    return reload
  }

  /**
   * Replaces one instance surge-first, as reload() does each (recycling a worker, say). Resolves once the successor
   * serves; the old process then retires outside the queue, so the next replacement does not wait for its drain.
   * Recycles of distinct instances run side by side (a worker at its request limit waits for its own successor
   * only); a reload or resize waits for them, and they for it. An instance being replaced already is left as it is.
   */
  recycle(index: number): Promise<void> {
    const inst = this.instances[index]
    if (!inst) return Promise.reject(new RangeError(`recycle: no instance ${index}`))
    const change = async () => {
      if (this.replacing.has(inst) || !this.instances.includes(inst)) return
      const old = await this.replace(inst, "recycle", this.opts.readyTimeoutMs, 0)
      if (old) void this.endings.retire(old, "recycle", this.opts.killGraceMs)
    }
    if (this.queued > 0) return this.queue(change)
    if (!this.up) return Promise.reject(SupervisorError.notRunning(this._state))
    const run = change()
    this.recycling.add(run)
    const done = () => void this.recycling.delete(run)
    run.then(done, done)
    return run
  }

  /** Grows or shrinks the pool to `n` instances: new ones start, the highest ones are retired (drained first). */
  async resize(n: number): Promise<void> {
    checkNumber(n, { what: "n", where: "supervisor.resize", ...(this.hooks.instances ?? INSTANCES) }) // (a rejection)
    return this.queue(async () => {
      while (this.instances.length < n) {
        const inst = newInstance(this.instances.length)
        this.instances.push(inst)
        if (this.up) this.respawn(inst)
      }
      const gone = this.instances.splice(n)
      await Promise.all(
        gone.map(async (inst) => {
          this.crashes.cancel(inst)
          inst.state = "stopped"
          if (!inst.proc) return
          this.replacements.scale++
          await this.endings.retire(inst.proc, "scale", this.opts.killGraceMs)
        }),
      )
    })
  }

  /** Stops restarting, lets `drain` finish (bounded), then SIGTERM, then SIGKILL after the grace period. */
  async stop(options: SupervisorStopOptions = {}): Promise<void> {
    checkOptions(options, STOP_OPTIONS, "supervisor.stop")
    if (this._state === "created" || this._state === "stopped") return
    this._state = "stopping"
    this.crashes.cancelAll()
    this.crashes.clearRecovery()
    const drainMs = options.drainTimeoutMs ?? this.opts.drainTimeoutMs
    // a reload's successor may hold requests (the one left serving once the others drain): drained too, then ended
    const successors = [...this.successors.keys()].map(async (proc) => {
      if (this.opts.retire && drainMs > 0) await within(this.opts.retire(proc.pid), drainMs)
      this.endings.end(proc, "stop", "SIGKILL")
      await proc.exited
    })
    if (this.opts.drain && drainMs > 0) await within(this.opts.drain(), drainMs)
    await Promise.all(successors)
    await this.terminateAll(options.killGraceMs ?? this.opts.killGraceMs)
    this._state = "stopped"
    this.crashes.failure = null // a stopped pool takes its failure with it
    this.emit("stopped")
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  private queue(change: () => Promise<void>): Promise<void> {
    this.queued++
    const run = this.changes.then(async () => {
      await Promise.allSettled(this.recycling)
      if (!this.up) throw SupervisorError.notRunning(this._state)
      return change()
    })
    this.changes = run.catch(() => {}).finally(() => this.queued--)
    return run
  }

  /**
   * Surge-first: a successor for `inst`, ready (and up `dwellMs` since) before the old process is retired; the old
   * process, to retire.
   */
  private async replace(
    inst: SupervisedInstance,
    cause: "reload" | "recycle",
    readyMs: number,
    dwellMs: number,
  ): Promise<Proc | null> {
    const old = inst.proc
    if (!old) return this.startDown(inst, cause, readyMs, dwellMs)
    // stop() came during an earlier batch: no more successors
    if (!this.up) throw ReplaceError.stopped(cause, inst.index, old.pid, 0, this.hooks.stopping?.() ?? "")
    let successor: Proc
    try {
      successor = this.launch(inst)
    } catch (e) {
      throw ReplaceError.unspawned(cause, inst.index, old.pid, e)
    }
    const evicted = new Promise<never>((_, reject) => this.successors.set(successor, reject))
    this.replacing.add(inst)
    try {
      try {
        await Promise.race([upFor(successor, this.opts.ready, inst.index, readyMs, dwellMs), evicted])
        // stop() came while the successor got ready: it must not be adopted by a stopping pool
        if (!this.up) throw new Error("stopped")
      } catch (e) {
        const stopping = !this.up // stop() came (its bus closed, say): it drains and ends the successor
        if (!stopping) this.endings.end(successor, "stop", "SIGKILL")
        if (stopping)
          throw ReplaceError.stopped(cause, inst.index, old.pid, successor.pid, this.hooks.stopping?.() ?? "")
        // The old process crashed meanwhile, its exit left to the successor: without one it is a crash like any other.
        const crashed = inst.proc === null && !this.endings.asked.has(old)
        if (crashed) this.crashes.crashed(inst, old)
        const oldExit = crashed ? describeProc(old) : null
        // killed or evicted meanwhile, its place left to the successor: without one it starts afresh, at once
        if (!crashed && inst.proc === null && this.up) this.respawn(inst)
        throw new ReplaceError(cause, inst.index, old.pid, successor.pid, (e as Error).message, oldExit)
      }
      if (inst.proc === old || inst.proc === null) this.adopt(inst, successor)
      else void this.endings.retire(successor, cause, this.opts.killGraceMs) // the instance runs another: none untracked
      this.replacements[cause]++
      this.emit("replaced", inst, { cause, pid: old.pid, successor: successor.pid })
    } finally {
      this.replacing.delete(inst)
      this.successors.delete(successor)
    }
    return old
  }

  /**
   * Replaces an instance with no process (in a crash backoff; for a reload, down in a pool that gave up): its new one
   * starts at once, waited on as a successor is; not ready or down within `dwellMs`, it rejects (the exit a crash).
   */
  private async startDown(inst: SupervisedInstance, cause: "reload" | "recycle", readyMs: number, dwellMs: number) {
    this.crashes.cancel(inst)
    if (this._state !== "running" && (this._state !== "failed" || cause !== "reload")) return null
    try {
      this.spawn(inst)
    } catch (e) {
      if (this._state === "running") this.crashes.crashed(inst, null) // restarted after a backoff
      throw ReplaceError.unspawned(cause, inst.index, 0, e)
    }
    const proc = inst.proc as Proc
    const stopped = () => ReplaceError.stopped(cause, inst.index, 0, proc.pid, this.hooks.stopping?.() ?? "")
    await upFor(proc, this.opts.ready, inst.index, readyMs, dwellMs).catch((e: Error) => {
      throw this.up ? ReplaceError.down(cause, inst.index, proc.pid, e.message) : stopped()
    })
    this.emit("replaced", inst, { cause, pid: 0, successor: proc.pid })
    return null
  }

  private async terminateAll(graceMs: number): Promise<void> {
    await Promise.all(
      this.instances.map(async (inst) => {
        const proc = inst.proc
        inst.state = "stopped"
        if (proc) await this.endings.terminate(proc, "stop", graceMs)
      }),
    )
  }

  /** A process of the command for `inst` (launch.ts), watched until it exits. */
  private launch(inst: SupervisedInstance): Proc {
    const proc = launch(this.opts, this.logs, inst.index)
    void proc.exited.then(() => this.exited(inst, proc))
    return proc
  }

  private adopt(inst: SupervisedInstance, proc: Proc) {
    inst.proc = proc
    inst.pid = proc.pid
    inst.state = "running"
    inst.startedAt = performance.now()
    this.emit("start", inst)
  }

  private spawn(inst: SupervisedInstance): void {
    this.adopt(inst, this.launch(inst))
  }

  /** spawn, where one that cannot be spawned (a deploy took its file away) is a crash: restarted after a backoff. */
  private respawn(inst: SupervisedInstance): void {
    try {
      this.spawn(inst)
    } catch {
      this.crashes.crashed(inst, null)
    }
  }

  private exited(inst: SupervisedInstance, proc: Proc): void {
    this.opts.reaper?.remove(proc.pid)
    const cause = this.endings.asked.get(proc) ?? (this._state === "stopping" ? "stop" : "crash")
    this.last = {
      pid: proc.pid,
      code: proc.exitCode,
      signal: proc.signalCode === null ? null : String(proc.signalCode),
      expected: cause !== "crash",
      cause,
    }
    if (inst.proc !== proc) return void this.emit("exit", inst, this.last) // a process that was replaced
    inst.proc = null
    inst.pid = 0
    inst.state = "stopped"
    this.emit("exit", inst, this.last)
    if (!this.instances.includes(inst) || !this.up) return
    if (cause === "kill" || cause === "evict") {
      this.replacements[cause]++
      // asked for: at once, not counted as a crash (unless it cannot be spawned); a successor getting ready takes its place
      return this.replacing.has(inst) ? undefined : this.respawn(inst)
    }
    // a replacement adopts its successor
    if (cause === "crash" && !this.replacing.has(inst)) this.crashes.crashed(inst, proc)
  }

  private emit<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): void {
    this.events.emit(event, ...args)
  }
}
