// The package entry, `slotbus`: the request/response core and the shared errors. Features have their own
// entries: slotbus/http, slotbus/events, slotbus/leases, slotbus/stdio.
export { BorrowedResponse, SlotBus, SlotResponse, SlotWorker, SlotRequest } from "./core/index.ts"
export type {
  BusStats, ConnectOptions, IdleStrategy, LatencySummary, ListenOptions, RequestOptions, SlotHandler, SlotReply,
  SlotRequestInit, WorkerClosed, WorkerEvent, WorkerInfo,
} from "./core/index.ts"
export * from "./errors.ts"
