// A contest name is used one way on a host, local or cluster-wide (docs/PROTOCOL.md §12.5): each side makes its
// own abstract socket first, then looks for the other's in /proc/net/unix.
import { readFileSync } from "node:fs"
import { ContestModeError } from "./errors.ts"

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

/** Whether a local contest `name` (§7.1's socket) is open on this host. */
export function localInUse(name: string): boolean {
  return boundNames().includes(`@slotbus-lease.${name}`)
}

/** Whether some process of this host (this one included) has the cluster contest `name` open. */
export function clusterInUse(name: string): boolean {
  const prefix = `@slotbus-lease-cluster.${name}.`
  return boundNames().some((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
}

export function modeError(name: string, open: "local" | "cluster"): ContestModeError {
  return new ContestModeError(
    open === "cluster"
      ? `contest "${name}" is open cluster-wide (with a nats option) on this host, so it cannot be opened as a local contest: tokens of the two cannot be compared. Open it with the same nats option, or use another name`
      : `contest "${name}" is open as a local contest on this host, so it cannot be opened cluster-wide: tokens of the two cannot be compared. Open it without nats everywhere, or use another name`,
  )
}

const markers = new Map<string, { stop(closeActive?: boolean): void; unref(): void; count: number }>()

/** Holds this process's cluster marker for `name` until the returned function is called (counted per name). */
export function holdClusterMarker(name: string): () => void {
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
