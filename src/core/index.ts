// The core's public face (request/response): what the package entry `slotbus` exports, and what feature folders
// (src/http, src/events, …) use of it as any user would. What features and transports need beyond it is the core's
// internal face, core/internal.ts; what rooms share that knows nothing of slots is in src/kit (kit/index.ts).
export { SlotBus } from "./bus.ts"
export { BorrowedResponse, SlotResponse, StreamedResponse } from "./response.ts"
export type { BusStats, LatencySummary } from "./stats.ts"
export type { FetchOptions, ListenOptions, RemoteOptions, RequestOptions, SlotRequestInit } from "./options.ts"
export type { WorkerEvent, WorkerInfo } from "./endpoint.ts"
export { SlotWorker, SlotRequest } from "./worker.ts"
export type { ConnectOptions, ExposeOptions, FetchHandler, SlotHandler, SlotReply, WorkerClosed } from "./worker.ts"
export { withCall, withSignal } from "./rpc.ts"
export type { Remote, RpcCall } from "./rpc.ts"
export type { IdleStrategy } from "./idle.ts"
export { superviseWorkers } from "./supervise-workers.ts"
export type { SuperviseWorkersOptions } from "./supervise-workers.ts"
export { selfCommand } from "./self-command.ts"
export type { RemoteTransport } from "./remote.ts"
export * from "../errors.ts"
