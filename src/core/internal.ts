// The core's internal face, for the feature folders and the transports beside it (nats.js's internal_mod): the
// port a remote transport implements (remote.ts), the pieces of the wire several rooms reuse (byte helpers, the
// ready-body reader, the Pump) and the books' types. Users import the public face, core/index.ts, instead.
export { stackless } from "./response.ts"
export { ControlCallError, controlCall } from "./control-client.ts"
export type { ControlAnswer, ControlRequest } from "./control-client.ts"
export type { Pending, RequestPhase } from "./endpoint.ts"
export { Pump, tuning } from "./idle.ts"
export type { Parking } from "./idle.ts"
export { align8, checkWellFormed, toBytes } from "./codec.ts"
export { errorPairs } from "./stream-out.ts"
export { readyBody } from "./ready-body.ts"
export { streamWindow } from "./options.ts"
export { frameCharge } from "./remote.ts"
export type {
  RemoteAnswer,
  RemoteAnswerSink,
  RemoteCall,
  RemoteHubHost,
  RemoteLink,
  RemotePeer,
  RemoteRequest,
  RemoteStream,
  RemoteTransport,
  RemoteWorkerHost,
  SlotBytes,
  TransportOptions,
} from "./remote.ts"
