// slotbus/events: cross-process filtered pub/sub over shared memory (docs/PROTOCOL.md §8).
export { Topic } from "./topic.ts"
export type { BindingRule, DurableSubscribeOptions, PublishInit, TopicOptions, TopicStats } from "./topic.ts"
export { DurableSubscription } from "./durable.ts"
export type { TopicBridgeStats } from "../nats/index.ts" // what topic.bridgeStats() returns (types only: nothing loads)
export type { CreateMode } from "../kit/index.ts"
export { Subscription, TopicEvent, EventBatch } from "./subscription.ts"
export type { SubscribeOptions } from "./subscription.ts"
export type { EventData, Routing, TopicFilter } from "./codec.ts"
export { TopicClosedError, TopicFullError, TopicStreamError } from "./errors.ts"
export { AlreadyExistsError, NotFoundError, SettingsMismatchError } from "../errors.ts"
