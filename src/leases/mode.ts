// A contest name is used one way on a host, local or cluster-wide (docs/PROTOCOL.md §12.5): each side makes its
// own marker first, then looks for the other's: shared locks on files in the user's socket directory (§1.1), which
// no other uid can make or hold.
import { NativeLibraryError } from "../errors.ts"
import { lockHost as lockFile, unlockHost } from "../native/ffi.ts"
import { ContestModeError, ContestOpenError } from "./errors.ts"
import { closeAtExit } from "../kit/index.ts"
import { sleepSync } from "../runtime/index.ts"

const LOCAL = "slotbus-lease-local."
const CLUSTER = "slotbus-lease-cluster."

/** lockHost, its failure (something not a lock file at its path: a directory, a link) a ContestOpenError. */
function lockHost(prefix: string, name: string, exclusive: boolean): number | null {
  try {
    return lockFile(prefix, name, exclusive)
  } catch (e) {
    if (!(e instanceof NativeLibraryError)) throw e
    throw new ContestOpenError(`contest "${name}": ${e.message}; is something else at that path?`, "system")
  }
}

/** Whether some process of this host holds a shared lock of `prefix` + `name`. */
function lockedByAny(prefix: string, name: string): boolean {
  // An exclusive lock succeeds only if nobody holds it shared. Another checker's probe holds it exclusive for a
  // moment too (8 processes opening one local contest at once probe together): only a refusal that lasts is a holder.
  for (let i = 0; i < 20; i++) {
    const fd = lockHost(prefix, name, true)
    if (fd !== null) return (unlockHost(fd), false)
    sleepSync(1)
  }
  return true
}

/** A shared lock of `prefix` + `name` held until the returned function is called. */
function holdShared(prefix: string, name: string): () => void {
  // a checker holds it exclusive for a moment: try again a few times
  for (let i = 0; i < 100; i++) {
    const fd = lockHost(prefix, name, false)
    if (fd !== null) {
      let held = true
      const release = () => {
        if (held) (held = false), forget(), unlockHost(fd)
      }
      // a process that exits with it held (no close(): process.exit(), an uncaught error) lets go, so its file goes
      const forget = closeAtExit({ close: release })
      return release
    }
    sleepSync(1)
  }
  throw new ContestModeError(`contest "${name}": could not take its ${prefix} marker (held exclusive for 100 ms)`)
}

/** The local contest's marker, held while it is open; `undo` (the contest's close) runs first when it cannot be. */
export function holdLocalMarker(name: string, undo: () => void): () => void {
  try {
    return holdShared(LOCAL, name)
  } catch (e) {
    undo() // a failed open leaves nothing: no fd, thread, socket or membership
    throw e
  }
}

/** Whether a local contest `name` (§7.1's socket) of this user is open on this host. */
export function localInUse(name: string): boolean {
  return lockedByAny(LOCAL, name)
}

/** Whether some process of this host and user (this one included) has the cluster contest `name` open. */
export function clusterInUse(name: string): boolean {
  return lockedByAny(CLUSTER, name)
}

export function modeError(name: string, open: "local" | "cluster"): ContestModeError {
  return new ContestModeError(
    open === "cluster"
      ? `contest "${name}" is open cluster-wide (with a remote option) on this host, so it cannot be opened as a local contest: tokens of the two cannot be compared. Open it with the same remote option, or use another name`
      : `contest "${name}" is open as a local contest on this host, so it cannot be opened cluster-wide: tokens of the two cannot be compared. Open it without remote everywhere, or use another name`,
  )
}

/** Holds this process's cluster marker for `name` until the returned function is called. */
export function holdClusterMarker(name: string): () => void {
  return holdShared(CLUSTER, name)
}
