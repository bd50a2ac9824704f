// `slotbus requests <bus> [--slow <ms>] [--limit <n>] [--pid <front pid>] [--json]`: a bus's requests in flight and
// its recent ones, from its flight recorder file.
import { printable, printableJson } from "../kit/index.ts"
import {
  type BusView,
  discover,
  type HostView,
  type RecorderFile,
  type RequestRecord,
  ranMs,
} from "../status/internal.ts"
import { busJson, type HostArgs, ms, num, requestsText, wall, withRecords } from "./host-view.ts"
import { CliProblem } from "./prelude.ts"

export function requests({ values, positionals, mono, print }: HostArgs): number {
  const name = positionals[0]
  if (!name) throw new CliProblem("slotbus requests <bus>: name the bus (`slotbus ls` lists them)")
  const slowMs = num(values.slow, "slow", 0)
  const limit = num(values.limit, "limit", 50)
  const b = findBus(discover(name), name, values.pid === undefined ? undefined : num(values.pid, "pid", 0))
  const r = b.recorder!
  const now = mono(r)
  const qs = pick(b, now, slowMs, limit)
  print(
    values.json
      ? printableJson({ bus: busJson(b), requests: qs.map((q) => requestJson(r, q, now)) }, 2)
      : requestsText(b, qs, now),
  )
  return 0
}

/** A record as `requests --json` gives it: its times in ms and as wall-clock dates. */
function requestJson(r: RecorderFile, q: RequestRecord, now: number) {
  return {
    ...q,
    startedAt: wall(r, q.enqueuedNs).toISOString(),
    queuedMs: ms(q.dispatchedNs - q.enqueuedNs),
    ranMs: ranMs(q, now),
    firstByteMs: q.firstByteNs ? ms(q.firstByteNs - q.dispatchedNs) : null,
  }
}

/** The bus a command names: its recorder file (the live one first, or the one of --pid). */
function findBus(v: HostView, name: string, pid: number | undefined): BusView {
  const all = v.buses.filter((b) => b.name === name && (pid === undefined || b.pid === pid))
  const withFile = all.filter((b) => b.recorder)
  const live = withFile.find((b) => b.state === "live")
  const bus = live ?? withFile.sort((a, b) => b.recorder!.anchorMonoNs - a.recorder!.anchorMonoNs)[0]
  if (bus) return bus
  if (all.length > 0)
    throw new CliProblem(
      `bus "${printable(name)}" (pid ${all.map((b) => b.pid).join(", ")}) keeps no flight recorder file: it listens with recorder: false, or runs as another user`,
    )
  throw new CliProblem(
    `no bus named "${printable(name)}" on this host${pid ? ` with pid ${pid}` : ""}; \`slotbus ls\` lists them`,
  )
}

/** The records to show: every one in flight, then the newest done ones; with slowMs, only those that ran as long. */
function pick(b: BusView, now: number, slowMs: number, limit: number): RequestRecord[] {
  const r = withRecords(b, (q) => ranMs(q, now) >= slowMs)
  if (typeof r === "string") throw new CliProblem(r)
  const qs = r.records
  const live = qs.filter((q) => q.phase !== "done")
  return [...live, ...qs.filter((q) => q.phase === "done").slice(0, Math.max(0, limit - live.length))]
}
