// The workers' side: each pool's Supervisor, reading every process's stdout (answers, requests, notifications)
// and stderr (logs), and what a worker's death settles. The upper layer: routing.ts ← books.ts ← workers.ts ← bus.ts.
import type { Subprocess } from "bun"
import { BusClosedError, WorkerGoneError } from "../core/index.ts"
import { Supervisor } from "../kit/index.ts"
import type { LimitsConfig } from "./config.ts"
import { JsonRpcError, poolFailed } from "./errors.ts"
import { parseMessage } from "./jsonrpc.ts"
import { LineSplitter } from "./lines.ts"
import type { Instance, Pool } from "./pool.ts"
import { Books } from "./books.ts"
import type { JsonRpcMessage, LogLevel } from "./types.ts"

/** Requests one worker may have waiting on clients; past it, its own oldest is forgotten. */
const ASKED_MAX = 10_000
/** How long a dead worker's stdout may still be read for answers it wrote before dying. */
const EXIT_READ_MS = 1000

export abstract class Workers extends Books {
  abstract readonly limits: LimitsConfig

  // ── reading from workers ──────────────────────────────────────────────────────────────────────────────

  protected supervisePool(pool: Pool): Supervisor {
    const { command, args, instances, cwd, env } = pool.config
    const sup = new Supervisor({
      command: [command, ...args],
      instances,
      cwd,
      env,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      maxRestarts: this.limits.max_restarts,
      restartWindowMs: Math.round(this.limits.restart_window_sec * 1000),
    })
    const id = pool.config.id
    sup.on("start", (s) => {
      const instance = pool.instances[s.index]!
      const proc = s.proc as Subprocess<"pipe", "pipe", "pipe">
      instance.proc = proc
      instance.generation++
      instance.out.attach(proc.stdin)
      instance.reading = this.readStdout(instance, proc)
      void this.readStderr(instance, proc)
      this.emit("worker-start", { pool: id, instance: s.index, pid: proc.pid })
      for (const w of pool.liveWaiters.splice(0)) w.resolve()
    })
    sup.on("exit", (s, info) => {
      this.workerGone(pool.instances[s.index]!, info.expected)
      this.emit("worker-exit", { pool: id, instance: s.index, ...info })
    })
    sup.on("restart", (s, r) => this.emit("worker-restart", { pool: id, instance: s.index, delayMs: r.delayMs }))
    sup.on("failed", (f) => {
      pool.failure = f.reason
      const error = poolFailed(id, f.reason)
      for (const w of pool.liveWaiters.splice(0)) w.reject(error)
      this.emit("pool-failed", { pool: id, reason: f.reason })
    })
    return sup
  }

  protected workerGone(instance: Instance, expected: boolean): void {
    const generation = instance.generation
    instance.proc = null
    instance.generation++
    for (const key of [...instance.sessions]) this.unpin(key)
    const pool = instance.pool
    const error = pool.failure
      ? poolFailed(pool.config.id, pool.failure)
      : expected && this._state !== "running"
        ? new BusClosedError(
            `the stdio bus stopped before pool "${pool.config.id}" instance ${instance.index} answered`,
          )
        : new WorkerGoneError(
            `pool "${pool.config.id}" instance ${instance.index} exited before answering; the request may or may not have run`,
          )
    for (const id of [...instance.asked]) this.forgetAsked(id)
    instance.out.detach(error)
    // Answers the process wrote just before it died may still sit in the pipe: read them first (bounded; a
    // grandchild could hold the pipe open), then whatever is left never got an answer.
    let timer: ReturnType<typeof setTimeout> | undefined
    instance.settled = Promise.race([
      instance.reading,
      new Promise<void>((r) => (timer = setTimeout(r, EXIT_READ_MS))),
    ]).then(() => {
      clearTimeout(timer)
      this.rejectPending(instance, error, generation)
    })
  }

  protected async readStdout(instance: Instance, proc: Subprocess<"pipe", "pipe", "pipe">): Promise<void> {
    const pool = instance.pool
    const splitter = new LineSplitter(this.limits.max_input_buffer, (line) => this.fromWorker(instance, line))
    try {
      for await (const chunk of proc.stdout) {
        this.counters.bytesIn += chunk.length
        if (!splitter.push(chunk)) {
          this.counters.oversizeKills++
          this.log(
            instance,
            proc.pid,
            "error",
            `stdout line longer than max_input_buffer (${this.limits.max_input_buffer} bytes): killing and restarting the worker`,
          )
          pool.supervisor?.kill(instance.index, "SIGKILL")
          break
        }
      }
    } catch {
      // the pipe broke: the exit handler does the rest
    }
  }

  protected async readStderr(instance: Instance, proc: Subprocess<"pipe", "pipe", "pipe">): Promise<void> {
    const max = this.limits.max_input_buffer
    let rest = ""
    const decoder = new TextDecoder()
    try {
      for await (const chunk of proc.stderr) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n")
        rest = lines.pop()!
        if (rest.length > max) rest = rest.slice(0, max) // a runaway stderr line is cut, never buffered without bound
        for (const line of lines)
          if (line.trim()) this.log(instance, proc.pid, levelOf(line), line.length > max ? line.slice(0, max) : line)
      }
      if (rest.trim()) this.log(instance, proc.pid, levelOf(rest), rest)
    } catch {
      // the pipe broke with the process
    }
  }

  protected fromWorker(instance: Instance, line: string): void {
    this.counters.messagesIn++
    let msg: JsonRpcMessage
    try {
      msg = parseMessage(line) as JsonRpcMessage
      if (typeof msg !== "object" || msg === null || Array.isArray(msg)) throw new Error("not an object")
    } catch {
      this.log(
        instance,
        instance.proc?.pid ?? 0,
        "warn",
        `not a JSON-RPC message on stdout (dropped): ${line.slice(0, 200)}`,
      )
      return this.routingError("malformed JSON from a worker", instance)
    }
    const poolId = instance.pool.config.id
    if (typeof msg.method !== "string") {
      const id = msg.id
      const p = typeof id === "number" ? this.pending.get(id) : undefined
      if (!p && typeof id === "number" && Number.isInteger(id) && id > 0 && id <= this.nextId) {
        this.counters.lateResponses++ // given up and dropped from the books already
        return
      }
      if (!p || p.instance !== instance)
        return this.routingError(`an answer to no request (id ${JSON.stringify(id)})`, instance)
      this.forget(id as number)
      if (p.abandoned) {
        this.counters.lateResponses++
        return
      }
      if (p.resolve) {
        if (msg.error && typeof msg.error === "object")
          p.reject!(new JsonRpcError(Number(msg.error.code), String(msg.error.message), msg.error.data))
        else p.resolve(msg.result)
        return
      }
      msg.id = p.originalId
      return p.client!.deliver(msg, poolId, instance.index)
    }
    if ("id" in msg) {
      const client = this.ownersOf(instance, msg)[0] ?? this.embedded
      const busId = `sb-${crypto.randomUUID()}`
      if (instance.asked.size >= ASKED_MAX) this.forgetAsked(instance.asked.values().next().value!) // its own oldest, never another worker's
      this.asked.set(busId, { instance, generation: instance.generation, client, originalId: msg.id ?? null })
      instance.asked.add(busId)
      msg.id = busId
      return client.deliver(msg, poolId, instance.index)
    }
    const owners = this.ownersOf(instance, msg)
    if (owners.length === 0) return this.embedded.deliver(msg, poolId, instance.index)
    for (const c of owners) c.deliver(msg, poolId, instance.index)
  }
}

function levelOf(line: string): LogLevel {
  if (/\b(error|fatal|panic|exception)\b/i.test(line)) return "error"
  if (/\bwarn(ing)?\b/i.test(line)) return "warn"
  if (/\b(debug|trace)\b/i.test(line)) return "debug"
  return "info"
}
