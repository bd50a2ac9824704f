// What the bus keeps per pool and per instance (one worker slot: its process, outbox, requests, sessions), and
// the entries on its books (Pending, Asked). Separate because every part of StdioBus reads them.
import type { Process } from "../runtime/index.ts"
import { BusClosedError, WorkerGoneError } from "../core/index.ts"
import { longTimeout, stoppedProcess, type Supervisor } from "../kit/index.ts"
import type { LimitsConfig, PoolConfig } from "./config.ts"
import { poolFailed } from "./errors.ts"
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
  /** Requests the worker sent its client that the bus counted as asked for this one (Books.askee). */
  asks?: number
}

/** A request a worker sent to a client: answered only by that client, under an id nobody can guess. */
export interface Asked {
  instance: Instance
  generation: number
  client: BusClient
  originalId: JsonRpcId
}

/**
 * One worker slot. Every part reads it; each field has one writer: the Workers its process (proc, generation,
 * reading, settled), the Books its requests (pending, inFlight, stuck, asked), the Router its sessions.
 */
export class Instance {
  proc: Process<"pipe", "pipe", "pipe"> | null = null
  generation = 0
  /** Settles when the current process's stdout has been read to its end. */
  reading: Promise<void> = Promise.resolve()
  /** Settles once the last process's unanswered requests have been answered with an error. */
  settled: Promise<void> = Promise.resolve()
  inFlight = 0
  readonly out: Outbox
  readonly pending = new Set<number>()
  readonly sessions = new Set<string>()
  /** Ids of the requests this instance sent to clients, oldest first (bounded: books.ts ASKED_MAX). */
  readonly asked = new Set<string>()
  stuck = 0
  // what `stopped` read last, and when (performance.now())
  private wasStopped = false
  private stoppedRead = Number.NEGATIVE_INFINITY
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
  /** Whether its process is stopped (SIGSTOP, a debugger; Linux): read at most every STOPPED_READ_MS. */
  get stopped(): boolean {
    if (this.proc === null) return false
    const now = performance.now()
    if (now - this.stoppedRead >= STOPPED_READ_MS) {
      this.stoppedRead = now
      this.wasStopped = stoppedProcess(this.proc.pid)
    }
    return this.wasStopped
  }
}

/** How stale an instance's stopped state may be when a message is routed by it. */
const STOPPED_READ_MS = 250

export class Pool {
  readonly instances: Instance[]
  /** Instances a reload replaced, draining until their process exits (no new message is routed to them). */
  readonly retiring = new Set<Instance>()
  private sup: Supervisor | null = null
  private failedWith: string | null = null
  /** Where the least-busy search starts next, so equal instances share the load. */
  private rotor = 0
  /** Messages waiting for an instance to come up. */
  private liveWaiters: { resolve: () => void; reject: (e: Error) => void }[] = []
  constructor(
    readonly config: PoolConfig,
    readonly index: number,
    private readonly limits: LimitsConfig,
  ) {
    this.instances = Array.from({ length: config.instances }, (_, i) => new Instance(this, i, limits))
  }

  /** A fresh slot for a reload's successor of instance `index`; routed to only once it takes the index (promote). */
  successor(index: number): Instance {
    return new Instance(this, index, this.limits)
  }

  /** `next` takes its index: messages go to it from now on; the instance it replaces drains (retiring) until it exits. */
  promote(next: Instance): Instance {
    const old = this.instances[next.index]!
    this.instances[next.index] = next
    if (old.live) this.retiring.add(old)
    return old
  }

  /** The Supervisor running its processes; null while the bus is stopped. */
  get supervisor(): Supervisor | null {
    return this.sup
  }

  /** Why the pool gave up (restart intensity); null while it has not. */
  get failure(): string | null {
    return this.failedWith
  }

  /** The bus starts: `sup` runs the processes, and a past failure is forgotten. */
  supervise(sup: Supervisor): void {
    this.sup = sup
    this.failedWith = null
  }

  /** The supervisor gave up: whoever waits for an instance gets PoolFailedError. */
  fail(reason: string): void {
    this.failedWith = reason
    const error = poolFailed(this.config.id, reason)
    for (const w of this.liveWaiters.splice(0)) w.reject(error)
  }

  /** The bus stopped: the supervisor is let go, and whoever waits for an instance gets BusClosedError. */
  release(): void {
    this.sup = null
    for (const w of this.liveWaiters.splice(0)) w.reject(new BusClosedError("the stdio bus stopped"))
  }

  /** The live instance with the fewest requests in flight, then the fewest sessions; ties rotate. */
  leastBusy(): Instance | null {
    const from = this.rotor++ % this.instances.length
    return this.least(from, true) ?? this.least(from, false)
  }

  /** The live instance with the fewest requests in flight, then sessions, from `from` on; with `running`, not stopped. */
  private least(from: number, running: boolean): Instance | null {
    let best: Instance | null = null
    const n = this.instances.length
    for (let k = 0; k < n; k++) {
      const i = this.instances[(from + k) % n]!
      if (
        i.live &&
        !(running && i.stopped) &&
        (best === null ||
          i.inFlight < best.inFlight ||
          (i.inFlight === best.inFlight && i.sessions.size < best.sessions.size))
      )
        best = i
    }
    return best
  }

  /** An instance has come up: whoever waits for one tries again. */
  wakeWaiters(): void {
    for (const w of this.liveWaiters.splice(0)) w.resolve()
  }

  /** Resolves when an instance comes up; rejects with WorkerGoneError if none does by `deadline`. */
  waitForLive(deadline: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const ms = deadline - performance.now()
    if (ms <= 0)
      return Promise.reject(
        new WorkerGoneError(`pool "${this.config.id}" has no running worker (it is restarting); try again`),
      )
    const timer = longTimeout(() => {
      this.liveWaiters = this.liveWaiters.filter((w) => w !== waiter)
      reject(
        new WorkerGoneError(
          `pool "${this.config.id}" had no running worker for ${Math.round(ms)} ms (it is restarting)`,
        ),
      )
    }, ms)
    const waiter = {
      resolve: () => {
        timer.clear()
        resolve()
      },
      reject: (e: Error) => {
        timer.clear()
        reject(e)
      },
    }
    this.liveWaiters.push(waiter)
    return promise
  }
}
