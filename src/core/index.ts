// The core's public surface: the one path feature folders (src/http, src/events, …) import from.
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
export { Backoff } from "./backoff.ts"
export type { BackoffOptions } from "./backoff.ts"
export { Emitter } from "./emitter.ts"
export type { IdleStrategy, Parking } from "./idle.ts"
export type { LatencySummary } from "./stats.ts"
export { STATUS, ago, readSection, section } from "./status.ts"
export type { StatusPart, StatusSection, StatusSource, StatusTable, StatusValue } from "./status.ts"
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
export { checkWellFormed } from "./codec.ts"
export { checkCreate, createRefusal, settingMismatch } from "./lifecycle.ts"
export type { CreateMode } from "./lifecycle.ts"
export { checkOptions, didYouMean, madeBy, optionNames } from "./option-check.ts"
export type { OptionProblem, OptionRules } from "./option-check.ts"
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
export { frameCharge, loadRemote, setRemoteLoader } from "./remote.ts"
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
