// What a process holds and what slotbus could leave behind: fds by kind, files in /dev/shm and /tmp, bound sockets.
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs"
import { userInfo } from "node:os"
import { join } from "node:path"

/** What a process's fds point at, by kind: slotbus memfds, eventfds, sockets, everything. */
export function fdCensus(pid: number = process.pid) {
  const targets: string[] = []
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      targets.push(readlinkSync(`/proc/${pid}/fd/${fd}`))
    } catch {} // closed while we looked
  }
  return {
    memfd: targets.filter((t) => t.startsWith("/memfd:slotbus")).length,
    eventfd: targets.filter((t) => t === "anon_inode:[eventfd]").length,
    socket: targets.filter((t) => t.startsWith("socket:")).length,
    total: targets.length,
  }
}

/** fdCensus once it stopped changing: fds of earlier tests' children and channels close asynchronously. */
export async function settledCensus(pid: number = process.pid) {
  let last = fdCensus(pid)
  for (let stable = 0, i = 0; stable < 3 && i < 100; i++) {
    await Bun.sleep(20)
    const now = fdCensus(pid)
    stable = JSON.stringify(now) === JSON.stringify(last) ? stable + 1 : 0
    last = now
  }
  return last
}

/**
 * Files (shared memory, sockets, locks) named like slotbus where they could be left behind. Directories are
 * not counted: other tests (pack.test) make slotbus-* temp directories, possibly while this one runs.
 */
export function slotbusLeftovers(): string[] {
  const out: string[] = []
  for (const dir of ["/dev/shm", "/tmp", "/run", "/var/run"]) {
    let names: string[] = []
    try {
      names = readdirSync(dir)
    } catch {}
    for (const n of names) {
      if (!/slotbus/i.test(n)) continue
      try {
        if (!lstatSync(join(dir, n)).isDirectory()) out.push(join(dir, n))
      } catch {} // removed while we looked
    }
  }
  return out.sort()
}

/**
 * What /dev/shm holds by name, less the flight recorders' directory (docs/PROTOCOL.md §16.1: made by the first bus
 * that listens, and kept, as the socket directory is; its files are each bus's, removed when it closes).
 */
export function shmNames(): string[] {
  return readdirSync("/dev/shm")
    .filter((f) => !/^slotbus-\d+$/.test(f))
    .sort()
}

/**
 * This user's socket directory (docs/PROTOCOL.md §13.2): $SLOTBUS_SOCKET_DIR, else ~/.slotbus where it exists, else
 * /tmp/slotbus-<euid> (a squatted name's fallback is not looked for).
 */
export function socketDir(): string {
  if (process.env.SLOTBUS_SOCKET_DIR) return process.env.SLOTBUS_SOCKET_DIR
  const home = join(userInfo().homedir, ".slotbus") // the password database's home, as the library: never $HOME
  return existsSync(home) ? home : `/tmp/slotbus-${process.geteuid!()}`
}

/** Unix sockets currently bound as "slotbus.<name>" in a socket directory (docs/PROTOCOL.md §1.1), by file name. */
export function boundBusNames(): string[] {
  return readFileSync("/proc/net/unix", "utf8")
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[7]?.split("/").pop())
    .filter((p): p is string => p?.startsWith("slotbus.") ?? false)
}

/**
 * This process's fds that could be a doorbell: sockets (a doorbell is a socketpair end on both backends,
 * docs/PROTOCOL.md §1.2). A hostile fixture takes the ones that appeared while it attached, less its own doorbell
 * and its rendezvous socket, as the hub's doorbell.
 */
export function doorbellCandidates(): Set<number> {
  const out = new Set<number>()
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const t = readlinkSync(`/proc/self/fd/${fd}`)
      if (t.startsWith("socket:")) out.add(Number(fd))
    } catch {} // closed while we looked
  }
  return out
}
