// The one native boundary: every libslotbus symbol, as declared in csrc/slotbus.h.
import { dlopen, FFIType, type Pointer } from "bun:ffi"
import { libraryPath } from "./lib-path.ts"

const { ptr, i32, u32, i64, f64, cstring, void: none } = FFIType

const symbols = {
  sb_listen: { args: [cstring], returns: i32 },
  sb_accept: { args: [i32, ptr, ptr, ptr], returns: ptr },
  sb_connect: { args: [cstring, i64, i32, ptr], returns: ptr },
  sb_connect_start: { args: [cstring, i64, ptr], returns: ptr },
  sb_connect_finish: { args: [ptr, i32], returns: i32 },
  sb_close: { args: [ptr], returns: none },
  sb_disconnect: { args: [ptr], returns: none },
  sb_detach: { args: [ptr], returns: none },

  sb_region: { args: [ptr], returns: ptr },
  sb_region_size: { args: [ptr], returns: f64 },
  sb_slot_count: { args: [ptr], returns: u32 },
  sb_arena_size: { args: [ptr], returns: u32 },
  sb_arena_offset: { args: [ptr, u32, i32], returns: f64 },
  sb_socket_fd: { args: [ptr], returns: i32 },
  sb_doorbell_fd: { args: [ptr], returns: i32 },
  sb_peer_pid: { args: [ptr], returns: i32 },
  sb_peer_uid: { args: [ptr], returns: i32 },
  sb_last_msg: { args: [ptr], returns: ptr },
  sb_error: { args: [ptr], returns: cstring },
  sb_slot_state: { args: [ptr, u32], returns: u32 },
  sb_layout_hash: { args: [], returns: u32 },

  sb_hub_claim: { args: [ptr], returns: i32 },
  sb_hub_publish: { args: [ptr, u32, u32, u32, u32, u32], returns: i32 },
  sb_hub_cancel: { args: [ptr, u32], returns: i32 },
  sb_hub_poll: { args: [ptr], returns: i32 },
  sb_hub_release: { args: [ptr, u32], returns: i32 },

  sb_worker_poll: { args: [ptr], returns: i32 },
  sb_worker_complete: { args: [ptr, u32, u32, u32, u32, u32], returns: i32 },

  sb_park: { args: [ptr], returns: i32 },
  sb_unpark: { args: [ptr], returns: none },
  sb_yield: { args: [], returns: none },
  sb_wait: { args: [ptr, i32, i32], returns: i32 },
} as const

export const native = dlopen(libraryPath(), symbols).symbols
export type Chan = Pointer

// sb_msg field indices (u32 words), see csrc/slotbus.h
export const Msg = { slot: 0, kind: 1, id: 2, status: 3, flags: 4, headLen: 5, bodyLen: 6, bodyOff: 7 } as const
export const MSG_WORDS = 8

// sb_hub_config: slot_count, arena_size, trim_bytes, allow_uid_count, allow_uids[8]
export const HUB_CONFIG_WORDS = 12
export const MAX_ALLOW_UIDS = 8

export const State = { FREE: 0, WRITING: 1, READY: 2, CLAIMED: 3, DONE: 4, CANCELLED: 5 } as const
export const Kind = { RAW: 0, HTTP: 1 } as const
export const RespFlag = { ERROR: 1, CANCELLED: 2 } as const
// Bytes on the rendezvous socket after the hello (docs/PROTOCOL.md §1)
export const Control = { DRAIN: 0x44 /* D */, DRAIN_ACK: 0x41 /* A */, HUB_CLOSING: 0x43 /* C */ } as const
export const E_CORRUPT = -1000
// sb_connect_start: accept a hub of any uid
export const ANY_UID = -1
// Negative errno values libslotbus returns (Linux numbering), by name: core code never spells a raw number.
export const Errno = { EPERM: -1, ENOENT: -2, EINTR: -4, EAGAIN: -11, EADDRINUSE: -98, ETIMEDOUT: -110, ECONNREFUSED: -111 } as const

// ---- lease contests: every sbl_* symbol of csrc/lease.h (docs/PROTOCOL.md §7) ----

const leaseSymbols = {
  sbl_open: { args: [cstring, u32, i32, ptr], returns: ptr },
  sbl_close: { args: [ptr], returns: none },
  sbl_try_claim: { args: [ptr, u32, ptr, u32, ptr, u32, f64, f64, ptr], returns: i32 },
  sbl_try_claim_spin: { args: [ptr, u32, ptr, u32, ptr, u32, f64, f64, ptr], returns: i32 },
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
  sbl_table: { args: [ptr], returns: ptr },
  sbl_table_size: { args: [ptr], returns: f64 },
  sbl_member_index: { args: [ptr], returns: i32 },
  sbl_epoch: { args: [ptr], returns: f64 },
  sbl_error: { args: [ptr], returns: cstring },
  sbl_layout_hash: { args: [], returns: u32 },
} as const

export const leaseNative = dlopen(libraryPath(), leaseSymbols).symbols
export type ContestPtr = Pointer

// struct sbl_holder (csrc/lease.h): byte offsets
export const Holder = {
  entry: 0, version: 4, member: 8, pid: 12, kind: 16, labelLen: 20, ownerLen: 24, how: 28,
  token: 32, claimedAt: 40, expiresAt: 48, owner: 56, label: 120,
} as const
export const HOLDER_BYTES = 216
export const LEASE_LABEL_MAX = 96
export const LEASE_OWNER_MAX = 64
export const LEASE_MAX_MEMBERS = 256
export const LEASE_MIN_CAPACITY = 64
export const LEASE_MAX_CAPACITY = 65536
export const LeaseHow = { FREE: 0, EXPIRED: 1, DEAD: 2 } as const
// sbl_stats out[] indices
export const LeaseStat = { claims: 0, yields: 1, expiries: 2, takeovers: 3, releases: 4, members: 5, subjects: 6, capacity: 7 } as const
export const LEASE_STAT_WORDS = 8
// Negative errno values the sbl_* calls return, by name (Linux numbering)
export const LeaseErrno = {
  EPERM: -1, ENOENT: -2, E2BIG: -7, ENOMEM: -12, EINVAL: -22, ENOSPC: -28, EPROTO: -71, EUSERS: -87, ETIMEDOUT: -110,
} as const
