// Joining a contest's table (csrc/lease_open.c, docs/PROTOCOL.md §7): its options checked, the native open, and why
// it was refused as a typed error that says what to do (every member stopped, no answer in time, another uid, the
// member limit).
import {
  checkCreate,
  checkName,
  checkNumber,
  checkOptions,
  createRefusal,
  MAX_TIMER_MS,
  type CreateMode,
} from "../kit/index.ts"
import { PeerRefusedError, ProtocolError } from "../errors.ts"
import {
  CreateModeValue,
  Errno,
  E_CORRUPT,
  E_SOCKET_DIR,
  LEASE_MAX_CAPACITY,
  LEASE_MAX_MEMBERS,
  LEASE_MIN_CAPACITY,
  leaseNative as native,
  loadNative,
  socketDirError,
  type ContestPtr,
} from "../native/ffi.ts"
import { ContestMembersStoppedError, ContestOpenError } from "./errors.ts"
import { CONTEST_OPTIONS, type ContestOptions } from "./contest-types.ts"
import { CONTEST_NAME } from "./subject.ts"

/** Contest.open's name and options checked: how it may create, how long it waits to join, its capacity (`asked`). */
export function checkOpen(name: string, given: ContestOptions | undefined) {
  const opts = checkOptions(given, CONTEST_OPTIONS, "Contest.open")
  const create = checkCreate(opts.create, "Contest.open")
  const joinTimeoutMs = Math.floor(
    checkNumber(opts.joinTimeoutMs, {
      what: "joinTimeoutMs",
      where: "Contest.open",
      max: MAX_TIMER_MS,
      integer: false,
      dflt: 5000,
    }),
  )
  checkName(name, CONTEST_NAME)
  const capacity = checkNumber(opts.capacity, {
    what: "capacity",
    where: "Contest.open",
    min: LEASE_MIN_CAPACITY,
    max: LEASE_MAX_CAPACITY,
    powerOfTwo: true,
    dflt: 4096,
    error: (p) => new ContestOpenError(p.message, "invalid-capacity"),
  })
  return { create, joinTimeoutMs, capacity, asked: opts.capacity !== undefined }
}

/** The native contest `name`, joined or created; its options are checked already. */
export async function openTable(
  name: string,
  capacity: number,
  create: CreateMode,
  joinTimeoutMs: number,
): Promise<ContestPtr> {
  await loadNative()
  const err = new Int32Array(1)
  const stopped = new Uint32Array(LEASE_MAX_MEMBERS) // room for every member's pid
  const stoppedN = new Uint32Array(1)
  const ptr = native.sbl_open(
    Buffer.from(`${name}\0`),
    capacity,
    CreateModeValue[create],
    joinTimeoutMs,
    err,
    stopped,
    stopped.length,
    stoppedN,
  )
  if (!ptr) {
    const e = err[0]!
    if (e === E_SOCKET_DIR) throw socketDirError(`cannot open contest "${name}"`)
    if (e === Errno.EHOSTDOWN) {
      const pids = [...stopped.subarray(0, Math.min(stoppedN[0]!, stopped.length))]
      const more = stoppedN[0]! - pids.length
      throw new ContestMembersStoppedError(
        `cannot join contest "${name}": every member is stopped (SIGSTOP or a debugger): pids ${pids.join(" ")}${more > 0 ? ` and ${more} more` : ""}; no member can hand the table over until one is continued (kill -CONT) or killed`,
        pids,
      )
    }
    if (e === Errno.ETIMEDOUT)
      throw new ContestOpenError(
        `no member of contest "${name}" answered in time; retry, or raise joinTimeoutMs`,
        "no-answer",
      )
    if (e === Errno.EACCES || e === Errno.EPERM)
      throw new PeerRefusedError(
        `contest "${name}" is bound by a process of another uid than ours (${process.getuid?.()}); a contest is shared by one uid only: pick another name, or run as that user`,
      )
    if (e === Errno.EUSERS)
      throw new ContestOpenError(
        `contest "${name}" already has ${LEASE_MAX_MEMBERS} members; close one of them, or use another name`,
        "member-limit",
      )
    const refused = createRefusal(`contest "${name}"`, e)
    if (refused) throw refused
    if (e === E_CORRUPT || e === Errno.EPROTO)
      throw new ProtocolError(
        `contest "${name}" answered with a corrupt or incompatible table; is another slotbus version using this name?`,
      )
    throw new ContestOpenError(`could not open contest "${name}" (errno ${-e})`, "system")
  }
  return ptr as ContestPtr
}
