// `slotbus ls`, `slotbus top` and `slotbus requests`: what runs on this host, read from the buses' flight recorder
// files and /proc (host-discover.ts), with no help from any app: same uid, or root for everyone's. Every string
// read from a file or a socket's name is another user's, so it is printed escaped (printable, printableJson), and
// only what a command shows is read: headers for `ls`, the records of the one bus shown at a time.
import { parseArgs } from "node:util"
import { printable, printableJson } from "../kit/index.ts"
import { loadNative, native } from "../native/ffi.ts"
import { type BusView, discover, type HostView, type Listener } from "./host-discover.ts"
import { type RecorderFile, type RequestRecord, ranMs, readRecorder } from "./host-recorder.ts"

/** A problem the user fixes (a bus name, an option): one line on stderr, exit 2. */
export class HostCliProblem extends Error {}

const WINDOW_NS = 10e9 // top's latencies and slow requests: what finished in the last 10 s

/** CLOCK_MONOTONIC now, the records' clock: from libslotbus, or from the file's anchors when it does not load. */
async function monoNow(): Promise<(r: RecorderFile | null) => number> {
  try {
    await loadNative()
    return () => native.sb_rec_now()
  } catch {
    return (r) => (r ? r.anchorMonoNs + (Date.now() * 1e6 - r.anchorWallNs) : 0)
  }
}

const ms = (ns: number) => ns / 1e6
function dur(msv: number): string {
  if (!Number.isFinite(msv) || msv < 0) return "-"
  if (msv < 1) return `${(msv * 1000).toFixed(0)}µs`
  if (msv < 1000) return `${msv.toFixed(1)}ms`
  return `${(msv / 1000).toFixed(2)}s`
}
function wall(r: RecorderFile, monoNs: number): Date {
  return new Date((r.anchorWallNs + (monoNs - r.anchorMonoNs)) / 1e6)
}
function table(raw: string[][]): string {
  const rows = raw.map((r) => r.map(printable))
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n")
}
const stateOf = (q: RequestRecord) =>
  q.phase === "done" ? q.outcome : q.outcome ? `${q.phase} (${q.outcome})` : q.phase

/** A record as `requests --json` and `top` give it: its times in ms and as wall-clock dates. */
function requestJson(r: RecorderFile, q: RequestRecord, now: number) {
  return {
    ...q,
    startedAt: wall(r, q.enqueuedNs).toISOString(),
    queuedMs: ms(q.dispatchedNs - q.enqueuedNs),
    ranMs: ranMs(q, now),
    firstByteMs: q.firstByteNs ? ms(q.firstByteNs - q.dispatchedNs) : null,
  }
}

function busJson(b: BusView) {
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

function lsText(v: HostView): string {
  const out: string[] = []
  const rows = [["KIND", "NAME", "PIDS", "WORKERS", "IN FLIGHT", "QUEUED", "REQUESTS", "STATE"]]
  for (const b of v.buses) {
    const r = b.recorder
    const workers = r
      ? `${r.workers}${r.workerTable.length ? ` (${r.workerTable.map((w) => w.pid).join(",")})` : ""}`
      : "-"
    rows.push([
      "bus",
      b.name,
      String(b.pid || "?"),
      workers,
      r ? String(r.inFlight) : "-",
      r ? String(r.queued) : "-",
      r ? String(r.requests) : "-",
      b.state,
    ])
  }
  const group = (kind: string, l: Listener) => [
    kind,
    l.name,
    l.pids.join(",") || "?",
    "-",
    "-",
    "-",
    "-",
    `${l.pids.length} member${l.pids.length === 1 ? "" : "s"}`,
  ]
  for (const t of v.topics) rows.push(group("topic", t))
  for (const c of v.contests) rows.push(group("contest", c))
  for (const e of v.elections) rows.push([...group("election", e).slice(0, -1), "leader of its shared fronts"])
  out.push(rows.length > 1 ? table(rows) : "nothing of slotbus runs on this host (that this user may see)")
  out.push(...skipped(v))
  for (const d of v.unreadable) out.push(`cannot list ${printable(d)} (another user's: run as root to see it)`)
  return out.join("\n")
}

function skipped(v: HostView): string[] {
  const out = v.problems.map((p) => `skipped ${printable(p.path)}: ${printable(p.malformed)}`)
  if (v.problemsLeftOut > 0) out.push(`skipped ${v.problemsLeftOut} more (not shown)`)
  return out
}

function lsJson(v: HostView) {
  return {
    buses: v.buses.map(busJson),
    topics: v.topics.map(({ name, pids }) => ({ name, pids })),
    contests: v.contests.map(({ name, pids }) => ({ name, pids })),
    elections: v.elections.map(({ name, pids }) => ({ name, pids })),
    problems: v.problems,
    problemsLeftOut: v.problemsLeftOut,
    unreadable: v.unreadable,
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
    throw new HostCliProblem(
      `bus "${printable(name)}" (pid ${all.map((b) => b.pid).join(", ")}) keeps no flight recorder file: it listens with recorder: false, or runs as another user`,
    )
  throw new HostCliProblem(
    `no bus named "${printable(name)}" on this host${pid ? ` with pid ${pid}` : ""}; \`slotbus ls\` lists them`,
  )
}

function requestsText(b: BusView, qs: RequestRecord[], now: number): string {
  const r = b.recorder!
  const head = `bus "${printable(r.name)}", front pid ${r.pid} (${printable(b.state)}): ${r.workers} workers, ${r.inFlight} in flight, ${r.queued} queued, ${r.requests} requests since it started`
  if (qs.length === 0) return `${head}\nno requests to show`
  const rows = [["#", "STARTED", "STATE", "WHAT", "WORKER", "QUEUED", "RAN", "STATUS", "TRACE"]]
  for (const q of qs)
    rows.push([
      String(q.serial),
      wall(r, q.enqueuedNs).toISOString().slice(11, 23),
      stateOf(q),
      q.what || `(raw, ${q.requestBytes} B)`,
      String(q.workerPid),
      dur(ms(q.dispatchedNs - q.enqueuedNs)),
      dur(ranMs(q, now)) + (q.phase === "done" ? "" : "…"),
      q.status ? String(q.status) : "",
      q.traceId,
    ])
  return `${head}\n${table(rows)}`
}

/** The bus's file read again with the records `keep` takes (the file listed, no other), or why it cannot be. */
function withRecords(b: BusView, keep: (q: RequestRecord) => boolean): RecorderFile | string {
  const r = b.recorder!
  const again = readRecorder(r.path, { uid: r.uid, same: r, records: keep })
  return "malformed" in again ? `cannot read ${printable(r.path)}: ${printable(again.malformed)}` : again
}

/** The records to show: every one in flight, then the newest done ones; with slowMs, only those that ran as long. */
function pick(b: BusView, now: number, slowMs: number, limit: number): RequestRecord[] {
  const r = withRecords(b, (q) => ranMs(q, now) >= slowMs)
  if (typeof r === "string") throw new HostCliProblem(r)
  const qs = r.records
  const live = qs.filter((q) => q.phase !== "done")
  return [...live, ...qs.filter((q) => q.phase === "done").slice(0, Math.max(0, limit - live.length))]
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN
}

type Samples = Map<string, { requests: number; at: number }>

/** A bus's requests per second since the last sample in `prev` (NaN at the first), from its header. */
function rateOf(r: RecorderFile, prev: Samples, now: number): number {
  const key = `${r.name}.${r.pid}`
  const before = prev.get(key)
  prev.set(key, { requests: r.requests, at: now })
  return before && now > before.at ? ((r.requests - before.requests) * 1e9) / (now - before.at) : Number.NaN
}

/** One frame of `slotbus top`: per bus its rate since `prev`, per worker its latency, the slowest requests. */
function topFrame(v: HostView, prev: Samples, mono: (r: RecorderFile | null) => number, name?: string): string {
  const out: string[] = [
    `slotbus top — ${new Date().toISOString().slice(0, 19)}Z (latency and slow requests: the last ${WINDOW_NS / 1e9} s)`,
  ]
  for (const b of v.buses) {
    if (!b.recorder || (name && b.name !== name)) continue
    const now = mono(b.recorder)
    // one bus's records at a time: in flight, or done within the window
    const r = withRecords(b, (q) => q.phase !== "done" || now - q.doneNs <= WINDOW_NS)
    if (typeof r === "string") {
      out.push("", r) // closed since it was listed, most likely
      continue
    }
    const rate = rateOf(r, prev, now)
    out.push(
      "",
      `bus ${printable(r.name)}  pid ${r.pid}  ${printable(b.state)}  ${Number.isNaN(rate) ? "-" : rate.toFixed(1)} req/s  ${r.workers} workers  ${r.inFlight} in flight  ${r.queued} queued  ${r.requests} requests  ${r.errors} errors  ${r.timeouts} timeouts  ${r.workerGone} worker gone`,
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
    if (rows.length > 1) out.push(table(rows))
    const slow = [...r.records.filter((q) => q.phase !== "done"), ...recent]
      .sort((a, c) => ranMs(c, now) - ranMs(a, now))
      .slice(0, 5)
    if (slow.length > 0) out.push("slowest:", requestsText(b, slow, now).split("\n").slice(1).join("\n"))
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

export const HOST_USAGE = `  ls            every bus, topic and contest on this host, from their files and sockets (no app's help):
                slotbus ls [--json]
  top           per bus: request rate, latency per worker, the slowest requests; redrawn every second:
                slotbus top [bus] [--once]
  requests      a bus's requests in flight and its recent ones (path, worker pid, times, outcome):
                slotbus requests <bus> [--slow <ms>] [--limit <n>] [--pid <front pid>] [--json]`

/** Runs `slotbus ls|top|requests`; the exit code. */
export async function runHostCli(
  command: "ls" | "top" | "requests",
  argv: string[],
  print = console.log,
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        once: { type: "boolean" },
        slow: { type: "string" },
        limit: { type: "string" },
        pid: { type: "string" },
      },
    })
    const num = (v: string | undefined, what: string, dflt: number) => {
      if (v === undefined) return dflt
      const n = Number(v)
      if (!Number.isFinite(n) || n < 0) throw new HostCliProblem(`--${what} takes a number ≥ 0, got "${v}"`)
      return n
    }
    const mono = await monoNow()
    if (command === "ls") {
      const v = discover()
      print(values.json ? printableJson(lsJson(v), 2) : lsText(v))
      return 0
    }
    if (command === "requests") {
      const name = positionals[0]
      if (!name) throw new HostCliProblem("slotbus requests <bus>: name the bus (`slotbus ls` lists them)")
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
    const prev: Samples = new Map()
    const name = positionals[0]
    if (values.once) {
      for (const { recorder: r } of discover(name).buses) if (r) rateOf(r, prev, mono(r)) // the first sample, headers only
      await Bun.sleep(1000)
      print(topFrame(discover(name), prev, mono, name))
      return 0
    }
    for (;;) {
      const frame = topFrame(discover(name), prev, mono, name)
      print(`\x1b[H\x1b[2J${frame}`)
      await Bun.sleep(1000)
    }
  } catch (e) {
    if (e instanceof HostCliProblem || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`slotbus ${command}: ${(e as Error).message}`)
      return 2
    }
    throw e
  }
}
