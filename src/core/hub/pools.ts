// What a bus knows of the pools that feed it (superviseWorkers, supervise-workers.ts): each one's row in the status
// view, the failure of one that gave up, and what a pool asks of the bus's books: the load on its workers, when a
// new worker joined, and retiring one (nothing new to it, then wait until it holds nothing).
import { BusClosedError } from "../../errors.ts"
import { sleep, type Supervisor } from "../../kit/index.ts"
import { SharedPools } from "../ops/front-pool.ts"
import type { PoolRow } from "../observe/bus-status.ts"
import type { Dispatcher } from "./dispatcher.ts"
import { nanoseconds } from "../../runtime/index.ts"

export class BusPools {
  /** Each pool's row in the status view, while `describe` says it runs. */
  private readonly rows = new Map<object, () => PoolRow | null>()
  /** The pools that gave up, with the error requests then fail with. */
  private readonly failures = new Map<object, Error>()
  /** The shared fronts' pools of this bus by command: what a reload asked over its control socket reloads. */
  readonly shared: SharedPools
  /** The most workers of one uid the bus takes at once (maxWorkers, maxWorkersPerUid): a pool's are all of this one. */
  readonly maxWorkers: number
  private readonly name: string

  constructor(
    private readonly dispatcher: Dispatcher,
    /** Everything that waits for a worker fails with `err` (the queue, waitForWorkers's callers). */
    private readonly failWaiting: (err: Error) => void,
    /** The bus's error once it is closing, else null. */
    private readonly closed: () => Error | null,
    bus: { name: string; maxWorkers: number },
  ) {
    this.shared = new SharedPools(bus.name)
    this.maxWorkers = bus.maxWorkers
    this.name = bus.name
  }

  /** `pool` gave up (`err`), or serves again (null). While one has given up and no worker is connected, what waits fails. */
  failed(pool: object, err: Error | null) {
    if (!err) return void this.failures.delete(pool)
    this.failures.set(pool, err)
    const gaveUp = this.gaveUp()
    if (gaveUp) this.failWaiting(gaveUp)
  }

  /** The error of a pool that gave up, while no worker is connected (then nothing could serve a request). */
  gaveUp(): Error | undefined {
    return this.dispatcher.workerCount === 0 ? this.failures.values().next().value : undefined
  }

  /** Each pool's crash restarts and whether it is in a crash loop, summed into the flight recorder's header. */
  private readonly crashes = new Map<object, { restarts: number; loop: boolean }>()

  /** `pool`'s crash restarts, and whether it is in a crash loop now: for `slotbus top` (docs/PROTOCOL.md §16.2). */
  crashed(pool: object, restarts: number, loop: boolean) {
    this.crashes.set(pool, { restarts, loop })
    let sum = 0
    let any = false
    for (const c of this.crashes.values()) (sum += c.restarts), (any ||= c.loop)
    this.dispatcher.observer.recorder?.pools(sum, any)
  }

  /** What each pool does when the bus closes (superviseWorkers: it stops), by pool. */
  private readonly stops = new Map<Supervisor, () => Promise<void> | undefined>()
  private busClosing = false

  /**
   * `pool` stops with the bus: `stop` is called once close() begins (its workers would exit, and be restarted), and
   * close() resolves once it did (once its processes exited).
   */
  stopOnClose(pool: Supervisor, stop: () => Promise<void> | undefined) {
    this.stops.set(pool, stop)
  }

  /** What a pool's start() throws once the bus closes: its workers could never join (they would hang or crash-loop). */
  startRefused(): BusClosedError | null {
    if (this.closed() === null) return null
    const what = `bus "${this.name}" is closed, and its pool stopped with it`
    return new BusClosedError(
      `${what}: start() cannot give it workers; listen again and make a new pool with superviseWorkers`,
    )
  }

  /** The bus began to close: each pool stops. Resolves once they stopped, a stop() already under way too. */
  closing(): Promise<unknown> {
    this.busClosing = true
    const stops = [...this.stops].map(([pool, stop]) => (pool.state === "stopping" ? stopped(pool) : stop()))
    this.stops.clear()
    return Promise.allSettled(stops)
  }

  /** `pool` is shown in the bus's status view until `describe` says null (stopped). */
  show(pool: object, describe: () => PoolRow | null) {
    this.rows.set(pool, describe)
  }

  /** The rows of the pools that run. */
  describe(): PoolRow[] {
    const out: PoolRow[] = []
    for (const [pool, describe] of this.rows) {
      const row = describe()
      if (row) out.push(row)
      else this.rows.delete(pool) // stopped
    }
    return out
  }

  /** The load on the workers of processes `pids`: their slots, what they hold, the queue and its oldest wait (ms). */
  load(pids: ReadonlySet<number>) {
    let inFlight = 0
    let capacity = 0
    let workers = 0
    for (const e of this.dispatcher.endpoints)
      if (pids.has(e.pid) && e.serving) {
        inFlight += e.inFlight
        capacity += e.capacity
        workers++
      }
    const oldest = this.dispatcher.queue[0]
    const waitedMs = oldest ? (nanoseconds() - oldest.started) / 1e6 : 0
    return { queued: this.dispatcher.queue.length, waitedMs, inFlight, capacity, workers }
  }

  /** joined() waits under way: a reload's successors' (a test reads that one rejected leaves none). */
  joining = 0

  /** Resolves once a worker of process `pid` has joined the bus, or `signal` aborted (its reload settled). */
  async joined(pid: number, signal?: AbortSignal): Promise<void> {
    this.joining++
    try {
      while (!signal?.aborted && !this.dispatcher.endpoints.some((e) => e.pid === pid)) {
        const closed = this.closed()
        if (closed) throw closed
        await sleep(5)
      }
    } finally {
      this.joining--
    }
  }

  /** The worker of process `pid` here retires after `n` requests (Dispatcher.retireAfter); false: it has not joined. */
  retireAfter(pid: number, n: number, due: () => void): boolean {
    const e = this.here(pid)
    if (e) this.dispatcher.retireAfter(e, n, due)
    return e !== undefined
  }

  /**
   * The worker of process `pid` here gets a request only while no other worker serves, until release(pid): a
   * reload's successor within its minReadyMs, so that one exiting then held no request.
   */
  hold(pid: number) {
    this.here(pid)?.retire()
  }

  /** The worker of process `pid` held by hold() serves. */
  release(pid: number) {
    const e = this.here(pid)
    if (!e) return
    e.serve()
    this.dispatcher.freed()
  }

  /** Resolves once no worker of process `pid` is connected here, the bus closed, or `ms` passed. */
  async left(pid: number, ms: number): Promise<void> {
    const end = performance.now() + ms
    while (this.here(pid)) {
      if (this.closed() !== null || performance.now() >= end) return
      await sleep(5)
    }
  }

  /** The worker of process `pid` connected to this bus itself (not through another front), if any. */
  private here(pid: number) {
    return this.dispatcher.endpoints.find((x) => x.pid === pid && x.distance === 0)
  }

  /**
   * The worker of process `pid` gets no new request; resolves once it holds none (borrowed slots too) or left. While
   * the bus closes, it first takes what is queued (close()'s drain: nothing else could; close() fails what is left).
   */
  async retire(pid: number): Promise<void> {
    const e = this.dispatcher.endpoints.find((x) => x.pid === pid)
    if (!e) return
    while (this.busClosing && this.dispatcher.queue.length > 0 && this.dispatcher.endpoints.includes(e)) await sleep(5)
    e.drain()
    while (this.dispatcher.endpoints.includes(e) && e.inFlight > 0) await sleep(5)
  }
}

/** Resolves once `pool`, stopping, has stopped. */
function stopped(pool: Supervisor): Promise<void> {
  return new Promise((done) => {
    const off = pool.on("stopped", () => (off(), done()))
  })
}
