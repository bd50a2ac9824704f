// The hub's section of the status view (serveStatus, src/status): what GET /health reports, as facts and tables.
// Made from a HubHealth, so the hub's [STATUS](), its page's stream and `slotbus status <hub-url>` (from a /health
// another process sent: any value may be anything) draw the same thing through src/status.
import { ago, section, type StatusSection, type StatusValue } from "../../kit/index.ts"
import type { StatusReport } from "../../status/index.ts"
import type { HubHealth } from "./health.ts"

/** A number only if it is one (NaN otherwise): a /health read from elsewhere may hold anything. */
const n = (v: unknown): number => (typeof v === "number" ? v : Number.NaN)
/** A latency in µs as ms to two places, or null before the first round trip. */
const ms = (us: unknown, count: unknown): StatusValue => (n(count) > 0 ? Math.round(n(us) / 10) / 100 : null)

export function hubSection(h: HubHealth, url: string): StatusSection {
  const s = section("hub", url)
  const c = h.counters
  const remote = h.workers.filter((w) => w.transport === "nats").length
  s.facts.push(
    ["workers", remote === 0 ? h.workers.length : `${h.workers.length - remote} here, ${remote} on other hosts`],
    ["requests", n(c.requests)],
    ["responses", n(c.responses)],
    ["4xx", n(c.notFound) + n(c.methodNotAllowed) + n(c.tooLarge)],
    ["5xx", n(c.unavailable) + n(c.badGateway) + n(c.timeouts) + n(c.workerErrors)],
    ["timeouts", n(c.timeouts)],
    ["client aborts", n(c.clientAborts)],
    ["evictions", n(c.evictions)],
    ["events emitted", n(c.emitted)],
    ["SSE clients", n(h.sse.connections) + n(h.sse.eventsClients) + n(h.sse.statusClients)],
    ["up", ago(n(h.uptimeMs))],
  )
  s.tables.push({
    title: "workers",
    columns: ["name", "instance", "host", "pid", "state", "slots", "in flight", "stuck", "served", "restarts"].concat(
      ["p50", "p90", "p99", "max"].map((p) => `${p} ms`),
      "routes",
    ),
    rows: h.workers.map((w) => [
      w.name,
      w.instance,
      w.host || h.host,
      n(w.pid),
      w.connected ? "connected" : "joining",
      `${n(w.slotsInUse)}/${n(w.slots)}`,
      n(w.inFlight),
      n(w.stuck),
      n(w.served),
      n(w.restarts),
      ms(w.latency.p50Us, w.latency.count),
      ms(w.latency.p90Us, w.latency.count),
      ms(w.latency.p99Us, w.latency.count),
      ms(w.latency.maxUs, w.latency.count),
      n(w.routes.length),
    ]),
  })
  if (h.workers.some((w) => n(w.stuck) > 0))
    s.warnings.push("workers hold stuck slots: a handler runs long past its caller's timeout")
  // by owner, then path, then method: "GET /items/:id" sorts as "/items/:id GET"
  const key = (r: HubHealth["routes"][number]) => {
    const route = String(r.route)
    const sp = route.indexOf(" ")
    return `${r.owner} ${route.slice(sp + 1)} ${route.slice(0, sp)}`
  }
  s.tables.push({
    title: "routes",
    columns: ["owner", "route", "workers"],
    rows: [...h.routes]
      .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
      .map((r) => [r.owner, r.route, n(r.workers)]),
  })
  const t = h.topics[0]
  if (t) {
    const names = new Map<number, string>(h.workers.map((w) => [n(w.pid), String(w.name)]))
    names.set(n(h.pid), "the hub")
    const who = (pid: unknown) => (names.has(n(pid)) ? `${n(pid)} (${names.get(n(pid))})` : n(pid))
    s.facts.push(
      ["events topic", t.name],
      ["ring / published bytes", `${n(t.capacity)} / ${n(t.tail)}`],
      ["abandoned / fenced", `${n(t.abandoned)} / ${n(t.fenced)}`],
    )
    s.tables.push(
      {
        title: "events topic subscribers",
        columns: ["subscriber", "filter", "queue", "received", "lagged", "behind bytes", "parked"],
        rows: t.subscribers.map((b) => [
          who(b.pid),
          b.filter,
          n(b.queue),
          n(b.received),
          n(b.lagged),
          n(b.behind),
          b.parked,
        ]),
      },
      {
        title: "events topic publishers",
        columns: ["publisher", "published"],
        rows: t.publishers.map((p) => [who(p.pid), n(p.published)]),
      },
    )
    if (t.subscribers.some((b) => n(b.lagged) > 0))
      s.warnings.push("subscribers of the events topic lost events (lagged)")
  }
  s.tables.push({
    title: "recent evictions",
    columns: ["at (UTC)", "name", "instance", "pid", "reason"],
    rows: h.evicted.map((e) => [String(e.at).slice(11, 19), e.name, e.instance, n(e.pid), e.reason]),
  })
  // with the nats option: what its buses and events topic know across hosts, one part, each line saying whose
  if (h.nats && h.nats.length > 0) {
    const across: NonNullable<StatusSection["remote"]> = { transport: "nats", facts: [], tables: [] }
    for (const x of h.nats) {
      const whose = `${x.kind} ${x.name}`
      s.warnings.push(...x.warnings.map((w) => `${whose}: ${w}`))
      across.facts.push(...(x.remote?.facts ?? []).map(([k, v]): [string, StatusValue] => [`${whose}: ${k}`, v]))
      across.tables.push(...(x.remote?.tables ?? []).map((tb) => ({ ...tb, title: `${whose}: ${tb.title}` })))
    }
    s.remote = across
  }
  return s
}

/** A hub's /health as a status report (serveStatus's shape): what its page's stream sends and its CLI prints. */
export function hubReport(h: HubHealth, url: string): StatusReport {
  const at = new Date().toISOString()
  return {
    title: `slotbus hub ${url}`,
    host: h.host,
    pid: h.pid,
    uptimeMs: h.uptimeMs,
    at,
    sections: [hubSection(h, url)],
  }
}
