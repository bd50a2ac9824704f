// A contest name is used one way on a host, local or cluster-wide (docs/PROTOCOL.md §12.5): each side makes its
// own marker first, then looks for the other's: abstract sockets listed in /proc/net/unix on the Linux backend (one
// counts when its holder runs as this user: kit/host-seat.ts holderOf), shared locks on files in the socket
// directory on the portable one (§13.2; no abstract names on macOS).
import { readFileSync } from "node:fs"
import { euid, holderOf, squatterText } from "../kit/index.ts"
import { lockHost, portableBackend, unlockHost } from "../native/ffi.ts"
import { ContestModeError } from "./errors.ts"

const LOCAL = "slotbus-lease-local."
const CLUSTER = "slotbus-lease-cluster."

/** Portable backend: whether some process of this host holds a shared lock of `prefix` + `name`. */
function lockedByAny(prefix: string, name: string): boolean {
  // An exclusive lock succeeds only if nobody holds it shared. Another checker's probe holds it exclusive for a
  // moment too (8 processes opening one local contest at once probe together): only a refusal that lasts is a holder.
  for (let i = 0; i < 20; i++) {
    const fd = lockHost(prefix, name, true)
    if (fd !== null) return (unlockHost(fd), false)
    Bun.sleepSync(1)
  }
  return true
}

/** Portable backend: a shared lock of `prefix` + `name` held until the returned function is called. */
function holdShared(prefix: string, name: string): () => void {
  // a checker holds it exclusive for a moment: try again a few times
  for (let i = 0; i < 100; i++) {
    const fd = lockHost(prefix, name, false)
    if (fd !== null) {
      let held = true
      return () => {
        if (held) (held = false), unlockHost(fd)
      }
    }
    Bun.sleepSync(1)
  }
  throw new ContestModeError(`contest "${name}": could not take its ${prefix} marker (held exclusive for 100 ms)`)
}

/** The local contest's marker on the portable backend (held while it is open); a no-op on the Linux backend. */
export function holdLocalMarker(name: string): () => void {
  return portableBackend() ? holdShared(LOCAL, name) : () => {}
}

function boundNames(): string[] {
  try {
    // the last field of each line; abstract names start with @
    return readFileSync("/proc/net/unix", "utf8")
      .split("\n")
      .map((l) => l.slice(l.lastIndexOf(" ") + 1))
      .filter((n) => n.startsWith("@slotbus-lease"))
  } catch {
    return [] // no procfs: nothing to check against
  }
}

/** Whether a local contest `name` (§7.1's socket) of this user is open on this host. */
export function localInUse(name: string): boolean {
  if (portableBackend()) return lockedByAny(LOCAL, name)
  return boundNames().includes(`@slotbus-lease.${name}`) && ownMarker("slotbus-lease.", name)
}

/** Whether some process of this host and user (this one included) has the cluster contest `name` open. */
export function clusterInUse(name: string): boolean {
  if (portableBackend()) return lockedByAny(CLUSTER, name) // the lock files are in this user's directory
  const prefix = `${CLUSTER}${name}.`
  return boundNames().some((n) => {
    const pid = n.slice(prefix.length + 1)
    return n.startsWith(`@${prefix}`) && /^\d+$/.test(pid) && ownMarker(prefix, pid)
  })
}

const warned = new Set<string>()

/** Any uid can bind an abstract name: a marker counts only when its holder runs as this euid (SO_PEERCRED). */
function ownMarker(prefix: string, name: string): boolean {
  const holder = holderOf(prefix, name)
  if (holder === "ours" || holder === "none") return holder === "ours"
  const address = `@${prefix}${name}`
  if (!warned.has(address)) {
    warned.add(address)
    console.warn(
      `slotbus: the contest marker "${address}" (docs/PROTOCOL.md §12.5) is held by ${squatterText(holder)}, not by this user (uid ${euid()}); it is no contest of this user's and is ignored: stop that process`,
    )
  }
  return false
}

export function modeError(name: string, open: "local" | "cluster"): ContestModeError {
  return new ContestModeError(
    open === "cluster"
      ? `contest "${name}" is open cluster-wide (with a remote option) on this host, so it cannot be opened as a local contest: tokens of the two cannot be compared. Open it with the same remote option, or use another name`
      : `contest "${name}" is open as a local contest on this host, so it cannot be opened cluster-wide: tokens of the two cannot be compared. Open it without remote everywhere, or use another name`,
  )
}

const markers = new Map<string, { stop(closeActive?: boolean): void; unref(): void; count: number }>()

/** Holds this process's cluster marker for `name` until the returned function is called (counted per name). */
export function holdClusterMarker(name: string): () => void {
  if (portableBackend()) return holdShared(CLUSTER, name)
  let m = markers.get(name)
  if (!m) {
    const l = Bun.listen({ unix: `\0slotbus-lease-cluster.${name}.${process.pid}`, socket: { data() {} } })
    l.unref()
    m = Object.assign(l, { count: 0 })
    markers.set(name, m)
  }
  m.count++
  let held = true
  return () => {
    if (!held) return
    held = false
    if (--m!.count === 0) {
      markers.delete(name)
      m!.stop(true)
    }
  }
}
