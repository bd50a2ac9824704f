// JSON-RPC on the wire: parse a line keeping ids a JS number cannot hold exact, and the error code of an error.
// Separate because both the client side (ingest) and the worker side (fromWorker) use them.
import { BusClosedError, TimeoutError, WorkerGoneError } from "../core/index.ts"
import { PoolFailedError } from "../core/index.ts"
import { BackpressureError, BusErrorCode, JsonRpcError } from "./errors.ts"
import type { JsonRpcId, RawJSON } from "./types.ts"

export function codeOf(e: Error): number {
  if (e instanceof WorkerGoneError) return BusErrorCode.WorkerGone
  if (e instanceof PoolFailedError) return BusErrorCode.PoolFailed
  if (e instanceof BackpressureError) return BusErrorCode.Backpressure
  if (e instanceof BusClosedError) return BusErrorCode.BusStopping
  if (e instanceof TimeoutError) return BusErrorCode.Timeout
  if (e instanceof JsonRpcError) return e.code
  return -32603
}

/** JSON.parse, except that a numeric id a JS number cannot hold exactly keeps its JSON text (as JSON.rawJSON). */
export function parseMessage(line: string): unknown {
  const msg = JSON.parse(line)
  if (inexact(msg?.id)) msg.id = rawMemberOf(line, [], "id")
  return msg
}

/** A number JSON.parse did not keep exactly (past 2^53, a fraction, -0): its JSON text is the id. */
export function inexact(v: unknown): v is number {
  return typeof v === "number" && (!Number.isSafeInteger(v) || Object.is(v, -0))
}

/** The JSON text of member `key` of the object at `path` in `line`, as JSON.rawJSON. */
export function rawMemberOf(line: string, path: string[], key: string): RawJSON {
  const sources = new Map<unknown, string>()
  let root: unknown
  // The reviver sees every member's source text, with the object holding it.
  JSON.parse(line, function (this: unknown, k: string, value: unknown, context?: { source?: string }) {
    if (k === key && context?.source !== undefined) sources.set(this, context.source)
    if (k === "") root = value
    return value
  } as (key: string, value: unknown) => unknown)
  let holder = root
  for (const k of path) holder = (holder as Record<string, unknown> | null)?.[k]
  return (JSON as unknown as { rawJSON(text: string): RawJSON }).rawJSON(sources.get(holder) ?? "null")
}

/**
 * The key a client's request is found by when its own cancel names it: a number or string id as it is, an id kept
 * as JSON text (RawJSON) as "\0" and its text. A string id starting with "\0" gets one more "\0", so it never
 * shares a key with a RawJSON id.
 */
export function idKey(id: unknown): string | number | undefined {
  if (typeof id === "number") return id
  if (typeof id === "string") return id.charCodeAt(0) === 0 ? `\0${id}` : id
  if (typeof id === "object" && id !== null && "rawJSON" in id) return `\0${(id as RawJSON).rawJSON}`
  return undefined
}

/** The id a waiting request was written with, back from its key (idKey). */
export function idOf(key: string | number): JsonRpcId {
  if (typeof key === "number") return key
  if (key.charCodeAt(0) !== 0) return key
  return key.charCodeAt(1) === 0
    ? key.slice(1)
    : (JSON as unknown as { rawJSON(t: string): RawJSON }).rawJSON(key.slice(1))
}
