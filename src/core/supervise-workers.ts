// superviseWorkers: a Supervisor (src/kit) keeping slotbus worker processes of one bus alive, which the bus knows of:
// requests wait for it or fail with its PoolFailedError, stop() drains them first, the status view shows it.
import { PoolFailedError } from "../errors.ts"
import {
  checkOptions,
  optionNames,
  SHARED_OPTIONS,
  sleep,
  splitCommand,
  Supervisor,
  type SupervisorOptions,
} from "../kit/index.ts"
import type { SlotBus } from "./bus.ts"

export interface SuperviseWorkersOptions extends Omit<SupervisorOptions, "command" | "drain"> {
  /** argv, or one command line split like a shell would ("bun worker.ts --idle park"). */
  command: string[] | string
  /**
   * A call for the same bus and command as a running pool of this process returns that pool (bun --hot re-runs
   * the module that made it). Default: true under `bun --hot`.
   */
  hot?: boolean
  /** Where the line saying the pool gave up goes. Default: console.warn, prefixed "slotbus: ". */
  log?: (line: string) => void
}

// Running pools of this process by bus and command, shared by every copy of this module a hot reload may load.
const POOLS: Map<string, { sup: Supervisor; options: string }> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("slotbus.pools")
] ??= new Map()) as Map<string, { sup: Supervisor; options: string }>

const SUPERVISE_WORKERS_OPTIONS = optionNames<SuperviseWorkersOptions>({ ...SHARED_OPTIONS, hot: true, log: true })

/**
 * Keeps `instances` slotbus worker processes alive: restarted with backoff when they die, failed loudly past
 * the restart intensity. With a `bus`, stop() first waits for the requests in flight to these workers, and
 * once the pool has given up, requests that would wait for a worker fail with PoolFailedError.
 */
export function superviseWorkers(bus: SlotBus | null, options: SuperviseWorkersOptions): Supervisor {
  checkOptions(options, SUPERVISE_WORKERS_OPTIONS, "superviseWorkers", { required: ["command"] })
  const { command, hot: hotOption, log: logOption, ...rest } = options
  if (hotOption !== undefined && typeof hotOption !== "boolean") throw new TypeError("hot must be a boolean")
  if (logOption !== undefined && typeof logOption !== "function") throw new TypeError("log must be a function")
  const argv = typeof command === "string" ? splitCommand(command) : command
  const log = logOption ?? ((line: string) => console.warn(`slotbus: ${line}`))
  // Under bun --hot the module that called this runs again on every save: the same pool comes back.
  const key = JSON.stringify([bus?.name ?? null, argv, rest.cwd ?? null])
  const shape = JSON.stringify(rest)
  const running = POOLS.get(key)
  if ((hotOption ?? process.execArgv.includes("--hot")) && running?.sup.state === "running") {
    if (running.options === shape) return running.sup
    void running.sup.stop() // other options: the new pool replaces it
  }
  const drain = async () => {
    const pids = () => new Set(sup.instances.map((i) => i.pid))
    while (bus && bus.workers.some((w) => pids().has(w.pid) && w.inFlight > 0)) await sleep(10)
  }
  const sup: Supervisor = new Supervisor({ ...rest, command: argv, drain })
  const what = `the worker pool${bus ? ` of "${bus.name}"` : ""} (${argv.join(" ")}, ${sup.instances.length} instance${sup.instances.length === 1 ? "" : "s"})`
  sup.on("failed", (f) => {
    const message = `${what} gave up: ${f.reason}; fix the worker, then start the pool again (supervisor.start())`
    log(message)
    bus?.poolFailed(sup, new PoolFailedError(message, bus.name, f.reason))
  })
  sup.on("start", () => bus?.poolFailed(sup, null))
  bus?.showPool(sup, () =>
    sup.state === "stopped"
      ? null
      : {
          row: [
            argv.join(" "),
            sup.state,
            `${sup.runningCount} of ${sup.instances.length}`,
            sup.restarts,
            sup.instances.map((i) => i.pid || "-").join(" "),
          ],
          failure: sup.failureReason,
        },
  )
  sup.start()
  POOLS.set(key, { sup, options: shape })
  return sup
}
