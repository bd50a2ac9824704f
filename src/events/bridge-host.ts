// The events room's side of the port a transport implements (bridge.ts, docs/PROTOCOL.md §11.4): what a bridge
// uses of its topic. The header's bridged word and receive books, a reader of the ring from a position, and the
// topic's publishing for what other hosts sent.
import { topicNative } from "../native/ffi.ts"
import { TopicConst } from "../native/topic-layout.ts"
import type { TopicBridgeHost } from "./bridge.ts"
import { encodeFilter } from "./codec.ts"
import { TopicClosedError } from "./errors.ts"
import type { TopicHeader } from "./header.ts"
import type { Subscription } from "./subscription.ts"
import type { Pointer } from "../runtime/index.ts"

/** What the bridge host needs of its topic (topic.ts gives it: a transport knows no Topic). */
export interface BridgedTopic {
  readonly name: string
  readonly ptr: Pointer
  readonly header: TopicHeader
  closed(): boolean
  /** TopicBridgeHost.publishEncoded, through the topic's publishing. */
  publishEncoded(encoded: Uint8Array): number
  /** TopicBridgeHost.publishLost, through the topic's publishing. */
  publishLost(type: Uint8Array, lost: number): void
  /** A subscriber with filter bytes, as sb_sub_open takes `at`. */
  subscribeAt(bytes: Uint8Array, text: string, queue: number, at: number): Subscription
}

/** The port's host side for one topic. */
export function bridgeHost(topic: BridgedTopic): TopicBridgeHost {
  const { header } = topic
  const setBridged = (at: number) => {
    if (!topic.closed()) header.setBridged(at)
  }
  return {
    name: topic.name,
    ringId: header.ringId,
    publishEncoded: (encoded) => topic.publishEncoded(encoded),
    publishLost: (type, lost) => topic.publishLost(type, lost),
    openReader(at) {
      const { bytes, text } = encodeFilter({})
      const sub = topic.subscribeAt(bytes, text, 1 << 16, TopicConst.FROM_AT - at)
      return {
        ready: () => sub.ready(),
        poll: (fn, max) => {
          const batch = sub.poll(max)
          batch.forEachEncoded(fn)
          return batch.count
        },
        get lagged() {
          return sub.lagged
        },
        restarted: sub.restarted,
        close: () => sub.close(),
      }
    },
    takeBridged: () => {
      const word = header.bridged()
      // the tail through C, whole: publishers move it meanwhile, and its two halves read apart can be 4 GiB off
      const last = { pid: header.bridgePid(), tail: topicNative.sb_topic_tail(topic.ptr) }
      header.setBridgePid(process.pid)
      const at = word > 0 ? word - 1 : last.tail // no bridge before: from the tail, and a successor from there too
      if (word === 0) setBridged(at)
      return { ...last, at }
    },
    setBridged: (at) => setBridged(at),
    readBook: (i) => (topic.closed() ? { bridge: 0, subject: 0, seq: 0, at: 0 } : header.readBook(i)),
    writeBook: (i, bridge, subject, seq, at) => {
      if (!topic.closed()) header.writeBook(i, { bridge, subject, seq, at })
    },
    filters: () => {
      if (topic.closed()) throw new TopicClosedError(`topic "${topic.name}" is closed`)
      return header.filters()
    },
  }
}
