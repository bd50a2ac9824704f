// csrc/topic.h's layout and constants, by name: what src/events reads and writes in a topic's region and records
// (docs/PROTOCOL.md §8). The topic's functions are src/native/ffi.ts's topicSymbols; test/events/layout.test.ts
// checks both against topic.h and PROTOCOL.md.
/** csrc/topic.h, by name (test/events/layout.test.ts compares each with the header). */
export const TopicConst = {
  MAGIC: 0x50544253,
  VERSION: 3,
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
  HEAD_BYTES: 4400,
  FROM_NOW: -1,
  FROM_OLDEST: -2,
  FROM_AT: -16,
} as const
export const TopicLayout = {
  OFF_ID: 16,
  OFF_TAIL: 64,
  OFF_SLEEPERS: 128,
  OFF_RULES_VERSION: 132,
  OFF_KEEPER_PID: 192,
  OFF_KEEPER_START: 200,
  OFF_ABANDONED: 208,
  OFF_FENCED: 216,
  OFF_SEGMENTS: 256,
  OFF_BRIDGED: 384,
  OFF_BRIDGE_PID: 392,
  OFF_BOOKS: 1024,
  BOOK_BYTES: 16,
  BOOKS: 128,
  OFF_SUBS: 4096,
  SUB_BYTES: 256,
  OFF_PUBS: 20480,
  PUB_BYTES: 64,
  OFF_RULES: 22528,
  RULE_BYTES: 128,
  OFF_BINDINGS: 24576,
  BINDING_BYTES: 256,
  BINDINGS: 1024,
  OFF_DATA: 286720,
} as const
export const SubField = {
  STATE: 0,
  PID: 4,
  START: 8,
  CURSOR: 16,
  RECEIVED: 24,
  LAGGED: 32,
  PARKED: 40,
  NONCE: 44,
  QUEUE: 48,
  FILTER_LEN: 52,
  STUCK_AT: 56,
  FILTER: 64,
  ESTIMATES: 248,
} as const
export const PubField = { STATE: 0, PID: 4, START: 8, PUBLISHED: 16, FENCE: 24 } as const
/** A receive books entry (§11.4): the sender bridge (0: free), its subject's CRC-32, the last seq, when taken. */
export const BookField = { BRIDGE: 0, SUBJECT: 4, SEQ: 8, AT: 12 } as const
export const EntryState = { FREE: 0, CLAIMING: 1, LIVE: 2 } as const
export const RecState = { WRITING: 1, EVENT: 2, PADDING: 3, ABORTED: 4 } as const
export const Encoding = { BYTES: 0, STRING: 1, JSON: 2 } as const
export const FilterMode = { ANY: 0, EXACT: 1, PREFIX: 2 } as const
export const PubFlag = { BAD_BINDING: 1, FILLED: 2, UNFILLED: 4 } as const
// sb_topic_out: pos_lo, pos_hi, flags, restarted
export const TopicOut = { posLo: 0, posHi: 1, flags: 2, restarted: 3 } as const
export const TOPIC_OUT_WORDS = 4
