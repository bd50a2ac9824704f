// `slotbus ls [--json]`: every bus, topic, contest and front election on this host, from their files and sockets.
import { printable, printableJson } from "../kit/index.ts"
import { discover, type HostView, type Listener } from "../status/internal.ts"
import { busJson, hostTable, ofUser, skipped } from "./host-view.ts"

export function ls(json: boolean, print: (text: string) => void): number {
  const v = discover()
  print(json ? printableJson(lsJson(v), 2) : lsText(v))
  return 0
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
      b.state + ofUser(r),
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
  out.push(rows.length > 1 ? hostTable(rows) : "nothing of slotbus runs on this host (that this user may see)")
  out.push(...skipped(v))
  for (const d of v.unreadable) out.push(`cannot list ${printable(d)} (another user's: run as root to see it)`)
  return out.join("\n")
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
