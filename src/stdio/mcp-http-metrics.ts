// What the MCP HTTP handlers count, for GET /metrics (slotbus_mcp_*) and the stdio bus's status view: sessions,
// requests by method, error answers by method, refusals by HTTP status, resumptions; by pool. A method label takes
// the MCP methods a client sends and "other" for the rest, so no client grows the label set.
import { family, type MetricFamily, type StatusTable } from "../kit/index.ts"

const METHODS = new Set([
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "tasks/get",
  "tasks/list",
  "tasks/result",
  "tasks/cancel",
  "notifications/initialized",
  "notifications/cancelled",
  "notifications/progress",
  "notifications/roots/list_changed",
  "response",
])

export class McpHttpCounts {
  opened = 0
  resumed = 0
  /** Messages POSTed, by method ("response": a client's answer to a server's request). */
  readonly requests = new Map<string, number>()
  /** Requests answered with a JSON-RPC error (by the worker, the bus or the transport), by method. */
  readonly errors = new Map<string, number>()
  /** HTTP refusals (4xx, 5xx), by status. */
  readonly refusals = new Map<string, number>()

  message(method: string | undefined): void {
    bump(this.requests, label(method))
  }
  error(method: string | undefined): void {
    bump(this.errors, label(method))
  }
  refused(status: number): void {
    bump(this.refusals, String(status))
  }
}

const label = (method: string | undefined) =>
  method === undefined ? "response" : METHODS.has(method) ? method : "other"

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1)
}

export interface CountedHandler {
  readonly pool: string
  readonly sessionCount: number
  readonly counts: McpHttpCounts
}

/** The families of every handler, summed by pool (a listener's and an app's handler may serve one pool). */
export function mcpFamilies(handlers: readonly CountedHandler[]): MetricFamily[] {
  const sessions = family("slotbus_mcp_sessions", "gauge", "MCP Streamable HTTP sessions open, by pool")
  const opened = family(
    "slotbus_mcp_sessions_opened_total",
    "counter",
    "MCP sessions opened (a successful initialize), by pool",
  )
  const resumed = family("slotbus_mcp_resumptions_total", "counter", "SSE streams resumed with Last-Event-ID, by pool")
  const requests = family("slotbus_mcp_messages_total", "counter", "JSON-RPC messages POSTed, by pool and method")
  const errors = family(
    "slotbus_mcp_errors_total",
    "counter",
    "requests answered with a JSON-RPC error, by pool and method",
  )
  const refusals = family("slotbus_mcp_refusals_total", "counter", "HTTP requests refused, by pool and status")
  for (const [pool, hs] of byPool(handlers)) {
    sessions.add(
      { pool },
      sum(hs, (h) => h.sessionCount),
    )
    opened.add(
      { pool },
      sum(hs, (h) => h.counts.opened),
    )
    resumed.add(
      { pool },
      sum(hs, (h) => h.counts.resumed),
    )
    for (const [m, f] of [
      [requests, "requests"],
      [errors, "errors"],
    ] as const)
      for (const [method, n] of merged(hs, f)) m.add({ pool, method }, n)
    for (const [status, n] of merged(hs, "refusals")) refusals.add({ pool, status }, n)
  }
  return [sessions, opened, resumed, requests, errors, refusals]
}

/** The status view's table: one row per pool. */
export function mcpTable(handlers: readonly CountedHandler[]): StatusTable {
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
  return {
    title: "MCP over HTTP",
    columns: ["pool", "sessions", "opened", "messages", "tools/call", "errors", "refusals", "resumed"],
    rows: [...byPool(handlers)].map(([pool, hs]) => [
      pool,
      sum(hs, (h) => h.sessionCount),
      sum(hs, (h) => h.counts.opened),
      total(merged(hs, "requests")),
      merged(hs, "requests").get("tools/call") ?? 0,
      total(merged(hs, "errors")),
      total(merged(hs, "refusals")),
      sum(hs, (h) => h.counts.resumed),
    ]),
  }
}

function byPool(handlers: readonly CountedHandler[]): Map<string, CountedHandler[]> {
  const out = new Map<string, CountedHandler[]>()
  for (const h of handlers) out.set(h.pool, [...(out.get(h.pool) ?? []), h])
  return out
}

const sum = (hs: CountedHandler[], f: (h: CountedHandler) => number) => hs.reduce((a, h) => a + f(h), 0)

function merged(hs: CountedHandler[], field: "requests" | "errors" | "refusals"): Map<string, number> {
  const out = new Map<string, number>()
  for (const h of hs) for (const [k, n] of h.counts[field]) out.set(k, (out.get(k) ?? 0) + n)
  return out
}
