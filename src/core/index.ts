// The core's public surface: the one path feature folders (src/http, src/events, …) import from.
export { BorrowedResponse, SlotBus, SlotResponse } from "./bus.ts"
export type {
  BusStats,
  ListenOptions,
  RequestOptions,
  RequestPhase,
  SlotRequestInit,
  WorkerEvent,
  WorkerInfo,
} from "./bus.ts"
export { SlotWorker, SlotRequest } from "./worker.ts"
export type { ConnectOptions, FetchHandler, SlotHandler, SlotReply, WorkerClosed } from "./worker.ts"
export { Pump, tuning } from "./idle.ts"
export { Backoff } from "./backoff.ts"
export type { BackoffOptions } from "./backoff.ts"
export { Emitter } from "./emitter.ts"
export type { IdleStrategy } from "./idle.ts"
export type { LatencySummary } from "./stats.ts"
export * from "../errors.ts"
export { Supervisor, SupervisorError, superviseWorkers, splitCommand } from "./supervisor.ts"
export type {
  SupervisorOptions,
  SupervisorEvents,
  SupervisedInstance,
  SupervisorState,
  SuperviseWorkersOptions,
  ExitInfo,
} from "./supervisor.ts"
// Topics (docs/PROTOCOL.md §8): public as slotbus/events; here so the HTTP hub can use them too.
export { Topic } from "./topic/topic.ts"
export type { BindingRule, PublishInit, TopicOptions, TopicStats } from "./topic/topic.ts"
export { Subscription, TopicEvent, EventBatch } from "./topic/subscription.ts"
export type { SubscribeOptions } from "./topic/subscription.ts"
export type { EventData, Routing, TopicFilter } from "./topic/codec.ts"
export { TopicClosedError, TopicFullError } from "./topic/errors.ts"
export { longTimeout, sleep, MAX_TIMER_MS } from "./timers.ts"
export type { LongTimer } from "./timers.ts"
export {
  defaultTokenPath,
  newToken,
  readCheckedToken,
  removeTokenFile,
  sameToken,
  writeTokenFile,
} from "./token-file.ts"
