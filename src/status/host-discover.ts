// What runs on this host, found without the help of any app (`slotbus ls`, `top`, `requests`): the buses' flight
// recorder files (docs/PROTOCOL.md §16) and the listening sockets of buses, topics and contests in /proc/net/unix
// (§1, §7.1, §8.1; the socket files of §13.2 on the portable backend), with the processes holding them found by
// their inodes in /proc/<pid>/fd. Every read is bounded and every file is checked, never trusted.
import { closeSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs"
import { basename, join } from "node:path"
import { recorderRoots } from "../native/recorder-layout.ts"
import { type MalformedFile, type RecorderFile, readRecorder } from "./host-recorder.ts"

/** The most of /proc/net/unix read (a host with more sockets than this lists the first ones). */
const MAX_PROC_NET_UNIX = 32 * 1024 * 1024
const REC_FILE = /^([A-Za-z0-9._-]{1,64})\.(\d{1,10})\.rec$/

export type Kind = "bus" | "topic" | "contest"

/** A name some process listens on: a bus's front, or the members of a topic or contest sharing one socket. */
export interface Listener {
  kind: Kind
  name: string
  inode: number
  /** Processes holding the listening socket (a bus: its front; a topic or contest: every member). */
  pids: number[]
}

export interface BusView {
  name: string
  /** The front's pid, from the recorder file or the listening socket. */
  pid: number
  /** "live", "stale: why", or "no recorder" (listening, but it keeps no file: recorder: false, or another uid's) */
  state: string
  recorder: RecorderFile | null
}

export interface HostView {
  buses: BusView[]
  topics: Listener[]
  contests: Listener[]
  /** Files in a recorder directory that are not recorder files, each with why. */
  problems: MalformedFile[]
  /** Directories that could not be listed (another uid's, when not root). */
  unreadable: string[]
}

/** The listening sockets of slotbus names in /proc/net/unix, by kind (empty where there is no /proc). */
export function listeners(): Listener[] {
  let text: string
  try {
    const fd = openSync("/proc/net/unix", "r")
    try {
      const chunks: Buffer[] = []
      let got = 0
      while (got < MAX_PROC_NET_UNIX) {
        const chunk = Buffer.alloc(64 * 1024)
        const n = readSync(fd, chunk, 0, chunk.length, null)
        if (n <= 0) break
        chunks.push(chunk.subarray(0, n))
        got += n
      }
      text = Buffer.concat(chunks).toString("latin1")
    } finally {
      closeSync(fd)
    }
  } catch {
    return []
  }
  const found: Listener[] = []
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8) continue
    if ((Number.parseInt(f[3]!, 16) & 0x10000) === 0) continue // __SO_ACCEPTCON: listening
    const path = f.slice(7).join(" ")
    const file = path.startsWith("@") ? path.slice(1) : basename(path)
    const named = kindOf(file)
    if (named) found.push({ ...named, inode: Number(f[6]), pids: [] })
  }
  const byInode = new Map(found.map((l) => [l.inode, l]))
  if (byInode.size > 0) for (const [pid, inode] of socketHolders()) byInode.get(inode)?.pids.push(pid)
  for (const l of found) l.pids.sort((a, b) => a - b)
  return found
}

function kindOf(file: string): { kind: Kind; name: string } | null {
  const m = /^slotbus(\.topic\.|-lease\.|\.)([A-Za-z0-9._-]{1,64})$/.exec(file)
  if (!m) return null
  return { kind: m[1] === ".topic." ? "topic" : m[1] === "-lease." ? "contest" : "bus", name: m[2]! }
}

/** Every (pid, socket inode) pair this process may see in /proc/<pid>/fd. */
function* socketHolders(): Generator<[number, number]> {
  let pids: string[]
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p))
  } catch {
    return
  }
  for (const p of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${p}/fd`)
    } catch {
      continue // gone, or another uid's
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`))
        if (m) yield [Number(p), Number(m[1])]
      } catch {}
    }
  }
}

/** Every recorder file this process may read, and the files there that are not recorder files. */
export function recorderFiles(): { files: RecorderFile[]; problems: MalformedFile[]; unreadable: string[] } {
  const files: RecorderFile[] = []
  const problems: MalformedFile[] = []
  const unreadable: string[] = []
  for (const root of recorderRoots()) {
    let dirs: string[]
    try {
      dirs = readdirSync(root).filter((d) => /^slotbus-\d+$/.test(d))
    } catch {
      continue
    }
    for (const d of dirs) {
      const dir = join(root, d)
      let names: string[]
      try {
        names = readdirSync(dir)
      } catch {
        unreadable.push(dir)
        continue
      }
      for (const n of names) {
        const path = join(dir, n)
        const m = REC_FILE.exec(n)
        if (!m) {
          problems.push({ path, malformed: "not a recorder file's name (<bus>.<pid>.rec)" })
          continue
        }
        const r = readRecorder(path)
        if ("malformed" in r) problems.push(r)
        else if (r.name !== m[1] || r.pid !== Number(m[2]))
          problems.push({ path, malformed: `its header names bus "${r.name}" of pid ${r.pid}, its file name another` })
        else files.push(r)
      }
    }
  }
  return { files, problems, unreadable }
}

/** Everything on this host: buses (from their recorder files and listening sockets), topics, contests. */
export function discover(): HostView {
  const socks = listeners()
  const { files, problems, unreadable } = recorderFiles()
  const buses: BusView[] = files.map((r) => ({
    name: r.name,
    pid: r.pid,
    state: r.stale ? `stale: ${r.stale}` : "live",
    recorder: r,
  }))
  for (const l of socks.filter((s) => s.kind === "bus"))
    for (const pid of l.pids.length > 0 ? l.pids : [0])
      if (!buses.some((b) => b.name === l.name && b.pid === pid))
        buses.push({ name: l.name, pid, state: "no recorder", recorder: null })
  buses.sort((a, b) => a.name.localeCompare(b.name) || a.pid - b.pid)
  const byName = (a: Listener, b: Listener) => a.name.localeCompare(b.name)
  return {
    buses,
    topics: socks.filter((s) => s.kind === "topic").sort(byName),
    contests: socks.filter((s) => s.kind === "contest").sort(byName),
    problems,
    unreadable,
  }
}
