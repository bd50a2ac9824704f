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

/**
 * JSON.parse, except that a number JSON.stringify would not write back as it is written (9007199254740993,
 * 12345678901234567890, 0.30000000000000001, 1e400, 1.50), anywhere in the message, keeps its JSON text (as
 * JSON.rawJSON): an id, a cancel's requestId, a progressToken, params and results all pass the bus as written. A
 * message without a fraction, -0 or an integer past 2^53 costs one plain JSON.parse and a walk over its values;
 * one with such a number is parsed again, with a reviver that sees each number's text. (An integer written as 1.0
 * or 1e2 passes as 1 or 100: the same value.)
 */
export function parseMessage(line: string): unknown {
  const msg: unknown = JSON.parse(line)
  return holdsInexact(msg) ? JSON.parse(line, asWritten as Reviver) : msg
}

/** Whether a parsed value holds a number whose JSON text JSON.parse may not have kept (inexact()), or kept it. */
export function holdsInexact(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return inexact(v)
  if ("rawJSON" in v) return true
  if (Array.isArray(v)) {
    for (const item of v) if (typeof item === "object" ? holdsInexact(item) : inexact(item)) return true
    return false
  }
  for (const k in v) {
    const item = (v as Record<string, unknown>)[k]
    if (typeof item === "object" ? holdsInexact(item) : inexact(item)) return true
  }
  return false
}

type Reviver = (key: string, value: unknown) => unknown
const rawJSON = (text: string) => (JSON as unknown as { rawJSON(t: string): RawJSON }).rawJSON(text)

function asWritten(_key: string, value: unknown, context?: { source?: string }): unknown {
  return typeof value === "number" && context?.source !== undefined && String(value) !== context.source
    ? rawJSON(context.source)
    : value
}

/** A number JSON.parse may not have kept as written (past 2^53, a fraction, -0, 1e400). */
export function inexact(v: unknown): v is number {
  return typeof v === "number" && (!Number.isSafeInteger(v) || Object.is(v, -0))
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
  return key.charCodeAt(1) === 0 ? key.slice(1) : rawJSON(key.slice(1))
}
