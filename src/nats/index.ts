// Workers on other hosts over NATS (docs/PROTOCOL.md §10), topics across hosts (§11) and leases across hosts on
// JetStream KV (§12): loaded only for a bus, worker, topic or contest given a `nats` option.
import type { RemoteTransport } from "../core/index.ts"
import { serveHub } from "./hub.ts"
import { serveWorker } from "./worker.ts"

export const transport: RemoteTransport = { serveHub, serveWorker }
export { bucketOf, keyOf, marginFor, nextToken, openKvLeases } from "./kv-lease.ts"
export type { KvClaim, KvClaimOutcome, KvHolder, KvLeaseOptions, KvLeaseTable } from "./kv-lease.ts"
export { cover, startTopicBridge, topicSubjects, typeOfSubject } from "./topic-bridge.ts"
export type { BridgeReader, TopicBridge, TopicBridgeHost, TopicBridgeStats, TopicStreamState } from "./topic-bridge.ts"
export { StreamUnusable, streamOf } from "./topic-stream.ts"
export { explainNats } from "./explain.ts"
export type { StreamFeed, TopicStreamLimits } from "./topic-stream.ts"
