// The events room's face for the transports that implement its port (src/nats): the bridge's interfaces and the
// error a durable topic's stream fails with. Users import slotbus/events instead.
export { TOPIC_PORT } from "./bridge.ts"
export type {
  BridgeFilter,
  BridgeReader,
  StreamFeed,
  TopicBridge,
  TopicBridgeHost,
  TopicBridgeStats,
  TopicRemote,
  TopicStreamLimits,
  TopicStreamState,
} from "./bridge.ts"
export { TopicStreamError } from "./errors.ts"
// The one routing check, for the HTTP worker's emit that goes by POST rather than through a topic.
export { checkRouting } from "./codec.ts"
