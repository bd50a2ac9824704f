// The MCP HTTP handler's options, read and checked once, and what it needs of the bus.
import { checkNumber, checkOptions, MAX_TIMER_MS, optionNames } from "../kit/index.ts"
import type { HttpGuards } from "./mcp-http-checks.ts"
import type { BusClient, BusState } from "./types.ts"

export interface McpHttpOptions {
  /** The pool served (default: the configuration's first). */
  pool?: string
  /** Origins allowed besides none and loopback ones ("http://localhost:5173" is allowed already), or true for any. */
  allowedOrigins?: readonly string[] | true
  /** Host names allowed besides localhost, 127.0.0.1 and [::1] ("mcp.example.com"), or true for any. */
  allowedHosts?: readonly string[] | true
  /** Sessions at once per instance of the pool (default 100): an initialize past instances × this ends the session
   * idle longest (nothing in flight, no GET stream), or gets a 503 when every session is busy. */
  maxSessionsPerInstance?: number
  /** A session with nothing in flight and no open stream for this long ends (default 1 800 000 ms); then 404. */
  idleTimeoutMs?: number
  /** Bytes of one POST body (default the bus's max_input_buffer); more gets a 413. */
  maxBodyBytes?: number
  /** Answer requests with application/json even when the client accepts text/event-stream (no progress then). */
  jsonResponse?: boolean
  /** An SSE comment this often on every open stream, for proxies that cut a quiet response (default 15 000 ms; at most
   * 2^31 − 1, a timer's limit). */
  sseKeepAliveMs?: number
  /** Bytes of SSE events each session keeps for a client that resumes with Last-Event-ID (default 262 144). */
  replayBufferBytes?: number
  /** Requests must carry `Authorization: Bearer <this>` (401 otherwise); default none. */
  bearerToken?: string
  /** How long a request whose SSE connection broke waits for the client to resume it before it is cancelled (default
   * 30 000 ms; at most 2^31 − 1, a timer's limit). */
  resumeWindowMs?: number
}

const OPTIONS = optionNames<McpHttpOptions>({
  pool: true,
  allowedOrigins: true,
  allowedHosts: true,
  maxSessionsPerInstance: true,
  idleTimeoutMs: true,
  maxBodyBytes: true,
  jsonResponse: true,
  sseKeepAliveMs: true,
  replayBufferBytes: true,
  resumeWindowMs: true,
  bearerToken: true,
})

/** What the handler needs of the bus (StdioBus has it). */
export interface McpHttpHost {
  readonly state: BusState
  readonly limits: { readonly max_input_buffer: number; readonly max_output_queue: number }
  readonly config: { readonly pools: readonly { readonly id: string; readonly instances: number }[] }
  attachClient(deliver: BusClient["deliver"]): BusClient & { close(): void }
  ingest(client: BusClient, line: string): Promise<void>
}

/** The options read and checked, with the pool's figures. */
export interface McpHttpSettings {
  readonly guards: HttpGuards
  readonly poolId: string
  /** The pool's id when it is not the first (then named on each message, as an NDJSON client names it). */
  readonly pool: string | undefined
  readonly maxSessions: number
  readonly idleMs: number
  readonly maxBody: number
  readonly jsonOnly: boolean
  readonly keepAliveMs: number
  readonly replayBytes: number
  /** Bytes an SSE connection may have waiting for its client before it is cut off (the bus's max_output_queue, at
   * least the replay buffer: a resumption's replay always fits). */
  readonly maxQueued: number
  readonly resumeMs: number
  readonly token: string | null
}

export function mcpHttpSettings(host: McpHttpHost, options: McpHttpOptions): McpHttpSettings {
  const where = "stdio bus MCP HTTP handler"
  checkOptions(options, OPTIONS, where)
  const pools = host.config.pools
  const pool = options.pool === undefined ? pools[0] : pools.find((p) => p.id === options.pool)
  if (!pool)
    throw new TypeError(`${where}: unknown pool ${JSON.stringify(options.pool)}; pools: ${pools.map((p) => p.id)}`)
  const token = options.bearerToken ?? null
  if (token !== null && (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token)))
    throw new TypeError(`${where}: bearerToken must be a non-empty string of visible ASCII characters`)
  const perInstance = checkNumber(options.maxSessionsPerInstance, {
    what: "maxSessionsPerInstance",
    where,
    min: 1,
    dflt: 100,
  })
  const replayBytes = checkNumber(options.replayBufferBytes, { what: "replayBufferBytes", where, dflt: 262_144 })
  if (options.jsonResponse !== undefined && typeof options.jsonResponse !== "boolean")
    throw new TypeError(`${where}: jsonResponse must be a boolean, got ${typeof options.jsonResponse}`)
  return {
    guards: {
      allowedOrigins: allowed(options.allowedOrigins, "allowedOrigins", "https://app.example", where),
      allowedHosts: allowed(options.allowedHosts, "allowedHosts", "mcp.example.com", where),
    },
    poolId: pool.id,
    pool: pool === pools[0] ? undefined : pool.id,
    maxSessions: perInstance * pool.instances,
    idleMs: checkNumber(options.idleTimeoutMs, {
      what: "idleTimeoutMs",
      where,
      min: 1,
      max: Infinity,
      dflt: 1_800_000,
    }),
    maxBody: checkNumber(options.maxBodyBytes, {
      what: "maxBodyBytes",
      where,
      min: 1,
      dflt: host.limits.max_input_buffer,
    }),
    jsonOnly: options.jsonResponse === true,
    keepAliveMs: checkNumber(options.sseKeepAliveMs, {
      what: "sseKeepAliveMs",
      where,
      min: 1,
      max: MAX_TIMER_MS,
      dflt: 15_000,
    }),
    replayBytes,
    maxQueued: Math.max(host.limits.max_output_queue, replayBytes),
    resumeMs: checkNumber(options.resumeWindowMs, { what: "resumeWindowMs", where, max: MAX_TIMER_MS, dflt: 30_000 }),
    token,
  }
}

/**
 * An allowedOrigins or allowedHosts option: true, or an array of strings, lower-cased (a name is matched whole, in
 * any case). A string alone is refused: `includes` on it matched any part of it ("https://mcp.example.co").
 */
function allowed(value: unknown, what: string, example: string, where: string): readonly string[] | true {
  if (value === undefined) return []
  if (value === true) return true
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.map((v) => v.toLowerCase())
  const got = Array.isArray(value)
    ? "an array holding a non-string"
    : typeof value === "string"
      ? `the string ${JSON.stringify(value)}`
      : typeof value === "object" && value !== null
        ? "an object"
        : String(value)
  throw new TypeError(`${where}: ${what} must be true or an array of strings (["${example}"]), got ${got}`)
}
