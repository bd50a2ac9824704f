// A pool's worker's last words when its front is gone (docs/api.md, "Logs per worker"). With `logs: { dir }` the
// front reads each worker's stderr and writes it to `<dir>/<pool>.log`; once the front is gone (kill -9) nothing
// reads that pipe, and a line the worker writes there (why it exits) is lost. So the front names the file in the
// worker's environment, and a worker whose front is gone appends its line there itself, as the front would have.
import { closeSync, constants as fsc, openSync, writeSync } from "node:fs"
import { printable, printableJson } from "./escape.ts"

/** The environment variable holding `{ file, pool, format }` as JSON: the pool's log file, absolute. */
export const WORKER_LOG_ENV = "SLOTBUS_WORKER_LOG"

export interface WorkerLogTarget {
  file: string
  pool: string
  format: "prefix" | "json"
}

/**
 * Appends `line` to the pool's log file named in the environment, as the front writes a worker's stderr line there
 * (with its time, pool, seat and pid). False when no file is named or it cannot be written (another uid's, a link):
 * the line went to stderr anyway.
 */
export function lastWordsToLog(line: string): boolean {
  const raw = process.env[WORKER_LOG_ENV]
  if (!raw) return false
  try {
    const { file, pool, format } = JSON.parse(raw) as WorkerLogTarget
    const seat = Number(process.env.SLOTBUS_INSTANCE ?? -1)
    const time = new Date().toISOString()
    const pid = process.pid
    const text =
      format === "json"
        ? printableJson({ time, pool, seat, pid, stream: "stderr", msg: line })
        : `${time} [${pool}#${seat} pid ${pid} stderr] ${printable(line)}`
    const fd = openSync(file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600)
    try {
      writeSync(fd, `${text}\n`)
    } finally {
      closeSync(fd)
    }
    return true
  } catch {
    return false
  }
}
