// Process supervision in the Erlang/OTP manner: N instances of one command, each restarted with exponential
// backoff when it exits unasked; more than `maxRestarts` restarts within `restartWindowMs` (restart intensity)
// fails the whole group loudly instead of restarting forever. Stopping drains, then SIGTERM, then SIGKILL.
// Used by the stdio bus (slotbus/stdio) and by superviseWorkers() (src/core) to keep slotbus workers alive.
import type { Subprocess } from "bun"
import { SlotBusError } from "../errors.ts"
import { Backoff } from "./backoff.ts"
import { Emitter } from "./emitter.ts"
import { checkOptions, optionNames } from "./option-check.ts"
import { longTimeout, sleep, type LongTimer } from "./timers.ts"

/** The supervisor cannot do what was asked in its current state, or was configured wrongly. */
export class SupervisorError extends SlotBusError {}

export type SupervisorState = "created" | "running" | "stopping" | "stopped" | "failed"
export type InstanceState = "running" | "backoff" | "stopped"
type Stdio = "pipe" | "ignore" | "inherit"

export interface SupervisorOptions {
  /** argv: the program and its arguments. */
  command: string[]
  /** How many copies run at once (default 1; 0: a pool that starts empty). */
  instances?: number
  cwd?: string
  /**
   * Added to this process's environment for the children (a key set to undefined is removed);
   * `SLOTBUS_INSTANCE` (the instance's index) is always added.
   */
  env?: Record<string, string | undefined>
  stdin?: Stdio
  stdout?: Stdio
  stderr?: Stdio
  /** Restart intensity: more than this many restarts within `restartWindowMs` fails the group (default 5). */
  maxRestarts?: number
  restartWindowMs?: number
  /** First restart delay, doubled for each further restart within the window, capped at backoffMaxMs. */
  backoffInitialMs?: number
  backoffMaxMs?: number
  /** Between SIGTERM and SIGKILL when stopping (default 2000). */
  killGraceMs?: number
  /** Resolves when the work in flight to the instances is done; stop() waits for it up to drainTimeoutMs. */
  drain?: () => Promise<unknown>
  /** Default 10 000. */
  drainTimeoutMs?: number
}

export interface SupervisedInstance {
  readonly index: number
  state: InstanceState
  /** The running process, or null between a crash and its restart. */
  proc: Subprocess<Stdio, Stdio, Stdio> | null
  /** 0 while not running. */
  pid: number
  restarts: number
  /** performance.now() of the last spawn. */
  startedAt: number
}

export interface ExitInfo {
  pid: number
  code: number | null
  signal: string | null
  /** True when the supervisor itself stopped it (stop()). */
  expected: boolean
}

export interface SupervisorEvents {
  start: [SupervisedInstance]
  exit: [SupervisedInstance, ExitInfo]
  restart: [SupervisedInstance, { delayMs: number; recentRestarts: number }]
  failed: [{ reason: string; restarts: number; windowMs: number; lastExit: ExitInfo | null }]
}

export interface SupervisorStopOptions {
  /** Overrides the constructor's drainTimeoutMs; 0 skips the drain. */
  drainTimeoutMs?: number
  killGraceMs?: number
}

// The options Supervisor and superviseWorkers share (tsc checks each full list against its interface).
export const SHARED_OPTIONS = {
  command: true,
  instances: true,
  cwd: true,
  env: true,
  stdin: true,
  stdout: true,
  stderr: true,
  maxRestarts: true,
  restartWindowMs: true,
  backoffInitialMs: true,
  backoffMaxMs: true,
  killGraceMs: true,
  drainTimeoutMs: true,
} as const
const SUPERVISOR_OPTIONS = optionNames<SupervisorOptions>({ ...SHARED_OPTIONS, drain: true })
const STOP_OPTIONS = optionNames<SupervisorStopOptions>({ drainTimeoutMs: true, killGraceMs: true })

const DEFAULTS = {
  instances: 1,
  maxRestarts: 5,
  restartWindowMs: 60_000,
  backoffInitialMs: 100,
  backoffMaxMs: 5_000,
  killGraceMs: 2_000,
  drainTimeoutMs: 10_000,
}

export class Supervisor {
  readonly instances: readonly SupervisedInstance[]
  private readonly opts: Required<Omit<SupervisorOptions, "cwd" | "env" | "drain">> &
    Pick<SupervisorOptions, "cwd" | "env" | "drain">
  private _state: SupervisorState = "created"
  private recent: number[] = []
  private readonly backoff: Backoff
  private totalRestarts = 0
  private readonly timers = new Map<number, LongTimer>()
  private readonly stopping = new Set<number>()
  private readonly events = new Emitter<SupervisorEvents>()
  private failure: string | null = null
  private last: ExitInfo | null = null

  constructor(options: SupervisorOptions) {
    checkOptions(options, SUPERVISOR_OPTIONS, "new Supervisor", { required: ["command"] })
    const o = {
      ...DEFAULTS,
      stdin: "ignore" as Stdio,
      stdout: "inherit" as Stdio,
      stderr: "inherit" as Stdio,
      ...stripUndefined(options),
    }
    if (!Array.isArray(o.command) || o.command.length === 0 || o.command.some((a) => typeof a !== "string"))
      throw new TypeError("Supervisor: command must be a non-empty array of strings (the program, then its arguments)")
    for (const k of [
      "instances",
      "maxRestarts",
      "restartWindowMs",
      "backoffInitialMs",
      "backoffMaxMs",
      "killGraceMs",
      "drainTimeoutMs",
    ] as const)
      if (!Number.isInteger(o[k]) || o[k] < 0)
        throw new RangeError(`Supervisor: ${k} must be a whole number ≥ 0, got ${o[k]}`)
    if (o.env !== undefined && (typeof o.env !== "object" || o.env === null || Array.isArray(o.env)))
      throw new TypeError('Supervisor: env must be an object of variables to add, like { LOG_LEVEL: "debug" }')
    this.opts = o
    this.backoff = new Backoff({ initialMs: o.backoffInitialMs, maxMs: o.backoffMaxMs })
    this.instances = Array.from({ length: o.instances }, (_, index) => ({
      index,
      state: "stopped" as InstanceState,
      proc: null,
      pid: 0,
      restarts: 0,
      startedAt: 0,
    }))
  }

  get state(): SupervisorState {
    return this._state
  }
  /** Why the group failed (restart intensity exceeded), or null. */
  get failureReason(): string | null {
    return this.failure
  }
  get restarts(): number {
    return this.totalRestarts
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

  /** Spawns every instance. Throws (after cleaning up) when the command cannot be spawned at all. */
  start(): void {
    if (this._state !== "created" && this._state !== "stopped" && this._state !== "failed")
      throw new SupervisorError(`start() needs a created, stopped or failed supervisor; this one is ${this._state}`)
    this._state = "running"
    this.recent = []
    this.failure = null
    try {
      for (const inst of this.instances) this.spawn(inst)
    } catch (e) {
      for (const inst of this.instances)
        if (inst.proc) {
          this.stopping.add(inst.index)
          inst.proc.kill("SIGKILL")
        }
      this._state = "stopped"
      throw e
    }
  }

  /** Kills one instance with `signal`; unless stopping, it is restarted like any crash (and counted). */
  kill(index: number, signal: NodeJS.Signals = "SIGKILL"): void {
    this.instances[index]?.proc?.kill(signal)
  }

  /** Stops restarting, lets `drain` finish (bounded), then SIGTERM, then SIGKILL after the grace period. */
  async stop(options: SupervisorStopOptions = {}): Promise<void> {
    checkOptions(options, STOP_OPTIONS, "supervisor.stop")
    if (this._state === "created" || this._state === "stopped") return
    const wasFailed = this._state === "failed"
    this._state = "stopping"
    for (const t of this.timers.values()) t.clear()
    this.timers.clear()
    const drainMs = options.drainTimeoutMs ?? this.opts.drainTimeoutMs
    if (this.opts.drain && !wasFailed && drainMs > 0) {
      let timer: LongTimer | undefined
      await Promise.race([
        this.opts.drain().catch(() => {}),
        new Promise<void>((r) => (timer = longTimeout(r, drainMs))),
      ])
      timer?.clear()
    }
    await this.terminateAll(options.killGraceMs ?? this.opts.killGraceMs)
    this._state = wasFailed ? "failed" : "stopped"
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  private async terminateAll(graceMs: number): Promise<void> {
    await Promise.all(
      this.instances.map(async (inst) => {
        const proc = inst.proc
        inst.state = "stopped"
        if (!proc) return
        this.stopping.add(inst.index)
        proc.kill("SIGTERM")
        const exited = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)])
        if (!exited) proc.kill("SIGKILL")
        await proc.exited
      }),
    )
  }

  private spawn(inst: SupervisedInstance): void {
    const { command, stdin, stdout, stderr, cwd, env } = this.opts
    const merged: Record<string, string> = {}
    for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) merged[k] = v
    merged.SLOTBUS_INSTANCE = String(inst.index)
    const proc = Bun.spawn(command, { stdin, stdout, stderr, cwd, env: merged })
    inst.proc = proc
    inst.pid = proc.pid
    inst.state = "running"
    inst.startedAt = performance.now()
    this.stopping.delete(inst.index)
    this.emit("start", inst)
    void proc.exited.then(() => this.exited(inst, proc))
  }

  private exited(inst: SupervisedInstance, proc: Subprocess<Stdio, Stdio, Stdio>): void {
    if (inst.proc !== proc) return
    const expected = this.stopping.has(inst.index) || this._state !== "running"
    inst.proc = null
    inst.pid = 0
    inst.state = expected ? "stopped" : "backoff"
    this.last = {
      pid: proc.pid,
      code: proc.exitCode,
      signal: proc.signalCode === null ? null : String(proc.signalCode),
      expected,
    }
    this.emit("exit", inst, this.last)
    if (!expected) this.scheduleRestart(inst)
  }

  private scheduleRestart(inst: SupervisedInstance): void {
    const now = performance.now()
    this.recent = this.recent.filter((t) => now - t < this.opts.restartWindowMs)
    this.recent.push(now)
    if (this.recent.length > this.opts.maxRestarts) return void this.fail()
    // Restart intensity, not consecutive failures, sets the step: restarts leaving the window shorten the delay.
    const delayMs = this.backoff.delayFor(this.recent.length - 1)
    this.emit("restart", inst, { delayMs, recentRestarts: this.recent.length })
    this.timers.set(
      inst.index,
      longTimeout(() => {
        this.timers.delete(inst.index)
        if (this._state !== "running") return
        inst.restarts++
        this.totalRestarts++
        try {
          this.spawn(inst)
        } catch {
          inst.state = "backoff"
          this.scheduleRestart(inst)
        }
      }, delayMs),
    )
  }

  private fail(): void {
    const { maxRestarts, restartWindowMs } = this.opts
    this.failure = `more than ${maxRestarts} restarts within ${restartWindowMs} ms (${this.opts.command.join(" ")}); the last exit: ${describeExit(this.last)}`
    this._state = "failed"
    for (const t of this.timers.values()) t.clear()
    this.timers.clear()
    void this.terminateAll(this.opts.killGraceMs)
    this.emit("failed", {
      reason: this.failure,
      restarts: this.recent.length,
      windowMs: restartWindowMs,
      lastExit: this.last,
    })
  }

  private emit<K extends keyof SupervisorEvents>(event: K, ...args: SupervisorEvents[K]): void {
    this.events.emit(event, ...args)
  }
}

function describeExit(e: ExitInfo | null): string {
  if (!e) return "none"
  return `pid ${e.pid} ${e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`}`
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/** Splits a command line into argv: whitespace separates, single or double quotes group, backslash escapes. */
export function splitCommand(line: string): string[] {
  const out: string[] = []
  let cur = ""
  let quote: string | null = null
  let has = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === quote) quote = null
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i]
      else cur += c
    } else if (c === "'" || c === '"') {
      quote = c
      has = true
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i]
      has = true
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur)
      cur = ""
      has = false
    } else cur += c
  }
  if (quote) throw new TypeError(`unterminated ${quote} quote in command: ${line}`)
  if (has || cur) out.push(cur)
  return out
}
