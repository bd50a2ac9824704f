// The package entry, `slotbus`: the request/response core and the shared errors. Features have their own
// entries: slotbus/http, slotbus/events, slotbus/leases, slotbus/stdio.
export {
  BorrowedResponse,
  closeGracefully,
  failureResponse,
  nodeHandler,
  respond,
  SlotBus,
  SlotResponse,
  SlotWorker,
  SlotRequest,
  StreamedResponse,
  notifySystemd,
  selfCommand,
  instrument,
  superviseWorkers,
  traced,
  withCall,
  withSignal,
} from "./core/index.ts"
export { httpRoute, ReplaceError, Supervisor, SupervisorError, splitCommand, WorkerLogsError } from "./kit/index.ts"
export type {
  CloseGracefullyOptions,
  FetchTarget,
  NodeHandlerOptions,
  BusStats,
  ConnectOptions,
  ExposeOptions,
  FetchHandler,
  FetchOptions,
  IdleStrategy,
  LatencySummary,
  ListenOptions,
  Remote,
  RemoteOptions,
  RequestOptions,
  RpcCall,
  SlotHandler,
  SlotReply,
  SlotRequestInit,
  WorkerClosed,
  WorkerEvent,
  WorkerInfo,
  SuperviseWorkersOptions,
} from "./core/index.ts"
export type {
  ExitInfo,
  RestartOptions,
  SupervisedInstance,
  SupervisorEvents,
  SupervisorOptions,
  SupervisorState,
  WorkerLogsConfig,
  WorkerLogsOption,
} from "./kit/index.ts"
export * from "./errors.ts"
/** Thrown at import under a Node that cannot run slotbus, or when a Bun-only part is used under Node. */
export { UnsupportedRuntimeError } from "./runtime/index.ts"
