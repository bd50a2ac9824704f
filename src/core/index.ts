// The core's surface (request/response): the one path feature folders (src/http, src/events, …) import it from.
// What rooms share that knows nothing of slots is in src/kit (kit/index.ts).
export { SlotBus } from "./bus.ts"
export { BorrowedResponse, SlotResponse, StreamedResponse, stackless } from "./response.ts"
export type { BusStats } from "./stats.ts"
export type { FetchOptions, ListenOptions, RemoteOptions, RequestOptions, SlotRequestInit } from "./options.ts"
export type { Pending, RequestPhase, WorkerEvent, WorkerInfo } from "./link.ts"
export { SlotWorker, SlotRequest } from "./worker.ts"
export type { ConnectOptions, ExposeOptions, FetchHandler, SlotHandler, SlotReply, WorkerClosed } from "./worker.ts"
export { withSignal } from "./rpc.ts"
export type { Remote } from "./rpc.ts"
export { Pump, tuning } from "./idle.ts"
export type { IdleStrategy, Parking } from "./idle.ts"
export type { LatencySummary } from "./stats.ts"
export * from "../errors.ts"
export { superviseWorkers } from "./supervise-workers.ts"
export type { SuperviseWorkersOptions } from "./supervise-workers.ts"
export { checkWellFormed } from "./codec.ts"
export { frameCharge } from "./remote.ts"
export { errorPairs } from "./stream-out.ts"
export { align8, toBytes } from "./codec.ts"
export { readyBody } from "./ready-body.ts"
export type {
  RemoteAnswer,
  RemoteAnswerSink,
  RemoteStream,
  RemoteHubHost,
  RemoteLink,
  RemoteCall,
  RemotePeer,
  RemoteRequest,
  RemoteTransport,
  SlotBytes,
  RemoteWorkerHost,
  TransportOptions,
} from "./remote.ts"
