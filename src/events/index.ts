// slotbus/events: cross-process filtered pub/sub over shared memory (docs/PROTOCOL.md §8).
export { Topic } from "./topic.ts"
export type { BindingRule, DurableSubscribeOptions, PublishInit, TopicOptions } from "./options.ts"
export type { TopicStats } from "./status.ts"
export { DurableSubscription } from "./durable.ts"
export type { TopicBridgeStats, TopicRemote } from "./bridge.ts"
export type { CreateMode } from "../kit/index.ts"
export { Subscription } from "./subscription.ts"
export { TopicEvent, EventBatch } from "./event.ts"
export type { ReceiveOptions, SubscribeOptions } from "./subscription.ts"
export type { EventData, Routing, TopicFilter } from "./codec.ts"
export { TopicClosedError, TopicFullError, TopicStreamError } from "./errors.ts"
export {
  AlreadyExistsError,
  ClosedError,
  FullError,
  NotFoundError,
  SettingsMismatchError,
  SystemError,
} from "../errors.ts"
