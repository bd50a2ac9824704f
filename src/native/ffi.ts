// The one native boundary: every libslotbus symbol, as declared in csrc/slotbus.h.
import { closeSync } from "node:fs"
import { NativeLibraryError, SocketDirError } from "../errors.ts"
import { Errno } from "./errno.ts"
import { libraryPath } from "./lib-path.ts"
import { memoryView, type NativeSymbols, openLibrary, type Pointer } from "../runtime/index.ts"

const [ptr, i32, u32, i64, f64, cstring, none] = ["ptr", "i32", "u32", "i64", "f64", "cstring", "void"] as const

const symbols = {
  sb_listen: { args: [cstring], returns: i32 },
  sb_listen_door: { args: [cstring], returns: i32 },
  sb_unlisten: { args: [i32], returns: none },
  sb_ctl_listen: { args: [cstring], returns: i32 },
  sb_ctl_accept: { args: [i32, ptr], returns: i32 },
  sb_ctl_connect: { args: [cstring], returns: i32 },
  sb_notify: { args: [cstring, cstring], returns: i32 },
  sb_platform: { args: [], returns: cstring },
  sb_socket_dir_error: { args: [], returns: cstring },
  sb_host_lock: { args: [cstring, cstring, i32], returns: i32 },
  sb_host_unlock: { args: [i32], returns: none },
  sb_host_holder: { args: [cstring, cstring, ptr, ptr], returns: i32 },
  sb_host_free: { args: [cstring, cstring, ptr, u32], returns: i32 },
  sb_host_stand: { args: [cstring, cstring, ptr, u32], returns: i32 },
  sb_accept: { args: [i32, ptr, ptr, ptr], returns: ptr },
  sb_accept_watch_start: { args: [i32, ptr], returns: ptr },
  sb_accept_watch_fd: { args: [ptr], returns: i32 },
  sb_accept_watch_rearm: { args: [ptr], returns: none },
  sb_accept_watch_stop: { args: [ptr], returns: none },
  sb_connect: { args: [cstring, i64, i32, ptr], returns: ptr },
  sb_connect_start: { args: [cstring, i64, ptr], returns: ptr },
  sb_connect_finish: { args: [ptr, i32], returns: i32 },
  sb_close: { args: [ptr], returns: none },
  sb_disconnect: { args: [ptr], returns: none },
  sb_detach: { args: [ptr], returns: i32 },

  sb_region: { args: [ptr], returns: ptr },
  sb_region_size: { args: [ptr], returns: f64 },
  sb_slot_count: { args: [ptr], returns: u32 },
  sb_arena_size: { args: [ptr], returns: u32 },
  sb_arena_offset: { args: [ptr, u32, i32], returns: f64 },
  sb_socket_fd: { args: [ptr], returns: i32 },
  sb_doorbell_fd: { args: [ptr], returns: i32 },
  sb_fd_dup: { args: [i32], returns: i32 },
  sb_peer_pid: { args: [ptr], returns: i32 },
  sb_peer_uid: { args: [ptr], returns: i32 },
  sb_peer_gone: { args: [ptr], returns: i32 },
  sb_last_msg: { args: [ptr], returns: ptr },
  sb_error: { args: [ptr], returns: cstring },
  sb_slot_state: { args: [ptr, u32], returns: u32 },
  sb_layout_hash: { args: [], returns: u32 },
  sb_abi_version: { args: [], returns: u32 },

  sb_hub_claim: { args: [ptr], returns: i32 },
  sb_hub_unclaim: { args: [ptr, u32], returns: i32 },
  sb_hub_publish: { args: [ptr, u32, u32, u32, u32, u32], returns: i32 },
  sb_hub_cancel: { args: [ptr, u32], returns: i32 },
  sb_hub_poll: { args: [ptr], returns: i32 },
  sb_hub_release: { args: [ptr, u32], returns: i32 },

  sb_worker_poll: { args: [ptr], returns: i32 },
  sb_worker_complete: { args: [ptr, u32, u32, u32, u32, u32, u32], returns: i32 },
  sb_worker_cancel_seq: { args: [ptr], returns: u32 },
  sb_worker_cancelled: { args: [ptr, u32, u32], returns: i32 },

  sb_worker_stream_begin: { args: [ptr, u32, u32, u32, ptr, u32], returns: i32 },
  sb_worker_stream_write: { args: [ptr, u32, u32, ptr, u32], returns: i32 },
  sb_worker_stream_wait: { args: [ptr, u32, u32, i32], returns: i32 },
  sb_worker_stream_end: { args: [ptr, u32, u32, u32, ptr, u32], returns: i32 },
  sb_hub_stream_next: { args: [ptr, u32], returns: i32 },
  sb_hub_stream_consumed: { args: [ptr, u32, u32], returns: i32 },

  sb_park: { args: [ptr], returns: i32 },
  sb_unpark: { args: [ptr], returns: none },
  sb_yield: { args: [], returns: none },
  sb_cpu: { args: [], returns: i32 },
  sb_keep_off_cpu: { args: [i32], returns: i32 },
  sb_any_readable: { args: [ptr, u32], returns: i32 },
  sb_wait: { args: [ptr, i32, i32], returns: i32 },
  sb_idle: { args: [ptr, i32, u32], returns: i32 }, // C polling loops; the TS side idles with src/core/wire/pump.ts

  sb_rec_open: { args: [cstring, cstring, u32, ptr], returns: ptr },
  sb_rec_close: { args: [ptr], returns: none },
  sb_rec_attach: { args: [ptr, ptr], returns: i32 },
  sb_rec_stage: { args: [ptr], returns: ptr },
  sb_rec_queued: { args: [ptr, u32], returns: none },
  sb_rec_pools: { args: [ptr, f64, u32], returns: none },
  sb_rec_note: { args: [ptr, u32, u32], returns: i32 },
  sb_rec_now: { args: [], returns: f64 },
  sb_rec_far_begin: { args: [ptr, u32, u32, ptr, u32, u32], returns: u32 },
  sb_rec_far_head: { args: [ptr, u32, u32], returns: none },
  sb_rec_far_end: { args: [ptr, u32, u32, u32, u32], returns: none },
} as const

export type Native = NativeSymbols<typeof symbols>
export type Chan = Pointer

/** What this TypeScript expects of the library: csrc/slotbus.h's SB_ABI_VERSION and the layout string's hash. */
export const ABI_VERSION = 25
export const LAYOUT_HASH = 0x178a975a
/** csrc/slotbus.h's SB_VERSION: the wire protocol's version, in the hello (docs/PROTOCOL.md §1). */
export const WIRE_VERSION = 4

// Why the library's functions are not there: never loaded, or the last load was refused (and how).
let refusal: NativeLibraryError | undefined

/**
 * What the library's functions are until a library passed every check of open(): any use is a NativeLibraryError
 * saying why (never a call into a library this TypeScript does not match, nor "undefined is not a function").
 */
function notLoaded<T extends object>(): T {
  return new Proxy({} as T, {
    get(_, name) {
      throw (
        refusal ??
        new NativeLibraryError(
          `libslotbus is not loaded: ${String(name)} was used before loadNative() resolved (every slotbus entry point awaits it first)`,
        )
      )
    },
  })
}

/** The library's functions, there once loadNative() has resolved (every entry point awaits it). */
export let native: Native = notLoaded<Native>()
let loading: Promise<Native> | undefined

/** Loads libslotbus once, on first use; every way that can fail is a NativeLibraryError saying what to do. */
export function loadNative(): Promise<Native> {
  loading ??= open().catch((e) => {
    loading = undefined // a fixed SLOTBUS_LIB or a finished build may succeed next time
    if (e instanceof NativeLibraryError) refusal = e
    throw e
  })
  return loading
}

async function open(): Promise<Native> {
  const path = await libraryPath()
  const fix = "Rebuild it with `npm run build`, or point SLOTBUS_LIB at a libslotbus.so built from this version."
  // set as the module's only once every check below passed: a refused library leaves nothing callable behind
  let lib: Native, lease: LeaseNative, topic: TopicNative
  try {
    lib = openLibrary(path, symbols)
    lease = openLibrary(path, leaseSymbols)
    topic = openLibrary(path, topicSymbols)
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e)
    throw new NativeLibraryError(`${path} could not be loaded as libslotbus (${why}). ${fix}`, { cause: e })
  }
  const abi = lib.sb_abi_version()
  if (abi !== ABI_VERSION)
    throw new NativeLibraryError(`${path} has ABI version ${abi}; this slotbus needs ${ABI_VERSION}. ${fix}`)
  const hash = lib.sb_layout_hash()
  if (hash !== LAYOUT_HASH) {
    throw new NativeLibraryError(
      `${path} has layout hash 0x${hash.toString(16)}; this slotbus expects 0x${LAYOUT_HASH.toString(16)}. ${fix}`,
    )
  }
  if (lib.sb_platform() === null) {
    throw new NativeLibraryError(
      `SLOTBUS_PLATFORM is "${process.env.SLOTBUS_PLATFORM}"; it must be "posix" (the portable backend), "linux" or unset.`,
    )
  }
  native = lib
  leaseNative = lease
  topicNative = topic
  refusal = undefined
  return lib
}

/** Whether this process runs the portable backend (docs/PROTOCOL.md §13): no abstract socket names there. */
export function portableBackend(): boolean {
  return native.sb_platform() === "posix"
}

/**
 * A host-wide lock (sb_host_lock, docs/PROTOCOL.md §12.5): the fd that holds it, or null when another process of this
 * host does. A lock file in the socket directory; released by unlockHost(fd) or when the process dies.
 */
export function lockHost(prefix: string, name: string, exclusive: boolean): number | null {
  const fd = native.sb_host_lock(Buffer.from(`${prefix}\0`), Buffer.from(`${name}\0`), exclusive ? 1 : 0)
  if (fd === E_HELD) return null
  if (fd === E_SOCKET_DIR) throw socketDirError(`cannot lock ${prefix}${name}`)
  if (fd < 0) throw new NativeLibraryError(`cannot lock ${prefix}${name} in the socket directory: errno ${-fd}`)
  return fd
}

export function unlockHost(fd: number) {
  native.sb_host_unlock(fd)
}

/** sb_host_free or sb_host_stand on prefix+name: what it returned (>= 0, or -EADDRINUSE when a process holds the
 * name) and the socket file's path; any other failure thrown. */
function hostFile(fn: typeof native.sb_host_free, prefix: string, name: string): { r: number; path: string } {
  const out = Buffer.alloc(128)
  const r = fn(Buffer.from(`${prefix}\0`), Buffer.from(`${name}\0`), out, out.length)
  if (r === E_SOCKET_DIR) throw socketDirError(`cannot stand for ${prefix}${name}`)
  if (r < 0 && r !== Errno.EADDRINUSE)
    throw new NativeLibraryError(`cannot stand for ${prefix}${name} in the socket directory: errno ${-r}`)
  return { r, path: out.toString("utf8", 0, out.indexOf(0)) }
}

/**
 * The socket file of the election prefix+name (sb_host_free, §1.1): its path, and whether nobody holds it (a stale
 * file of a dead holder is removed first), so the caller may bind it.
 */
export function freeHostName(prefix: string, name: string): { path: string; free: boolean } {
  const { r, path } = hostFile(native.sb_host_free, prefix, name)
  return { path, free: r === 0 }
}

/**
 * Stands in the election prefix+name (sb_host_stand, §15.2): when nobody holds it, `bind(path)` (which must bind and
 * listen before it returns, and bind nothing through libslotbus: the lock is this process's) runs under the socket
 * directory's lock, so no other's probe sees the file mid-bind; `bound` is its result, null when a process holds it.
 */
export function standForHostName<T>(
  prefix: string,
  name: string,
  bind: (path: string) => T,
): { path: string; bound: T | null } {
  const { r, path } = hostFile(native.sb_host_stand, prefix, name)
  if (r < 0) return { path, bound: null }
  try {
    return { path, bound: bind(path) }
  } finally {
    closeSync(r) // the directory's lock, which sb_host_stand kept
  }
}

/**
 * Who listens on the host-wide name prefix+name (sb_host_holder, SO_PEERCRED): its effective uid; "none" when nobody
 * does; "busy" when its accept queue is full (so its uid cannot be asked).
 */
export function hostHolder(prefix: string, name: string): number | "none" | "busy" {
  const r = hostHolderOf(prefix, name)
  return typeof r === "string" ? r : r.uid
}

/** hostHolder's uid and the holder's pid (0 where the OS does not say). */
export function hostHolderOf(prefix: string, name: string): { uid: number; pid: number } | "none" | "busy" {
  const uid = new Uint32Array(1)
  const pid = new Int32Array(1)
  const r = native.sb_host_holder(Buffer.from(`${prefix}\0`), Buffer.from(`${name}\0`), uid, pid)
  if (r === 0) return { uid: uid[0]!, pid: Math.max(0, pid[0]!) }
  if (r === Errno.EAGAIN) return "busy"
  if (r === Errno.ECONNREFUSED || r === Errno.ENOENT) return "none"
  throw new NativeLibraryError(`cannot ask who listens as ${prefix}${name}: errno ${-r}`)
}

/** The flight recorder's private staging words (sb_rec_stage; process memory, not shared): enqueue, dispatch, pass times. */
export function recorderStage(rec: Pointer): Float64Array {
  return new Float64Array(memoryView(native.sb_rec_stage(rec) as Pointer, 0, 24))
}

// sb_msg field indices (u32 words), see csrc/slotbus.h
export const Msg = {
  slot: 0,
  kind: 1,
  id: 2,
  status: 3,
  flags: 4,
  headLen: 5,
  bodyLen: 6,
  bodyOff: 7,
  gen: 8,
  pos: 9,
  window: 10,
} as const
export const MSG_WORDS = 11
// Byte offset of cancel_seq in the region header (docs/PROTOCOL.md §2)
export const CANCEL_SEQ_OFFSET = 448
// The worker's vitals report, header line 8 (§2): its offset, and its words in use (seq, lag, heap ×2, external);
// libslotbus never touches it, core/wire/vitals-block.ts writes and reads it
export const VITALS_OFFSET = 512
export const VITALS_WORDS = 5

// struct sb_hub_config, word by word (allow_uids: the last MAX_ALLOW_UIDS); test/native/layout.test.ts checks it
export const HUB_CONFIG_WORDS = 14
export const MAX_ALLOW_UIDS = 8
export const HubConfig = {
  slotCount: 0,
  arenaSize: 1,
  trimBytes: 2,
  fullMask: 3,
  allowUidCount: 4,
  streamWindow: 5,
  allowUids: 6,
} as const
export const FullMask = { OWN_UID: 1 << 8, ALL: 1 << 9 } as const

export const State = { FREE: 0, WRITING: 1, READY: 2, CLAIMED: 3, DONE: 4, CANCELLED: 5, STREAMING: 6 } as const
// Stream frame types (docs/PROTOCOL.md §9.2) and sb_msg.flags of a stream notification
export const Frame = { PAD: 0, HEAD: 1, DATA: 2, END: 3 } as const
export const MsgFlag = { STREAM: 0x100, FINAL: 0x200 } as const
export const Kind = { RAW: 0, HTTP: 1 } as const
export const RespFlag = { ERROR: 1, CANCELLED: 2 } as const
// Bytes on the rendezvous socket after the hello (docs/PROTOCOL.md §1)
export const Control = { DRAIN: 0x44 /* D */, DRAIN_ACK: 0x41 /* A */, HUB_CLOSING: 0x43 /* C */ } as const
export const E_CORRUPT = -1000
// sb_host_lock: another process of this host holds the lock (-SB_EHELD)
export const E_HELD = -1001
// Any open on the portable backend: its socket directory cannot be used (-SB_ESOCKDIR, docs/PROTOCOL.md §13.2)
export const E_SOCKET_DIR = -1002

/** The error for E_SOCKET_DIR (what: `cannot listen as "x"`), with the library's account of the directory. */
export function socketDirError(what: string): SocketDirError {
  return new SocketDirError(`${what}: ${native.sb_socket_dir_error()}`)
}
// sb_connect_start: accept a hub of any uid
export const ANY_UID = -1
export { Errno }

// sb_topic_open_start and sbl_open: whether the call may create (SB_CREATE_* and SBL_CREATE_*), by option value
export const CreateModeValue = { "if-missing": 0, never: 1, must: 2 } as const

// ---- lease contests: every sbl_* symbol of csrc/lease.h (docs/PROTOCOL.md §7) ----

const leaseSymbols = {
  sbl_open: { args: [cstring, u32, u32, i32, ptr, ptr, u32, ptr], returns: ptr },
  sbl_close: { args: [ptr], returns: none },
  sbl_try_claim: { args: [ptr, u32, ptr, u32, ptr, u32, f64, f64, ptr, ptr], returns: i32 },
  sbl_try_claim_spin: { args: [ptr, u32, ptr, u32, ptr, u32, f64, f64, ptr, ptr], returns: i32 },
  sbl_release: { args: [ptr, u32, u32], returns: i32 },
  sbl_release_holder: { args: [ptr, u32, u32], returns: i32 },
  sbl_renew: { args: [ptr, u32, u32, f64, f64, ptr], returns: i32 },
  sbl_check: { args: [ptr, u32, u32, f64], returns: i32 },
  sbl_next_holder: { args: [ptr, u32, f64, ptr], returns: i32 },
  sbl_reset: { args: [ptr, u32, ptr, u32], returns: i32 },
  sbl_reset_all: { args: [ptr], returns: i32 },
  sbl_stats: { args: [ptr, ptr], returns: none },
  sbl_wait_start: { args: [ptr, u32, ptr], returns: ptr },
  sbl_wait_fd: { args: [ptr], returns: i32 },
  sbl_wait_end: { args: [ptr], returns: none },
  sbl_waiter_fd: { args: [ptr], returns: i32 },
  sbl_waiter_arm: { args: [ptr, u32], returns: i32 },
  sbl_waiter_disarm: { args: [ptr, u32], returns: i32 },
  sbl_waiter_ready: { args: [ptr, ptr, u32], returns: i32 },
  sbl_waiter_stop: { args: [ptr], returns: none },
  sbl_table: { args: [ptr], returns: ptr },
  sbl_table_size: { args: [ptr], returns: f64 },
  sbl_member_index: { args: [ptr], returns: i32 },
  sbl_epoch: { args: [ptr], returns: f64 },
  sbl_error: { args: [ptr], returns: cstring },
  sbl_layout_hash: { args: [], returns: u32 },
} as const

export type LeaseNative = NativeSymbols<typeof leaseSymbols>
/** The sbl_* functions; valid once loadNative() has resolved (Contest.open awaits it). */
export let leaseNative: LeaseNative = notLoaded<LeaseNative>()
export type ContestPtr = Pointer

// struct sbl_holder (csrc/lease.h): byte offsets (the public Holder type is what contest.ts reads out of it)
export const HolderField = {
  entry: 0,
  version: 4,
  member: 8,
  pid: 12,
  kind: 16,
  labelLen: 20,
  ownerLen: 24,
  how: 28,
  token: 32,
  claimedAt: 40,
  expiresAt: 48,
  owner: 56,
  label: 120,
  trace: 216,
} as const
export const HOLDER_BYTES = 248
export const LEASE_LABEL_MAX = 96
export const LEASE_OWNER_MAX = 64
export const LEASE_MAX_MEMBERS = 256
export const LEASE_MIN_CAPACITY = 64
export const LEASE_MAX_CAPACITY = 65536
export const LeaseHow = { FREE: 0, EXPIRED: 1, DEAD: 2 } as const
// sbl_stats out[] indices
export const LeaseStat = {
  claims: 0,
  yields: 1,
  expiries: 2,
  takeovers: 3,
  releases: 4,
  members: 5,
  subjects: 6,
  capacity: 7,
} as const
export const LEASE_STAT_WORDS = 8

// ---- topics (slotbus/events) ----------------------------------------------------------------------------
// Every function of csrc/topic.h, a separate public header, in a table of its own; test/events/layout.test.ts
// checks it against topic.h and PROTOCOL.md §8.
const topicSymbols = {
  sb_topic_open_start: { args: [cstring, u32, u32, ptr], returns: ptr },
  sb_topic_open_finish: { args: [ptr], returns: i32 },
  sb_topic_open: { args: [cstring, u32, u32, i32, ptr], returns: ptr },
  sb_topic_fd: { args: [ptr], returns: i32 },
  sb_topic_tick: { args: [ptr], returns: i32 },
  sb_topic_tick_deep: { args: [ptr], returns: i32 },
  sb_topic_leave: { args: [ptr], returns: none },
  sb_topic_close: { args: [ptr], returns: none },
  sb_topic_region: { args: [ptr], returns: ptr },
  sb_topic_capacity: { args: [ptr], returns: u32 },
  sb_topic_tail: { args: [ptr], returns: f64 },
  sb_topic_is_keeper: { args: [ptr], returns: i32 },
  sb_topic_out_ptr: { args: [ptr], returns: ptr },
  sb_topic_error: { args: [ptr], returns: cstring },
  sb_topic_layout_hash: { args: [], returns: u32 },
  sb_topic_publish: { args: [ptr, ptr, u32], returns: i32 },
  sb_topic_add_rule: { args: [ptr, ptr, u32], returns: i32 },
  sb_sub_open: { args: [ptr, ptr, u32, u32, f64, ptr], returns: ptr },
  sb_sub_poll: { args: [ptr, u32], returns: i32 },
  sb_sub_batch: { args: [ptr], returns: ptr },
  sb_sub_batch_capacity: { args: [ptr], returns: u32 },
  sb_sub_received: { args: [ptr], returns: f64 },
  sb_sub_lagged: { args: [ptr], returns: f64 },
  sb_sub_corrupt: { args: [ptr], returns: f64 },
  sb_sub_estimates: { args: [ptr], returns: f64 },
  sb_sub_index: { args: [ptr], returns: i32 },
  sb_sub_pending: { args: [ptr], returns: i32 },
  sb_sub_park: { args: [ptr], returns: i32 },
  sb_sub_unpark: { args: [ptr], returns: none },
  sb_sub_fd: { args: [ptr], returns: i32 },
  sb_sub_wait: { args: [ptr, i32], returns: i32 },
  sb_sub_close: { args: [ptr], returns: none },
} as const

export type TopicNative = NativeSymbols<typeof topicSymbols>
/** The topic functions; valid once loadNative() has resolved (Topic.open awaits it). */
export let topicNative: TopicNative = notLoaded<TopicNative>()
