// What the bus keeps per pool and per instance (one worker slot: its process, outbox, requests, sessions), and
// the entries on its books (Pending, Asked). Separate because every layer of StdioBus reads them.
import type { Subprocess } from "bun"
import type { Supervisor } from "../kit/index.ts"
import type { LimitsConfig, PoolConfig } from "./config.ts"
import { Outbox } from "./outbox.ts"
import type { BusClient, JsonRpcId } from "./types.ts"

export interface Pending {
  instance: Instance
  /** The instance's generation (process) the request was written to. */
  generation: number
  client: BusClient | null
  originalId: JsonRpcId
  sessionKey: string | null
  resolve?: (result: unknown) => void
  reject?: (error: Error) => void
  /** performance.now() after which an embedded caller gets TimeoutError (Infinity: never). */
  deadline?: number
  timeoutMs?: number
  method?: string
  /** The caller stopped waiting (performance.now() then); the answer is dropped when it comes, the entry after a grace. */
  abandoned: boolean
  abandonedAt: number
  /** The line is in the worker's outbox (not waiting for room): only then may the worker be told to cancel it. */
  written: boolean
  /** Why the caller gave up, for the worker's cancel notification; null: the worker was told by the client itself. */
  abandonReason?: string | null
}

/** A request a worker sent to a client: answered only by that client, under an id nobody can guess. */
export interface Asked {
  instance: Instance
  generation: number
  client: BusClient
  originalId: JsonRpcId
}

export class Instance {
  proc: Subprocess<"pipe", "pipe", "pipe"> | null = null
  generation = 0
  /** Settles when the current process's stdout has been read to its end. */
  reading: Promise<void> = Promise.resolve()
  /** Settles once the last process's unanswered requests have been answered with an error. */
  settled: Promise<void> = Promise.resolve()
  inFlight = 0
  readonly out: Outbox
  readonly pending = new Set<number>()
  readonly sessions = new Set<string>()
  /** Ids of the requests this instance sent to clients, oldest first (bounded: ASKED_MAX). */
  readonly asked = new Set<string>()
  stuck = 0
  constructor(
    readonly pool: Pool,
    readonly index: number,
    limits: LimitsConfig,
  ) {
    this.out = new Outbox(
      limits.max_output_queue,
      limits.backpressure_timeout_sec * 1000,
      `pool "${pool.config.id}" instance ${index}`,
    )
  }
  get live(): boolean {
    return this.proc !== null
  }
}

export class Pool {
  readonly instances: Instance[]
  supervisor: Supervisor | null = null
  failure: string | null = null
  rotor = 0
  liveWaiters: { resolve: () => void; reject: (e: Error) => void }[] = []
  constructor(
    readonly config: PoolConfig,
    readonly index: number,
    limits: LimitsConfig,
  ) {
    this.instances = Array.from({ length: config.instances }, (_, i) => new Instance(this, i, limits))
  }
}
