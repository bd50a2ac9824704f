// superviseWorkers: a Supervisor (src/kit) keeping slotbus worker processes of one bus alive, which the bus knows of:
// a replacement's successor is ready once it joined the bus, a worker is drained on the bus before it is stopped on
// purpose (reload, recycle, scale-down, stop), the pool can grow with its load and shrink when idle (pool-policies.ts), requests wait
// for it or fail with its PoolFailedError while no worker serves, and the status view shows it.
import { PoolFailedError } from "../../errors.ts"
import {
  checkNumber,
  checkOptions,
  INSTANCES,
  longTimeout,
  OnDemandReaper,
  optionNames,
  RESTART_MOVED,
  SHARED_OPTIONS,
  splitCommand,
  type SupervisedInstance,
  Supervisor,
  type SupervisorOptions,
  withPoolName,
} from "../../kit/index.ts"
import type { SlotBus } from "./bus.ts"
import type { WorkerEvent } from "../endpoint/endpoint.ts"
import { isCompiled } from "../ops/self-command.ts"
import { FRONT_BUS_ENV, FRONT_PARENT_ENV } from "../ops/front-parent.ts"
import { sharedPool } from "../ops/front-pool.ts"
import { runWhenLeading, standbyRow, standsBy } from "../ops/front-cover.ts"
import { reportCrashes, STABLE_REQUESTS } from "./crash-log.ts"
import { autoscale, type Limits, type Range, recycleWhenDue } from "./pool-policies.ts"

export interface SuperviseWorkersOptions
  extends Omit<
    SupervisorOptions,
    "command" | "drain" | "retire" | "gone" | "served" | "stable" | "instances" | "reaper"
  > {
  /** argv, or one command line split like a shell would ("bun worker.ts --idle park"). */
  command: string[] | string
  /** Resolves once a new worker is ready (a reload waits): default, it joined the bus (no bus: at once); `wait.signal` ends a poll. */
  ready?: (pid: number, wait: { signal: AbortSignal }) => Promise<unknown>
  /** Resolves once process `pid`, to be ended on purpose, gets no new work and holds none (with a bus: after the bus's). */
  retire?: (pid: number) => Promise<unknown>
  /**
   * How many workers: a number (default 1), or `{ min, max }` for a pool that grows while requests wait for a slot
   * (or its slots are 90% busy) and shrinks after `idleTimeoutMs` of little use. Needs a bus.
   */
  instances?: number | { min: number; max: number }
  /** With `instances: { min, max }`: how long the pool is little used (under 25% of its slots) before it shrinks. Default 30 000. */
  idleTimeoutMs?: number
  /**
   * Replace a worker (surge-first, never counted as a crash) once it served `maxRequests`, its resident memory grew
   * past `maxRssBytes` (read from /proc: Linux), or it ran `maxAgeMs`; each limit lowered by up to 10% at random per
   * worker, so a pool does not recycle all at once. Needs a bus for `maxRequests`.
   */
  recycle?: { maxRequests?: number; maxRssBytes?: number; maxAgeMs?: number }
  /**
   * A call for the same bus and command as a running pool of this process returns that pool (bun --hot re-runs
   * the module that made it). Default: true under `bun --hot`.
   */
  hot?: boolean
  /**
   * Where the lines saying the pool restarted a crash (rate-limited), is in a crash loop, gave up, and recovered go.
   * Default: console.warn, prefixed "slotbus: ".
   */
  log?: (line: string) => void
}

// Running pools of this process by bus and command, shared by every copy of this module a hot reload may load.
const POOLS: Map<string, { sup: Supervisor; options: string }> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("slotbus.pools")
] ??= new Map()) as Map<string, { sup: Supervisor; options: string }>

const SUPERVISE_WORKERS_OPTIONS = optionNames<SuperviseWorkersOptions>({
  ...SHARED_OPTIONS,
  onGiveUp: true,
  ready: true,
  retire: true,
  idleTimeoutMs: true,
  recycle: true,
  hot: true,
  log: true,
})
const RECYCLE_OPTIONS = optionNames<NonNullable<SuperviseWorkersOptions["recycle"]>>({
  maxRequests: true,
  maxRssBytes: true,
  maxAgeMs: true,
})

/**
 * Keeps slotbus worker processes alive: every crash is restarted with backoff, each restart logged (crash-log.ts),
 * slower for a worker that keeps dying soon after its start (a crash loop); only a worker that keeps dying
 * during start (within restart.minUptimeMs, before it took a request) makes the pool give up: then what crashes stays down
 * (what runs goes on serving) until a window passes without a crash. With a `bus`, stop(), reload(), recycling and
 * scale-down drain a worker on the bus before stopping it, a successor counts as ready once it joined the bus (and
 * for a reload once it stayed up restart.minReadyMs more), and while no worker is connected after the pool gave up,
 * requests fail with PoolFailedError.
 */
export function superviseWorkers(bus: SlotBus | null, options: SuperviseWorkersOptions): Supervisor {
  checkOptions(options, SUPERVISE_WORKERS_OPTIONS, "superviseWorkers", { required: ["command"], moved: RESTART_MOVED })
  const { command, hot: hotOption, log: logOption, instances, idleTimeoutMs, recycle, ready, retire, ...rest } = options
  for (const [k, f] of Object.entries({ ready, retire }))
    if (f !== undefined && typeof f !== "function") throw new TypeError(`${k} must be a function (pid) => Promise`)
  if (hotOption !== undefined && typeof hotOption !== "boolean") throw new TypeError("hot must be a boolean")
  if (logOption !== undefined && typeof logOption !== "function") throw new TypeError("log must be a function")
  const range = instanceRange(instances, bus)
  const idleMs = checkNumber(idleTimeoutMs, { what: "idleTimeoutMs", where: "superviseWorkers", min: 1, dflt: 30_000 })
  const limits = recycleLimits(recycle, bus)
  const argv = typeof command === "string" ? splitCommand(command) : command
  if (isCompiled() && argv[0] === process.execPath && /\.(?:[cm]?[jt]sx?)$/.test(argv[1] ?? ""))
    throw new TypeError(
      `superviseWorkers: in an app built with bun build --compile, process.execPath is the app itself: [process.execPath, "${argv[1]}"] would run the app's own entry again, not ${argv[1]}; start the workers with selfCommand("worker") (this binary in a worker role) or a second compiled binary (docs/api.md, "Compiled apps")`,
    )
  const log = logOption ?? ((line: string) => console.warn(`slotbus: ${line}`))
  // Under bun --hot the module that called this runs again on every save: the same pool comes back.
  const key = JSON.stringify([bus?.name ?? null, argv, rest.cwd ?? null])
  const shape = JSON.stringify({ rest, instances, idleTimeoutMs, recycle })
  const running = POOLS.get(key)
  if ((hotOption ?? process.execArgv.includes("--hot")) && running?.sup.state === "running") {
    if (running.options === shape) return running.sup
    void running.sup.stop() // other options: the new pool replaces it
  }
  // reload, recycle, scale-down and stop(): the bus and `retire` send a worker nothing more, then it holds nothing
  const retireOne = (pid: number) => Promise.resolve(bus?.pools.retire(pid)).then(() => retire?.(pid))
  // A shared front's pool is the name's (docs/PROTOCOL.md §15.4): the fronts' leader runs it. A bus's workers learn
  // which front started them, so they leave when it dies (the next leader's pool takes over) and exit with it.
  const front = bus?.front ?? null
  // Workers of this pool that joined the bus: a crash of one is never a failed start. Its join here is what this
  // front knows: with shared fronts a worker joins the front that started it (the leader, which runs this pool)
  // before it serves another (§15.4), whose books this front cannot read. A worker's leave and its process's exit
  // come in either order: it is read from the bus's books while it is listed, else kept here.
  const served = new Set<number>()
  // Requests each worker of this pool that left the bus took, until its exit is judged (a leave may come first).
  const took = new Map<number, number>()
  const ours = (pid: number) => sup.instances.some((i) => i.pid === pid)
  // A reload's successor gets a request only while no other worker serves until it stayed up its minReadyMs (it
  // is held from its join): if it exits meanwhile, the reload rejects and no request was on it.
  const held = new Set<number>()
  // After a rejected reload a crash restart runs the files it rejected: held so too, until it stayed up minReadyMs.
  const probation = new Set<number>()
  const onWorker = (e: WorkerEvent) => {
    if (e.type === "join" && held.has(e.worker.pid)) bus?.pools.hold(e.worker.pid)
    if (e.type === "join" && probation.has(e.worker.pid)) {
      const pid = e.worker.pid
      bus?.pools.hold(pid)
      longTimeout(() => probation.delete(pid) && bus?.pools.release(pid), sup.restartSettings.minReadyMs).unref()
    }
    // The bus evicted it (its handlers hang): it is ended and replaced at once, an eviction, not a crash.
    const instance = ours(e.worker.pid)
    if (e.type === "leave" && e.worker.state === "evicting" && sup.evict(e.worker.pid))
      log(
        `${what()}: worker pid ${e.worker.pid} was evicted (${e.worker.stuck} of its slots stuck past their deadline: its handlers hang); ${instance ? "it is ended and replaced" : "a successor getting ready: it is ended, and its reload (or recycle) fails"}`,
      )
    if (e.type === "leave" && ours(e.worker.pid)) took.set(e.worker.pid, e.worker.requests)
    if (e.type !== "join" || !ours(e.worker.pid)) return
    for (const pid of served) if (!ours(pid)) served.delete(pid)
    served.add(e.worker.pid)
  }
  // Without a bus its workers cannot tell that this process died without a word (kill -9, the OOM killer): a reaper
  // beside them SIGTERMs them then, SIGKILL after killGraceMs (`slotbus hub --spawn`'s hubWorkers rejoined for good).
  const reaper = bus ? undefined : new OnDemandReaper(() => sup.killGraceMs)
  const settings: SupervisorOptions = {
    ...rest,
    reaper,
    env: bus ? { ...rest.env, [FRONT_PARENT_ENV]: String(process.pid), [FRONT_BUS_ENV]: bus.name } : rest.env,
    logs: withPoolName(rest.logs, bus?.name), // each line names the bus
    instances: range.min,
    command: argv,
    drain: () => Promise.all(sup.instances.filter((i) => i.pid > 0).map((i) => retireOne(i.pid))), // stop()
    ready:
      bus || ready
        ? async (pid, s) => {
            if (bus && s.minReadyMs > 0) held.add(pid)
            await (ready ? ready(pid, s) : bus!.pools.joined(pid, s.signal))
          }
        : undefined,
    retire: bus || retire ? retireOne : undefined,
    // a stopped worker's exit and its leave come in either order: stop() resolves once the bus lists it no more
    gone: bus ? (pid, ms) => bus.pools.left(pid, ms) : undefined,
    served: bus ? (pid) => served.delete(pid) || bus.workers.some((w) => w.pid === pid) : undefined,
    stable: bus
      ? (pid) => {
          const n = took.get(pid) ?? bus.workers.find((w) => w.pid === pid)?.requests ?? 0
          took.delete(pid)
          return n >= STABLE_REQUESTS
        }
      : undefined,
  }
  // a shared front's reload() reloads the name's pool wherever it runs (§15.4)
  const hooks = {
    instances: instanceBound(bus), // resize() takes no more than the bus does
    stopping: () => (bus?.closing ? `bus "${bus.name}" closed, and its pool stopped with it` : ""),
    refuseStart: () => bus?.pools.startRefused() ?? null,
  }
  const sup =
    front && bus ? sharedPool(settings, bus.name, front, bus.pools.shared, hooks) : new Supervisor(settings, hooks)
  const what = () =>
    `the worker pool${bus ? ` of "${bus.name}"` : ""} (${argv.join(" ")}, ${sup.instances.length} instance${sup.instances.length === 1 ? "" : "s"})`
  const crashes = reportCrashes(sup, what, log, (restarts, loop) => bus?.pools.crashed(sup, restarts, loop))
  sup.on("failed", (f) => {
    const message = `${what()} gave up: ${f.reason}; what crashes stays down, what runs keeps serving, until ${f.windowMs} ms pass without a crash (or supervisor.stop() and start())`
    log(message)
    bus?.pools.failed(sup, new PoolFailedError(message, bus.name, f.reason))
  })
  const restarting = new Set<SupervisedInstance>()
  sup.on("restart", (inst) => crashes.rejectedReload() && restarting.add(inst))
  sup.on("recovered", (r) => {
    log(`${what()} runs again: no crash for a window, ${r.restarted} restarted`)
    bus?.pools.failed(sup, null)
  })
  // a process that never joins (stuck before SlotWorker.connect, or connecting to another name) is said, not silent
  const unjoinedSaid = (inst: SupervisedInstance, bus: SlotBus) => {
    const { pid } = inst
    const ms = sup.readyTimeoutMs
    longTimeout(() => {
      if (inst.pid !== pid || sup.state !== "running" || bus.closing || bus.workers.some((w) => w.pid === pid)) return
      log(
        `${what()}: worker pid ${pid} started ${ms} ms ago and has not joined "${bus.name}" (readyTimeoutMs); is it stuck before SlotWorker.connect("${bus.name}"), or connecting to another name?`,
      )
    }, ms).unref()
  }
  let offServed: (() => void) | null = null
  sup.on("start", (inst) => {
    if (bus) unjoinedSaid(inst, bus)
    if (restarting.delete(inst) && bus) probation.add(inst.pid)
    if (bus?.workers.some((w) => w.pid === inst.pid)) served.add(inst.pid) // a reload's successor, joined before
    bus?.pools.failed(sup, null)
    offServed ??= bus?.onWorker(onWorker) ?? null
  })
  sup.on("replaced", (_i, r) => {
    if (held.delete(r.successor)) bus?.pools.release(r.successor)
  })
  sup.on("exit", (_i, e) => {
    held.delete(e.pid)
    probation.delete(e.pid)
    queueMicrotask(() => took.delete(e.pid)) // after its crash, if it was one, was judged
  })
  sup.on("stopped", () => {
    reaper?.close()
    restarting.clear()
    bus?.pools.failed(sup, null) // a stopped pool takes its failure with it
    offServed?.()
    offServed = null
  })
  const scale = { target: range.min, why: range.max > range.min ? "min" : "fixed" }
  bus?.pools.show(sup, () =>
    sup.state === "stopped" && !standsBy(sup) // a cover's pool, stopped, stands by (§15.5)
      ? null
      : {
          row: [
            argv.join(" "),
            (front && standbyRow(front, sup)) ?? `${sup.state}${sup.crashLoop ? " (crash loop)" : ""}`,
            `${sup.runningCount} of ${sup.instances.length}${range.max > range.min ? ` (target ${scale.target}: ${scale.why})` : ""}`,
            sup.restarts,
            sup.instances.map((i) => i.pid || "-").join(" "),
          ],
          failure: sup.failureReason,
          crashLoop: crashes.crashLoop(),
          rejectedReload: crashes.rejectedReload(),
          restarts: { crash: sup.restarts, ...sup.replacements },
          logDrops: { budget: sup.logs.overBudget, output: sup.logs.dropped - sup.logs.overBudget },
        },
  )
  if (!front || front.leader) sup.start() // throws here when the command cannot be spawned at all
  // elected, or covering for a stopped leader (§15.5), on a timer: nobody to throw to; said, and requests fail with it
  const lead = () => {
    if (!front || !standsBy(sup) || bus?.closing) return
    try {
      sup.start()
    } catch (e) {
      const message = `${what()} could not start on this front, ${front.leader ? "its new leader" : "covering for its stopped leader"}: ${(e as Error).message}`
      log(message)
      bus?.pools.failed(sup, new PoolFailedError(message, bus.name, (e as Error).message))
    }
  }
  if (front) runWhenLeading(front, { pool: sup, command: argv, bus, start: lead, log })
  const stop = () => (sup.state === "running" || sup.state === "failed" ? sup.stop() : undefined)
  // its workers would join the next leader's fronts beside that leader's pool: the name's pool goes with the seat
  front?.onClose(stop)
  bus?.pools.stopOnClose(sup, stop) // its workers exit with it (exitWithFront): restarting them would be a crash loop
  POOLS.set(key, { sup, options: shape })
  if (bus && range.max > range.min) autoscale(sup, bus, range, idleMs, scale)
  if (limits) recycleWhenDue(sup, bus, limits)
  return sup
}

/** The most instances a pool of `bus` runs: more than the bus takes would be refused as they join, restarted, refused. */
function instanceBound(bus: SlotBus | null): { max: number; note: string } {
  if (!bus || bus.pools.maxWorkers >= INSTANCES.max) return INSTANCES
  return { max: bus.pools.maxWorkers, note: "the bus's maxWorkers" }
}

function instanceRange(v: SuperviseWorkersOptions["instances"], bus: SlotBus | null): Range {
  const rule = { where: "superviseWorkers", ...instanceBound(bus) }
  if (v === undefined || typeof v === "number") {
    const n = checkNumber(v ?? 1, { what: "instances", ...rule })
    return { min: n, max: n }
  }
  if (typeof v !== "object" || v === null)
    throw new TypeError(
      `superviseWorkers: instances is a number or { min, max }, got ${typeof v === "string" ? JSON.stringify(v) : String(v)}`,
    )
  checkOptions(v, optionNames<Range>({ min: true, max: true }), "superviseWorkers instances", {
    required: ["min", "max"],
  })
  const min = checkNumber(v.min, { what: "instances.min", ...rule })
  const max = checkNumber(v.max, { what: "instances.max", ...rule, min: Math.max(min, 1) })
  if (!bus && max > min)
    throw new TypeError("superviseWorkers: instances { min, max } needs a bus to read the load from")
  return { min, max }
}

function recycleLimits(v: SuperviseWorkersOptions["recycle"], bus: SlotBus | null): Limits | null {
  if (v === undefined) return null
  checkOptions(v, RECYCLE_OPTIONS, "superviseWorkers recycle")
  const out = { maxRequests: Infinity, maxRssBytes: Infinity, maxAgeMs: Infinity }
  for (const k of ["maxRequests", "maxRssBytes", "maxAgeMs"] as const)
    out[k] = checkNumber(v[k], { what: `recycle.${k}`, where: "superviseWorkers", min: 1, dflt: Infinity })
  if (out.maxRequests < Infinity && !bus)
    throw new TypeError("superviseWorkers: recycle.maxRequests needs a bus to count requests")
  return out
}
