// The flight recorder file's layout (docs/PROTOCOL.md §16, csrc/recorder.h): the one place TS reads its offsets
// from, checked against the header and the protocol page by test/native/recorder-layout.test.ts; and the one
// place that says which directories its files are in (§16.1), for the writer and every reader.
import { existsSync, lstatSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { isAbsolute, join } from "node:path"

export const RecConst = {
  MAGIC: 0x53425243,
  VERSION: 1,
  HEADER_BYTES: 4096,
  RECORD_BYTES: 192,
  WORKER_ENTRIES: 120,
  MAX_RECORDS: 65536,
  WHAT_BYTES: 96,
  /** A record's slot for a request to a worker on another host, which holds none here (§16.2). */
  NO_SLOT: 0xffffffff,
} as const

/** Byte offsets of the header (enum sbr_header_off). */
export const RecHeader = {
  magic: 0,
  version: 4,
  headerBytes: 8,
  recordBytes: 12,
  recordCount: 16,
  pid: 20,
  pidStart: 24,
  anchorWallNs: 32,
  anchorMonoNs: 40,
  uid: 48,
  workerEntries: 52,
  written: 56,
  name: 64,
  workers: 128,
  inFlight: 132,
  queued: 136,
  requests: 144,
  answered: 152,
  errors: 160,
  cancelled: 168,
  timeouts: 176,
  workerGone: 184,
  crashRestarts: 192,
  crashLoop: 200,
  workerTable: 256,
} as const

/** Byte offsets of a worker entry (enum sbr_worker_off). */
export const RecWorker = { pid: 0, inFlight: 4, requests: 8, attachedNs: 16, bytes: 32 } as const

/** Byte offsets of a record (enum sbr_record_off). */
export const RecField = {
  seq: 0,
  phase: 4,
  outcome: 8,
  kind: 12,
  serial: 16,
  id: 24,
  workerPid: 28,
  slot: 32,
  status: 36,
  enqueuedNs: 40,
  dispatchedNs: 48,
  firstByteNs: 56,
  doneNs: 64,
  requestBytes: 72,
  answerBytes: 76,
  traceId: 80,
  what: 96,
} as const

export const RecPhase = { IN_FLIGHT: 1, STREAMING: 2, DONE: 3 } as const
export const RecOutcome = { NONE: 0, ANSWERED: 1, ERROR: 2, CANCELLED: 3, TIMEOUT: 4, WORKER_GONE: 5 } as const

const euid = () => process.geteuid?.() ?? 0

/** Why dir cannot hold uid's recorder files, naming what is there and whose it is; null when it is a real directory
 * (lstat: a link is never followed) of uid with mode exactly 0700 (§16.1). The writer's check and every reader's. */
export function whyNotPrivateDir(dir: string, uid: number): string | null {
  let st: ReturnType<typeof lstatSync>
  try {
    st = lstatSync(dir, { throwIfNoEntry: false })
  } catch (e) {
    return `${dir} cannot be looked at (${(e as Error).message})`
  }
  if (!st) return `${dir} does not exist`
  const mode = st.mode & 0o7777
  if (st.isDirectory() && st.uid === uid && (mode & 0o777) === 0o700) return null
  const type = st.isSymbolicLink()
    ? "a symbolic link"
    : st.isDirectory()
      ? "a directory"
      : st.isFile()
        ? "a regular file"
        : "a special file"
  return `${dir} is ${type} of uid ${st.uid} with mode ${mode.toString(8).padStart(4, "0")}, not a directory of uid ${uid} with mode 0700`
}

/** uid's directory where every user shares the namespace: `/dev/shm/slotbus-<uid>`, else `<tmp>/slotbus-<uid>`. */
export function sharedRecorderDir(uid: number): string {
  return join(sharedRoot(), `slotbus-${uid}`)
}

export const sharedRoot = () => (existsSync("/dev/shm") ? "/dev/shm" : tmpdir())

/** A fallback beside sharedRecorderDir, for when another uid made that name first (§16.1): slotbus-<uid>.<16 hex>. */
export const FALLBACK_DIR = /^slotbus-(\d{1,10})\.[0-9a-f]{16}$/

/** uid's fallback directories in the shared root that are really uid's (private: whyNotPrivateDir is null). */
export function fallbackRecorderDirs(uid: number): string[] {
  return names(sharedRoot())
    .filter((d) => FALLBACK_DIR.exec(d)?.[1] === String(uid))
    .map((d) => join(sharedRoot(), d))
    .filter((d) => whyNotPrivateDir(d, uid) === null)
}

/** This process's recorder directory (§16.1): `$XDG_RUNTIME_DIR/slotbus` where $XDG_RUNTIME_DIR is a directory of
 * this euid with mode 0700, which no other uid can make anything in; else sharedRecorderDir(euid). */
export function recorderDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR
  if (runtime && isAbsolute(runtime) && whyNotPrivateDir(runtime, euid()) === null) return join(runtime, "slotbus")
  return sharedRecorderDir(euid())
}

/** Every directory some uid's recorder files may be in (§16.1), with that uid: each `slotbus-<uid>` and
 * `slotbus-<uid>.<16 hex>` in the shared root, each `/run/user/<uid>/slotbus`, and this process's own. Only those something is at; a reader uses one
 * only when whyNotPrivateDir(dir, uid) is null. */
export function recorderDirs(): { dir: string; uid: number }[] {
  const found = new Map<string, number>()
  const add = (dir: string, uid: number) => {
    try {
      if (lstatSync(dir, { throwIfNoEntry: false })) found.set(dir, uid)
    } catch {} // a directory of another uid that this one cannot search
  }
  for (const d of names(sharedRoot())) {
    const uid = (/^slotbus-(\d{1,10})$/.exec(d) ?? FALLBACK_DIR.exec(d))?.[1]
    if (uid) add(join(sharedRoot(), d), Number(uid))
  }
  for (const d of names("/run/user")) if (/^\d{1,10}$/.test(d)) add(join("/run/user", d, "slotbus"), Number(d))
  add(recorderDir(), euid())
  return [...found].map(([dir, uid]) => ({ dir, uid }))
}

function names(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}
