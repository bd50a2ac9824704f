// `slotbus requests <bus> [--slow <ms>] [--limit <n>] [--pid <front pid>] [--json]`: a bus's requests in flight and
// its recent ones, from its flight recorder files: every live front's of a name shared fronts listen under
// (docs/PROTOCOL.md §15), each request with the front that holds it.
import { printable, printableJson } from "../kit/index.ts"
import { RecConst } from "../native/recorder-layout.ts"
import {
  type BusView,
  discover,
  type HostView,
  type RecorderFile,
  type RequestRecord,
  ranMs,
} from "../status/internal.ts"
import { busJson, type HostArgs, lastWritten, ms, num, requestsText, wall, withRecords } from "./host-view.ts"
import { CliProblem } from "./prelude.ts"

export function requests({ values, positionals, mono, print }: HostArgs): number {
  const name = positionals[0]
  if (!name) throw new CliProblem("name the bus: slotbus requests <bus> (`slotbus ls` lists them)")
  const slowMs = num(values.slow, "slow", 0)
  const limit = num(values.limit, "limit", 50)
  const fronts = findFronts(discover(name), name, values.pid === undefined ? undefined : num(values.pid, "pid", 0))
  // no live front: the newest file of one that is gone, whose requests stopped when it did. Their time runs to the
  // last one the file holds, not to now: a request its front died holding is no longer running
  const gone = fronts[0]!.state !== "live"
  const { qs, fileOf, now } = pick(fronts, gone ? null : mono(fronts[0]!.recorder), slowMs, limit)
  print(
    values.json
      ? printableJson(
          {
            bus: busJson(fronts[0]!),
            fronts: fronts.map(busJson),
            requests: qs.map((q) => ({
              ...requestJson(fileOf(q), q, now),
              ...(gone && q.phase !== "done" && { frontGone: true }),
            })),
          },
          2,
        )
      : requestsText(fronts, qs, now, fileOf, gone),
  )
  return 0
}

/** A record as `requests --json` gives it: its front, its times in ms and as wall-clock dates. */
function requestJson(r: RecorderFile, q: RequestRecord, now: number) {
  return {
    ...q,
    // a worker on another host holds no slot here (docs/PROTOCOL.md §16.3)
    ...(q.slot === RecConst.NO_SLOT && { slot: null, far: true }),
    frontPid: r.pid,
    startedAt: wall(r, q.enqueuedNs).toISOString(),
    queuedMs: ms(q.dispatchedNs - q.enqueuedNs),
    ranMs: ranMs(q, now),
    firstByteMs: q.firstByteNs ? ms(q.firstByteNs - q.dispatchedNs) : null,
  }
}

/** The fronts a command names: every live one with a recorder file (else the newest file), or the one of --pid. */
function findFronts(v: HostView, name: string, pid: number | undefined): BusView[] {
  const all = v.buses.filter((b) => b.name === name && (pid === undefined || b.pid === pid))
  // a name is one user's: the fronts of a bus run as one uid. Run as root, the caller's own; another's by --pid
  const uids = [...new Set(all.flatMap((b) => (b.recorder ? [b.recorder.uid] : [])))]
  const own = process.geteuid?.() ?? -1
  if (uids.length > 1 && !uids.includes(own))
    throw new CliProblem(
      `buses named "${printable(name)}" run as uids ${uids.join(", ")}: name one front with --pid (\`slotbus ls --json\` has their pids and uids)`,
    )
  const uid = uids.length > 1 ? own : uids[0]
  const withFile = all.filter((b) => b.recorder && b.recorder.uid === uid)
  const live = withFile.filter((b) => b.state === "live")
  if (live.length > 0) return live.sort((a, b) => a.pid - b.pid)
  const newest = withFile.sort((a, b) => b.recorder!.anchorMonoNs - a.recorder!.anchorMonoNs)[0]
  if (newest) return [newest]
  // a pid another uid's front hides is 0: not named
  const pids = all.map((b) => b.pid).filter((p) => p > 0)
  if (all.length > 0)
    throw new CliProblem(
      `bus "${printable(name)}"${pids.length > 0 ? ` (pid ${pids.join(", ")})` : ""} keeps no flight recorder file: it listens with recorder: false, or runs as another user`,
    )
  throw new CliProblem(
    `no bus named "${printable(name)}" on this host${pid ? ` with pid ${pid}` : ""}; \`slotbus ls\` lists them`,
  )
}

/**
 * The records to show, of every front, at most `limit`: those in flight, then the done ones, each newest first (by
 * when they started: the records' clock is the host's, one for every front); with slowMs, only those that ran as long.
 * `asOf` null: the one front is gone, and its records' time runs to the latest its file holds (when it last wrote).
 */
function pick(fronts: BusView[], asOf: number | null, slowMs: number, limit: number) {
  const files = new Map<RequestRecord, RecorderFile>()
  for (const b of fronts) {
    const r = withRecords(b, (q) => asOf === null || ranMs(q, asOf) >= slowMs)
    if (typeof r === "string") {
      if (fronts.length === 1) throw new CliProblem(r)
      continue // closed since it was listed: the others are shown
    }
    for (const q of r.records) files.set(q, r)
  }
  const now = asOf ?? lastWritten(fronts[0]!.recorder!, files.keys())
  if (asOf === null) for (const q of files.keys()) if (ranMs(q, now) < slowMs) files.delete(q)
  const newest = (a: RequestRecord, b: RequestRecord) => b.enqueuedNs - a.enqueuedNs
  const qs = [...files.keys()]
  const live = qs.filter((q) => q.phase !== "done").sort(newest)
  const done = qs.filter((q) => q.phase === "done").sort(newest)
  return {
    qs: [...live, ...done].slice(0, limit), // more in flight than the limit: the newest of them
    fileOf: (q: RequestRecord) => files.get(q)!,
    now,
  }
}
