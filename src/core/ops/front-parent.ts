// A pool's worker and the front that started it (docs/PROTOCOL.md §15.4): superviseWorkers(bus, …) starts each
// worker with the front's pid and the bus's name in its environment. Only a connection to that bus is judged by
// them (a second bus the worker serves is its own business), and only in the process the pool started, not in a
// process that one started in turn (it inherits the environment, and spawn passes the environment the process
// started with, whatever process.env says since).
import { readFileSync } from "node:fs"

/** The environment variable naming the front that started a worker of a pool (superviseWorkers with a bus). */
export const FRONT_PARENT_ENV = "SLOTBUS_FRONT_PARENT"
/** The environment variable naming that pool's bus: the one bus the front's pid is judged on. */
export const FRONT_BUS_ENV = "SLOTBUS_FRONT_BUS"

/**
 * The pid of the front that started this process as a worker of the pool of bus `name`; 0 for another bus, and
 * for a process started otherwise (by hand, or by a pool's worker). Without SLOTBUS_FRONT_BUS (a front of an
 * older version) the pid stands for every bus, as it did.
 */
export function frontParent(name: string): number {
  const pid = Number(process.env[FRONT_PARENT_ENV] ?? 0) || 0
  if (pid <= 0) return 0
  const bus = process.env[FRONT_BUS_ENV]
  if (bus !== undefined && bus !== name) return 0
  return startedByAWorker(pid) ? 0 : pid
}

/**
 * Whether this process inherited the variable from a process of the pool rather than from the front: its parent
 * is not the front and has libslotbus mapped (a worker), where a pool's own worker has the front as parent, or a
 * launcher without slotbus (`npm run`, `sh -c`), or init once the front died. Unknown (no /proc, another uid's
 * parent): false, the variable counts.
 */
function startedByAWorker(front: number): boolean {
  const parent = process.ppid
  if (parent === front || parent <= 1) return false
  try {
    return readFileSync(`/proc/${parent}/maps`, "latin1").includes("libslotbus")
  } catch {
    return false
  }
}

const PF_EXITING = 0x4 // include/linux/sched.h

/** Whether the process `pid` still runs (a zombie counts as gone: its parent has not reaped it yet). */
export function parentAlive(pid: number): boolean {
  if (!stillThere(pid)) return false
  try {
    // A zombie, or a process on its way out: a kill -9 closes its sockets (the worker hears of it) before it is a
    // zombie, while its flags (the 7th field after the name) have PF_EXITING.
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return after[0] !== "Z" && after[0] !== "X" && (Number(after[6]) & PF_EXITING) === 0
  } catch {
    // No /proc (macOS): kill's answer stands. Or the process was reaped between kill and the read: ask again.
    return stillThere(pid)
  }
}

function stillThere(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH"
  }
}
