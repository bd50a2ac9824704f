// What the hub counts and reports at GET /health: counters, the workers and routes it knows, recent evictions.
import type { Registry, WorkerInstance } from "./registry.ts"

export interface HubWorkerInfo {
  name: string
  instance: string
  pid: number
  routes: string[]
  connected: boolean
  inFlight: number
  served: number
  lastSeen: string
}

export interface HubCounters {
  requests: number
  responses: number
  notFound: number
  methodNotAllowed: number
  tooLarge: number
  unavailable: number
  badGateway: number
  timeouts: number
  workerErrors: number
  clientAborts: number
  unauthorized: number
  forbidden: number
  registrations: number
  conflicts: number
  evictions: number
  streamedResponses: number
  sseOpened: number
  sseClosed: number
  sseDropped: number
  sseIdleClosed: number
  emitted: number
  pushed: number
}

export interface HubHealth {
  status: "ok"
  uptimeMs: number
  startedAt: string
  workers: HubWorkerInfo[]
  routes: { route: string; owner: string; workers: number }[]
  sse: { connections: number; eventsClients: number }
  counters: HubCounters
  evicted: { name: string; instance: string; pid: number; reason: string; at: string }[]
}

const KEEP_EVICTIONS = 20

export function newCounters(): HubCounters {
  return {
    requests: 0, responses: 0, notFound: 0, methodNotAllowed: 0, tooLarge: 0, unavailable: 0, badGateway: 0,
    timeouts: 0, workerErrors: 0, clientAborts: 0, unauthorized: 0, forbidden: 0, registrations: 0, conflicts: 0,
    evictions: 0, streamedResponses: 0, sseOpened: 0, sseClosed: 0, sseDropped: 0, sseIdleClosed: 0, emitted: 0, pushed: 0,
  }
}

export class Health {
  readonly counters = newCounters()
  private readonly startedAt = Date.now()
  private readonly evicted: HubHealth["evicted"] = []

  recordEviction(inst: WorkerInstance, reason: string) {
    this.evicted.unshift({ name: inst.name, instance: inst.instance, pid: inst.pid, reason, at: new Date().toISOString() })
    this.evicted.length = Math.min(this.evicted.length, KEEP_EVICTIONS)
    this.counters.evictions++
  }

  report(registry: Registry, sse: { connections: number; eventsClients: number }): HubHealth {
    const label = (s: { sse: boolean; route: { method: string; pattern: string } }) => `${s.sse ? "SSE" : s.route.method} ${s.route.pattern}`
    const workers = [...registry.instances.values()].map((i) => ({
      name: i.name,
      instance: i.instance,
      pid: i.pid,
      routes: i.routes.map(label),
      connected: i.state === "connected",
      inFlight: i.inFlight,
      served: i.served,
      lastSeen: new Date(i.lastSeen).toISOString(),
    }))
    return {
      status: "ok",
      uptimeMs: Date.now() - this.startedAt,
      startedAt: new Date(this.startedAt).toISOString(),
      workers,
      routes: registry.routes.values().map((e) => ({ route: label(e), owner: e.owner, workers: e.instances.length })),
      sse,
      counters: { ...this.counters },
      evicted: [...this.evicted],
    }
  }
}
