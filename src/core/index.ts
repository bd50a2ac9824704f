// The core's public surface: the one path feature folders (src/http, src/events, …) import from.
export { BorrowedResponse, SlotBus, SlotResponse } from "./bus.ts"
export type { BusStats, ListenOptions, RequestOptions, RequestPhase, SlotRequestInit, WorkerEvent, WorkerInfo } from "./bus.ts"
export { SlotWorker, SlotRequest } from "./worker.ts"
export type { ConnectOptions, SlotHandler, SlotReply, WorkerClosed } from "./worker.ts"
export { Pump, tuning } from "./idle.ts"
export type { IdleStrategy } from "./idle.ts"
export type { LatencySummary } from "./stats.ts"
export * from "../errors.ts"
