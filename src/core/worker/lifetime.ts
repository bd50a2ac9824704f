// A worker's lifetime: when it ends (worker.closed) and when its process goes with it. A pool's worker belongs to
// the front that started it (docs/PROTOCOL.md §15.4): once that front is gone it serves on a while, drains and,
// with exitWithFront (on by default for a pool's worker), exits.
import { drainBeforeStop, lastWordsToLog } from "../../kit/index.ts"
import { frontParent, parentAlive } from "../ops/front-parent.ts"
import { ORPHAN_LINGER_MS } from "../ops/fronts.ts"
import type { ConnectOptions, WorkerClosed } from "./options.ts"

/**
 * A worker's process leaves with its fronts (exitWithFront), whatever else the app holds. Its line goes to stderr
 * and, when the front that started it (`parentPid`) is gone and read that stderr into the pool's log file, to that
 * file too: nothing reads the pipe any more.
 */
export function exitWithFronts(name: string, why: string, parentPid = 0, quiet = false) {
  const line = `slotbus: worker ${process.pid} of "${name}" exits: ${why} (exitWithFront; pass exitWithFront: false to stay)`
  if (!quiet) console.warn(line)
  if (!quiet && parentPid > 0 && !parentAlive(parentPid)) lastWordsToLog(line)
  setImmediate(() => process.exit(0)) // after what waits on worker.closed has run its turn
}

// The workers of this process that serve (roots: a sibling closes with its root). A pool's worker drains them all on
// a SIGTERM that no listener of the app's takes, then dies of it: its pool retires it through the front that runs the
// pool alone, and a shared name's other fronts send it requests until it says "D" to them (docs/PROTOCOL.md §15.4).
const serving = new Set<{ close(): Promise<void> }>()
let drainsOnStop = false

export class Lifetime {
  readonly closed: Promise<WorkerClosed>
  private readonly settle: (c: WorkerClosed) => void
  /** The front that started this process as a worker of this bus's pool (§15.4), 0 when none. */
  readonly parentPid: number
  private orphan = false
  private over = false

  constructor(
    private readonly name: string,
    private readonly opts: ConnectOptions,
    /** A sibling serves one more front of a shared name for its root: its end is not the process's. */
    private readonly sibling: boolean,
    private readonly worker: { close(): Promise<void> },
  ) {
    this.parentPid = frontParent(name)
    const { promise, resolve } = Promise.withResolvers<WorkerClosed>()
    this.closed = promise
    this.settle = resolve
  }

  /** It ended: worker.closed resolves (the first time), and a root that lost its hub leaves if asked. */
  ended(c: WorkerClosed) {
    this.over = true
    serving.delete(this.worker)
    this.settle(c)
    // the front that started it closed its bus and lives: its pool is ending this worker, no news for its log
    const planned = c.reason === "hub-closed" && this.parentPid > 0 && parentAlive(this.parentPid)
    if (c.reason !== "closed" && !this.sibling) this.exitIfAsked(c.reason, planned)
  }

  /** It connected: a pool's worker process drains it on SIGTERM (docs/api.md, "A worker's lifetime"). */
  serves() {
    if (this.sibling || this.over) return
    serving.add(this.worker)
    if (this.parentPid > 0 && !drainsOnStop) {
      drainsOnStop = true
      drainBeforeStop(() => Promise.all([...serving].map((w) => w.close())))
    }
  }

  /** The front that started it is gone (§15.4): it serves on `lingerMs`, drains, and may exit. */
  orphaned(lingerMs = ORPHAN_LINGER_MS) {
    if (this.orphan) return
    this.orphan = true
    const end = () => void this.worker.close().then(() => this.exitIfAsked("the front that started it is gone"))
    setTimeout(end, lingerMs).unref()
  }

  /** A pool's worker whose front is gone: the judgement of its pool's bus applies (exitWithFront, on by default). */
  private get judged(): boolean {
    return this.parentPid > 0 && !this.sibling && (this.opts.exitWithFront ?? true)
  }

  exitIfAsked(why: string, quiet = false) {
    if (this.opts.exitWithFront ?? this.parentPid > 0) exitWithFronts(this.name, why, this.parentPid, quiet)
  }

  /** Still looking for a hub: whether the front that started it died meanwhile (it then exits if asked). */
  parentGone(): boolean {
    if (!this.judged || this.orphan || parentAlive(this.parentPid)) return false
    this.exitIfAsked("the front that started it is gone")
    return true
  }

  /**
   * It reached the hub `peerPid` of a plain name: another than the front that started it holds the name, so that
   * front died before the worker reached it, and the new one starts a pool of its own.
   */
  reached(peerPid: number) {
    if (this.judged && peerPid > 0 && peerPid !== this.parentPid) this.orphaned(0)
  }

  /** It lost the hub `peerPid`: the front that started it, if that was it. */
  left(peerPid: number) {
    if (this.judged && peerPid === this.parentPid) this.orphaned()
  }
}
