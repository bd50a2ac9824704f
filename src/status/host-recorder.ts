// Reading a flight recorder file (docs/PROTOCOL.md §16) from any process, without the front's help: bounded reads,
// every size checked before it is used, each record taken only when its seqlock says it is whole. A file that is
// not what §16.2 says is reported as malformed, never trusted and never a crash.
import { closeSync, fstatSync, openSync, readSync, constants as fsc } from "node:fs"
import { readFileSync } from "node:fs"
import { RecConst, RecField, RecHeader, RecOutcome, RecPhase, RecWorker } from "../native/recorder-layout.ts"

/** The most of a recorder file a reader reads (a file claiming more is reported, not read). */
export const MAX_RECORDER_BYTES = RecConst.HEADER_BYTES + RecConst.RECORD_BYTES * RecConst.MAX_RECORDS

export const PHASE_NAMES: Record<number, string> = { 1: "in flight", 2: "streaming", 3: "done" }
export const OUTCOME_NAMES: Record<number, string> = {
  0: "",
  1: "answered",
  2: "error",
  3: "cancelled",
  4: "timeout",
  5: "worker gone",
}

export interface RequestRecord {
  serial: number
  phase: "in flight" | "streaming" | "done"
  outcome: string
  kind: "raw" | "http"
  id: number
  workerPid: number
  slot: number
  status: number
  /** CLOCK_MONOTONIC ns, 0 when not yet */
  enqueuedNs: number
  dispatchedNs: number
  firstByteNs: number
  doneNs: number
  requestBytes: number
  answerBytes: number
  /** 32 lowercase hex digits, "" when the request carried none */
  traceId: string
  /** "METHOD path" (cut at 96 bytes), "" for raw */
  what: string
}

export interface RecorderWorker {
  pid: number
  inFlight: number
  requests: number
  attachedNs: number
}

export interface RecorderFile {
  path: string
  /** The file's identity when it was read: a second read (its records) must find the same file. */
  dev: number
  ino: number
  name: string
  pid: number
  uid: number
  /** null when the front is alive, else why the file is stale */
  stale: string | null
  anchorWallNs: number
  anchorMonoNs: number
  recordCount: number
  written: number
  workers: number
  inFlight: number
  queued: number
  requests: number
  answered: number
  errors: number
  cancelled: number
  timeouts: number
  workerGone: number
  /** Crash restarts of the front's superviseWorkers pools of this bus (0 in a file of an older front). */
  crashRestarts: number
  /** Whether one of them is in a crash loop. */
  crashLoop: boolean
  workerTable: RecorderWorker[]
  /** The whole records that were asked for (none when only the header was), newest first. */
  records: RequestRecord[]
  /** Records being rewritten at the moment of reading (left out). */
  torn: number
}

/** A file in a recorder directory that is not a recorder file as §16.2 says: skipped, with why. */
export interface MalformedFile {
  path: string
  malformed: string
}

const u64 = (v: DataView, off: number) => Number(v.getBigUint64(off, true))

/** The process start time of pid (/proc/<pid>/stat field 22), or null when unknown. */
function procStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (fields[0] === "Z" || fields[0] === "X") return -1
    return Number(fields[19])
  } catch {
    return null
  }
}

/** The effective uid pid runs as (/proc/<pid>/status, the second figure of its Uid: line), or null when unknown. */
function procEuid(pid: number): number | null {
  try {
    const m = /^Uid:\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/**
 * null when pid is alive, runs as `uid` (the file's) and is still the process that started at `start` (0: unknown),
 * else why not (§16.1). Anyone may write a file in its own directory naming another user's front's pid: it is no
 * front of that user's bus.
 */
export function staleness(pid: number, start: number, uid: number): string | null {
  try {
    process.kill(pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return `its front (pid ${pid}) is gone`
  }
  const now = procStart(pid)
  if (now === -1) return `its front (pid ${pid}) is a zombie`
  const runsAs = procEuid(pid)
  if (runsAs !== null && runsAs !== uid) return `pid ${pid} runs as uid ${runsAs}, not as the file's uid ${uid}`
  if (start !== 0 && now !== null && now !== start) return `pid ${pid} is another process now`
  return null
}

function readAt(fd: number, buf: Uint8Array, pos: number): number {
  let got = 0
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got)
    if (n <= 0) break
    got += n
  }
  return got
}

function cString(bytes: Uint8Array): string {
  const z = bytes.indexOf(0)
  return new TextDecoder().decode(z < 0 ? bytes : bytes.subarray(0, z))
}

export interface ReadOptions {
  /** The records to keep (every one by default; false: the header alone, nothing after it is read). */
  records?: false | ((q: RequestRecord) => boolean)
  /** The uid whose directory it is in: a file another uid owns is not that uid's. */
  uid?: number
  /** Where to open it when that is not `path` (the directory's /proc/self/fd entry: its checked inode, no link). */
  at?: string
  /** The file read before: anything else at the path now is reported, not read. */
  same?: { dev: number; ino: number }
}

/** Records read and checked at a time: three reads of 96 KiB, whatever the file's size. */
const CHUNK_RECORDS = 512

/** Reads a recorder file; a malformed one (any check of §16.2 fails) comes back as MalformedFile. */
export function readRecorder(path: string, opts: ReadOptions = {}): RecorderFile | MalformedFile {
  let fd: number
  try {
    fd = openSync(opts.at ?? path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK)
  } catch (e) {
    return { path, malformed: `cannot open it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` }
  }
  try {
    return readOpen(fd, path, opts)
  } catch (e) {
    return { path, malformed: `cannot read it (${(e as Error).message})` }
  } finally {
    closeSync(fd)
  }
}

function readOpen(fd: number, path: string, opts: ReadOptions): RecorderFile | MalformedFile {
  const bad = (malformed: string): MalformedFile => ({ path, malformed })
  const st = fstatSync(fd)
  if (!st.isFile()) return bad("not a regular file")
  if (opts.same && (st.dev !== opts.same.dev || st.ino !== opts.same.ino)) return bad("replaced since it was listed")
  if (st.size < RecConst.HEADER_BYTES)
    return bad(`${st.size} bytes, shorter than the ${RecConst.HEADER_BYTES}-byte header`)
  const head = new Uint8Array(RecConst.HEADER_BYTES)
  if (readAt(fd, head, 0) < head.length) return bad("shorter than its header")
  const h = new DataView(head.buffer)
  const w32 = (off: number) => h.getUint32(off, true)
  if (w32(RecHeader.magic) !== RecConst.MAGIC) return bad(`bad magic 0x${w32(RecHeader.magic).toString(16)}`)
  if (w32(RecHeader.version) !== RecConst.VERSION)
    return bad(`version ${w32(RecHeader.version)}, not ${RecConst.VERSION}`)
  if (w32(RecHeader.headerBytes) !== RecConst.HEADER_BYTES) return bad(`header_bytes ${w32(RecHeader.headerBytes)}`)
  if (w32(RecHeader.recordBytes) !== RecConst.RECORD_BYTES) return bad(`record_bytes ${w32(RecHeader.recordBytes)}`)
  if (w32(RecHeader.workerEntries) !== RecConst.WORKER_ENTRIES)
    return bad(`worker_entries ${w32(RecHeader.workerEntries)}`)
  const count = w32(RecHeader.recordCount)
  if (count < 1 || count > RecConst.MAX_RECORDS) return bad(`record_count ${count}`)
  const size = RecConst.HEADER_BYTES + count * RecConst.RECORD_BYTES
  if (size > st.size) return bad(`record_count ${count} needs ${size} bytes; the file has ${st.size}`)
  if (size > MAX_RECORDER_BYTES) return bad(`${size} bytes, more than a reader reads (${MAX_RECORDER_BYTES})`)
  const name = cString(head.subarray(RecHeader.name, RecHeader.name + 64))
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) return bad(`bad bus name ${JSON.stringify(name.slice(0, 64))}`)
  const pid = w32(RecHeader.pid)
  if (pid === 0) return bad("pid 0")
  const uid = w32(RecHeader.uid)
  if (st.uid !== uid) return bad(`owned by uid ${st.uid}, its header says uid ${uid}`)
  if (opts.uid !== undefined && st.uid !== opts.uid)
    return bad(`owned by uid ${st.uid}, in uid ${opts.uid}'s directory`)

  const got = opts.records === false ? { records: [], torn: 0 } : readRecords(fd, count, opts.records)
  if (!got) return bad("shrank while being read")
  const workerTable: RecorderWorker[] = []
  for (let i = 0; i < RecConst.WORKER_ENTRIES; i++) {
    const o = RecHeader.workerTable + i * RecWorker.bytes
    const wpid = w32(o + RecWorker.pid)
    if (wpid === 0) continue
    workerTable.push({
      pid: wpid,
      inFlight: w32(o + RecWorker.inFlight),
      requests: u64(h, o + RecWorker.requests),
      attachedNs: u64(h, o + RecWorker.attachedNs),
    })
  }
  return {
    path,
    dev: st.dev,
    ino: st.ino,
    name,
    pid,
    uid,
    stale: staleness(pid, u64(h, RecHeader.pidStart), uid),
    anchorWallNs: u64(h, RecHeader.anchorWallNs),
    anchorMonoNs: u64(h, RecHeader.anchorMonoNs),
    recordCount: count,
    written: u64(h, RecHeader.written),
    workers: w32(RecHeader.workers),
    inFlight: w32(RecHeader.inFlight),
    queued: w32(RecHeader.queued),
    requests: u64(h, RecHeader.requests),
    answered: u64(h, RecHeader.answered),
    errors: u64(h, RecHeader.errors),
    cancelled: u64(h, RecHeader.cancelled),
    timeouts: u64(h, RecHeader.timeouts),
    workerGone: u64(h, RecHeader.workerGone),
    crashRestarts: u64(h, RecHeader.crashRestarts),
    crashLoop: h.getUint32(RecHeader.crashLoop, true) === 1,
    workerTable,
    ...got,
  }
}

/** The seqlock read with plain reads (§16.3), a chunk at a time: a record's fields from the second read count only
 * when its seq is the same even number in the first and the third. Null when the file shrank. */
function readRecords(
  fd: number,
  count: number,
  keep: (q: RequestRecord) => boolean = () => true,
): { records: RequestRecord[]; torn: number } | null {
  const bytes = Math.min(count, CHUNK_RECORDS) * RecConst.RECORD_BYTES
  const reads = [0, 1, 2].map(() => new Uint8Array(bytes))
  const [a, b, c] = reads.map((r) => new DataView(r.buffer))
  const records: RequestRecord[] = []
  let torn = 0
  for (let first = 0; first < count; first += CHUNK_RECORDS) {
    const n = Math.min(CHUNK_RECORDS, count - first)
    const at = RecConst.HEADER_BYTES + first * RecConst.RECORD_BYTES
    for (const r of reads)
      if (readAt(fd, r.subarray(0, n * RecConst.RECORD_BYTES), at) < n * RecConst.RECORD_BYTES) return null
    for (let i = 0; i < n; i++) {
      const o = i * RecConst.RECORD_BYTES
      const seq = a!.getUint32(o, true)
      if (seq === 0) continue
      if (seq % 2 !== 0 || seq !== c!.getUint32(o, true) || seq !== b!.getUint32(o, true)) {
        torn++
        continue
      }
      const rec = decode(b!, reads[1]!, o)
      if (!rec) torn++
      else if (keep(rec)) records.push(rec)
    }
  }
  records.sort((x, y) => y.serial - x.serial)
  return { records, torn }
}

/** One whole record, or null when its words are impossible (a hostile writer). */
function decode(v: DataView, bytes: Uint8Array, o: number): RequestRecord | null {
  const phase = PHASE_NAMES[v.getUint32(o + RecField.phase, true)]
  const outcomeCode = v.getUint32(o + RecField.outcome, true)
  const kind = v.getUint32(o + RecField.kind, true)
  if (!phase || outcomeCode > RecOutcome.WORKER_GONE || kind > 1) return null
  const trace = bytes.subarray(o + RecField.traceId, o + RecField.traceId + 16)
  return {
    serial: u64(v, o + RecField.serial),
    phase: phase as RequestRecord["phase"],
    outcome: OUTCOME_NAMES[outcomeCode]!,
    kind: kind === 1 ? "http" : "raw",
    id: v.getUint32(o + RecField.id, true),
    workerPid: v.getUint32(o + RecField.workerPid, true),
    slot: v.getUint32(o + RecField.slot, true),
    status: v.getUint32(o + RecField.status, true),
    enqueuedNs: u64(v, o + RecField.enqueuedNs),
    dispatchedNs: u64(v, o + RecField.dispatchedNs),
    firstByteNs: u64(v, o + RecField.firstByteNs),
    doneNs: u64(v, o + RecField.doneNs),
    requestBytes: v.getUint32(o + RecField.requestBytes, true),
    answerBytes: v.getUint32(o + RecField.answerBytes, true),
    traceId: trace.every((x) => x === 0) ? "" : Buffer.from(trace).toString("hex"),
    what: cString(bytes.subarray(o + RecField.what, o + RecField.what + RecConst.WHAT_BYTES)),
  }
}

/** How long the record's worker has had it (to `nowNs` while in flight), in ms. */
export function ranMs(r: RequestRecord, nowNs: number): number {
  return ((r.doneNs || nowNs) - r.dispatchedNs) / 1e6
}

export const isLive = (r: RequestRecord) => r.phase !== "done"
export const PHASES = RecPhase
