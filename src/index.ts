// The package entry, `slotbus`: the request/response core and the shared errors. Features have their own
// entries: slotbus/http, slotbus/events, slotbus/leases, slotbus/stdio.
export {
  BorrowedResponse,
  SlotBus,
  SlotResponse,
  SlotWorker,
  SlotRequest,
  Supervisor,
  SupervisorError,
  PoolFailedError,
  superviseWorkers,
  splitCommand,
} from "./core/index.ts"
export type {
  BusStats,
  ConnectOptions,
  FetchHandler,
  IdleStrategy,
  LatencySummary,
  ListenOptions,
  RequestOptions,
  SlotHandler,
  SlotReply,
  SlotRequestInit,
  WorkerClosed,
  WorkerEvent,
  WorkerInfo,
  ExitInfo,
  SupervisedInstance,
  SupervisorEvents,
  SupervisorOptions,
  SupervisorState,
  SuperviseWorkersOptions,
} from "./core/index.ts"
export * from "./errors.ts"
