// What a crash leads to, decided from plain figures: no process, timer or I/O here, so each rule is tested with
// numbers (test/kit/supervision/restart-policy.test.ts). Every crash is restarted, after a backoff that grows only
// while an instance keeps failing to start (pm2's "unstable restarts": a crash within `minUptimeMs` of its start,
// before it served). The pool gives up when an instance fails to start more than `maxUnstableRestarts` times in a
// row, or past the opt-in intensity (OTP's: more than `maxRestarts` crashes of the pool within `windowMs`); once it
// has, a crash leaves its instance down, and a window without a crash brings the pool back. The Supervisor
// (supervisor.ts) spawns, watches and times; it asks this class what to do.
import { Backoff } from "../basics/backoff.ts"

/** The restart policy's settings, each with its default filled in (the Supervisor's `restart` option group). */
export interface RestartSettings {
  /** A crash within this long of its process's start, before it served, is a failed start. */
  minUptimeMs: number
  /** More failed starts in a row than this, of one instance, give up. */
  maxUnstableRestarts: number
  /** More crashes of the pool than this within windowMs give up (Infinity: never). */
  maxRestarts: number
  /** The intensity's window, and how long a pool that gave up waits without a crash before it runs again. */
  windowMs: number
  /** The first restart delay, doubled for each further failed start in a row, capped at backoffMaxMs. */
  backoffInitialMs: number
  backoffMaxMs: number
}

/** What one crash leads to. `failedStarts`: the instance's failed starts in a row, this crash counted. */
export type CrashVerdict =
  /** Start the instance again after `restartIn` ms. */
  | { restartIn: number; failedStarts: number; crashes: number }
  /** Give up (why: a sentence); the instance stays down, and the pool recovers after a window without a crash. */
  | { giveUp: string; failedStarts: number; crashes: number }
  /** The pool has given up already: the instance stays down, and the window starts again, `recoverIn` ms. */
  | { recoverIn: number; failedStarts: number; crashes: number }

/** The crash to judge: the instance, its failed starts in a row before this crash, and whether this one was one. */
export interface Crash {
  index: number
  failedStarts: number
  failedStart: boolean
}

export class RestartPolicy {
  readonly settings: RestartSettings
  private readonly backoff: Backoff
  /** When the crashes within the window came (the intensity's count), oldest first. */
  private times: number[] = []

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

  /** Whether a crash `uptimeMs` after its process's start is a failed start: sooner than minUptimeMs, before it served. */
  failedStart(uptimeMs: number, served: boolean): boolean {
    return uptimeMs < this.settings.minUptimeMs && !served
  }

  /** The delay before a restart, after `failedStarts` failed starts in a row: a crash after a good run waits the first step. */
  delayMs(failedStarts: number): number {
    return this.backoff.delayFor(Math.max(0, failedStarts - 1))
  }

  /** A crash at `now` (ms, any monotonic clock): restart, give up, or, while the pool has given up, stay down. */
  crashed(now: number, crash: Crash, gaveUp: boolean): CrashVerdict {
    const { minUptimeMs, maxUnstableRestarts: maxStarts, maxRestarts, windowMs } = this.settings
    const failedStarts = crash.failedStart ? crash.failedStarts + 1 : 0
    this.times = this.times.filter((t) => now - t < windowMs)
    this.times.push(now)
    const crashes = this.times.length
    if (gaveUp) return { recoverIn: windowMs, failedStarts, crashes }
    if (failedStarts > maxStarts)
      return {
        giveUp: `instance ${crash.index} died during start ${failedStarts} times in a row (each within minUptimeMs, ${minUptimeMs} ms, of its start${this.knowsServed ? ", before it joined" : ""}) and was restarted ${failedStarts - 1} times: more than maxUnstableRestarts (${maxStarts})`,
        failedStarts,
        crashes,
      }
    if (crashes > maxRestarts)
      return {
        giveUp: `${crashes} crashes within restartWindowMs (${windowMs} ms), more than maxRestarts (${maxRestarts})`,
        failedStarts,
        crashes,
      }
    return { restartIn: this.delayMs(failedStarts), failedStarts, crashes }
  }

  /** A (re)start or a recovery: crashes count from zero (each instance's failed starts do too: the caller's). */
  reset(): void {
    this.times = []
  }
}
