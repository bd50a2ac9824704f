// A topic's JetStream stream (docs/PROTOCOL.md §11.6): the one order and numbering of its events that every host
// shares, for replay across hosts. The bridges (topic-bridge.ts) fill it without knowing it: the server stores
// what they publish on the stream's subjects.
import type { StreamFeed, TopicStreamLimits } from "../events/internal.ts"
import { mayHaveLostCreateRace, streamNotFound } from "./explain.ts"
import { jetStreamClient } from "./packages.ts"
import { Resends } from "./resends.ts"
import type { NatsConnection } from "@nats-io/transport-node"
import { crc32 } from "../runtime/index.ts"

/** The stream of topic `topic` (§11.6). */
export const streamOf = (topic: string) => `SLOTBUS_EV_${topic.replaceAll(".", "~")}`

/** The stream exists but is not a slotbus topic's (other subjects): `reason` says what differs. */
/** The topic's stream cannot be used: another program's, or JetStream refused (off, or a right the user lacks). */
export class StreamUnusable extends Error {}

/** Makes sure the topic's stream exists (§11.6) for `subject` (`slotbus.ev.<topic>.>`): creates it if missing. */
export async function ensureTopicStream(
  connection: unknown, // a NatsConnection: typed so that the package's types never name the optional NATS client
  topic: string,
  subject: string,
  limits: TopicStreamLimits,
  warn: (line: string) => void,
): Promise<string> {
  const { jetstreamManager } = await jetStreamClient()
  const jsm = await jetstreamManager(connection as NatsConnection)
  const name = streamOf(topic)
  for (let attempt = 0; ; attempt++) {
    const info = await jsm.streams.info(name).catch((e) => {
      if (streamNotFound(e)) return null
      throw e
    })
    if (info) {
      const subjects = info.config.subjects ?? []
      if (subjects.length !== 1 || subjects[0] !== subject)
        throw new StreamUnusable(
          `the JetStream stream ${name} exists with subjects ${JSON.stringify(subjects)}, not ["${subject}"]: it is not this topic's`,
        )
      const c = info.config
      const age = Math.round((c.max_age ?? 0) / 1e6)
      if (c.max_bytes !== limits.maxBytes || age !== limits.maxAgeMs || (c.num_replicas ?? 1) !== limits.replicas)
        warn(
          `the stream ${name} exists with maxBytes ${c.max_bytes}, maxAgeMs ${age}, replicas ${c.num_replicas}: using it as it is`,
        )
      return name
    }
    try {
      await jsm.streams.add({
        name,
        subjects: [subject],
        max_bytes: limits.maxBytes,
        max_age: limits.maxAgeMs * 1e6, // ns
        num_replicas: limits.replicas,
        description: `slotbus topic ${topic}`,
      })
      return name
    } catch (e) {
      // another process created it meanwhile, or the answer was lost: look again (twice at most)
      if (attempt >= 2 || !mayHaveLostCreateRace(e)) throw e
    }
  }
}

/** Opens an ordered consumer on the topic's stream for `subject` from `from` (§11.6's table). */
export async function openStreamFeed(
  connection: unknown, // a NatsConnection (as above)
  topic: string,
  subject: string,
  from: "now" | "oldest" | number,
  ahead: number,
): Promise<StreamFeed> {
  const { jetstream, jetstreamManager, DeliverPolicy } = await jetStreamClient()
  const nc = connection as NatsConnection
  const name = streamOf(topic)
  let restarted = false
  let restartReason: StreamFeed["restartReason"] = null
  let start: { deliver_policy: (typeof DeliverPolicy)[keyof typeof DeliverPolicy]; opt_start_seq?: number }
  if (from === "now") start = { deliver_policy: DeliverPolicy.New }
  else if (from === "oldest") start = { deliver_policy: DeliverPolicy.All }
  else {
    const { state } = await (await jetstreamManager(nc)).streams.info(name)
    // discarded by the limits, or an id this stream never gave (another stream of that name, since deleted)
    restarted = state.first_seq > from + 1 || from > state.last_seq
    if (restarted) restartReason = from > state.last_seq ? "from-the-future" : "discarded"
    start = restarted
      ? { deliver_policy: DeliverPolicy.All }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 }
  }
  // An ordered consumer is the server's until deleted: close() deletes it, and one whose process died goes after
  // 30 s without a pull (nats.js's default is 5 min: resuming clients that came and went would pile up, §11.6).
  const consumer = await jetstream(nc).consumers.get(name, {
    filter_subjects: subject,
    inactive_threshold: 30_000,
    ...start,
  })
  // a stream deleted under it is an error, not a wait for a new one (whose numbers would start again at 1)
  const messages = await consumer.consume({ max_messages: ahead, abort_on_missing_resource: true })
  const it = messages[Symbol.asyncIterator]()
  const resends = new Resends()
  return {
    restarted,
    restartReason,
    async next() {
      for (;;) {
        const r = await it.next()
        if (r.done) return null
        const d = r.value.data
        // a resend a bridge not opened durable stored a second time (§11.6): skipped, its id with it
        if (d.length >= 24) {
          const v = new DataView(d.buffer, d.byteOffset, 24)
          if (resends.seen(v.getBigUint64(16, true), v.getUint32(12, true), crc32(d.subarray(12)))) continue
        }
        return { seq: r.value.seq, data: d }
      }
    },
    close() {
      void messages
        .close()
        .then(() => consumer.delete())
        .catch(() => {})
    },
  }
}
