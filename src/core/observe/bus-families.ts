// A bus's metric families for GET /metrics (serveStatus, the HTTP hub): the names, types, labels and meanings
// docs/api.md's table lists. Every series carries bus="<name>"; per worker the label is its index (bus-metrics.ts),
// a small number reused when a worker leaves and another joins, never a pid: a worker's process_* series go on
// under its index when another process takes it, as a restarted target's do (its counters start again at 0, which
// rate() reads as a reset), so recycles and restarts make no new series. Series about this front's requests come from every front; series about the
// workers themselves (how many, their restarts, their processes) only from the front that leads a shared name
// (docs/PROTOCOL.md §15), so a sum over fronts counts each worker once.
import { family, LAG_HELP, processFamilies, readProcess, type MetricFamily } from "../../kit/index.ts"
import type { BusMetricsSnapshot } from "./bus-metrics.ts"
import type { PoolRow } from "./bus-status.ts"
import type { BusStats } from "./stats.ts"

/** The histogram families' names: the OpenTelemetry tap (observe.ts) records each duration under them too. */
export const FAMILY = {
  DURATION: "slotbus_request_duration_seconds",
  QUEUE_WAIT: "slotbus_request_queue_wait_seconds",
  WORKER_DURATION: "slotbus_worker_request_duration_seconds",
} as const

/** The causes a worker pool starts a process again for (kit/supervision/supervisor.ts's ExitCause, but "stop"). */
const CAUSES = ["crash", "reload", "recycle", "scale", "kill", "evict"] as const

/** The error kinds slotbus_request_errors_total has from the start: a failed worker, a timeout, a handler's. */
const SEEDED_KINDS = ["WorkerGoneError", "TimeoutError", "RemoteError", "http5xx"] as const

/** `leads`: this bus is no shared front, or the one leading its name; only then the worker series. */
export function busFamilies(st: BusStats, m: BusMetricsSnapshot, pools: PoolRow[], leads: boolean): MetricFamily[] {
  const bus = { bus: st.name }
  const requests = family("slotbus_requests_total", "counter", "requests made on the bus")
  requests.add(bus, st.requests)
  const responses = family("slotbus_responses_total", "counter", "requests answered by a worker")
  responses.add(bus, st.responses)
  const errors = family(
    "slotbus_request_errors_total",
    "counter",
    "requests that failed, by the error's class (RPC methods that threw: RemoteError; answers with a 5xx status: http5xx)",
  )
  for (const e of m.errors) errors.add({ ...bus, kind: e.kind }, e.count)
  // the usual kinds are there at 0 before their first error, so rate() and increase() count that one too
  for (const kind of SEEDED_KINDS) if (!m.errors.some((e) => e.kind === kind)) errors.add({ ...bus, kind }, 0)
  const timeouts = family("slotbus_request_timeouts_total", "counter", "requests given up at their timeoutMs")
  timeouts.add(bus, m.timeouts)
  const cancels = family(
    "slotbus_request_cancels_total",
    "counter",
    "requests their caller aborted (its signal; for bus.fetch, the client went away), not counted as errors",
  )
  cancels.add(bus, st.cancels)
  const duration: MetricFamily = {
    name: FAMILY.DURATION,
    type: "histogram",
    help: "the bus hop: time from request() to the whole answer, of answered requests (the app's own HTTP requests: http_server_request_duration_seconds)",
    samples: [{ labels: bus, histogram: m.duration }],
  }
  const wait: MetricFamily = {
    name: FAMILY.QUEUE_WAIT,
    type: "histogram",
    help: "time a request waited in the bus's queue for a free slot (0 when one was free)",
    samples: [{ labels: bus, histogram: m.queueWait }],
  }
  const perWorker: MetricFamily = {
    name: FAMILY.WORKER_DURATION,
    type: "histogram",
    help: "time from request() to the whole answer, by the worker's index (reused when a worker leaves)",
    samples: m.workers.map((w) => ({ labels: { ...bus, worker: String(w.index) }, histogram: w.duration })),
  }
  const out: MetricFamily[] = [requests, responses, errors, timeouts, cancels, duration, wait, perWorker]
  if (m.routes.length > 0)
    out.push({
      name: "slotbus_route_request_duration_seconds",
      type: "histogram",
      help: "time from request() to the whole answer, by method and route pattern or RPC method (metricsRoutes routes, each with its methods, then other)",
      samples: m.routes.map((r) => ({ labels: { ...bus, route: r.route }, histogram: r.duration })),
    })
  const inFlight = family("slotbus_in_flight_requests", "gauge", "requests held by workers now")
  inFlight.add(bus, st.inFlight)
  const queued = family("slotbus_queued_requests", "gauge", "requests waiting for a free slot now")
  queued.add(bus, st.queued)
  const held = family(
    "slotbus_held_body_bytes",
    "gauge",
    "bytes of request bodies read whole and waiting for a slot now",
  )
  held.add(bus, st.heldBodyBytes)
  const busy = family("slotbus_worker_in_flight_requests", "gauge", "requests held by the worker at each index now")
  for (const w of m.workers) {
    const info = st.workers.find((x) => x.pid === w.pid)
    busy.add({ ...bus, worker: String(w.index) }, info?.inFlight ?? 0)
  }
  const bytes = family("slotbus_body_bytes_total", "counter", "request and answer body bytes, by direction")
  bytes.add({ ...bus, direction: "out" }, st.bytesOut)
  bytes.add({ ...bus, direction: "in" }, st.bytesIn)
  out.push(inFlight, queued, held, busy, bytes)
  if (leads) out.push(...workerFamilies(st, m, pools))
  return out
}

/** The workers themselves: how many, their pools' restarts, and each local worker's process (read from /proc now). */
function workerFamilies(st: BusStats, m: BusMetricsSnapshot, pools: PoolRow[]): MetricFamily[] {
  const bus = { bus: st.name }
  const workers = family("slotbus_workers", "gauge", "workers connected now, by how they are reached")
  const via = new Map<string, number>([["shm", 0]])
  for (const w of st.workers) via.set(w.transport, (via.get(w.transport) ?? 0) + 1)
  for (const [transport, n] of via) workers.add({ ...bus, transport }, n)
  const restarts = family(
    "slotbus_worker_restarts_total",
    "counter",
    "worker processes its superviseWorkers pools started again, by cause (crash, or reload, recycle, scale, kill as asked, or evict: the bus disconnected it for hung handlers)",
  )
  if (pools.length > 0)
    for (const cause of CAUSES)
      restarts.add(
        { ...bus, cause },
        pools.reduce((n, p) => n + (p.restarts?.[cause] ?? 0), 0),
      )
  const loop = family(
    "slotbus_worker_crash_loop",
    "gauge",
    "1 while one of its superviseWorkers pools is in a crash loop (3 crashes in a row within restart.windowMs, each within restart.stableAfterMs of the worker's start), else 0",
  )
  if (pools.length > 0) loop.add(bus, pools.some((p) => p.crashLoop) ? 1 : 0)
  const drops = family(
    "slotbus_worker_log_lines_dropped_total",
    "counter",
    "worker log lines its superviseWorkers pools dropped, by reason (budget: past logs.maxLinesPerSecond; output: the front's stdout slow, or the log file failing)",
  )
  if (pools.length > 0)
    for (const reason of ["budget", "output"] as const)
      drops.add(
        { ...bus, reason },
        pools.reduce((n, p) => n + (p.logDrops?.[reason] ?? 0), 0),
      )
  const local = new Set(st.workers.filter((w) => w.transport === "shm").map((w) => w.pid))
  const here = m.workers.filter((w) => w.pid !== null && local.has(w.pid))
  const processes = here.map((w) => ({ labels: { ...bus, worker: String(w.index) }, figures: readProcess(w.pid!) }))
  return [workers, restarts, loop, drops, ...processFamilies(processes), ...runtimeFamilies(bus, here)]
}

/** Each local worker's runtime as it last wrote it in its region (§2, line 8): none for one that never did (C, Python). */
function runtimeFamilies(bus: { bus: string }, here: BusMetricsSnapshot["workers"]): MetricFamily[] {
  const lag = family("nodejs_eventloop_lag_seconds", "gauge", LAG_HELP)
  const heapTotal = family("nodejs_heap_size_total_bytes", "gauge", "the JavaScript heap's size, in bytes")
  const heapUsed = family("nodejs_heap_size_used_bytes", "gauge", "the JavaScript heap's bytes in use")
  const external = family("nodejs_external_memory_bytes", "gauge", "memory held outside the heap for it, in bytes")
  for (const { index, vitals: r } of here) {
    if (r === null) continue
    const labels = { ...bus, worker: String(index) }
    lag.add(labels, r.lagSeconds)
    heapTotal.add(labels, r.heapTotalBytes)
    heapUsed.add(labels, r.heapUsedBytes)
    external.add(labels, r.externalBytes)
  }
  return lag.samples.length > 0 ? [lag, heapTotal, heapUsed, external] : []
}
