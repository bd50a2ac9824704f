// The workers' side: each pool's Supervisor (started and stopped with the bus), reading every process's stdout
// (its lines routed by worker-messages.ts) and stderr (logs), and what a worker's death settles. One of the parts a
// StdioBus owns (bus.ts): it routes what workers send through the Router and settles requests in the Books.
import type { Process } from "../runtime/index.ts"
import { BusClosedError, WorkerGoneError } from "../core/index.ts"
import { closeAtExit, Reaper, ReplaceError, sleep, Supervisor, SupervisorError, within } from "../kit/index.ts"
import type { LimitsConfig } from "./config.ts"
import { JsonRpcError, poolFailed, ReloadError, SpawnError } from "./errors.ts"
import type { Handshakes } from "./handshakes.ts"
import type { LifecycleView } from "./lifecycle.ts"
import { LineSplitter } from "./lines.ts"
import type { Instance, Pool } from "./pool.ts"
import type { Books } from "./books.ts"
import type { Router } from "./router.ts"
import type { LogLevel, StdioReloadOptions } from "./types.ts"
import { WorkerMessages } from "./worker-messages.ts"

type WorkerProc = Process<"pipe", "pipe", "pipe">

/** How long a dead worker's stdout may still be read for answers it wrote before dying. */
const EXIT_READ_MS = 1000
/** After a kill -9 of this process: how long a worker has between the reaper's SIGTERM and its SIGKILL (stop()'s default). */
const REAPER_GRACE_MS = 2000
/** How long a worker whose stdout closed has between its SIGTERM and its SIGKILL (the Supervisor's killGraceMs). */
const KILL_GRACE_MS = 2000

export class Workers {
  private readonly counts = { bytesIn: 0, oversizeKills: 0 }
  /** What the workers write, routed. */
  private readonly messages: WorkerMessages
  /** Restarts counted by the supervisors of earlier runs (a supervisor is let go when the bus stops). */
  private restartsBefore = 0
  /** Every running process's instance (a reload's successor and the instance it replaced included), by pid. */
  private readonly byPid = new Map<number, Instance>()
  /**
   * Reload successors getting ready, by pid: their process and instance, and what marks the replayed handshakes
   * seen once promoted. Each leaves when promoted or when its process exits.
   */
  private readonly surging = new Map<number, { proc: WorkerProc; next: Instance; commit: (() => void) | null }>()
  /** Forgets the SIGTERM every worker gets when this process exits with the bus running (start() to stop()). */
  private forgetAtExit: (() => void) | null = null
  /** Ends the workers if this process is killed without a word (start() to stop()). */
  private reaper: Reaper | undefined

  constructor(
    private readonly router: Router,
    private readonly books: Books,
    private readonly handshakes: Handshakes,
    private readonly lifecycle: LifecycleView,
    private readonly limits: LimitsConfig,
  ) {
    this.messages = new WorkerMessages(router, books, handshakes)
  }

  /** What the workers' side counted, for stats(). */
  get counters(): Readonly<typeof this.counts & WorkerMessages["counts"]> {
    return { ...this.counts, ...this.messages.counts }
  }

  /** Restarts over every pool since the bus was made. */
  get restarts(): number {
    let n = this.restartsBefore
    for (const p of this.router.pools.values()) n += p.supervisor?.restarts ?? 0
    return n
  }

  // ── the pools' supervisors ────────────────────────────────────────────────────────────────────────────

  /** Spawns every pool's instances; if one cannot be spawned, stops those started and throws SpawnError. */
  async start(): Promise<void> {
    // A worker that reads no stdin never sees the EOF a front's exit gives it (process.exit(), an uncaught error, a
    // stop signal the app does not handle): it is told so, as the MCP stdio transport's shutdown does. After a kill -9
    // of the front, the reaper tells it, and ends one that stays past the stop's default grace.
    this.forgetAtExit ??= closeAtExit({ close: () => this.signalAll("SIGTERM") })
    this.reaper ??= Reaper.start(REAPER_GRACE_MS) ?? undefined
    const started: Supervisor[] = []
    try {
      for (const pool of this.router.pools.values()) {
        const sup = this.supervisePool(pool)
        pool.supervise(sup)
        try {
          sup.start()
        } catch (e) {
          throw new SpawnError(
            `pool "${pool.config.id}": cannot spawn ${pool.config.command}: ${(e as Error).message}; check command, args and cwd`,
            { cause: e },
          )
        }
        started.push(sup)
      }
    } catch (e) {
      await Promise.all(started.map((s) => s.stop({ drainTimeoutMs: 0, killGraceMs: 0 })))
      this.forgetExit()
      throw e
    }
  }

  private signalAll(signal: NodeJS.Signals) {
    for (const instance of this.byPid.values()) instance.proc?.kill(signal)
    for (const s of this.surging.values()) s.proc.kill(signal)
  }

  private forgetExit() {
    this.forgetAtExit?.()
    this.forgetAtExit = null
    this.reaper?.close() // it leaves at once, on its own: stop() takes no longer than it did before there was one
    this.reaper = undefined
  }

  /** SIGTERM, then SIGKILL after `killMs`; resolves once every process's unanswered requests have been answered. */
  async stop(killMs: number): Promise<void> {
    const pools = [...this.router.pools.values()]
    // A reload under way stops: its successors are not ready and never will be.
    for (const s of this.surging.values()) s.proc.kill("SIGKILL")
    const others = [...pools.flatMap((p) => [...p.retiring]), ...[...this.surging.values()].map((s) => s.next)]
    await Promise.all(pools.map((p) => p.supervisor?.stop({ drainTimeoutMs: 0, killGraceMs: killMs })))
    await Promise.all(others.map((i) => i.proc?.exited))
    await Promise.all([...pools.flatMap((p) => p.instances), ...others].map((i) => i.settled))
    this.forgetExit()
  }

  /**
   * Replaces every instance of `pool` surge-first (the Supervisor's reload): each successor is started and must be
   * ready (its pool's `ready` check, then the replayed handshakes of the sessions it takes over) before it takes the
   * instance's index; then the old process drains (nothing new is routed to it, its requests are answered) and is
   * stopped. Rejects with ReloadError when a successor is not ready; the instances not replaced keep serving.
   */
  async reload(pool: Pool, options: StdioReloadOptions): Promise<void> {
    const sup = pool.supervisor
    if (!sup) throw new ReloadError(pool.config.id, "the bus is not running")
    if (pool.failure !== null) return this.restart(pool, sup)
    try {
      await sup.reload(options)
    } catch (e) {
      if (e instanceof ReplaceError) throw new ReloadError(pool.config.id, e, { cause: e })
      if (e instanceof SupervisorError) throw new ReloadError(pool.config.id, e.message, { cause: e })
      throw e
    }
  }

  /** A failed pool reloaded (its fix deployed): a new supervisor starts its instances, the failure forgotten. */
  private async restart(pool: Pool, failed: Supervisor): Promise<void> {
    await failed.stop({ drainTimeoutMs: 0, killGraceMs: 0 })
    this.restartsBefore += failed.restarts
    const sup = this.supervisePool(pool)
    pool.supervise(sup)
    try {
      sup.start()
    } catch (e) {
      throw new ReloadError(pool.config.id, `cannot spawn ${pool.config.command}: ${(e as Error).message}`, {
        cause: e,
      })
    }
  }

  /** The bus has stopped: each pool's supervisor is let go (its restarts kept), its waiters told. */
  release(): void {
    for (const p of this.router.pools.values()) {
      this.restartsBefore += p.supervisor?.restarts ?? 0
      p.release()
    }
  }

  private supervisePool(pool: Pool): Supervisor {
    const { command, args, instances, cwd, env } = pool.config
    const sup = new Supervisor({
      command: [command, ...args],
      instances,
      cwd,
      env,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      restart: {
        maxRestarts: this.limits.max_restarts,
        windowMs: Math.round(this.limits.restart_window_sec * 1000),
      },
      onGiveUp: "stop-all", // a failed stdio pool refuses every request (PoolFailedError) until start() again
      drainTimeoutMs: Math.min(this.limits.drain_timeout_sec * 1000, 2 ** 31 - 1), // how long a replaced worker drains
      ready: (_pid, s) => this.successorReady(pool, s.proc as WorkerProc, s.index),
      retire: (pid) => this.drained(pid),
      reaper: this.reaper,
    })
    const id = pool.config.id
    sup.on("start", (s) => {
      const proc = s.proc as WorkerProc
      const surge = this.surging.get(proc.pid)
      if (surge) {
        // a reload's successor, ready: it takes the index and the sessions of the instance it replaces
        this.surging.delete(proc.pid)
        const old = pool.promote(surge.next)
        this.router.movePins(old, surge.next)
        surge.commit?.()
        this.announce(surge.next, proc)
        return pool.wakeWaiters()
      }
      this.attach(pool.instances[s.index]!, proc)
      this.announce(pool.instances[s.index]!, proc)
      pool.wakeWaiters()
    })
    sup.on("exit", (s, info) => {
      this.surging.delete(info.pid) // a successor that never got ready
      const instance = this.byPid.get(info.pid)
      if (!instance) return
      this.byPid.delete(info.pid)
      this.workerGone(instance, info.expected)
      if (pool.retiring.has(instance)) void instance.settled.then(() => pool.retiring.delete(instance))
      this.router.emit("worker-exit", { pool: id, instance: s.index, ...info })
    })
    sup.on("replaced", (s, r) =>
      this.router.emit("worker-replaced", { pool: id, instance: s.index, pid: r.pid, successor: r.successor }),
    )
    sup.on("restart", (s, r) => this.router.emit("worker-restart", { pool: id, instance: s.index, delayMs: r.delayMs }))
    sup.on("failed", (f) => {
      pool.fail(f.reason)
      this.router.emit("pool-failed", { pool: id, reason: f.reason })
    })
    return sup
  }

  /** `proc` serves `instance` from now on: its stdin is the outbox, its stdout and stderr are read. */
  private attach(instance: Instance, proc: WorkerProc): void {
    instance.proc = proc
    instance.generation++
    instance.out.attach(proc.stdin)
    instance.reading = this.readStdout(instance, proc)
    void this.readStderr(instance, proc)
    this.byPid.set(proc.pid, instance)
  }

  /** `proc` serves `instance`'s index: told once it may be routed to (a reload's successor once it is promoted). */
  private announce(instance: Instance, proc: WorkerProc): void {
    this.router.emit("worker-start", { pool: instance.pool.config.id, instance: instance.index, pid: proc.pid })
  }

  /**
   * A reload's successor is ready: with `ready: "ping"` it answered a `ping` request (any answer: it reads its stdin
   * and writes its stdout); with `initialize: "replay"` it then answered the replayed initialize of every session
   * pinned to the instance it replaces. Nothing else is routed to it before it is promoted.
   */
  private async successorReady(pool: Pool, proc: WorkerProc, index: number): Promise<void> {
    const next = pool.successor(index)
    const surge = { proc, next, commit: null as (() => void) | null }
    this.surging.set(proc.pid, surge)
    this.attach(next, proc)
    if (this.lifecycle.state !== "running") throw new Error("was started while the bus stopped")
    if (pool.config.ready === "ping")
      try {
        await this.books.requestOn(next, "ping", undefined, Infinity)
      } catch (e) {
        if (!(e instanceof JsonRpcError)) throw e // an error answer is an answer
      }
    if (pool.config.initialize === "replay")
      surge.commit = await this.handshakes.prepare(pool.instances[index]!.sessions, next)
  }

  /** Resolves once the replaced process `pid` holds no request (bounded by drain_timeout_sec by the Supervisor). */
  private async drained(pid: number): Promise<void> {
    const instance = this.byPid.get(pid)
    while (instance?.live && instance.inFlight > 0 && this.lifecycle.state === "running") await sleep(5)
  }

  // ── reading from workers ──────────────────────────────────────────────────────────────────────────────

  private workerGone(instance: Instance, expected: boolean): void {
    const generation = instance.generation
    instance.proc = null
    instance.generation++
    for (const key of [...instance.sessions]) this.router.unpin(key)
    const pool = instance.pool
    const error = pool.failure
      ? poolFailed(pool.config.id, pool.failure)
      : expected && this.lifecycle.state !== "running"
        ? new BusClosedError(
            `the stdio bus stopped before pool "${pool.config.id}" instance ${instance.index} answered`,
          )
        : new WorkerGoneError(
            `pool "${pool.config.id}" instance ${instance.index} exited before answering; the request may or may not have run`,
          )
    for (const id of [...instance.asked]) this.books.forgetAsked(id)
    instance.out.detach(error)
    // Answers the process wrote just before it died may still sit in the pipe: read them first (bounded; a
    // grandchild could hold the pipe open), then whatever is left never got an answer.
    let timer: ReturnType<typeof setTimeout> | undefined
    instance.settled = Promise.race([
      instance.reading,
      new Promise<void>((r) => (timer = setTimeout(r, EXIT_READ_MS))),
    ]).then(() => {
      clearTimeout(timer)
      this.books.rejectPending(instance, error, generation)
    })
  }

  private async readStdout(instance: Instance, proc: WorkerProc): Promise<void> {
    const splitter = new LineSplitter(this.limits.max_input_buffer, (line) => this.messages.take(instance, line))
    try {
      for await (const chunk of proc.stdout) {
        this.counts.bytesIn += chunk.length
        if (!splitter.push(chunk)) {
          this.counts.oversizeKills++
          this.router.log(
            instance,
            proc.pid,
            "error",
            `stdout line longer than max_input_buffer (${this.limits.max_input_buffer} bytes): killing and restarting the worker`,
          )
          proc.kill("SIGKILL") // the worker's fault: a crash to its supervisor (counted, restarted with backoff)
          return
        }
      }
    } catch {
      // the pipe broke: the exit handler does the rest
    }
    void this.stdoutEnded(instance, proc)
  }

  /**
   * A worker's stdout ended. One that exits (its stdout closes as it dies) is the exit handler's; one still running
   * after EXIT_READ_MS closed its stdout and can answer nothing more: a crash (SIGTERM, SIGKILL after the grace), so
   * that its requests get WorkerGoneError and it is restarted rather than given every session for good.
   */
  private async stdoutEnded(instance: Instance, proc: WorkerProc): Promise<void> {
    await within(proc.exited, EXIT_READ_MS)
    if (proc.exitCode !== null || proc.signalCode !== null) return
    if (instance.proc !== proc || this.lifecycle.state !== "running") return
    this.router.log(instance, proc.pid, "error", "stdout closed while the worker runs: killing and restarting it")
    proc.kill("SIGTERM")
    await within(proc.exited, KILL_GRACE_MS)
    proc.kill("SIGKILL") // nothing once it has exited
  }

  private async readStderr(instance: Instance, proc: WorkerProc): Promise<void> {
    const max = this.limits.max_input_buffer
    let rest = ""
    const decoder = new TextDecoder()
    try {
      for await (const chunk of proc.stderr) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
        rest = lines.pop()!
        if (rest.length > max) rest = rest.slice(0, max) // a runaway stderr line is cut, never buffered without bound
        for (const line of lines)
          if (line.trim())
            this.router.log(instance, proc.pid, levelOf(line), line.length > max ? line.slice(0, max) : line)
      }
      if (rest.trim()) this.router.log(instance, proc.pid, levelOf(rest), rest)
    } catch {
      // the pipe broke with the process
    }
  }
}

function levelOf(line: string): LogLevel {
  if (/\b(error|fatal|panic|exception)\b/i.test(line)) return "error"
  if (/\bwarn(ing)?\b/i.test(line)) return "warn"
  if (/\b(debug|trace)\b/i.test(line)) return "debug"
  return "info"
}
