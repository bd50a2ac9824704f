// The writer's side of the flight recorder (docs/PROTOCOL.md §16): the bus's file, made in its private directory,
// and what the TS side tells it that C cannot see (a request's enqueue time, the queue, why a request was given up).
// C writes the records on the slot transitions (csrc/recorder.c); nothing here runs per request but one store. A
// request to a worker on another host has no slot: its endpoint tells C as its call goes and ends (far*, §16.3).
import { randomBytes } from "node:crypto"
import { mkdirSync, readdirSync, rmdirSync, unlinkSync } from "node:fs"
import { constants } from "node:os"
import { dirname, join } from "node:path"
import { getSystemErrorName } from "node:util"
import { native, recorderStage, type Chan } from "../../native/ffi.ts"
import {
  fallbackRecorderDirs,
  RecConst,
  RecOutcome,
  recorderDir,
  sharedRecorderDir,
  sharedRoot,
  whyNotPrivateDir,
} from "../../native/recorder-layout.ts"
import { TimeoutError, WorkerGoneError } from "../../errors.ts"
import { closeAtExit } from "../../kit/index.ts"
import { nanoseconds, type Pointer } from "../../runtime/index.ts"

export const DEFAULT_RECORDS = 1024
export const MAX_RECORDS = RecConst.MAX_RECORDS

/** Why the request was given up, as a record's outcome (§16.2). */
export function givenUpAs(err: unknown): number {
  if (err instanceof TimeoutError) return RecOutcome.TIMEOUT
  if (err instanceof WorkerGoneError) return RecOutcome.WORKER_GONE
  return RecOutcome.CANCELLED
}

let warned = false
const NO_HEAD = new Uint8Array(8)

export class FlightRecorder {
  /**
   * Times on CLOCK_MONOTONIC the TS side already has, so C reads no clock for them (sb_rec_stage): [0] the next
   * publish's enqueue time, [1] its dispatch time (0: C reads the clock after the publish and leaves it there,
   * dispatchedAt), [2] the poll pass's time (0 before each). Written through published() and passStarted() only.
   */
  private readonly stage: Float64Array
  /** CLOCK_MONOTONIC − nanoseconds(): a request's start time in the records' clock. */
  private readonly offset: number
  private open = true
  private lastQueued = 0
  /** Its file goes at exit when its bus was never closed (kill -9 leaves it stale: the next sweep takes it). */
  private readonly forgetAtExit = closeAtExit(this)

  private constructor(
    private readonly ptr: Pointer,
    readonly path: string,
  ) {
    this.stage = recorderStage(ptr)
    this.offset = native.sb_rec_now() - nanoseconds()
  }

  /** The bus's recorder file, or null (with one warning per process) when its directory cannot be used. */
  static create(name: string, records: number): FlightRecorder | null {
    let dir = recorderDir()
    let why = privateDir(dir)
    if (why && dir === sharedRecorderDir(euid())) {
      // another uid made our name first (sticky /dev/shm keeps it): a fallback nobody could guess (§16.1)
      const fallback = fallbackDir()
      if (typeof fallback === "string") (dir = fallback), (why = null)
      else why = `${why}, and ${fallback.why}`
    }
    const path = `${dir}/${name}.${process.pid}.rec`
    let ptr: Pointer | null = null
    const err = new Int32Array(1)
    const open = () =>
      native.sb_rec_open(Buffer.from(`${path}\0`), Buffer.from(`${name}\0`), records, err) as Pointer | null
    if (!why) {
      sweep(dir)
      ptr = open()
      // the last bus of another process removed the empty directory between our check and the open: make it again
      if (!ptr && err[0] === -2 && !privateDir(dir)) ptr = open()
    }
    if (ptr) return new FlightRecorder(ptr, path)
    if (!why) rmdirQuietly(dir) // made for this file: not left empty
    if (!warned) {
      warned = true
      console.warn(
        `slotbus: bus "${name}" runs without its flight recorder: ${why ?? cannotMake(path, records, err[0]!)}; \`slotbus ls\` and \`slotbus requests\` will not see it (listen with recorder: false to say so)`,
      )
    }
    return null
  }

  /** Its requests are recorded from now on, until the channel closes. */
  attach(chan: Chan) {
    if (this.open) native.sb_rec_attach(this.ptr, chan)
  }

  /**
   * The next sb_hub_publish is a request made at `started` (Bun.nanoseconds()): its enqueue time, and its dispatch
   * time, which is its start when it never `waited` in the queue (sent in the call that made it), else C's clock.
   * `started` 0: its clock starts at this publish (startClock): C reads it once the slot went out (dispatchedAt).
   */
  published(started: number, waited: boolean) {
    const s = this.stage
    s[0] = started === 0 ? 0 : started + this.offset
    s[1] = waited ? 0 : s[0]
  }

  /** After sb_hub_publish: the dispatch time C used (read, once the slot went out, for a request with no start yet). */
  dispatchedAt(): number {
    const t = this.stage[1]!
    return t === 0 ? 0 : t - this.offset
  }

  /** An answer-collecting pass begins: C reads the clock once, at its first answer (docs/PROTOCOL.md §16). */
  passStarted() {
    this.stage[2] = 0
  }

  /** The time C read for this pass's answers, on nanoseconds()'s clock; 0 when it read none yet. */
  passClock(): number {
    const t = this.stage[2]!
    return t === 0 ? 0 : t - this.offset
  }

  /** The request in `slot` of `chan` was given up for `why` (a timeout, its worker gone, or cancelled): its record says so. */
  gaveUp(chan: Chan, slot: number, why: unknown) {
    native.sb_rec_note(chan, slot, givenUpAs(why)) // the channel's record: its recorder's memory outlives close()
  }

  /**
   * A request made at `started` (as published() takes it) went to worker `pid` on another host (§16.3), `head` the
   * bytes of its head (empty for raw): its record's number for farHead and farEnded, 0 when it goes unrecorded.
   */
  farSent(started: number, waited: boolean, kind: number, pid: number, head: Uint8Array, bodyLength: number): number {
    if (!this.open) return 0
    this.published(started, waited)
    // a view of its own (offset 0) for every runtime's pointer; 8 bytes of nothing for a head of none
    const h = head.length === 0 ? NO_HEAD : head.byteOffset === 0 ? head : head.slice()
    return native.sb_rec_far_begin(this.ptr, kind, pid >>> 0, h, head.length, bodyLength)
  }

  /** Far record `at`'s stream began at `status`. */
  farHead(at: number, status: number) {
    if (this.open && at !== 0) native.sb_rec_far_head(this.ptr, at, status)
  }

  /** Far record `at` ended with `outcome` (RecOutcome), an answer's status and body bytes. */
  farEnded(at: number, outcome: number, status: number, bytes: number) {
    if (this.open && at !== 0) native.sb_rec_far_end(this.ptr, at, outcome, status, bytes)
  }

  queued(n: number) {
    if (n === this.lastQueued || !this.open) return
    this.lastQueued = n
    native.sb_rec_queued(this.ptr, n)
  }

  /** The front's pools of this bus: their crash restarts, and whether one is in a crash loop (§16.2). */
  pools(crashRestarts: number, crashLoop: boolean) {
    if (this.open) native.sb_rec_pools(this.ptr, crashRestarts, crashLoop ? 1 : 0)
  }

  close() {
    if (!this.open) return
    this.open = false
    this.forgetAtExit()
    native.sb_rec_close(this.ptr)
    rmdirQuietly(dirname(this.path)) // the last recorder of the uid leaves nothing in /dev/shm (§16.1)
  }
}

const euid = () => process.geteuid?.() ?? 0

/** Why dir is not this euid's private directory (made if missing), naming whose it is, or null when it is (§16.1). */
function privateDir(dir: string): string | null {
  try {
    mkdirSync(dir, { mode: 0o700 })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") return `cannot make ${dir} (${(e as Error).message})`
  }
  return whyNotPrivateDir(dir, euid())
}

/** This euid's fallback directory (§16.1): the first slotbus-<euid>.<16 hex> of its own, else a new one whose
 * digits are random (an EEXIST draws new ones), or why none could be made. */
function fallbackDir(): string | { why: string } {
  const mine = fallbackRecorderDirs(euid())[0]
  if (mine) return mine
  let why = ""
  for (let i = 0; i < 8; i++) {
    const dir = join(sharedRoot(), `slotbus-${euid()}.${randomBytes(8).toString("hex")}`)
    try {
      mkdirSync(dir, { mode: 0o700 })
    } catch (e) {
      why = `its fallback ${dir} cannot be made (${(e as Error).message})`
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue
      break
    }
    why = whyNotPrivateDir(dir, euid()) ?? ""
    if (!why) return dir
  }
  return { why }
}

/** Why sb_rec_open failed, in words: a full file system (any user can fill /dev/shm) said so. */
function cannotMake(path: string, records: number, err: number): string {
  const bytes = RecConst.HEADER_BYTES + RecConst.RECORD_BYTES * records
  const full = -err === constants.errno.ENOSPC ? ": its file system is full" : ""
  return `cannot make ${path} of ${bytes} bytes (${getSystemErrorName(err)}${full})`
}

/** Removes the directory if it is empty (another bus's file keeps it). */
function rmdirQuietly(dir: string) {
  try {
    rmdirSync(dir)
  } catch {}
}

function unlinkQuietly(path: string) {
  try {
    unlinkSync(path)
  } catch {}
}

/** Removes the files of fronts that died without closing (kill -9): whoever opens a recorder next cleans up. */
function sweep(dir: string) {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const n of names) {
    const pid = /^[A-Za-z0-9._-]{1,64}\.(\d{1,10})\.rec$/.exec(n)?.[1]
    if (!pid || Number(pid) === process.pid) continue
    try {
      process.kill(Number(pid), 0)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ESRCH") unlinkQuietly(`${dir}/${n}`)
    }
  }
}
