// slotbus/events: cross-process filtered pub/sub over shared memory. The topic itself lives in the core
// (src/core/topic/) because the HTTP hub uses it too; this entry is its public face.
export { Topic, Subscription, TopicEvent, EventBatch, TopicClosedError, TopicFullError } from "../core/index.ts"
export type {
  BindingRule,
  PublishInit,
  TopicOptions,
  TopicStats,
  SubscribeOptions,
  EventData,
  Routing,
  TopicFilter,
} from "../core/index.ts"
