// What a Supervisor (supervisor.ts) is told and tells: its options, checked and completed with their defaults, its
// states, instances and events, and its errors.
import { SlotBusError } from "../../errors.ts"
import { checkOptions, optionNames } from "../checks/option-check.ts"
import { checkNumber } from "../checks/value-check.ts"
import { RESTART_MOVED, type RestartOptions, type RestartSettings, restartSettings } from "./restart-policy.ts"
import type { Process } from "../../runtime/index.ts"
import type { WorkerLogsOption } from "./worker-logs.ts"

/** The supervisor cannot do what was asked in its current state, or was configured wrongly. */
export class SupervisorError extends SlotBusError {
  /** A reload, recycle or resize of a pool not running: start() a created or stopped one; a stopping one takes none. */
  static notRunning(state: SupervisorState): SupervisorError {
    if (state === "stopping")
      return new SupervisorError("the pool is stopping: it starts no reload, recycle or resize now")
    return new SupervisorError(`the pool is ${state}: start() it first`)
  }
}

/**
 * A replacement (reload, recycle) stopped: instance `index`'s successor was not ready; the old process keeps serving,
 * or, when it crashed meanwhile (`oldExit`), the instance restarts as after any crash (counted, with backoff); when
 * the pool stopped meanwhile (its bus closed, say: ReplaceError.stopped), both end with it.
 * A pool of a bus (a stdio bus's `ReloadError`) adds its `pool`.
 */
export class ReplaceError extends SupervisorError {
  constructor(
    readonly operation: "reload" | "recycle",
    /** The instance, or -1 when the replacement could not start (then `pid` and `successor` are 0). */
    readonly index: number,
    /** The process that keeps serving, or that crashed while its successor got ready. */
    readonly pid: number,
    /** The successor, which was stopped. */
    readonly successor: number,
    /** Why it was not ready: it exited, timed out, or its ready check failed. */
    readonly reason: string,
    /** How the old process ended when it crashed meanwhile ("killed by SIGKILL", "code 1"); null while it serves. */
    readonly oldExit: string | null = null,
    options?: ErrorOptions,
  ) {
    super(
      `${operation}: instance ${index}'s successor (pid ${successor}) ${reason}; the old process (pid ${pid}) ${oldExit === null ? "keeps serving" : `exited meanwhile (${oldExit}): the instance restarts as after a crash`}`,
      options,
    )
  }

  /** The successor could not be spawned (`e`); the old process `pid` (0: none) keeps serving. */
  static unspawned(operation: "reload" | "recycle", index: number, pid: number, e: unknown) {
    return new ReplaceError(operation, index, pid, 0, `could not be spawned: ${(e as Error)?.message}`, null, {
      cause: e,
    })
  }

  /**
   * Instance `index` was down (waiting out a crash backoff, or its pool gave up): its new process `pid` started at
   * once was not ready, or exited within minReadyMs (`reason`); it is a crash like any other.
   */
  static down(operation: "reload" | "recycle", index: number, pid: number, reason: string) {
    const e = new ReplaceError(operation, index, 0, pid, reason)
    e.message = `${operation}: instance ${index} was down; its new process (pid ${pid}) ${reason}; the instance restarts as after a crash`
    return e
  }

  /** The pool stopped while the successor got ready (`why`: "the pool stopped", or its bus closed): both end with it. */
  static stopped(operation: "reload" | "recycle", index: number, pid: number, successor: number, why: string) {
    why ||= "the pool stopped"
    const e = new ReplaceError(operation, index, pid, successor, `was ended: ${why}`)
    e.message = `${operation}: ${why}; instance ${index}'s successor (pid ${successor}) and its old process (pid ${pid}) end with the pool`
    return e
  }
}

/**
 * running; failed (gave up: an instance died during start more than restart.maxUnstableRestarts times in a row, or past
 * the opt-in restart intensity; crashed instances stay down, running ones keep running, until a window without
 * crashes); stopping; stopped.
 */
export type SupervisorState = "created" | "running" | "stopping" | "stopped" | "failed"
/** running; backoff (crashed, a restart is due); down (crashed while the pool gave up); stopped. */
export type InstanceState = "running" | "backoff" | "down" | "stopped"
/**
 * Why an instance's process ended: a crash (unasked), or what was asked: stop, kill, reload, recycle, scale, evict
 * (its bus disconnected it for hung handlers: superviseWorkers ends and replaces it).
 */
export type ExitCause = "crash" | "stop" | "kill" | "reload" | "recycle" | "scale" | "evict"
export type Stdio = "pipe" | "ignore" | "inherit"
const STDIO: readonly Stdio[] = ["pipe", "ignore", "inherit"]

/** The bound of a count of instances (checkNumber's): a typo (1e6) would otherwise spawn until the machine gives out. */
export const INSTANCES = { max: 1024, note: "one supervisor's processes" }
export type Proc = Process<Stdio, Stdio, Stdio>

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
  /**
   * The workers' stdout and stderr lines (those inherited): prefixed `[pool#instance pid N]` (the default), "json", to
   * rotated files ({ dir, maxBytes, keep }), or "inherit" (as they are). docs/api.md, "Logs per worker".
   */
  logs?: WorkerLogsOption
  /**
   * When a crashed process is restarted and when the pool gives up, and a reload's dwell: `{ minUptimeMs,
   * stableAfterMs, maxUnstableRestarts, maxRestarts, windowMs, backoffInitialMs, backoffMaxMs, minReadyMs }` (restart-policy.ts).
   */
  restart?: RestartOptions
  /** Whether process `pid` started (superviseWorkers: it joined the bus): then its crash is not a failed start. */
  served?: (pid: number) => boolean
  /**
   * Whether process `pid`'s run counts as stable whatever its uptime (superviseWorkers: it took 100 requests): then
   * its early crash (restart.stableAfterMs) is said as one but does not lengthen the restart delay.
   */
  stable?: (pid: number) => boolean
  /** Between SIGTERM and SIGKILL when stopping (default 2000). */
  killGraceMs?: number
  /** Resolves when the work in flight to the instances is done; stop() waits for it up to drainTimeoutMs. */
  drain?: () => Promise<unknown>
  /** Default 10 000. */
  drainTimeoutMs?: number
  /**
   * Resolves when a new process is ready to serve (a replacement waits for it before retiring the old one). Default:
   * at once. Called with the successor (its process, its instance's index, and how long it must then stay up: a
   * reload's minReadyMs, 0 for a recycle) before it is adopted, and a signal aborted once the wait is over (ready,
   * exited, or past readyTimeoutMs): a check that polls ends on it.
   */
  ready?: (
    pid: number,
    successor: { proc: Proc; index: number; minReadyMs: number; signal: AbortSignal },
  ) => Promise<unknown>
  /** Resolves when a process about to be stopped on purpose has nothing in flight (bounded by drainTimeoutMs). */
  retire?: (pid: number) => Promise<unknown>
  /**
   * Resolves once a process stopped on purpose that exited is gone from where it served (superviseWorkers: its bus
   * lists it no more), or after `ms` (killGraceMs); stop(), a replacement and a scale-down wait for it.
   */
  gone?: (pid: number, ms: number) => Promise<unknown>
  /** How long a replacement's successor may take to be ready (default 30 000). */
  readyTimeoutMs?: number
  /** Past the restart intensity: keep what runs ("keep-running", the default) or stop every instance ("stop-all"). */
  onGiveUp?: "keep-running" | "stop-all"
  /** @internal Told each process started and each that exited (reaper.ts: ends them if this process is killed). */
  reaper?: { add(pid: number): void; remove(pid: number): void }
}

export interface SupervisedInstance {
  readonly index: number
  state: InstanceState
  /** The running process, or null between a crash and its restart. */
  proc: Proc | null
  /** 0 while not running. */
  pid: number
  /** Crashes restarted. */
  restarts: number
  /** Failed starts in a row (crashes within restart.minUptimeMs of a start, before it served or joined); 0 once one lived. */
  failedStarts: number
  /** Early crashes in a row (within restart.stableAfterMs of a start, joined or not); 0 once one was stable. */
  earlyCrashes: number
  /** performance.now() of the last spawn. */
  startedAt: number
}

/** Instance `index` of a pool, before its first start. */
export function newInstance(index: number): SupervisedInstance {
  return { index, state: "stopped", proc: null, pid: 0, restarts: 0, failedStarts: 0, earlyCrashes: 0, startedAt: 0 }
}

export interface ExitInfo {
  pid: number
  code: number | null
  signal: string | null
  /** True when it was asked to end (any cause but a crash). */
  expected: boolean
  cause: ExitCause
}

export interface SupervisorEvents {
  start: [SupervisedInstance]
  exit: [SupervisedInstance, ExitInfo]
  /**
   * A crash is restarted after `delayMs`: how it ended (`exit`; null: it could not be spawned) and how long it was up, the pool's crashes within
   * restart.windowMs (`recentRestarts`), the instance's early crashes in a row (restart.stableAfterMs), and the pool's.
   */
  restart: [
    SupervisedInstance,
    {
      delayMs: number
      recentRestarts: number
      exit: ExitInfo | null
      uptimeMs: number
      earlyCrashes: number
      /** The pool's early crashes in a row within restart.windowMs; 3 or more: a crash loop. */
      earlyInRow: number
      crashLoop: boolean
    },
  ]
  /** It gave up: `crashes` within the window, `restarts` of crashes in all (the `restarts` getter). */
  failed: [{ reason: string; crashes: number; restarts: number; windowMs: number; lastExit: ExitInfo | null }]
  /** A window passed without a crash after the pool gave up: what was down is restarted. */
  recovered: [{ restarted: number }]
  /**
   * An instance's process was replaced on purpose (surge-first: `pid` served until `successor` was ready); `pid` 0: the
   * instance was down, and its new process `successor` was ready (and stayed up a reload's minReadyMs).
   */
  replaced: [SupervisedInstance, { cause: "reload" | "recycle"; pid: number; successor: number }]
  /** A reload() ended: null when it replaced every instance, else why it was rejected. */
  reloaded: [Error | null]
  stopped: []
}

export interface SupervisorStopOptions {
  /** Overrides the constructor's drainTimeoutMs; 0 skips the drain. */
  drainTimeoutMs?: number
  killGraceMs?: number
}

export interface ReloadOptions {
  /** Instances replaced at once (default 1). */
  maxSurge?: number
  /** How long each successor may take to be ready (default: the constructor's readyTimeoutMs). */
  readyTimeoutMs?: number
  /** How long each successor must stay up once ready (default: the constructor's restart.minReadyMs). */
  minReadyMs?: number
}

/** @internal What the owner of a Supervisor decides for it, beyond its options: none for `new Supervisor` users. */
export interface SupervisorHooks {
  /**
   * Where a reload() goes: the promise of that reload run elsewhere, or null to reload this pool (a shared front's
   * pool, run by the fronts' leader: src/core/ops/front-pool.ts).
   */
  reloadElsewhere?: (options: ReloadOptions) => Promise<void> | null
  /** The most instances resize() takes, and why (superviseWorkers: its bus's maxWorkers); default INSTANCES. */
  instances?: { max: number; note: string }
  /** Why the pool stops, said by a replacement it ends (superviseWorkers: its bus closed); "": "the pool stopped". */
  stopping?: () => string
  /** The error start() throws, starting nothing, or null to start (superviseWorkers: its bus closed). */
  refuseStart?: () => Error | null
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
  logs: true,
  restart: true,
  killGraceMs: true,
  drainTimeoutMs: true,
  readyTimeoutMs: true,
} as const
const SUPERVISOR_OPTIONS = optionNames<SupervisorOptions>({
  ...SHARED_OPTIONS,
  drain: true,
  ready: true,
  retire: true,
  gone: true,
  served: true,
  stable: true,
  onGiveUp: true,
  reaper: true,
})
export const STOP_OPTIONS = optionNames<SupervisorStopOptions>({ drainTimeoutMs: true, killGraceMs: true })
export const RELOAD_OPTIONS = optionNames<ReloadOptions>({ maxSurge: true, readyTimeoutMs: true, minReadyMs: true })

const DEFAULTS = {
  instances: 1,
  killGraceMs: 2_000,
  drainTimeoutMs: 10_000,
  readyTimeoutMs: 30_000,
  onGiveUp: "keep-running" as const,
}

/** The settings a Supervisor runs with: `options` checked (a clear error for each mistake), defaults filled in. */
export type SupervisorSettings = Required<
  Omit<
    SupervisorOptions,
    "cwd" | "env" | "drain" | "ready" | "retire" | "gone" | "logs" | "served" | "stable" | "restart" | "reaper"
  >
> &
  Pick<
    SupervisorOptions,
    "cwd" | "env" | "drain" | "ready" | "retire" | "gone" | "logs" | "served" | "stable" | "reaper"
  > & {
    restart: RestartSettings
  }

export function supervisorSettings(options: SupervisorOptions): SupervisorSettings {
  checkOptions(options, SUPERVISOR_OPTIONS, "new Supervisor", { required: ["command"], moved: RESTART_MOVED })
  const o = {
    ...DEFAULTS,
    stdin: "ignore" as Stdio,
    stdout: "inherit" as Stdio,
    stderr: "inherit" as Stdio,
    ...stripUndefined(options),
    restart: restartSettings(options.restart, "Supervisor"),
  }
  if (!Array.isArray(o.command) || o.command.length === 0 || o.command.some((a) => typeof a !== "string"))
    throw new TypeError("Supervisor: command must be a non-empty array of strings (the program, then its arguments)")
  checkNumber(o.instances, { what: "instances", where: "Supervisor", ...INSTANCES })
  for (const k of ["killGraceMs", "drainTimeoutMs", "readyTimeoutMs"] as const)
    checkNumber(o[k], { what: k, where: "Supervisor" })
  for (const k of ["stdin", "stdout", "stderr"] as const)
    if (!STDIO.includes(o[k]))
      throw new TypeError(
        `Supervisor: ${k} must be "pipe", "ignore" or "inherit", got ${JSON.stringify(o[k]) ?? String(o[k])}`,
      )
  if (o.env !== undefined && (typeof o.env !== "object" || o.env === null || Array.isArray(o.env)))
    throw new TypeError('Supervisor: env must be an object of variables to add, like { LOG_LEVEL: "debug" }')
  if (o.onGiveUp !== "keep-running" && o.onGiveUp !== "stop-all")
    throw new TypeError(`Supervisor: onGiveUp must be "keep-running" or "stop-all", got ${String(o.onGiveUp)}`)
  for (const k of ["drain", "ready", "retire", "gone", "served", "stable"] as const)
    if (o[k] !== undefined && typeof o[k] !== "function") throw new TypeError(`Supervisor: ${k} must be a function`)
  return o
}

/** A reload's figures checked (its option names are checked before), with the pool's settings as their defaults. */
export function reloadSettings(
  options: ReloadOptions,
  o: Pick<SupervisorSettings, "readyTimeoutMs" | "restart">,
): { surge: number; readyMs: number; dwellMs: number } {
  const where = "supervisor.reload"
  return {
    surge: checkNumber(options.maxSurge, { what: "maxSurge", where, min: 1, dflt: 1 }),
    readyMs: checkNumber(options.readyTimeoutMs, { what: "readyTimeoutMs", where, dflt: o.readyTimeoutMs }),
    dwellMs: checkNumber(options.minReadyMs, { what: "minReadyMs", where, dflt: o.restart.minReadyMs }),
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}
