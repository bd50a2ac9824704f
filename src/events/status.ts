// What a topic shows of itself: its stats read from the header (every process's members), and the section
// serveStatus draws of them, with its bridge and durable stream when the topic spans hosts.
import { topicNative } from "../native/ffi.ts"
import { section, type StatusSection } from "../kit/index.ts"
import type { TopicBridge } from "./bridge.ts"
import type { TopicHeader } from "./header.ts"
import type { Pointer } from "../runtime/index.ts"

export interface TopicStats {
  name: string
  capacity: number
  /** Bytes claimed so far (the next event's id). */
  tail: number
  /** The keeper's pid: the creator, then a member that took over within a tick of its close or death (0 meanwhile). */
  keeperPid: number
  /** Records skipped because their publisher died or stalled before finishing them (never published). */
  abandoned: number
  /** Padding claims made to step around another publisher's unfinished bytes (a stalled or stopped publisher). */
  fenced: number
  /** `behind`: bytes of the ring between the subscriber's cursor and the tail, not yet received or counted as lagged. */
  subscribers: {
    pid: number
    filter: string
    queue: number
    received: number
    lagged: number
    behind: number
    parked: boolean
  }[]
  publishers: { pid: number; published: number }[]
}

/** The topic's stats now, read from its header (the caller ran a deep tick first: no dead member is listed). */
export function readStats(name: string, capacity: number, ptr: Pointer, h: TopicHeader): TopicStats {
  const entries = h.subscribers()
  // The tail is read after the cursors: it only grows and no cursor passes it, so behind is never negative.
  const tail = topicNative.sb_topic_tail(ptr)
  const subscribers = entries.map((s) => ({
    pid: s.pid,
    filter: s.filter,
    queue: s.queue,
    received: s.received,
    lagged: s.lagged,
    behind: Math.max(0, tail - s.cursor),
    parked: s.parked,
  }))
  return {
    name,
    capacity,
    tail,
    keeperPid: h.keeperPid(),
    abandoned: h.abandoned(),
    fenced: h.fenced(),
    subscribers,
    publishers: h.publishers(),
  }
}

/** A topic's bridge as its status shows it (the `remote` option). */
export interface RemoteStatus {
  bridge: TopicBridge
  /** The transport's name ("nats"). */
  transport: string
  durable: boolean
  header: TopicHeader
}

/** What `serveStatus` shows of a topic: its members here, and with `remote`, its bridge and stream. */
export async function topicSection(st: TopicStats, remote: RemoteStatus | undefined): Promise<StatusSection> {
  const s = section("topic", st.name)
  s.facts.push(
    ["capacity bytes", st.capacity],
    ["tail (next id)", st.tail],
    ["keeper pid", st.keeperPid || "-"],
    ["abandoned / fenced", `${st.abandoned} / ${st.fenced}`],
  )
  s.tables.push(
    {
      title: "subscribers",
      columns: ["pid", "filter", "queue", "received", "lagged", "behind bytes", "parked"],
      rows: st.subscribers.map((b) => [b.pid, b.filter, b.queue, b.received, b.lagged, b.behind, b.parked]),
    },
    { title: "publishers", columns: ["pid", "published"], rows: st.publishers.map((p) => [p.pid, p.published]) },
  )
  const lagging = st.subscribers.filter((b) => b.lagged > 0).length
  if (lagging > 0)
    s.warnings.push(`${lagging} subscriber${lagging === 1 ? "" : "s"} fell behind and lost events (lagged)`)
  if (!remote) return s
  const b = remote.bridge.stats()
  const holder = remote.header.bridgePid()
  s.remote = {
    transport: remote.transport,
    facts: [
      ["server", remote.bridge.server()],
      ["this host's bridge", holder === 0 ? "none yet" : `pid ${holder}${b.bridging ? " (this process)" : ""}`],
      ["subjects bridged", b.subjects.length],
      ["sent / received", `${b.sent} / ${b.received}`],
      ["lost on the way / unsent / refused", `${b.lost} / ${b.unsent} / ${b.refused}`],
      ["resends dropped / resyncs", `${b.resends} / ${b.resyncs}`],
    ],
    tables: [],
  }
  if (b.lost + b.unsent > 0) s.warnings.push(`events lost across hosts: ${b.reasons.at(-1) ?? `${b.lost + b.unsent}`}`)
  if (remote.durable) {
    const stream = await remote.bridge.streamState().catch((e: unknown) => (e as Error).message ?? String(e))
    if (typeof stream === "string") s.warnings.push(`the durable stream cannot be read: ${stream}`)
    else if (stream)
      s.remote.tables.push({
        title: "durable stream",
        columns: ["stream", "first seq", "last seq", "messages", "bytes"],
        rows: [[stream.stream, stream.firstSeq, stream.lastSeq, stream.messages, stream.bytes]],
      })
  }
  return s
}
