// A shared name's pool (docs/PROTOCOL.md §15.4) is run by the fronts' leader; the other fronts hold it in state
// `created`. reload() on any front reloads the one pool: a standby front asks the leader over the control socket
// (§14.4), which the leader holds, and the leader reloads its pool of the same command.
import { Supervisor, SupervisorError, type SupervisorOptions } from "../../kit/index.ts"
import { controlReload } from "./control-client.ts"
import type { FrontSeat } from "./fronts.ts"

// The pools of shared fronts in this process, by bus name and command: what a reload from another front names.
const SHARED: Map<string, Supervisor> = ((globalThis as Record<symbol, unknown>)[Symbol.for("slotbus.sharedPools")] ??=
  new Map()) as Map<string, Supervisor>

type ReloadOptions = NonNullable<Parameters<Supervisor["reload"]>[0]>

const key = (name: string, command: readonly string[]) => JSON.stringify([name, command])

/** A shared front's supervisor: its reload() reloads the name's pool wherever it runs. */
export function sharedPool(options: SupervisorOptions, name: string, seat: FrontSeat): Supervisor {
  const command = [...options.command]
  // this pool's own reload when it runs it, else the leader's, asked over the control socket
  const pool: Supervisor = new Supervisor(options, {
    reloadElsewhere: (o) => (pool.state !== "created" || seat.leader ? null : controlReload(name, command, o)),
  })
  const k = key(name, command)
  SHARED.set(k, pool)
  seat.onClose(() => {
    if (SHARED.get(k) === pool) SHARED.delete(k)
  })
  return pool
}

/** What the control socket does with a reload request (§14.4): the running pool of that command reloads. */
export function reloadAsked(name: string, command: unknown, options: ReloadOptions): Promise<void> {
  const pool = Array.isArray(command) ? SHARED.get(key(name, command as string[])) : undefined
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
