// What a superviseWorkers pool says of its crash restarts (docs/api.md, "Crash loops"): a line per crash restart, at
// most CRASH_LINES per restart.windowMs (how it ended, how long it was up, the restart's delay, the crashes within
// the window), and "crash loop" once per window while workers keep dying within restart.stableAfterMs of their
// start; the status view and /metrics read the crash loop from here. And a rejected reload: the worker's files on
// disk are still the code it rejected (a reload runs the same command again), so a crash restart would run them: it
// says so, and superviseWorkers holds such a restart from requests as a reload's successor is held.
import { ReplaceError, type Supervisor } from "../../kit/index.ts"

/** Crash restart lines logged per restart.windowMs; the rest are counted, and said with the next line logged. */
export const CRASH_LINES = 5
/** A worker that took this many requests had a stable run, however short: its crash does not slow its restart. */
export const STABLE_REQUESTS = 100

export interface CrashReports {
  /** The crash loop in a sentence, while the pool is in one; else null. */
  crashLoop(): string | null
  /** Why the last reload was rejected, until a reload succeeds or the pool stops; else null. */
  rejectedReload(): string | null
}

/**
 * Logs `sup`'s crash restarts and crash loops and keeps them for its status; `tell` is given its crash restarts and
 * whether it is in a crash loop at each restart and start, and each second while it is in one (the flight
 * recorder's header, which `slotbus top` reads).
 */
export function reportCrashes(
  sup: Supervisor,
  what: () => string,
  log: (line: string) => void,
  tell: (restarts: number, loop: boolean) => void,
): CrashReports {
  const { windowMs, stableAfterMs, backoffInitialMs, backoffMaxMs, minReadyMs } = sup.restartSettings
  let windowStart = Number.NEGATIVE_INFINITY
  let lines = 0
  let unlogged = 0
  let loopSaidAt = Number.NEGATIVE_INFINITY
  let loop = ""
  let rejected: string | null = null
  sup.on("reloaded", (e) => {
    if (sup.state === "stopping" || sup.state === "stopped") return // not the code's doing: ended with the pool
    rejected = e instanceof ReplaceError ? e.message : e ? rejected : null
    if (e instanceof ReplaceError)
      log(
        `${what()}: a reload was rejected (${e.message}); the worker's files on disk are still the code it rejected, and a crash restart runs them, held from requests while another worker serves until it stayed up restart.minReadyMs (${minReadyMs} ms): roll the files back and reload() (docs/api.md, "Rolling back a reload")`,
      )
  })
  let looping: ReturnType<typeof setInterval> | null = null
  const told = () => {
    tell(sup.restarts, sup.crashLoop)
    if (looping && !sup.crashLoop) {
      clearInterval(looping)
      looping = null
    } else if (!looping && sup.crashLoop) {
      looping = setInterval(told, 1000)
      looping.unref()
    }
  }
  sup.on("start", told)
  sup.on("stopped", () => {
    rejected = null
    told()
  })
  sup.on("restart", (inst, r) => {
    told()
    const now = performance.now()
    const ended = !r.exit
      ? "could not be spawned"
      : r.exit.signal
        ? `killed by ${r.exit.signal}`
        : `exited with code ${r.exit.code}`
    const pid = r.exit ? ` (pid ${r.exit.pid})` : ""
    const up = `${(r.uptimeMs / 1000).toFixed(1)} s`
    if (r.crashLoop) {
      loop = `${r.earlyInRow} crashes in a row within restart.windowMs (${windowMs} ms) came within restart.stableAfterMs (${stableAfterMs} ms) of their worker's start; the last: instance ${inst.index}${pid} ${ended} ${up} after its start; a worker that dies so before it took ${STABLE_REQUESTS} requests, while another runs, waits twice as long as it did before, up to restart.backoffMaxMs (${backoffMaxMs} ms); one that took ${STABLE_REQUESTS}, or the last one running, ${backoffInitialMs} ms`
      if (now - loopSaidAt >= windowMs) {
        loopSaidAt = now
        log(
          `${what()} is in a crash loop: ${loop}; fix the code or roll back the worker's files and reload() (docs/api.md, "Crash loops")`,
        )
      }
    }
    if (now - windowStart >= windowMs) {
      windowStart = now
      lines = 0
    }
    if (lines >= CRASH_LINES) return void unlogged++
    lines++
    const more =
      unlogged > 0 ? `; ${unlogged} crash restart${unlogged === 1 ? "" : "s"} before this one not logged` : ""
    unlogged = 0
    const files = rejected ? "; it runs the files on disk, which a reload rejected" : ""
    const last = lines === CRASH_LINES ? `; no more of these lines until ${windowMs} ms pass` : ""
    log(
      `${what()}: instance ${inst.index}${pid} crashed: ${ended} ${up} after its start; restarts in ${Math.round(r.delayMs)} ms; ${r.recentRestarts} crash${r.recentRestarts === 1 ? "" : "es"} within restart.windowMs (${windowMs} ms)${files}${more}${last}`,
    )
  })
  return { crashLoop: () => (sup.crashLoop ? loop : null), rejectedReload: () => rejected }
}
