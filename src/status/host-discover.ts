// What runs on this host, found without the help of any app (`slotbus ls`, `top`, `requests`): the buses' flight
// recorder files (docs/PROTOCOL.md §16) and the listening sockets of buses, topics and contests in /proc/net/unix
// (§1, §7.1, §8.1; the socket files of §13.2 on the portable backend), with the processes holding them found by
// their inodes in /proc/<pid>/fd. Every read is bounded and every file is checked, never trusted.
import {
  closeSync,
  existsSync,
  fstatSync,
  constants as fsc,
  openSync,
  opendirSync,
  readdirSync,
  readlinkSync,
  readSync,
} from "node:fs"
import { basename, join } from "node:path"
import { recorderDirs, whyNotPrivateDir } from "../native/recorder-layout.ts"
import { type MalformedFile, type RecorderFile, readRecorder } from "./host-recorder.ts"

/** The most of /proc/net/unix read (a host with more sockets than this lists the first ones). */
const MAX_PROC_NET_UNIX = 32 * 1024 * 1024
/** The most skipped files kept to show (anyone may make a million in their own directory); the rest are counted. */
const MAX_PROBLEMS = 100
/** The most recorder files read in one directory: a uid runs a few buses, and a directory of a million forged
 * files must not take a reader's memory. */
export const MAX_FILES_PER_DIR = 1024
const REC_FILE = /^([A-Za-z0-9._-]{1,64})\.(\d{1,10})\.rec$/

/** "election": a shared name's election socket, held by its leader front (§15.2). */
export type Kind = "bus" | "topic" | "contest" | "election"

/** A name some process listens on: a bus's front, the members of a topic or contest sharing one socket, or the
 * leader of a shared name's fronts. */
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
  /** Shared names (§15.2) with their leader front's pid. */
  elections: Listener[]
  /** Recorder directories and files skipped, each with why (at most MAX_PROBLEMS). */
  problems: MalformedFile[]
  /** How many more were skipped than `problems` shows. */
  problemsLeftOut: number
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
    const named = path.startsWith("@")
      ? kindOf(path.slice(1).replace(TOPIC_UID, "slotbus.topic."))
      : kindOf(basename(path))
    if (named) found.push({ ...named, inode: Number(f[6]), pids: [] })
  }
  const byInode = new Map(found.map((l) => [l.inode, l]))
  if (byInode.size > 0) for (const [pid, inode] of socketHolders()) byInode.get(inode)?.pids.push(pid)
  for (const l of found) l.pids.sort((a, b) => a - b)
  return found
}

/** A topic's abstract rendezvous name carries its members' euid (§8.1): `slotbus.topic.<euid>.<name>`. */
const TOPIC_UID = /^slotbus\.topic\.\d{1,10}\./
const PREFIXES: Record<string, Kind> = { ".topic.": "topic", "-lease.": "contest", ".fronts.": "election", ".": "bus" }

/** The kind and name of a socket's name: a bus's front k > 0 of a shared name listens on `<name>~<k>` (§15.1). */
function kindOf(file: string): { kind: Kind; name: string } | null {
  if (file.startsWith("slotbus.fronts-cover.")) return null // a standby covering a stopped leader (§15.5): no bus
  const m = /^slotbus(\.topic\.|-lease\.|\.fronts\.|\.)([A-Za-z0-9._-]{1,64})(~\d{1,3})?$/.exec(file)
  const kind = m && PREFIXES[m[1]!]
  if (!kind || (m[3] && kind !== "bus")) return null
  return { kind, name: m[2]! }
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

interface RecorderScan {
  files: RecorderFile[]
  problems: MalformedFile[]
  problemsLeftOut: number
  unreadable: string[]
}

/** The headers of every recorder file this process may read (of bus `name` alone when given), and what was
 * skipped. A directory counts only when it is a real 0700 directory of the uid it is for (a link is never
 * followed), a file only when that uid owns it and its header says so. */
export function recorderFiles(name?: string): RecorderScan {
  const scan: RecorderScan = { files: [], problems: [], problemsLeftOut: 0, unreadable: [] }
  const skip = (p: MalformedFile) => {
    if (name !== undefined) return
    if (scan.problems.length < MAX_PROBLEMS) scan.problems.push(p)
    else scan.problemsLeftOut++
  }
  for (const { dir, uid } of recorderDirs()) {
    const why = whyNotPrivateDir(dir, uid)
    if (why) {
      skip({ path: dir, malformed: why })
      continue
    }
    let fd: number
    try {
      fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW)
    } catch {
      scan.unreadable.push(dir)
      continue
    }
    try {
      const st = fstatSync(fd)
      if (st.uid !== uid || (st.mode & 0o777) !== 0o700) skip({ path: dir, malformed: "replaced while being read" })
      else scanDir(dir, uid, fd, name, scan, skip)
    } catch {
      scan.unreadable.push(dir)
    } finally {
      closeSync(fd)
    }
  }
  return scan
}

/** The files of a checked directory, read through its open fd (Linux: /proc/self/fd) so that what is listed is it. */
function scanDir(
  dir: string,
  uid: number,
  fd: number,
  name: string | undefined,
  scan: RecorderScan,
  skip: (p: MalformedFile) => void,
) {
  const here = existsSync(`/proc/self/fd/${fd}`) ? `/proc/self/fd/${fd}` : dir
  const entries = opendirSync(here)
  let read = 0
  try {
    for (let e = entries.readSync(); e; e = entries.readSync()) {
      const path = join(dir, e.name)
      const m = REC_FILE.exec(e.name)
      if (!m) skip({ path, malformed: "not a recorder file's name (<bus>.<pid>.rec)" })
      if (!m || (name !== undefined && m[1] !== name)) continue
      if (++read > MAX_FILES_PER_DIR) {
        skip({ path: dir, malformed: `more than ${MAX_FILES_PER_DIR} recorder files: the rest were not read` })
        break
      }
      const r = readRecorder(path, { at: join(here, e.name), uid, records: false })
      if ("malformed" in r) skip(r)
      else if (r.name !== m[1] || r.pid !== Number(m[2]))
        skip({ path, malformed: `its header names bus "${r.name}" of pid ${r.pid}, its file name another` })
      else scan.files.push(r)
    }
  } finally {
    entries.closeSync()
  }
}

/** Everything on this host (of bus `name` alone when given): buses (from their recorder files' headers and
 * listening sockets), topics, contests, shared names. */
export function discover(name?: string): HostView {
  const socks = listeners().filter((s) => name === undefined || s.name === name)
  const { files, problems, problemsLeftOut, unreadable } = recorderFiles(name)
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
  const of = (kind: Kind) => socks.filter((s) => s.kind === kind).sort(byName)
  return {
    buses,
    topics: of("topic"),
    contests: of("contest"),
    elections: of("election"),
    problems,
    problemsLeftOut,
    unreadable,
  }
}
