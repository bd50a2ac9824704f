// The core's public face (request/response): what the package entry `slotbus` exports, and what feature folders
// (src/http, src/events, …) use of it as any user would. What features and transports need beyond it is the core's
// internal face, core/internal.ts; what rooms share that knows nothing of slots is in src/kit (kit/index.ts).
export { SlotBus } from "./hub/bus.ts"
export { BorrowedResponse, respond, SlotResponse, StreamedResponse } from "./endpoint/response.ts"
export type { BusStats, LatencySummary } from "./observe/stats.ts"
export type { FetchOptions, ListenOptions, RemoteOptions, RequestOptions, SlotRequestInit } from "./hub/options.ts"
export type { WorkerEvent, WorkerInfo } from "./endpoint/endpoint.ts"
export { SlotWorker, SlotRequest } from "./worker/worker.ts"
export type {
  ConnectOptions,
  ExposeOptions,
  FetchHandler,
  SlotHandler,
  SlotReply,
  WorkerClosed,
} from "./worker/worker.ts"
export { withCall, withSignal } from "./rpc/rpc.ts"
export { instrument, traced } from "./observe/serve-span.ts"
export type { Remote, RpcCall } from "./rpc/rpc.ts"
export type { IdleStrategy } from "./wire/idle-strategy.ts"
export { superviseWorkers } from "./hub/supervise-workers.ts"
export { closeGracefully, type CloseGracefullyOptions } from "./hub/close-gracefully.ts"
export { failureResponse, nodeHandler, type FetchTarget, type NodeHandlerOptions } from "./hub/node-handler.ts"
export type { SuperviseWorkersOptions } from "./hub/supervise-workers.ts"
export { selfCommand } from "./ops/self-command.ts"
export { notifySystemd } from "./ops/sd-notify.ts"
export type { RemoteTransport } from "./wire/remote.ts"
export * from "../errors.ts"
