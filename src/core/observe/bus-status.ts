// A SlotBus's section of the status view (serveStatus, src/status): its workers here and on other hosts, slots,
// latency, the superviseWorkers pools feeding it, and with a `remote` transport its side across hosts.
import type { BusStats } from "./stats.ts"
import type { BusMetricsSnapshot } from "./bus-metrics.ts"
import { ago, section, type StatusSection, type StatusValue } from "../../kit/index.ts"

/** One superviseWorkers pool: command, state, running, restarts, pids; and why it gave up, if it did. */
export interface PoolRow {
  row: StatusValue[]
  failure: string | null
  /** While its workers keep dying soon after their start (restart.stableAfterMs): the crash loop in a sentence. */
  crashLoop?: string | null
  /** Why its last reload was rejected, until one succeeds: its files on disk are the code that reload rejected. */
  rejectedReload?: string | null
  /** Processes started again, by why: "crash", what the pool was asked ("reload", "recycle", "scale", "kill"), or "evict". */
  restarts?: Record<string, number>
  /** Worker log lines dropped, by why: past the budget of lines a second, or the output slow or failing. */
  logDrops?: { budget: number; output: number }
}

/** What the hub knows of itself that its section shows besides its stats and metrics. */
export interface BusSectionExtra {
  upMs: number
  pools: PoolRow[]
  remote: { transport: string; server: string; connected: boolean; policy: string } | null
  /** A shared front (docs/PROTOCOL.md §15): its index among the name's fronts, whether it leads, and the stopped
   * leader's pid while it covers for it (§15.5; 0 otherwise). */
  front?: { index: number; leader: boolean; covering?: number } | null
}

export function busSection(st: BusStats, metrics: BusMetricsSnapshot, o: BusSectionExtra): StatusSection {
  const s = section("bus", st.name)
  const local = st.workers.filter((w) => w.transport === "shm")
  const remote = st.workers.filter((w) => w.transport !== "shm")
  s.facts.push(
    ["workers", o.remote ? `${local.length} here, ${remote.length} on other hosts` : local.length],
    ["in flight", st.inFlight],
    ["queued", st.queued],
    ["requests", st.requests],
    ["responses", st.responses],
    ["errors", st.errors],
    ["timeouts", st.timeouts],
    ["latency p50 / p99 µs", `${st.latency.p50Us} / ${st.latency.p99Us}`],
    ["up", ago(o.upMs)],
  )
  if (o.front)
    s.facts.push([
      "front",
      `${o.front.index} of the shared name (${o.front.index === 0 ? "the plain name" : `${st.name}~${o.front.index}`}); ${o.front.leader ? "the leader: runs the name's pool" : o.front.covering ? `covers for the stopped leader (pid ${o.front.covering}): runs the name's pool` : "another front leads"}`,
    ])
  if (st.refusedPeers + st.overCapPeers + st.protocolErrors + st.evictedWorkers > 0)
    s.facts.push([
      "refused / over cap / protocol errors / evicted",
      `${st.refusedPeers} / ${st.overCapPeers} / ${st.protocolErrors} / ${st.evictedWorkers}`,
    ])
  if (st.poisonRequests > 0)
    s.facts.push(["poison requests", `${st.poisonRequests} (their retry killed a second worker: PoisonRequestError)`])
  s.tables.push({
    title: "workers",
    columns: ["pid", "host", "via", "state", "slots", "in use", "waiting", "stuck", "requests"],
    rows: st.workers.map((w) => [
      w.pid,
      w.host,
      w.transport,
      w.state,
      w.slots.length || null, // a remote worker's slots are its own
      w.inFlight,
      w.waiting,
      w.stuck,
      w.requests,
    ]),
  })
  s.tables.push(...metricTables(metrics))
  if (o.pools.length > 0)
    s.tables.push({
      title: "worker pools (superviseWorkers)",
      columns: ["command", "state", "running", "restarts", "pids"],
      rows: o.pools.map((p) => p.row),
    })
  for (const p of o.pools) if (p.failure) s.warnings.push(`a worker pool gave up: ${p.failure}`)
  for (const p of o.pools) if (p.crashLoop) s.warnings.push(`a worker pool is in a crash loop: ${p.crashLoop}`)
  for (const p of o.pools)
    if (p.rejectedReload)
      s.warnings.push(
        `a worker pool's reload was rejected (${p.rejectedReload}): its files on disk are the code it rejected, which a crash restart runs; roll them back and reload()`,
      )
  if (st.workers.some((w) => w.stuck > 0))
    s.warnings.push("workers hold stuck slots: a handler runs long past its caller's timeout")
  if (!o.remote) return s
  const byHost = new Map<string, { workers: number; inFlight: number; requests: number }>()
  for (const w of remote) {
    const h = byHost.get(w.host) ?? { workers: 0, inFlight: 0, requests: 0 }
    h.workers++
    h.inFlight += w.inFlight
    h.requests += w.requests
    byHost.set(w.host, h)
  }
  s.remote = {
    transport: o.remote.transport,
    facts: [
      ["server", o.remote.server],
      ["connected", o.remote.connected],
      ["remote policy", o.remote.policy],
      ["refused messages", st.rejectedMessages],
    ],
    tables: [
      {
        title: "workers on other hosts",
        columns: ["host", "workers", "in flight", "requests"],
        rows: [...byHost].map(([host, h]) => [host, h.workers, h.inFlight, h.requests]),
      },
    ],
  }
  if (!o.remote.connected)
    s.warnings.push(
      `the ${o.remote.transport} connection is down (${o.remote.server}): workers on other hosts cannot be reached`,
    )
  return s
}

const ms = (seconds: number) => (Number.isFinite(seconds) ? Math.round(seconds * 1e5) / 100 : null)

/** Latency per worker index, the slowest recent requests, and failures by the error's class with its last message. */
function metricTables(m: BusMetricsSnapshot): StatusSection["tables"] {
  const now = Date.now()
  return [
    {
      title: "latency per worker (ms, bucket upper edges)",
      columns: ["worker", "pid", "answered", "p50", "p99"],
      rows: m.workers.map((w) => [w.index, w.pid, w.duration.count, ms(w.p50), ms(w.p99)]),
    },
    {
      title: "slowest recent requests",
      columns: ["ago", "request", "worker", "pid", "ms", "outcome"],
      rows: m.slowest.map((r) => [
        ago(now - r.at),
        r.what,
        r.worker < 0 ? null : r.worker,
        r.pid || null,
        ms(r.seconds),
        r.outcome,
      ]),
    },
    {
      title: "errors by kind",
      columns: ["kind", "count", "last", "last message"],
      rows: m.errors.map((e) => [e.kind, e.count, ago(now - e.lastAt), e.lastMessage]),
    },
  ]
}
