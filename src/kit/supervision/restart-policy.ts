// What a crash leads to, decided from plain figures: no process, timer or I/O here, so each rule is tested with
// numbers (test/kit/supervision/restart-policy.test.ts). Every crash is restarted, after a backoff that grows only
// while an instance keeps failing to start (pm2's "unstable restarts": a crash within `minUptimeMs` of its start,
// before it served), or soon after it (an early crash: within `stableAfterMs` of its start, joined or not: a crash
// loop once CRASH_LOOP_AT of them come in a row within `windowMs`). The pool gives up when an instance fails to start more than `maxUnstableRestarts` times in a
// row, or past the opt-in intensity (OTP's: more than `maxRestarts` crashes of the pool within `windowMs`); once it
// has, a crash leaves its instance down, and a window without a crash brings the pool back. The Supervisor
// (supervisor.ts) spawns, watches and times; it asks this class what to do. Its settings are one option group,
// `restart`, checked here.
import { Backoff } from "../basics/backoff.ts"
import { checkOptions, optionNames } from "../checks/option-check.ts"
import { checkNumber } from "../checks/value-check.ts"

/** When a pool restarts a crashed process and when it gives up: the Supervisor's (and superviseWorkers') `restart`. */
export interface RestartOptions {
  /**
   * A crash within this long of its process's start, before it served (superviseWorkers: joined the bus), is a
   * failed start (pm2's min_uptime; default 1000). Every crash is restarted; only failed starts make the pool give up.
   */
  minUptimeMs?: number
  /**
   * A process up this long is stable: its crash restarts after the first backoff step (default 10 000). A crash
   * sooner, even after it joined, is an early crash: the delay doubles with each early crash of the instance in a
   * row (up to backoffMaxMs), and CRASH_LOOP_AT (3) of them in a row within windowMs is a crash loop, which the pool
   * says; it does not give up for them. 0: no crash is early.
   */
  stableAfterMs?: number
  /** An instance that fails to start more than this many times in a row makes the pool give up (default 5, min 1). */
  maxUnstableRestarts?: number
  /**
   * Opt-in restart intensity (OTP's, for a tree of distinct children): more than this many crashes of the pool
   * within `windowMs` gives up, whatever the pool's size (8 workers killed at once by an OOM kill give up at the 6th).
   * Default: none (Infinity).
   */
  maxRestarts?: number
  /**
   * The intensity's window (default 60 000), and how long a pool that gave up waits without a crash before it
   * restarts what is down.
   */
  windowMs?: number
  /** The first restart delay after a crash (default 100), doubled for each further early crash in a row. */
  backoffInitialMs?: number
  /** No restart delay grows past this (default 5 000). */
  backoffMaxMs?: number
  /**
   * A reload's successor must stay up this long after it is ready (Kubernetes' minReadySeconds, default 1500);
   * if it exits meanwhile the reload rejects and the old process keeps serving. 0: ready is enough.
   */
  minReadyMs?: number
}

/** The `restart` group with each default filled in. */
export type RestartSettings = Required<RestartOptions>

export const RESTART_DEFAULTS: RestartSettings = {
  minUptimeMs: 1_000,
  stableAfterMs: 10_000,
  maxUnstableRestarts: 5,
  maxRestarts: Infinity,
  windowMs: 60_000,
  backoffInitialMs: 100,
  backoffMaxMs: 5_000,
  minReadyMs: 1_500,
}

const RESTART_OPTIONS = optionNames<RestartOptions>({
  minUptimeMs: true,
  stableAfterMs: true,
  maxUnstableRestarts: true,
  maxRestarts: true,
  windowMs: true,
  backoffInitialMs: true,
  backoffMaxMs: true,
  minReadyMs: true,
})

/** The flat names these had before 1.0, each refused with its place in the group (checkOptions' `moved`). */
export const RESTART_MOVED: Readonly<Record<string, string>> = {
  minUptimeMs: "restart: { minUptimeMs }",
  maxUnstableRestarts: "restart: { maxUnstableRestarts }",
  maxRestarts: "restart: { maxRestarts }",
  restartWindowMs: "restart: { windowMs }",
  backoffInitialMs: "restart: { backoffInitialMs }",
  backoffMaxMs: "restart: { backoffMaxMs }",
  minReadyMs: "restart: { minReadyMs }",
}

/** `restart` checked (a clear error for each mistake, `where` the API's name) and completed with the defaults. */
export function restartSettings(restart: RestartOptions | undefined, where: string): RestartSettings {
  checkOptions(restart, RESTART_OPTIONS, `${where} restart`, { moved: RESTART_MOVED })
  const o = { ...RESTART_DEFAULTS }
  for (const [k, v] of Object.entries(restart ?? {})) if (v !== undefined) o[k as keyof RestartSettings] = v
  for (const k of [
    "minUptimeMs",
    "stableAfterMs",
    "windowMs",
    "backoffInitialMs",
    "backoffMaxMs",
    "minReadyMs",
  ] as const)
    checkNumber(o[k], { what: `restart.${k}`, where })
  checkNumber(o.maxRestarts, { what: "restart.maxRestarts", where, infinite: true })
  checkNumber(o.maxUnstableRestarts, { what: "restart.maxUnstableRestarts", where, min: 1, infinite: true })
  return o
}

/** Early crashes in a row within windowMs (each within restart.stableAfterMs of its start) that make a crash loop. */
export const CRASH_LOOP_AT = 3

/**
 * What one crash leads to. `failedStarts`, `earlyCrashes`: the instance's failed starts and early crashes in a row,
 * this crash counted; `crashes`: the pool's within the window.
 */
export type CrashVerdict = (
  | /** Start the instance again after `restartIn` ms. */ { restartIn: number }
  | /** Give up (why: a sentence); the instance stays down, and the pool recovers after a window without a crash. */ {
      giveUp: string
    }
  | /** The pool has given up already: the instance stays down, and the window starts again, `recoverIn` ms. */ {
      recoverIn: number
    }
) & { failedStarts: number; earlyCrashes: number; crashes: number }

/**
 * The crash to judge: the instance, its failed starts and early crashes in a row before this crash, whether this one
 * was a failed start, and how long its process was up (default: long, a stable run). An early crash of a run that
 * was `stable` counts towards a crash loop but does not slow its restart: a crash that comes from requests (1 in
 * 300, say) would only trade answered requests for fewer crashes.
 */
export interface Crash {
  index: number
  failedStarts: number
  failedStart: boolean
  earlyCrashes?: number
  uptimeMs?: number
  /** Its run did enough to count as stable whatever its uptime (superviseWorkers: it took 100 requests). */
  stable?: boolean
}

export class RestartPolicy {
  readonly settings: RestartSettings
  private readonly backoff: Backoff
  /** When the crashes within the window came (the intensity's count), oldest first. */
  private times: number[] = []
  /** When the early crashes in a row came, within the window: a stable run's crash empties it. */
  private early: number[] = []

  constructor(
    settings: RestartSettings,
    /** Whether the pool is told when a process served (for the give-up sentence: "before it joined"). */
    private readonly knowsServed = false,
  ) {
    this.settings = settings
    this.backoff = new Backoff({ initialMs: settings.backoffInitialMs, maxMs: settings.backoffMaxMs })
  }

  /** Crashes counted within the window at the last crash. */
  get crashes(): number {
    return this.times.length
  }

  /** The pool's early crashes in a row within the window, at the last crash. */
  get earlyCrashes(): number {
    return this.early.length
  }

  /** Whether the pool is in a crash loop at `now`: its last CRASH_LOOP_AT crashes or more were early, within the window. */
  crashLoop(now: number): boolean {
    return this.early.filter((t) => now - t < this.settings.windowMs).length >= CRASH_LOOP_AT
  }

  /** Whether a crash `uptimeMs` after its process's start is a failed start: sooner than minUptimeMs, before it served. */
  failedStart(uptimeMs: number, served: boolean): boolean {
    return uptimeMs < this.settings.minUptimeMs && !served
  }

  /** The delay before a restart, after `earlyCrashes` early crashes in a row: a crash after a stable run waits the first step. */
  delayMs(earlyCrashes: number): number {
    return this.backoff.delayFor(Math.max(0, earlyCrashes - 1))
  }

  /** A crash at `now` (ms, any monotonic clock): restart, give up, or, while the pool has given up, stay down. */
  crashed(now: number, crash: Crash, gaveUp: boolean): CrashVerdict {
    const { minUptimeMs, maxUnstableRestarts: maxStarts, maxRestarts, windowMs } = this.settings
    const failedStarts = crash.failedStart ? crash.failedStarts + 1 : 0
    const early = crash.failedStart || (crash.uptimeMs ?? Infinity) < this.settings.stableAfterMs
    const earlyCrashes = early && !crash.stable ? (crash.earlyCrashes ?? 0) + 1 : 0
    this.times = this.times.filter((t) => now - t < windowMs)
    this.times.push(now)
    this.early = early ? [...this.early.filter((t) => now - t < windowMs), now] : []
    const crashes = this.times.length
    if (gaveUp) return { recoverIn: windowMs, failedStarts, earlyCrashes, crashes }
    if (failedStarts > maxStarts)
      return {
        giveUp: `instance ${crash.index} died during start ${failedStarts} times in a row (each within restart.minUptimeMs, ${minUptimeMs} ms, of its start${this.knowsServed ? ", before it joined" : ""}) and was restarted ${failedStarts - 1} times: more than restart.maxUnstableRestarts (${maxStarts})`,
        failedStarts,
        earlyCrashes,
        crashes,
      }
    if (crashes > maxRestarts)
      return {
        giveUp: `${crashes} crashes within restart.windowMs (${windowMs} ms), more than restart.maxRestarts (${maxRestarts})`,
        failedStarts,
        earlyCrashes,
        crashes,
      }
    return { restartIn: this.delayMs(earlyCrashes), failedStarts, earlyCrashes, crashes }
  }

  /** A (re)start or a recovery: crashes count from zero (each instance's failed starts do too: the caller's). */
  reset(): void {
    this.times = []
    this.early = []
  }
}
