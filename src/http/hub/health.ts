// What the hub counts and reports at GET /health: counters, the workers and routes it knows, its events topic,
// recent evictions.
import { hostname } from "node:os"
import type { LatencySummary } from "../../core/index.ts"
import {
  family,
  readSection,
  STATUS,
  type MetricFamily,
  type MetricLabels,
  type StatusSection,
} from "../../kit/index.ts"
import { TopicClosedError, type Topic, type TopicStats } from "../../events/index.ts"
import { type HubCounters, newCounters } from "./counters.ts"
import type { Registry, WorkerInstance } from "./registry.ts"

export interface HubWorkerInfo {
  name: string
  instance: string
  pid: number
  routes: string[]
  connected: boolean
  /** Requests the hub has sent this process whose answer has not ended yet (a streaming body counts until its end). */
  inFlight: number
  served: number
  lastSeen: string
  /** Slots of its bus, and how many are out (published and not yet returned: in flight, given up, borrowed). */
  slots: number
  slotsInUse: number
  /** Slots the process still holds stuckAfterMs past their request's deadline (the bus's stuckAfterMs). */
  stuck: number
  /** Times this name + instance registered again from a new pid while the hub ran. */
  restarts: number
  /** Round trips through its slots (requests and the hub's control calls, pings included) since it registered. */
  latency: LatencySummary
  /** How the hub reaches it: "shm" (shared memory, the hub's host) or "nats" (another host); and that host. */
  transport: "shm" | "nats" | "none" | (string & {})
  host: string
}

export interface HubHealth {
  status: "ok"
  uptimeMs: number
  startedAt: string
  /** The hub's machine; workers reached over shared memory run on it too, those over NATS say their own. */
  host: string
  pid: number
  workers: HubWorkerInfo[]
  routes: { route: string; owner: string; workers: number }[]
  sse: { connections: number; eventsClients: number; statusClients: number }
  counters: HubCounters
  /** Bytes of request bodies the hub read (or is reading) and holds now, not yet in a worker's slot (maxHeldBodyBytes). */
  heldBodyBytes: number
  /** The hub's events topic (`app.emit`, `GET /events`): its subscribers with their lag, its publishers. */
  topics: TopicStats[]
  evicted: { name: string; instance: string; pid: number; reason: string; at: string }[]
  /**
   * With the `nats` option, what each worker name's bus and the events topic know across hosts (serveStatus's
   * sections, their NATS side only): the connection, workers by host, the bridge's holder, the stream's sequence.
   * In GET /health and the hub's status section; hub.health() leaves it out (it is read from the NATS server).
   */
  nats?: StatusSection[]
}

const KEEP_EVICTIONS = 20

/** What each counter counts: the HELP line of its Prometheus metric. */
const COUNTER_HELP: Record<keyof HubCounters, string> = {
  requests: "HTTP requests routed to a worker route",
  responses: "worker answers relayed to clients",
  notFound: "requests no route matched (404)",
  methodNotAllowed: "requests whose path takes other methods (405)",
  tooLarge: "request bodies (413) or heads (431) over the limit",
  unavailable: "requests with no worker to take them, or a saturated one (503)",
  badGateway: "requests whose worker went away or answered nonsense (502)",
  timeouts: "requests a worker did not answer within timeoutMs (504)",
  workerErrors: "requests whose handler threw (500)",
  clientAborts: "requests the client gave up on",
  unauthorized: "internal endpoint calls without the token (401)",
  forbidden: "internal endpoint calls from a non-loopback address (403)",
  registrations: "worker registrations accepted",
  conflicts: "worker registrations refused for a route another name owns",
  evictions: "worker processes taken out of service",
  streamedResponses: "responses whose body reached the client in more than one piece (streamed)",
  sseOpened: "SSE connections opened",
  sseClosed: "SSE connections closed",
  sseDropped: "SSE clients dropped for a backlog over sseMaxBufferedBytes",
  sseIdleClosed: "SSE clients closed for taking nothing within sseIdleTimeoutMs",
  resumesRefused: "resuming SSE clients of a durable hub refused over maxResumingClients (503)",
  emitted: "events workers emitted to GET /events",
  pushed: "push requests from workers",
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/** The health report's counters and gauges as metric families (slotbus_hub_*), for GET /metrics and OpenTelemetry. */
export function hubFamilies(h: HubHealth): MetricFamily[] {
  const out: MetricFamily[] = []
  const metric = (name: string, type: "counter" | "gauge", help: string, samples: [MetricLabels, number][]) => {
    const f = family(`slotbus_hub_${name}`, type, help)
    for (const [labels, value] of samples) f.add(labels, value)
    out.push(f)
  }
  for (const key of Object.keys(COUNTER_HELP) as (keyof HubCounters)[])
    metric(`${snake(key)}_total`, "counter", COUNTER_HELP[key], [[{}, h.counters[key]]])
  metric("uptime_seconds", "gauge", "seconds since the hub started", [[{}, h.uptimeMs / 1000]])
  const connected = h.workers.filter((w) => w.connected).length
  metric("workers", "gauge", "worker processes registered, by whether they are attached", [
    [{ state: "connected" }, connected],
    [{ state: "joining" }, h.workers.length - connected],
  ])
  metric("sse_connections", "gauge", "SSE clients held, on worker routes, GET /events and GET /health/stream", [
    [{ kind: "route" }, h.sse.connections],
    [{ kind: "events" }, h.sse.eventsClients],
    [{ kind: "status" }, h.sse.statusClients],
  ])
  metric("held_body_bytes", "gauge", "bytes of request bodies read and not yet in a worker's slot (maxHeldBodyBytes)", [
    [{}, h.heldBodyBytes],
  ])
  const who = (w: HubWorkerInfo) => ({ name: w.name, instance: w.instance })
  metric(
    "worker_in_flight",
    "gauge",
    "requests in flight per worker process",
    h.workers.map((w) => [who(w), w.inFlight]),
  )
  metric(
    "worker_served_total",
    "counter",
    "requests served per worker process",
    h.workers.map((w) => [who(w), w.served]),
  )
  return out
}

const HOST = hostname()

function topicStats(topic: Topic | null): TopicStats[] {
  if (!topic) return []
  try {
    return [topic.stats()]
  } catch (e) {
    if (e instanceof TopicClosedError) return [] // the hub is closing
    throw e
  }
}

/** The NATS side of the hub's buses and events topic (their sections with only that part): [] without NATS. */
export async function natsSections(registry: Registry, topic: Topic | null): Promise<StatusSection[]> {
  const buses = new Set([...registry.instances.values()].map((i) => i.bus))
  const all = await Promise.all([
    ...[...buses].map((b) => readSection(() => b[STATUS](), `bus ${b.name}`)),
    ...(topic ? [readSection(() => topic[STATUS](), `topic ${topic.name}`)] : []),
  ])
  return all.flatMap((s) =>
    s.remote || s.kind === "unreadable"
      ? [{ kind: s.kind, name: s.name, facts: [], tables: [], remote: s.remote, warnings: s.warnings }]
      : [],
  )
}

export class Health {
  readonly counters = newCounters()
  constructor(private readonly slots: number) {}

  private readonly startedAt = Date.now()
  private readonly evicted: HubHealth["evicted"] = []

  recordEviction(inst: WorkerInstance, reason: string) {
    this.evicted.unshift({
      name: inst.name,
      instance: inst.instance,
      pid: inst.pid,
      reason,
      at: new Date().toISOString(),
    })
    this.evicted.length = Math.min(this.evicted.length, KEEP_EVICTIONS)
    this.counters.evictions++
  }

  report(registry: Registry, sse: HubHealth["sse"], topic: Topic | null, heldBodyBytes: number): HubHealth {
    const label = (s: { sse: boolean; route: { method: string; pattern: string } }) =>
      `${s.sse ? "SSE" : s.route.method} ${s.route.pattern}`
    const workers = [...registry.instances.values()].map((i): HubWorkerInfo => {
      const bus = i.bus.stats()
      return {
        name: i.name,
        instance: i.instance,
        pid: i.pid,
        routes: i.routes.map(label),
        connected: i.state === "connected",
        inFlight: i.inFlight,
        served: i.served,
        lastSeen: new Date(i.lastSeen).toISOString(),
        slots: this.slots,
        slotsInUse: bus.inFlight,
        stuck: bus.workers.reduce((n, w) => n + w.stuck, 0),
        restarts: i.restarts,
        latency: bus.latency,
        transport: bus.workers[0]?.transport ?? "none",
        host: bus.workers[0]?.host ?? "",
      }
    })
    return {
      status: "ok",
      uptimeMs: Date.now() - this.startedAt,
      startedAt: new Date(this.startedAt).toISOString(),
      host: HOST,
      pid: process.pid,
      workers,
      routes: registry.routes.values().map((e) => ({ route: label(e), owner: e.owner, workers: e.instances.length })),
      sse,
      counters: { ...this.counters },
      heldBodyBytes,
      topics: topicStats(topic),
      evicted: [...this.evicted],
    }
  }
}
