// A shared name's pool (docs/PROTOCOL.md §15.4) is run by the fronts' leader; the other fronts hold it in state
// `created`. reload() on any front reloads the one pool: a standby front asks the leader over the control socket
// (§14.4), which the leader holds, and the leader reloads its pool of the same command.
import {
  stoppedProcess,
  Supervisor,
  SupervisorError,
  type SupervisorHooks,
  type SupervisorOptions,
} from "../../kit/index.ts"
import { controlReload } from "./control-client.ts"
import type { FrontSeat } from "./fronts.ts"
import { coveringFront, standsBy } from "./front-cover.ts"

export type ReloadOptions = NonNullable<Parameters<Supervisor["reload"]>[0]>

/** A shared front's supervisor: its reload() reloads the name's pool wherever it runs. */
export function sharedPool(
  options: SupervisorOptions,
  name: string,
  seat: FrontSeat,
  pools: SharedPools,
  hooks: SupervisorHooks,
): Supervisor {
  const command = [...options.command]
  // this pool's own reload when it runs it, else the leader's, asked over the control socket
  const pool: Supervisor = new Supervisor(options, {
    ...hooks,
    reloadElsewhere: (o) => (!standsBy(pool) || seat.leader ? null : reloadOnLeader(name, command, o, seat)),
  })
  pools.add(pool, command, seat)
  return pool
}

/** A standby's reload: the leader's, over its control socket; refused at once while the leader is stopped (§15.5). */
function reloadOnLeader(name: string, command: string[], o: ReloadOptions, seat: FrontSeat): Promise<void> {
  const pid = seat.leaderPid()
  if (!stoppedProcess(pid)) return controlReload(name, command, o)
  const cover = coveringFront(name)
  return Promise.reject(
    new SupervisorError(
      `the leader front of "${name}" (pid ${pid}) is stopped (SIGSTOP, a paused container, a debugger) and cannot reload the name's pool until it runs again; ${cover > 0 ? `front pid ${cover} runs the pool for it meanwhile: reload() there` : "try again once it runs"}`,
    ),
  )
}

/**
 * A bus's shared pools by command, which its control socket hands a reload another front asks for (§14.4). Kept on
 * the bus, so a `bun --hot` reload that runs superviseWorkers again on the bus it gets back still finds its pool.
 */
export class SharedPools {
  private readonly byCommand = new Map<string, Supervisor>()

  constructor(private readonly name: string) {}

  add(pool: Supervisor, command: readonly string[], seat: FrontSeat) {
    const k = JSON.stringify(command)
    this.byCommand.set(k, pool)
    seat.onClose(() => {
      if (this.byCommand.get(k) === pool) this.byCommand.delete(k)
    })
  }

  /** What the control socket does with a reload request: the running pool of that command reloads. */
  reload(command: unknown, options: ReloadOptions): Promise<void> {
    const name = this.name
    const pool = Array.isArray(command) ? this.byCommand.get(JSON.stringify(command)) : undefined
    if (!pool)
      return Promise.reject(
        new SupervisorError(
          `the front that runs "${name}"'s pool (pid ${process.pid}) has no pool of the command ${JSON.stringify(command)}: every front must call superviseWorkers with the same command`,
        ),
      )
    if (pool.state === "created")
      return Promise.reject(
        new SupervisorError(
          `the front with "${name}"'s control socket (pid ${process.pid}) does not run its pool (an election is under way): try again`,
        ),
      )
    return pool.reload(options) // a pool that runs reloads itself: never passed on
  }
}
