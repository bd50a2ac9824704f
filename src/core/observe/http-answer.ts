// A failed request as an HTTP answer, in one place: nodeHandler's failureResponse and the HTTP hub's proxy give
// the same status to the same failure (the hop-by-hop header set is the runtime room's, fetch-listener.ts).
import {
  BusClosedError,
  BusFullError,
  HeadTooLargeError,
  PayloadTooLargeError,
  RemoteError,
  SlotBusError,
  TimeoutError,
} from "../../errors.ts"

/** What a request's failure was: the `error` field of its JSON answer. */
export type Failure =
  | "timeout"
  | "unavailable"
  | "too-large"
  | "head-too-large"
  | "worker-error"
  | "bad-gateway"
  | "internal"

/** Each failure's status. */
export const FAILURE_STATUS: Readonly<Record<Failure, number>> = {
  timeout: 504,
  unavailable: 503,
  "too-large": 413,
  "head-too-large": 431, // Request Header Fields Too Large (RFC 6585)
  "worker-error": 500,
  "bad-gateway": 502,
  internal: 500,
}

/**
 * What `e` is: TimeoutError a timeout, BusFullError and BusClosedError unavailable, HeadTooLargeError a head too
 * large, any other PayloadTooLargeError too large, RemoteError (the worker threw) a worker error, WorkerGoneError and
 * every other SlotBusError a bad gateway; anything else internal.
 */
export function failureOf(e: unknown): Failure {
  if (e instanceof TimeoutError) return "timeout"
  if (e instanceof BusFullError || e instanceof BusClosedError) return "unavailable"
  if (e instanceof HeadTooLargeError) return "head-too-large"
  if (e instanceof PayloadTooLargeError) return "too-large"
  if (e instanceof RemoteError) return "worker-error"
  return e instanceof SlotBusError ? "bad-gateway" : "internal"
}

/** The JSON answer to `failure`: `{ error, ...fields }`, its status, and Retry-After: 1 when it is unavailable. */
export function failureAnswer(
  failure: Failure,
  fields: { name?: string; message: string },
  headers: Record<string, string> = {},
): Response {
  const retry = failure === "unavailable" ? { "retry-after": "1" } : {}
  return Response.json(
    { error: failure, ...fields },
    { status: FAILURE_STATUS[failure], headers: { ...headers, ...retry } },
  )
}
