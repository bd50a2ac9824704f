// What the hub counts: a leaf module, so every part of the hub can count without importing the health report.
export interface HubCounters {
  requests: number
  responses: number
  notFound: number
  methodNotAllowed: number
  tooLarge: number
  unavailable: number
  badGateway: number
  timeouts: number
  workerErrors: number
  clientAborts: number
  unauthorized: number
  forbidden: number
  registrations: number
  conflicts: number
  evictions: number
  /**
   * Responses whose body came from the worker in more than one piece: streamed (larger than a stream window, or
   * produced over time), or pulled in chunks from a worker offered no window. A body that came in one piece (the
   * usual small answer: whole in the slot, or one DATA frame) is not counted, though the hub passes every body on
   * as a stream.
   */
  streamedResponses: number
  sseOpened: number
  sseClosed: number
  sseDropped: number
  sseIdleClosed: number
  /** Resuming clients of a durable hub refused over maxResumingClients (503). */
  resumesRefused: number
  emitted: number
  pushed: number
}

export function newCounters(): HubCounters {
  return {
    requests: 0,
    responses: 0,
    notFound: 0,
    methodNotAllowed: 0,
    tooLarge: 0,
    unavailable: 0,
    badGateway: 0,
    timeouts: 0,
    workerErrors: 0,
    clientAborts: 0,
    unauthorized: 0,
    forbidden: 0,
    registrations: 0,
    conflicts: 0,
    evictions: 0,
    streamedResponses: 0,
    sseOpened: 0,
    sseClosed: 0,
    sseDropped: 0,
    sseIdleClosed: 0,
    resumesRefused: 0,
    emitted: 0,
    pushed: 0,
  }
}
