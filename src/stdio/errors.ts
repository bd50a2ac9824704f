// The stdio bus's typed errors; TimeoutError, WorkerGoneError and BusClosedError come from the core.
import { PoolFailedError, SlotBusError } from "../core/index.ts"
import { ReplaceError } from "../kit/index.ts"

/** The configuration is invalid: `field` names the setting ("pools[1].instances"), `reason` says what is wrong. */
export class StdioConfigError extends SlotBusError {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`stdio bus config: ${field} ${reason}`)
  }
}

/** A lifecycle call came in the wrong state: `expected` lists the states it needs, `actual` is the bus's state. */
export class InvalidStateError extends SlotBusError {
  constructor(
    readonly operation: string,
    readonly expected: readonly string[],
    readonly actual: string,
  ) {
    super(
      `${operation} needs the bus to be ${expected.join(" or ")}, but it is ${actual}${actual === "created" || actual === "stopped" ? ": call start() first" : ""}`,
    )
  }
}

/** The worker answered with a JSON-RPC error object. */
export class JsonRpcError extends SlotBusError {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message)
  }
}

/** More than max_output_queue bytes waited for a worker for longer than backpressure_timeout_sec: it is not reading. */
export class BackpressureError extends SlotBusError {}

/** A stdio pool gave up: more than max_restarts crashes within restart_window_sec, or a worker kept failing to start. */
export function poolFailed(pool: string, reason: string): PoolFailedError {
  return new PoolFailedError(`pool "${pool}" failed: ${reason}; fix the worker and start the bus again`, pool, reason)
}

/**
 * `bus.reload()` stopped: a successor was not ready (it exited, did not answer its ready check in time, or the bus
 * stopped). The instances not yet replaced keep serving with their old processes. The Supervisor's ReplaceError
 * with the `pool`; `why` is that error, or what kept the reload from starting (`index` -1).
 */
export class ReloadError extends ReplaceError {
  /** The instance whose successor failed, or -1 when the reload could not start (the same as `index`). */
  readonly instance: number

  constructor(
    readonly pool: string,
    why: ReplaceError | string,
    options?: ErrorOptions,
  ) {
    const r = typeof why === "string" ? null : why
    super("reload", r?.index ?? -1, r?.pid ?? 0, r?.successor ?? 0, r?.reason ?? (why as string), r?.oldExit, options)
    this.message = `reload of pool "${pool}" stopped: ${r?.message ?? why}`
    this.instance = this.index
  }
}

/** A pool's command could not be spawned at all (missing program, bad cwd). */
export class SpawnError extends SlotBusError {}

/** `listen(address)` could not take its address: the message names it and what is there (a file, a directory, a
 * live socket, one it cannot probe or remove; a port in use), or the token file it could not write; nothing there
 * was removed. */
export class ListenError extends SlotBusError {}

/** What `bind` returns, or its failure (a port in use, a directory that is not there) as a ListenError naming the
 * address (Bun throws, Node rejects). */
export async function binding<T>(address: string, bind: () => T | Promise<T>): Promise<T> {
  try {
    return await bind()
  } catch (e) {
    if (e instanceof ListenError) throw e
    const { code, message } = e as { code?: string; message?: string }
    const why =
      code === "EADDRINUSE"
        ? "the address is in use"
        : code === "ENOENT"
          ? "its directory does not exist"
          : code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : "cannot listen there"
    throw new ListenError(`listen ${address}: ${why} (${code ? `${code}: ` : ""}${message})`, { cause: e })
  }
}

/** JSON-RPC error codes the bus answers with itself (the -32000..-32099 range is for implementations). */
export const BusErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  WorkerGone: -32001,
  PoolFailed: -32002,
  Backpressure: -32003,
  UnknownPool: -32004,
  BusStopping: -32005,
  Timeout: -32006,
  /** A worker's request its client cannot take (answered to the worker). */
  Internal: -32603,
} as const
