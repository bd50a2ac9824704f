// For the tests of `slotbus ls|top|requests` (test/status/host-*.test.ts): the commands run as the user runs them,
// recorder files written by hand (docs/PROTOCOL.md §16.2) as another process could, since a reader must never
// trust what it finds, and what each test started undone after it.
import { afterEach } from "bun:test"
import { join } from "node:path"
import { RecConst, RecField, RecHeader } from "../../../src/native/recorder-layout.ts"
import { REPO, run, stopAll } from "../helpers.ts"

const CLI = join(REPO, "bin", "slotbus.ts")

/** Runs `slotbus …args` in a process of its own; `json()` parses its stdout. */
export async function hostCli(...args: string[]) {
  const r = await run([process.execPath, CLI, ...args], { timeoutMs: 60_000 })
  return { ...r, json: () => JSON.parse(r.stdout) }
}

/** A list of undo steps run after each test in reverse order (a failing one does not stop the rest), then every
 * child process killed. */
export function undoAfterEach(): (() => unknown)[] {
  const undo: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of undo.splice(0).reverse())
      try {
        await c()
      } catch {}
    await stopAll()
  })
  return undo
}

export interface ForgedHeader {
  name: string
  pid: number
  /** record_count; the file gets that many records after the header unless `headerOnly` */
  count: number
  uid?: number
  headerOnly?: boolean
}

/** One whole record (an even seq, a valid phase) of a done request `what`. */
export interface ForgedRecord {
  what: string
  serial: number
  phase?: number
  outcome?: number
}

/** A recorder file's bytes: a valid header and `records` in the first of its `count` record places. */
export function forgeRecorder(h: ForgedHeader, records: ForgedRecord[] = []): Buffer {
  const b = Buffer.alloc(RecConst.HEADER_BYTES + (h.headerOnly ? 0 : h.count * RecConst.RECORD_BYTES))
  b.writeUInt32LE(RecConst.MAGIC, RecHeader.magic)
  b.writeUInt32LE(RecConst.VERSION, RecHeader.version)
  b.writeUInt32LE(RecConst.HEADER_BYTES, RecHeader.headerBytes)
  b.writeUInt32LE(RecConst.RECORD_BYTES, RecHeader.recordBytes)
  b.writeUInt32LE(RecConst.WORKER_ENTRIES, RecHeader.workerEntries)
  b.writeUInt32LE(h.count, RecHeader.recordCount)
  b.writeUInt32LE(h.pid, RecHeader.pid)
  b.writeUInt32LE(h.uid ?? 0, RecHeader.uid)
  b.write(h.name, RecHeader.name)
  records.forEach((r, i) => writeRecord(b, i, r))
  return b
}

/** Writes record i of a forged file in place. */
export function writeRecord(b: Buffer, i: number, r: ForgedRecord) {
  const o = RecConst.HEADER_BYTES + i * RecConst.RECORD_BYTES
  b.writeUInt32LE(2, o + RecField.seq)
  b.writeUInt32LE(r.phase ?? 3, o + RecField.phase)
  b.writeUInt32LE(r.outcome ?? 1, o + RecField.outcome)
  b.writeUInt32LE(1, o + RecField.kind)
  b.writeBigUInt64LE(BigInt(r.serial), o + RecField.serial)
  b.writeUInt32LE(200, o + RecField.status)
  b.write(r.what, o + RecField.what, RecConst.WHAT_BYTES, "utf8")
}
