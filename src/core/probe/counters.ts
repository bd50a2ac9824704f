// What a bus counts (BusStats's counters), written by BusCounters only: the classes that see an event (the
// Dispatcher's observer, the endpoints, the Acceptor, the bus) call its method. Apart from observe.ts so that
// endpoint.ts's EndpointHost can name it without a circle.
import { TimeoutError } from "../../errors.ts"

/** What a bus counts (BusStats's counters), each written here only. */
export class BusCounters {
  requests = 0
  responses = 0
  errors = 0
  timeouts = 0
  cancels = 0
  refusedPeers = 0
  overCapPeers = 0
  protocolErrors = 0
  evictedWorkers = 0
  poisonRequests = 0
  internalErrors = 0
  acceptErrors = 0
  rejectedMessages = 0
  bytesOut = 0
  bytesIn = 0

  request() {
    this.requests++
  }
  response() {
    this.responses++
  }
  /** A request's caller gave it up (its signal; for bus.fetch, the client went away): no error. */
  cancel() {
    this.cancels++
  }
  /** A request failed, not by its caller: by timeout, or otherwise. */
  failure(err: unknown) {
    if (err instanceof TimeoutError) this.timeouts++
    else this.errors++
  }
  /** A peer was refused: for its uid (`overCap` false), or because maxWorkers or maxWorkersPerUid was reached. */
  refusedPeer(overCap: boolean) {
    if (overCap) this.overCapPeers++
    else this.refusedPeers++
  }
  protocolError() {
    this.protocolErrors++
  }
  evictedWorker() {
    this.evictedWorkers++
  }
  /** An idempotent request's second worker died holding it too (PoisonRequestError). */
  poisonRequest() {
    this.poisonRequests++
  }
  internalError() {
    this.internalErrors++
  }
  acceptError() {
    this.acceptErrors++
  }
  rejectedMessage() {
    this.rejectedMessages++
  }
  sentBytes(n: number) {
    this.bytesOut += n
  }
  receivedBytes(n: number) {
    this.bytesIn += n
  }
}
