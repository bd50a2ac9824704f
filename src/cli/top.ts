// `slotbus top [bus] [--once]`: per bus its request rate, latency per worker and slowest requests, its pools' crash
// restarts and crash loop, from its flight recorder file, redrawn every second.
import { printable, quantileRank } from "../kit/index.ts"
import { discover, type HostView, type RecorderFile, ranMs } from "../status/internal.ts"
import { dur, type HostArgs, hostTable, lastWritten, ofUser, requestsText, skipped, withRecords } from "./host-view.ts"
import { sleep } from "../runtime/index.ts"
import { CliProblem, untilStopped } from "./prelude.ts"

const WINDOW_NS = 10e9 // top's latencies and slow requests: what finished in the last 10 s

export async function top({ values, positionals, mono, print }: HostArgs): Promise<number> {
  const prev: Samples = new Map()
  const name = positionals[0]
  if (name !== undefined && !discover(name).buses.some((b) => b.name === name))
    throw new CliProblem(`no bus named "${printable(name)}" on this host; \`slotbus ls\` lists them`)
  if (values.once) {
    for (const { recorder: r } of discover(name).buses) if (r) rateOf(r, prev, mono(r)) // the first sample, headers only
    await sleep(1000)
    print(topFrame(discover(name), prev, mono, name))
    return 0
  }
  // a terminal's screen is redrawn; a pipe or a file gets each frame after the one before
  const clear = process.stdout.isTTY ? "\x1b[H\x1b[2J" : "\n"
  const { pause } = untilStopped("top")
  for (;;) {
    print(`${clear}${topFrame(discover(name), prev, mono, name)}`)
    if (await pause(1000)) return 0
  }
}

/** Quantile q of ascending values by nearest rank, as bus.stats() and /metrics take it; NaN of none. */
const quantile = (sorted: number[], q: number): number =>
  sorted.length ? sorted[quantileRank(q, sorted.length) - 1]! : Number.NaN

type Samples = Map<string, { requests: number; at: number }>

/**
 * A bus's requests per second since the last sample of its file in `prev` (NaN at the first), from its header. By the
 * file's path: another uid's directory may hold a file of the same name and pid. A count that went down is a new
 * file at that path (a front that took a dead one's pid): its first sample.
 */
function rateOf(r: RecorderFile, prev: Samples, now: number): number {
  const before = prev.get(r.path)
  prev.set(r.path, { requests: r.requests, at: now })
  return before && now > before.at && r.requests >= before.requests
    ? ((r.requests - before.requests) * 1e9) / (now - before.at)
    : Number.NaN
}

/** One frame of `slotbus top`: per bus its rate since `prev`, per worker its latency, the slowest requests. */
function topFrame(v: HostView, prev: Samples, mono: (r: RecorderFile | null) => number, name?: string): string {
  const out: string[] = [
    `slotbus top — ${new Date().toISOString().slice(0, 19)}Z (latency and slow requests: the last ${WINDOW_NS / 1e9} s)`,
  ]
  for (const b of v.buses) {
    if (!b.recorder || (name && b.name !== name)) continue
    // one bus's records at a time: in flight, or done within the window. Of a front that is gone, the window and
    // its requests' time end where its file does, as `slotbus requests` shows it: what it was doing when it died
    const gone = b.state !== "live"
    let now = gone ? 0 : mono(b.recorder)
    const r = withRecords(b, (q) => gone || q.phase !== "done" || now - q.doneNs <= WINDOW_NS)
    if (typeof r === "string") {
      out.push("", r) // closed since it was listed, most likely
      continue
    }
    if (gone) now = lastWritten(r, r.records)
    const rate = rateOf(r, prev, now)
    out.push(
      "",
      `bus ${printable(r.name)}  pid ${r.pid}  ${printable(b.state + ofUser(r))}  ${Number.isNaN(rate) ? "-" : rate.toFixed(1)} req/s  ${r.workers} workers  ${r.inFlight} in flight  ${r.queued} queued  ${r.requests} requests  ${r.errors} errors  ${r.timeouts} timeouts  ${r.workerGone} worker gone  ${r.crashRestarts} crash restarts`,
    )
    if (r.crashLoop)
      out.push(
        'CRASH LOOP: its workers keep dying soon after they start (the front\'s log and status say more; docs/api.md, "Crash loops")',
      )
    const recent = r.records.filter((q) => q.phase === "done" && now - q.doneNs <= WINDOW_NS)
    const pids = new Set([...r.workerTable.map((w) => w.pid), ...recent.map((q) => q.workerPid)])
    const rows = [["WORKER", "IN FLIGHT", "REQUESTS", "DONE", "p50", "p99", "MAX"]]
    for (const pid of [...pids].sort((a, c) => a - c)) {
      const w = r.workerTable.find((x) => x.pid === pid)
      const lat = recent
        .filter((q) => q.workerPid === pid)
        .map((q) => ranMs(q, now))
        .sort((a, c) => a - c)
      rows.push([
        String(pid) + (w ? "" : " (gone)"),
        w ? String(w.inFlight) : "-",
        w ? String(w.requests) : "-",
        String(lat.length),
        dur(quantile(lat, 0.5)),
        dur(quantile(lat, 0.99)),
        dur(lat[lat.length - 1] ?? Number.NaN),
      ])
    }
    if (rows.length > 1) out.push(hostTable(rows))
    const slow = [...r.records.filter((q) => q.phase !== "done"), ...recent]
      .sort((a, c) => ranMs(c, now) - ranMs(a, now))
      .slice(0, 5)
    if (slow.length > 0)
      out.push("slowest:", requestsText([b], slow, now, undefined, gone).split("\n").slice(1).join("\n"))
  }
  if (out.length === 1)
    out.push(
      name
        ? `no bus named "${printable(name)}" with a flight recorder on this host`
        : "no bus with a flight recorder on this host",
    )
  out.push(...skipped(v))
  return out.join("\n")
}
