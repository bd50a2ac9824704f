// The stdio bus's public types: JSON-RPC messages and ids, request and stop options, stats, events, clients.
// Separate so what a user sees reads in one place, apart from the machinery.
export type BusState = "created" | "starting" | "running" | "stopping" | "stopped"
/** A JSON-RPC id; a number a JS number cannot hold exactly (past 2^53, a fraction) stays its JSON text, as `JSON.rawJSON`. */
export type JsonRpcId = string | number | null | RawJSON
/** What `JSON.rawJSON` returns: JSON text that `JSON.stringify` writes out as it is. */
export interface RawJSON {
  readonly rawJSON: string
}
export type LogLevel = "error" | "warn" | "info" | "debug"

/** One JSON-RPC message as parsed from a line. */
export type JsonRpcMessage = {
  jsonrpc?: string
  id?: JsonRpcId
  method?: string
  params?: unknown
  result?: unknown
  error?: { code: number; message: string; data?: unknown }
} & Record<string, unknown>

/** What `messages()` yields: a message a worker sent unasked, or an answer to a `send()`. */
export interface BusMessage {
  message: JsonRpcMessage
  pool: string
  /** The instance index it came from (-1 for answers the bus gave itself). */
  instance: number
}

export interface StdioRequestOptions {
  /** Pins this and every later message of the session to one instance. */
  sessionId?: string
  /** Pool id (default: the first pool). */
  pool?: string
  /** Default 30 000; 0 waits forever; past 2^31−1 ms still honoured. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface StdioStopOptions {
  /** How long in-flight requests may finish before SIGTERM (default limits.drain_timeout_sec). */
  timeoutMs?: number
  /** Between SIGTERM and SIGKILL (default 2000). */
  killAfterMs?: number
}

export interface StdioReloadOptions {
  /** Instances replaced at once (default 1). */
  maxSurge?: number
  /** How long each successor may take to be ready (default 30 000). */
  readyTimeoutMs?: number
}

export interface InstanceStats {
  index: number
  pid: number
  /** down: it crashed after its pool gave up (not restarted). */
  state: "running" | "backoff" | "down" | "stopped"
  inFlight: number
  restarts: number
  uptimeMs: number
  queuedBytes: number
  sessions: number
  /** Requests given up (timeout, abort, client gone) that the worker has not answered yet; dropped after a grace. */
  stuck: number
}

export interface PoolStats {
  id: string
  state: "running" | "failed" | "stopped"
  failure: string | null
  restarts: number
  instances: InstanceStats[]
}

export interface StdioBusStats {
  state: BusState
  /** Messages and bytes read from workers. */
  messagesIn: number
  bytesIn: number
  /** Messages and bytes written to workers. */
  messagesOut: number
  bytesOut: number
  restarts: number
  routingErrors: number
  /** Workers killed for a line longer than max_input_buffer. */
  oversizeKills: number
  backpressureRejects: number
  /** Answers that came after their caller gave up (timeout, abort, client gone). */
  lateResponses: number
  /** Given-up requests the worker still had not answered a grace (1 s) later: dropped from the books and from its in-flight count. */
  stuckDropped: number
  /** Cancel notifications sent to workers: for given-up requests (the pool's `cancel` protocol) and clients' own. */
  cancelsSent: number
  /** messages() entries dropped because nobody read them (the queue keeps the newest 10 000). */
  droppedMessages: number
  /** Session pins forgotten, least recently used first, to keep at most 10 000 over the bus and 1 000 per socket client. */
  sessionsDropped: number
  workerCount: number
  clientCount: number
  pools: PoolStats[]
}

export interface StdioBusEvents {
  "worker-start": [{ pool: string; instance: number; pid: number }]
  /** A reload replaced an instance's process: `pid` drains and stops, `successor` serves from now on. */
  "worker-replaced": [{ pool: string; instance: number; pid: number; successor: number }]
  "worker-exit": [
    { pool: string; instance: number; pid: number; code: number | null; signal: string | null; expected: boolean },
  ]
  "worker-restart": [{ pool: string; instance: number; delayMs: number }]
  "pool-failed": [{ pool: string; reason: string }]
  /** A worker's stderr line, or something the bus noticed about a worker. */
  log: [{ pool: string; instance: number; pid: number; level: LogLevel; line: string }]
  "routing-error": [{ reason: string; pool?: string; instance?: number }]
}

/** Who sent a message into the bus and gets its answers: the embedded API or one socket/stdio client. */
export interface BusClient {
  readonly id: number
  /** A message without a sessionId goes to this client's own session (socket clients: one per connection), which no other client can name. */
  readonly sessionPerClient: boolean
  /**
   * `size`: the length of the line it came in (0: made by the bus), what a queue of them counts. Returns why the
   * client cannot take the message when it cannot (an MCP HTTP session with no SSE stream open): a worker's request
   * is then answered to the worker with -32603 and that reason, a notification counted in droppedMessages.
   */
  deliver(message: JsonRpcMessage, pool: string, instance: number, size?: number): string | void
}
