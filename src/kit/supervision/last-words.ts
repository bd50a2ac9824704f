// A pool's worker's last words when its front is gone (docs/api.md, "Logs per worker"). The front reads each worker's
// stderr and writes its lines to `<dir>/<pool>.log` (`logs: { dir }`) or to its own stderr; once the front is gone
// (kill -9) nothing reads that pipe, and a line the worker writes there (why it exits) is lost. So the front names
// the file in the worker's environment, or hands the worker its own stderr as fd 3, and a worker whose front is gone
// writes its line there itself, as the front would have.
import { closeSync, constants as fsc, openSync, writeSync } from "node:fs"
import { printable, printableJson } from "../checks/escape.ts"

/** The environment variable holding `{ file | fd, pool, format }` as JSON: the pool's log file (absolute) or fd. */
export const WORKER_LOG_ENV = "SLOTBUS_WORKER_LOG"
/** The fd a pool's worker gets the front's stderr on, when the front writes the workers' lines there. */
export const LAST_WORDS_FD = 3

export type WorkerLogTarget = ({ file: string; fd?: undefined } | { fd: number; file?: undefined }) & {
  pool: string
  format: "prefix" | "json"
}

/**
 * Writes `line` where the front wrote this worker's stderr lines, named in the environment: the pool's log file, or
 * the front's stderr on fd 3, with the front's prefix. False when none is named or it cannot be written (another
 * uid's file, a link): the line went to stderr anyway.
 */
export function lastWordsToLog(line: string): boolean {
  const raw = process.env[WORKER_LOG_ENV]
  if (!raw) return false
  try {
    const { file, fd, pool, format } = JSON.parse(raw) as WorkerLogTarget
    const instance = Number(process.env.SLOTBUS_INSTANCE ?? -1)
    const time = new Date().toISOString()
    const pid = process.pid
    // as the front writes a line: to a file with its time and stream, to its stderr without
    const text =
      format === "json"
        ? printableJson({ time, pool, instance, pid, stream: "stderr", msg: line })
        : `${file !== undefined ? `${time} ` : ""}[${pool}#${instance} pid ${pid}${file !== undefined ? " stderr" : ""}] ${printable(line)}`
    if (file === undefined) {
      if (!Number.isInteger(fd) || fd < 3) return false
      writeSync(fd, `${text}\n`)
      return true
    }
    const out = openSync(file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600)
    try {
      writeSync(out, `${text}\n`)
    } finally {
      closeSync(out)
    }
    return true
  } catch {
    return false
  }
}
