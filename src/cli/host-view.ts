// What `slotbus ls`, `top` and `requests` share: what runs on this host, read from the buses' flight recorder files
// and /proc (status/host-discover.ts), with no help from any app: same uid, or root for everyone's. Every string
// read from a file or a socket's name is another user's, so it is printed escaped (printable, printableJson), and
// only what a command shows is read: headers for `ls`, the records of the one bus shown at a time.
import type { parseArgs } from "node:util"
import { printable } from "../kit/index.ts"
import { loadNative, native } from "../native/ffi.ts"
import { RecConst } from "../native/recorder-layout.ts"
import {
  type BusView,
  type HostView,
  type RecorderFile,
  type RequestRecord,
  ranMs,
  readRecorder,
} from "../status/internal.ts"
import { CliProblem } from "./prelude.ts"
import { table } from "./table.ts"

export const HOST_OPTIONS = {
  json: { type: "boolean" },
  once: { type: "boolean" },
  slow: { type: "string" },
  limit: { type: "string" },
  pid: { type: "string" },
} as const

/** What a command of this host's view is given: its arguments, the records' clock, and where its text goes. */
export type HostArgs = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof HOST_OPTIONS }>
> & {
  mono: (r: RecorderFile | null) => number
  print: (text: string) => void
}

/** CLOCK_MONOTONIC now, the records' clock: from libslotbus, or from the file's anchors when it does not load. */
export async function monoNow(): Promise<(r: RecorderFile | null) => number> {
  try {
    await loadNative()
    return () => native.sb_rec_now()
  } catch {
    return (r) => (r ? r.anchorMonoNs + (Date.now() * 1e6 - r.anchorWallNs) : 0)
  }
}

export const ms = (ns: number) => ns / 1e6
export function dur(msv: number): string {
  if (!Number.isFinite(msv) || msv < 0) return "-"
  if (msv < 1) return `${(msv * 1000).toFixed(0)}µs`
  if (msv < 1000) return `${msv.toFixed(1)}ms`
  return `${(msv / 1000).toFixed(2)}s`
}
export function wall(r: RecorderFile, monoNs: number): Date {
  return new Date((r.anchorWallNs + (monoNs - r.anchorMonoNs)) / 1e6)
}
/** ", uid N" for a file of another user's than this process (root sees every user's: a name is one user's). */
export const ofUser = (r: RecorderFile | null) => (r && r.uid !== process.geteuid?.() ? `, uid ${r.uid}` : "")

/** Rows of another user's strings as a table, escaped. */
export const hostTable = (raw: string[][]): string => table(raw.map((r) => r.map(printable))).join("\n")
const stateOf = (q: RequestRecord) =>
  q.phase === "done" ? q.outcome : q.outcome ? `${q.phase} (${q.outcome})` : q.phase

export function busJson(b: BusView) {
  const r = b.recorder
  return {
    name: b.name,
    pid: b.pid,
    state: b.state,
    ...(r && {
      file: r.path,
      uid: r.uid,
      workers: r.workers,
      workerPids: r.workerTable.map((w) => w.pid),
      inFlight: r.inFlight,
      queued: r.queued,
      requests: r.requests,
      answered: r.answered,
      errors: r.errors,
      cancelled: r.cancelled,
      timeouts: r.timeouts,
      workerGone: r.workerGone,
    }),
  }
}

export function skipped(v: HostView): string[] {
  const out = v.problems.map((p) => `skipped ${printable(p.path)}: ${printable(p.malformed)}`)
  if (v.problemsLeftOut > 0) out.push(`skipped ${v.problemsLeftOut} more (not shown)`)
  return out
}

/**
 * Each front's head line, then its requests as one table: `fileOf` says whose file a record is from (the one
 * front's by default), and with several fronts a FRONT column says which front holds it.
 */
export function requestsText(
  fronts: BusView[],
  qs: RequestRecord[],
  now: number,
  fileOf: (q: RequestRecord) => RecorderFile = () => fronts[0]!.recorder!,
  gone = false,
): string {
  const heads = fronts.map((b) => {
    const r = b.recorder!
    return `bus "${printable(r.name)}", front pid ${r.pid} (${printable(b.state)}): ${r.workers} workers, ${r.inFlight} in flight, ${r.queued} queued, ${r.requests} requests since it started`
  })
  if (qs.length === 0) return `${heads.join("\n")}\nno requests to show`
  const many = fronts.length > 1
  const rows = [
    ["#", ...(many ? ["FRONT"] : []), "STARTED", "STATE", "WHAT", "WORKER", "QUEUED", "RAN", "STATUS", "TRACE"],
  ]
  for (const q of qs) {
    const r = fileOf(q)
    rows.push([
      String(q.serial),
      ...(many ? [String(r.pid)] : []),
      wall(r, q.enqueuedNs).toISOString().slice(11, 23),
      stateOf(q) + (gone && q.phase !== "done" ? ", front gone" : ""),
      q.what || `(raw, ${q.requestBytes} B)`,
      q.slot === RecConst.NO_SLOT ? `${q.workerPid} (far)` : String(q.workerPid),
      dur(ms(q.dispatchedNs - q.enqueuedNs)),
      dur(ranMs(q, now)) + (q.phase === "done" ? "" : gone ? "+" : "…"),
      q.status ? String(q.status) : "",
      q.traceId,
    ])
  }
  return `${heads.join("\n")}\n${hostTable(rows)}`
}

/** Where a gone front's requests stopped: the latest time its file holds (its records', else its anchor's). Their
 * time runs to it, not to now: a request its front died holding is no longer running. */
export function lastWritten(r: RecorderFile, qs: Iterable<RequestRecord>): number {
  let at = r.anchorMonoNs
  for (const q of qs) at = Math.max(at, q.enqueuedNs, q.dispatchedNs, q.firstByteNs, q.doneNs)
  return at
}

/** The bus's file read again with the records `keep` takes (the file listed, no other), or why it cannot be. */
export function withRecords(b: BusView, keep: (q: RequestRecord) => boolean): RecorderFile | string {
  const r = b.recorder!
  const again = readRecorder(r.path, { uid: r.uid, same: r, records: keep })
  return "malformed" in again ? `cannot read ${printable(r.path)}: ${printable(again.malformed)}` : again
}

/** A number flag ≥ 0, `dflt` when it is not given. */
export function num(v: string | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new CliProblem(`--${what} takes a number ≥ 0, got "${v}"`)
  return n
}
