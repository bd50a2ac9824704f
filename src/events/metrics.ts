// A topic's metric families for GET /metrics (serveStatus): what this process published and received on it, what
// its subscriptions lost by falling behind and how far behind they are, and the topic's members and bytes written
// (the whole topic, read from shared memory). Labelled topic="<name>"; no pid label: each process reports its own.
import { family, type MetricFamily } from "../kit/index.ts"
import type { TopicStats } from "./status.ts"

export function topicFamilies(st: TopicStats, pid: number): MetricFamily[] {
  const topic = { topic: st.name }
  const mine = st.subscribers.filter((s) => s.pid === pid)
  const one = (name: string, type: "counter" | "gauge", help: string, value: number) => {
    const f = family(name, type, help)
    f.add(topic, value)
    return f
  }
  return [
    one(
      "slotbus_topic_published_events_total",
      "counter",
      "events this process published",
      st.publishers.find((p) => p.pid === pid)?.published ?? 0,
    ),
    one(
      "slotbus_topic_received_events_total",
      "counter",
      "matching events this process's open subscriptions received",
      mine.reduce((n, s) => n + s.received, 0),
    ),
    one(
      "slotbus_topic_lagged_events_total",
      "counter",
      "matching events this process's open subscriptions lost by falling behind (queue bound or ring lapping)",
      mine.reduce((n, s) => n + s.lagged, 0),
    ),
    one(
      "slotbus_topic_lag_bytes",
      "gauge",
      "ring bytes the furthest behind of this process's subscriptions has yet to read",
      mine.reduce((n, s) => Math.max(n, s.behind), 0),
    ),
    one(
      "slotbus_topic_subscribers",
      "gauge",
      "subscriptions open on the topic, every process's",
      st.subscribers.length,
    ),
    one("slotbus_topic_written_bytes_total", "counter", "ring bytes claimed on the topic so far", st.tail),
  ]
}
