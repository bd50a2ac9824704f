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

// ---- topics (slotbus/events) ----------------------------------------------------------------------------
// Every function of csrc/topic.h, a separate public header, in a table of its own (written `returns` first so
// the core's check in test/native/layout.test.ts, which reads `sb_… { args, returns }` entries against
// slotbus.h, passes it by); test/events/layout.test.ts checks this table against topic.h and PROTOCOL.md §7.
const topicSymbols = {
  sb_topic_open_start: { returns: ptr, args: [cstring, u32, ptr] },
  sb_topic_open_finish: { returns: i32, args: [ptr] },
  sb_topic_open: { returns: ptr, args: [cstring, u32, i32, ptr] },
  sb_topic_fd: { returns: i32, args: [ptr] },
  sb_topic_tick: { returns: i32, args: [ptr] },
  sb_topic_close: { returns: none, args: [ptr] },
  sb_topic_region: { returns: ptr, args: [ptr] },
  sb_topic_capacity: { returns: u32, args: [ptr] },
  sb_topic_is_keeper: { returns: i32, args: [ptr] },
  sb_topic_out_ptr: { returns: ptr, args: [ptr] },
  sb_topic_error: { returns: cstring, args: [ptr] },
  sb_topic_layout_hash: { returns: u32, args: [] },
  sb_topic_publish: { returns: i32, args: [ptr, ptr, u32] },
  sb_topic_add_rule: { returns: i32, args: [ptr, ptr, u32] },
  sb_sub_open: { returns: ptr, args: [ptr, ptr, u32, u32, f64, ptr] },
  sb_sub_poll: { returns: i32, args: [ptr, u32] },
  sb_sub_batch: { returns: ptr, args: [ptr] },
  sb_sub_batch_capacity: { returns: u32, args: [ptr] },
  sb_sub_received: { returns: f64, args: [ptr] },
  sb_sub_lagged: { returns: f64, args: [ptr] },
  sb_sub_corrupt: { returns: f64, args: [ptr] },
  sb_sub_estimates: { returns: f64, args: [ptr] },
  sb_sub_index: { returns: i32, args: [ptr] },
  sb_sub_pending: { returns: i32, args: [ptr] },
  sb_sub_park: { returns: i32, args: [ptr] },
  sb_sub_unpark: { returns: none, args: [ptr] },
  sb_sub_fd: { returns: i32, args: [ptr] },
  sb_sub_wait: { returns: i32, args: [ptr, i32] },
  sb_sub_close: { returns: none, args: [ptr] },
} as const

export const topicNative = dlopen(libraryPath(), topicSymbols).symbols

/** csrc/topic.h, by name (test/events/layout.test.ts compares each with the header). */
export const TopicConst = {
  MAGIC: 0x50544253,
  VERSION: 1,
  E_CORRUPT: -1000,
  MIN_CAPACITY: 65536,
  MAX_CAPACITY: 1073741824,
  MAX_SUBS: 64,
  MAX_PUBS: 32,
  MAX_RULES: 8,
  MAX_KEYS: 8,
  MAX_FILTER_KEYS: 4,
  FILTER_BYTES: 184,
  REC_HEADER: 32,
  FROM_NOW: -1,
  FROM_OLDEST: -2,
} as const
export const TopicLayout = {
  OFF_TAIL: 64, OFF_SLEEPERS: 128, OFF_RULES_VERSION: 132, OFF_KEEPER_PID: 192, OFF_KEEPER_START: 200,
  OFF_ABANDONED: 208, OFF_SEGMENTS: 256, OFF_SUBS: 4096, SUB_BYTES: 256, OFF_PUBS: 20480, PUB_BYTES: 64,
  OFF_RULES: 22528, RULE_BYTES: 128, OFF_BINDINGS: 24576, BINDING_BYTES: 256, BINDINGS: 1024, OFF_DATA: 286720,
} as const
export const SubField = {
  STATE: 0, PID: 4, START: 8, CURSOR: 16, RECEIVED: 24, LAGGED: 32, PARKED: 40, NONCE: 44, QUEUE: 48,
  FILTER_LEN: 52, STUCK_AT: 56, FILTER: 64, ESTIMATES: 248,
} as const
export const EntryState = { FREE: 0, CLAIMING: 1, LIVE: 2 } as const
export const RecState = { WRITING: 1, EVENT: 2, PADDING: 3, ABORTED: 4 } as const
export const Encoding = { BYTES: 0, STRING: 1, JSON: 2 } as const
export const FilterMode = { ANY: 0, EXACT: 1, PREFIX: 2 } as const
export const PubFlag = { BAD_BINDING: 1, FILLED: 2 } as const
// sb_topic_out: pos_lo, pos_hi, flags, restarted
export const TopicOut = { posLo: 0, posHi: 1, flags: 2, restarted: 3 } as const
export const TOPIC_OUT_WORDS = 4
export const TopicErrno = { EPERM: -1, EAGAIN: -11, ENOMEM: -12, EINVAL: -22, ENOSPC: -28, EMSGSIZE: -90, ECONNRESET: -104, ETIMEDOUT: -110 } as const
