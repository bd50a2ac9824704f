// JSON-RPC on the wire: parse a line keeping ids a JS number cannot hold exact, and the error code of an error.
// Separate because both the client side (ingest) and the worker side (fromWorker) use them.
import { BusClosedError, TimeoutError, WorkerGoneError } from "../core/index.ts"
import { PoolFailedError } from "../core/index.ts"
import { BackpressureError, BusErrorCode, JsonRpcError } from "./errors.ts"
import type { RawJSON } from "./types.ts"

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
  const id = msg?.id
  if (typeof id === "number" && (!Number.isSafeInteger(id) || Object.is(id, -0))) msg.id = rawIdOf(line)
  return msg
}

function rawIdOf(line: string): RawJSON {
  const sources = new Map<unknown, string>()
  let top = "null"
  // The reviver sees every member's source text; the top-level "id" is the one whose holder is the root.
  JSON.parse(line, function (this: unknown, key: string, value: unknown, context?: { source?: string }) {
    if (key === "id" && context?.source !== undefined) sources.set(this, context.source)
    else if (key === "" && sources.has(value)) top = sources.get(value)!
    return value
  } as (key: string, value: unknown) => unknown)
  return (JSON as unknown as { rawJSON(text: string): RawJSON }).rawJSON(top)
}
