// stdio_bus's JSON configuration: { pools: [{ id, command, args, instances }], limits: { … } }, from a file or an object.
import { readFileSync } from "node:fs"
import { checkNumber, checkOptions, INSTANCES, optionNames, type OptionProblem } from "../kit/index.ts"
import { StdioConfigError } from "./errors.ts"

export interface PoolConfig {
  /** Unique name; requests pick a pool by it (the first pool is the default). */
  id: string
  /** The program to spawn (looked up on PATH). */
  command: string
  args: string[]
  /** How many copies run at once (default 1). */
  instances: number
  /** Working directory of the workers (extension; default: the bus's). */
  cwd?: string
  /** Extra environment variables for the workers (extension). */
  env?: Record<string, string>
  /** How a worker is told that a request it was sent is no longer waited for (extension; default "mcp"). */
  cancel: CancelProtocol
  /** "replay": each session's MCP handshake is sent again to a restarted worker before its next message (extension; default "none"). */
  initialize: InitializeReplay
  /**
   * When a reload's successor counts as ready (extension; default "ping"): "ping" once it answered a JSON-RPC `ping`
   * request (any answer, an error too); "spawned" as soon as it is spawned with its pipes open.
   */
  ready: ReadyCheck
}

/** "mcp": notifications/cancelled { requestId, reason }; "lsp": $/cancelRequest { id }; "none": nothing. */
export type CancelProtocol = "mcp" | "lsp" | "none"
const CANCEL_PROTOCOLS: readonly CancelProtocol[] = ["mcp", "lsp", "none"]
export type InitializeReplay = "replay" | "none"
const INITIALIZE_REPLAYS: readonly InitializeReplay[] = ["replay", "none"]
export type ReadyCheck = "ping" | "spawned"
const READY_CHECKS: readonly ReadyCheck[] = ["ping", "spawned"]

export interface LimitsConfig {
  /** Longest line (bytes) a worker or client may send; a worker going past it is killed and restarted. */
  max_input_buffer: number
  /** Bytes that may wait to be written to one worker (or client) before callers have to wait. */
  max_output_queue: number
  /** Restarts allowed within restart_window_sec before the pool is marked failed. */
  max_restarts: number
  restart_window_sec: number
  /** How long stop() lets in-flight requests finish before SIGTERM. */
  drain_timeout_sec: number
  /** How long a caller waits for a full output queue to drain before BackpressureError. */
  backpressure_timeout_sec: number
}

export interface StdioBusConfig {
  pools: PoolConfig[]
  limits: LimitsConfig
}

/** What a config file or object may leave out. */
export interface StdioBusConfigInput {
  pools: (Omit<PoolConfig, "args" | "instances" | "cancel" | "initialize" | "ready"> & {
    args?: string[]
    instances?: number
    cancel?: CancelProtocol
    initialize?: InitializeReplay
    ready?: ReadyCheck
  })[]
  limits?: Partial<LimitsConfig>
}

export const DEFAULT_LIMITS: LimitsConfig = {
  max_input_buffer: 1024 * 1024,
  max_output_queue: 4 * 1024 * 1024,
  max_restarts: 5,
  restart_window_sec: 60,
  drain_timeout_sec: 30,
  backpressure_timeout_sec: 60,
}

const fail = (field: string, reason: string): never => {
  throw new StdioConfigError(field, reason)
}
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const ROOT_SETTINGS = optionNames<StdioBusConfig>({ pools: true, limits: true })
const POOL_SETTINGS = optionNames<PoolConfig>({
  id: true,
  command: true,
  args: true,
  instances: true,
  cwd: true,
  env: true,
  cancel: true,
  initialize: true,
  ready: true,
})
const LIMITS: ReadonlySet<string> = new Set(Object.keys(DEFAULT_LIMITS))

/** The shared option check, reporting as the config always has: StdioConfigError with the field's path. */
function checkSettings(obj: Record<string, unknown>, known: ReadonlySet<string>, at: string, noun: string): void {
  checkOptions(obj, known, at || "stdio bus config", {
    noun,
    error: (p: OptionProblem) =>
      p.kind === "unknown"
        ? new StdioConfigError(
            at ? `${at}.${p.name}` : p.name!,
            `is not a known ${noun}${p.suggestion ? `; did you mean "${p.suggestion}"?` : ""} (known: ${p.known.join(", ")})`,
          )
        : new StdioConfigError(at || "(root)", p.message),
  })
}

/** Reads (a path) or checks (an object) a configuration and fills in the defaults. */
export function loadConfig(source: string | StdioBusConfigInput): StdioBusConfig {
  let raw: unknown = source
  if (typeof source === "string") {
    let text: string
    try {
      text = readFileSync(source, "utf8")
    } catch (e) {
      return fail("(file)", `cannot be read from ${source}: ${(e as Error).message}`)
    }
    try {
      raw = JSON.parse(text)
    } catch (e) {
      return fail("(file)", `${source} is not valid JSON: ${(e as Error).message}`)
    }
  }
  if (!isObject(raw)) return fail("(root)", "must be an object with pools and limits")
  checkSettings(raw, ROOT_SETTINGS, "", "setting")
  if (!Array.isArray(raw.pools) || raw.pools.length === 0)
    fail("pools", "must be a non-empty array of { id, command, args, instances }")
  const ids = new Set<string>()
  const pools = (raw.pools as unknown[]).map((p, i): PoolConfig => {
    const at = `pools[${i}]`
    if (!isObject(p)) return fail(at, "must be an object { id, command, args, instances }")
    checkSettings(p, POOL_SETTINGS, at, "setting")
    if (typeof p.id !== "string" || p.id === "") fail(`${at}.id`, "must be a non-empty string")
    const id = p.id as string
    if (ids.has(id)) fail(`${at}.id`, `repeats "${id}"; pool ids must be unique`)
    ids.add(id)
    if (typeof p.command !== "string" || p.command === "")
      fail(`${at}.command`, "must be a non-empty string (the program to run)")
    const args = p.args ?? []
    if (!Array.isArray(args) || args.some((a) => typeof a !== "string"))
      fail(`${at}.args`, "must be an array of strings")
    const instances = checkNumber(p.instances, {
      what: "instances",
      min: 1,
      max: INSTANCES.max,
      dflt: 1,
      error: (e) => new StdioConfigError(`${at}.instances`, e.reason),
    })
    if (p.cwd !== undefined && typeof p.cwd !== "string") fail(`${at}.cwd`, "must be a string")
    if (p.env !== undefined && (!isObject(p.env) || Object.values(p.env).some((v) => typeof v !== "string")))
      fail(`${at}.env`, "must be an object of string values")
    const cancel = p.cancel ?? "mcp"
    if (!CANCEL_PROTOCOLS.includes(cancel as CancelProtocol))
      fail(`${at}.cancel`, `must be one of "mcp", "lsp", "none", got ${JSON.stringify(cancel)}`)
    const initialize = p.initialize ?? "none"
    if (!INITIALIZE_REPLAYS.includes(initialize as InitializeReplay))
      fail(`${at}.initialize`, `must be "replay" or "none", got ${JSON.stringify(initialize)}`)
    const ready = p.ready ?? "ping"
    if (!READY_CHECKS.includes(ready as ReadyCheck))
      fail(`${at}.ready`, `must be "ping" or "spawned", got ${JSON.stringify(ready)}`)
    return {
      id,
      command: p.command as string,
      args: args as string[],
      instances,
      cwd: p.cwd as string | undefined,
      env: p.env as Record<string, string> | undefined,
      cancel: cancel as CancelProtocol,
      initialize: initialize as InitializeReplay,
      ready: ready as ReadyCheck,
    }
  })
  const limitsIn = raw.limits ?? {}
  if (!isObject(limitsIn)) return fail("limits", "must be an object")
  const limits = { ...DEFAULT_LIMITS }
  checkSettings(limitsIn, LIMITS, "limits", "limit")
  for (const [k, v] of Object.entries(limitsIn))
    limits[k as keyof LimitsConfig] = checkNumber(v, {
      what: k,
      min: k === "max_input_buffer" || k === "max_output_queue" ? 1 : 0, // bytes
      max: Number.MAX_VALUE,
      integer: !k.endsWith("_sec"),
      error: (e) => new StdioConfigError(`limits.${k}`, e.reason),
    })
  return { pools, limits }
}
