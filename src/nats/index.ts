// Workers on other hosts over NATS (docs/PROTOCOL.md §10), and topics across hosts (§11): loaded only for a bus,
// worker or topic given a `nats` option.
import type { RemoteTransport } from "../core/index.ts"
import { serveHub } from "./hub.ts"
import { serveWorker } from "./worker.ts"

export const transport: RemoteTransport = { serveHub, serveWorker }
export { cover, startTopicBridge, topicSubjects, typeOfSubject } from "./topic-bridge.ts"
export type { BridgeReader, TopicBridge, TopicBridgeHost, TopicBridgeStats } from "./topic-bridge.ts"
