// A topic's bridge to NATS (docs/PROTOCOL.md §11): one process per host and topic, elected by a socket file,
// forwards its host's events to `slotbus.ev.<topic>.<type>` and the events its host's subscribers want from there
// into the ring. It implements the events room's port (src/events/bridge.ts): slotbus/events drives it through
// TopicBridgeHost; nothing here knows the Topic class. Here: the election and the bridge's lifecycle; the elected
// bridge's work is topic-sender.ts (out) and topic-receiver.ts (in, with topic-books.ts).
import type { NatsConnection } from "@nats-io/transport-node"
import { HostSeat } from "../kit/index.ts"
import { ensureTopicStream, openStreamFeed, streamOf, StreamUnusable } from "./topic-stream.ts"
import {
  type BridgeFilter,
  type StreamFeed,
  type TopicBridge,
  type TopicBridgeHost,
  type TopicBridgeStats,
  TopicStreamError,
  type TopicStreamLimits,
  type TopicStreamState,
} from "../events/internal.ts"
import { explainNats } from "./explain.ts"
import { jetStreamClient, natsClient } from "./packages.ts"
import { StreamAcks } from "./stream-acks.ts"
import type { NatsUse, SharedConnection } from "./shared.ts"
import { type BridgedIn, TopicReceiver } from "./topic-receiver.ts"
import { TopicSender } from "./topic-sender.ts"
import { topicSubjects } from "./topic-wire.ts"

const ELECTION = "slotbus.bridge."
/** How long a durable topic's bridge waits for the stream's answer to a message (§11.6). */
const STREAM_ANSWER_MS = 5000

/**
 * Opens the NATS connection `nats(…)` names and stands for election as the host's bridge of the topic (§11.4,
 * kit/host/host-seat.ts): bridges while it holds the socket file `slotbus.bridge.<topic>`, stands again when another process does.
 */
export async function startTopicBridge(
  host: TopicBridgeHost,
  shared: SharedConnection,
  durable?: { limits: TopicStreamLimits; warn: (line: string) => void },
): Promise<TopicBridge> {
  if (durable) await jetStreamClient() // a missing package is said before any connection is tried
  const use = await shared.use()
  let acks: StreamAcks | undefined
  try {
    const subject = `${topicSubjects(host.name).root}.>`
    if (durable)
      await ensureTopicStream(use.nc, host.name, subject, durable.limits, durable.warn).catch((e) => {
        const why = e instanceof StreamUnusable ? e.message : explainNats(e)
        throw new TopicStreamError(`topic "${host.name}" cannot be durable: ${why}`, { cause: e })
      })
    // a durable topic's messages carry a Nats-Msg-Id, so its stream stores a resend once (§11.2), and each is
    // confirmed by the stream's answer (§11.6)
    if (durable) {
      const { headers, createInbox } = await natsClient()
      acks = new StreamAcks(use, headers, createInbox(), STREAM_ANSWER_MS)
    }
  } catch (e) {
    await use.release()
    throw e
  }
  const b = new Bridge(host, use, acks)
  b.elect()
  return b
}

class Bridge implements TopicBridge {
  private readonly s
  private readonly counts = {
    sent: 0,
    received: 0,
    duplicates: 0,
    resends: 0,
    lost: 0,
    unsent: 0,
    refused: 0,
    resyncs: 0,
  }
  private readonly reasons: string[] = []
  private seat: HostSeat | undefined
  private closing: Promise<void> | undefined
  private run: { sender: TopicSender; receiver: TopicReceiver; done: Promise<void> } | undefined
  private readonly own: BridgedIn = { ids: [], head: 0 }
  private readonly nc: NatsConnection

  constructor(
    private readonly host: TopicBridgeHost,
    private readonly use: NatsUse,
    private readonly acks: StreamAcks | undefined,
  ) {
    this.nc = use.nc
    this.s = topicSubjects(host.name)
    // a connection that closes for good (not a reconnect) ends the bridging here: another candidate takes over
    use.onClosed(() => this.stepDown())
  }

  elect() {
    this.seat = HostSeat.stand(ELECTION, this.host.name, { elected: () => this.startRunning() })
  }

  /** The work of the elected bridge: out (ring → NATS) and in (NATS → ring). */
  private startRunning() {
    const reason = (r: string) => this.reason(r)
    // the sender's reader first: the receiver tells it from this host's subscribers by its filter (any, this pid)
    const sender = new TopicSender(this.host, this.nc, this.s, this.counts, reason, this.own, this.acks)
    const receiver = new TopicReceiver(this.host, this.nc, this.s, this.counts, reason, this.own)
    this.run = { sender, receiver, done: sender.forward() }
  }

  /**
   * Events of this host its outbound reader could not read in time. The reader counts the loss records this
   * bridge wrote into the ring (§11.5) as lagged too: those are other hosts' losses, not this host's.
   */
  private unsent() {
    return this.run ? Math.max(0, this.run.sender.lagged - this.run.receiver.lostIntoRing) : 0
  }

  private stepDown() {
    if (this.run) {
      this.counts.unsent += this.unsent()
      this.run.sender.stop()
      this.run.receiver.stop()
    }
    this.run = undefined
    // a connection closed for good never bridges again: the seat goes with it
    this.seat?.close()
    this.acks?.close()
  }

  reason(r: string) {
    this.reasons.push(r)
    if (this.reasons.length > 16) this.reasons.shift()
  }

  stats(): TopicBridgeStats {
    return {
      bridging: this.run !== undefined,
      subjects: this.run ? [...this.run.receiver.subjects()] : [],
      ...this.counts,
      unsent: this.counts.unsent + this.unsent(),
      reasons: [...this.reasons],
    }
  }

  server() {
    return this.use.server()
  }

  async streamState(): Promise<TopicStreamState | null> {
    if (!this.acks) return null
    const { jetstreamManager } = await jetStreamClient()
    const stream = streamOf(this.host.name)
    const { state } = await (await jetstreamManager(this.nc)).streams.info(stream)
    return { stream, firstSeq: state.first_seq, lastSeq: state.last_seq, messages: state.messages, bytes: state.bytes }
  }

  openStream(filter: BridgeFilter, from: "now" | "oldest" | number, ahead: number): Promise<StreamFeed> {
    if (!this.acks) throw new Error("the topic was not opened durable")
    const subject = this.s.filter(filter.mode, filter.type)
    return openStreamFeed(this.nc, this.host.name, subject, from, ahead).catch((e) => {
      throw new StreamUnusable(explainNats(e), { cause: e })
    })
  }

  /** Steps down at once; the promise (the same for every call) settles once its connection is let go. */
  close(): Promise<void> {
    return (this.closing ??= this.letGo())
  }

  private async letGo() {
    const run = this.run
    this.stepDown()
    await run?.done
    await this.use.release()
  }
}
