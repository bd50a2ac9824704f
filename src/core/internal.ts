// The core's internal face, for the feature folders and the transports beside it (nats.js's internal_mod): the
// port a remote transport implements (remote.ts), the pieces of the wire several rooms reuse (byte helpers, the
// ready-body reader, the Pump) and the books' types. Users import the public face, core/index.ts, instead.
export { oneChunk, stackless } from "./endpoint/response.ts"
export { ControlCallError, controlCall } from "./ops/control-client.ts"
export type { ControlAnswer, ControlRequest } from "./ops/control-client.ts"
export type { Pending, RequestPhase } from "./endpoint/endpoint.ts"
export { idler } from "./wire/idle-strategy.ts"
export { pumpTurns } from "./wire/loop-probe.ts"
export { Pump } from "./wire/pump.ts"
export { heldLate } from "./endpoint/response.ts"
export type { Parking } from "./wire/pump.ts"
export { align8, checkWellFormed, chunkBytes } from "./wire/codec.ts"
export { errorPairs } from "./worker/stream-out.ts"
export { readyBody } from "./worker/ready-body.ts"
export { closeTimeoutMs } from "./worker/options.ts"
export { streamWindow } from "./hub/options.ts"
export { bodyUpTo, HeldBodies } from "./hub/fetch-body.ts"
export { type Failure, failureAnswer, failureOf } from "./observe/http-answer.ts"
export { frameCharge } from "./wire/remote.ts"
export type {
  Answer,
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
} from "./wire/remote.ts"
export { routedSpan } from "./probe/trace.ts"
export { frontIndexOf } from "./hub/bus.ts"
export { Crowd, crowdTogether } from "./hub/crowd.ts"
