// The flight recorder file's layout (docs/PROTOCOL.md §16, csrc/recorder.h): the one place TS reads its offsets
// from, checked against the header and the protocol page by test/native/recorder-layout.test.ts.
import { existsSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const RecConst = {
  MAGIC: 0x53425243,
  VERSION: 1,
  HEADER_BYTES: 4096,
  RECORD_BYTES: 192,
  WORKER_ENTRIES: 120,
  MAX_RECORDS: 65536,
  WHAT_BYTES: 96,
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

/** The directory of this euid's recorder files (§16.1). */
export function recorderDir(uid = process.geteuid?.() ?? 0): string {
  return existsSync("/dev/shm") ? `/dev/shm/slotbus-${uid}` : join(tmpdir(), `slotbus-${uid}`)
}

/** The directories every uid's recorder files may be in (§16.1), for a reader that looks host-wide. */
export function recorderRoots(): string[] {
  return existsSync("/dev/shm") ? ["/dev/shm"] : [tmpdir()]
}
