// A stdio bus's metric families for GET /metrics (serveStatus, `slotbus stdio --status`): its traffic, failures and
// worker processes, from stats(), and each worker's process_* series (/proc, read now). Per worker the labels are
// its pool's id and its index in the pool (bounded by the configuration), never a pid.
import { family, processFamilies, readProcess, type MetricFamily } from "../kit/index.ts"
import type { StdioBusStats } from "./types.ts"

const COUNTS = [
  ["messagesIn", "slotbus_stdio_messages_in_total", "messages read from workers"],
  ["messagesOut", "slotbus_stdio_messages_out_total", "messages written to workers"],
  ["bytesIn", "slotbus_stdio_read_bytes_total", "bytes read from workers"],
  ["bytesOut", "slotbus_stdio_written_bytes_total", "bytes written to workers"],
  ["routingErrors", "slotbus_stdio_routing_errors_total", "messages that could not be routed"],
  ["backpressureRejects", "slotbus_stdio_backpressure_rejects_total", "requests refused for a full worker queue"],
  ["lateResponses", "slotbus_stdio_late_responses_total", "answers that came after their caller gave up"],
  [
    "cancelsSent",
    "slotbus_stdio_cancels_sent_total",
    "cancel notifications sent to workers: the bus's own for given-up requests and clients' own",
  ],
  ["stuckDropped", "slotbus_stdio_stuck_dropped_total", "given-up requests dropped from the books after a grace"],
  ["oversizeKills", "slotbus_stdio_oversize_kills_total", "workers killed for a line longer than max_input_buffer"],
] as const

export function stdioFamilies(st: StdioBusStats): MetricFamily[] {
  const out: MetricFamily[] = COUNTS.map(([key, name, help]) => {
    const f = family(name, "counter", help)
    f.add({}, st[key])
    return f
  })
  const workers = family("slotbus_stdio_workers", "gauge", "worker processes running")
  workers.add({}, st.workerCount)
  const clients = family("slotbus_stdio_clients", "gauge", "socket clients connected")
  clients.add({}, st.clientCount)
  const restarts = family(
    "slotbus_stdio_worker_restarts_total",
    "counter",
    "worker processes started again after they crashed, by pool and index",
  )
  const busy = family(
    "slotbus_stdio_worker_in_flight_requests",
    "gauge",
    "requests a worker holds now, by pool and index",
  )
  const sessions = family(
    "slotbus_stdio_worker_sessions",
    "gauge",
    "sessions pinned to a worker now, by pool and index",
  )
  const processes = []
  for (const p of st.pools)
    for (const i of p.instances) {
      const labels = { pool: p.id, worker: String(i.index) }
      restarts.add(labels, i.restarts)
      busy.add(labels, i.inFlight)
      sessions.add(labels, i.sessions)
      if (i.pid > 0) processes.push({ labels, figures: readProcess(i.pid) })
    }
  return [...out, workers, clients, restarts, busy, sessions, ...processFamilies(processes)]
}
