/* libslotbus topics: named pub/sub rings in shared memory (docs/PROTOCOL.md §8).
 * A separate public header next to slotbus.h; both are implemented by libslotbus.
 * Errors are negative errno values; SB_TOPIC_ECORRUPT means the shared memory broke the protocol.
 * Threads: each handle belongs to one thread at a time, with one allowed split: a topic handle may publish
 * (sb_topic_publish, sb_topic_add_rule, sb_topic_tick) on one thread while each of its subscriptions polls
 * (sb_sub_*) on a thread of its own. Readers never touch the topic's scratch buffer (a subscription filters
 * and counts through its own head buffer) and the handle's lazily made writable mapping is set atomically.
 * Publishing from two threads through one handle, or closing a handle while another thread uses it or one
 * of its subscriptions, is not allowed: give each publishing thread its own handle (32 per topic). */
#ifndef SLOTBUS_TOPIC_H
#define SLOTBUS_TOPIC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SB_TOPIC_MAGIC 0x50544253u
#define SB_TOPIC_VERSION 3u
#define SB_TOPIC_ECORRUPT 1000 /* returned negated */
#define SB_TOPIC_MIN_CAPACITY 65536u
#define SB_TOPIC_MAX_CAPACITY 1073741824u
#define SB_TOPIC_MAX_SUBS 64u
#define SB_TOPIC_MAX_PUBS 32u
#define SB_TOPIC_MAX_RULES 8u
#define SB_TOPIC_MAX_KEYS 8u        /* routing keys per event */
#define SB_TOPIC_MAX_FILTER_KEYS 4u /* routing keys per filter */
#define SB_TOPIC_FILTER_BYTES 184u
#define SB_TOPIC_REC_HEADER 32u
#define SB_TOPIC_HEAD_BYTES 4400u /* a record's head (header, type, routing keys) always fits */

/* Offsets into the region (docs/PROTOCOL.md §8.2). */
enum sb_topic_layout {
  SB_TOPIC_OFF_ID = 16, /* the topic id, random: names this host's ring (PROTOCOL §11.4) */
  SB_TOPIC_OFF_TAIL = 64,
  SB_TOPIC_OFF_SLEEPERS = 128,
  SB_TOPIC_OFF_RULES_VERSION = 132,
  SB_TOPIC_OFF_KEEPER_PID = 192,
  SB_TOPIC_OFF_KEEPER_START = 200,
  SB_TOPIC_OFF_ABANDONED = 208,
  SB_TOPIC_OFF_FENCED = 216,
  SB_TOPIC_OFF_SEGMENTS = 256,
  SB_TOPIC_OFF_BRIDGED = 384, /* written by the NATS bridge (TypeScript) only: PROTOCOL §11.4 */
  SB_TOPIC_OFF_BRIDGE_PID = 392,
  SB_TOPIC_OFF_BOOKS = 1024, /* the NATS bridge's receive books, 128 x 16 bytes: PROTOCOL §11.4 */
  SB_TOPIC_BOOK_BYTES = 16,
  SB_TOPIC_BOOKS = 128,
  SB_TOPIC_OFF_SUBS = 4096,
  SB_TOPIC_SUB_BYTES = 256,
  SB_TOPIC_OFF_PUBS = 20480,
  SB_TOPIC_PUB_BYTES = 64,
  SB_TOPIC_OFF_RULES = 22528,
  SB_TOPIC_RULE_BYTES = 128,
  SB_TOPIC_OFF_BINDINGS = 24576,
  SB_TOPIC_BINDING_BYTES = 256,
  SB_TOPIC_BINDINGS = 1024,
  SB_TOPIC_OFF_DATA = 286720
};
/* Subscriber entry fields (byte offsets inside an entry). */
enum sb_topic_sub_field {
  SB_SUB_STATE = 0, SB_SUB_PID = 4, SB_SUB_START = 8, SB_SUB_CURSOR = 16, SB_SUB_RECEIVED = 24,
  SB_SUB_LAGGED = 32, SB_SUB_PARKED = 40, SB_SUB_NONCE = 44, SB_SUB_QUEUE = 48, SB_SUB_FILTER_LEN = 52,
  SB_SUB_STUCK_AT = 56, SB_SUB_FILTER = 64, SB_SUB_ESTIMATES = 248
};
/* Publisher entry fields (byte offsets inside an entry). */
enum sb_topic_pub_field {
  SB_PUBLISHER_STATE = 0, SB_PUBLISHER_PID = 4, SB_PUBLISHER_START = 8, SB_PUBLISHER_PUBLISHED = 16, SB_PUBLISHER_FENCE = 24
};
/* Receive books entry fields (byte offsets inside an entry; the NATS bridge writes them: PROTOCOL §11.4). */
enum sb_topic_book_field { SB_BOOK_BRIDGE = 0, SB_BOOK_SUBJECT = 4, SB_BOOK_SEQ = 8, SB_BOOK_AT = 12 };
enum sb_topic_entry_state { SB_ENTRY_FREE = 0, SB_ENTRY_CLAIMING = 1, SB_ENTRY_LIVE = 2 };
enum sb_topic_rec_state { SB_REC_WRITING = 1, SB_REC_EVENT = 2, SB_REC_PADDING = 3, SB_REC_ABORTED = 4 };
enum sb_topic_encoding { SB_ENC_BYTES = 0, SB_ENC_STRING = 1, SB_ENC_JSON = 2 };
enum sb_topic_filter_mode { SB_FILTER_ANY = 0, SB_FILTER_EXACT = 1, SB_FILTER_PREFIX = 2 };
/* sb_topic_publish result flags (in sb_topic_out.flags) */
enum sb_topic_pub_flags { SB_PUB_BAD_BINDING = 1, SB_PUB_FILLED = 2, SB_PUB_UNFILLED = 4 };
/* where a subscriber starts */
#define SB_FROM_NOW (-1)
#define SB_FROM_OLDEST (-2)
#define SB_FROM_AT (-16) /* from <= SB_FROM_AT: start at position SB_FROM_AT - from, a tail once (PROTOCOL §11.4) */
/* sb_topic_open_start: whether it may create the topic (iceoryx2's open / create / open_or_create) */
#define SB_CREATE_IF_MISSING 0 /* join it, or create it if nobody holds the name */
#define SB_CREATE_NEVER 1      /* join it; -ENOENT if it does not exist */
#define SB_CREATE_MUST 2       /* create it; -EEXIST if it exists */

typedef struct sb_topic sb_topic;
typedef struct sb_sub sb_sub;

/* What the last call on a handle reported, in private memory (stable pointer). */
typedef struct sb_topic_out {
  uint32_t pos_lo, pos_hi; /* sb_topic_publish: the event's id (its ring position) */
  uint32_t flags;          /* sb_topic_publish: sb_topic_pub_flags */
  uint32_t restarted;      /* sb_sub_open: 1 if it could not start where asked (overwritten) */
} sb_topic_out;

/* ---- open / close ----
 * An encoded event (what sb_topic_publish takes) is a record without its first 16 bytes: u32 pid (ignored),
 * u16 type_len, u8 key_count, u8 encoding, u32 data_len, u32 lost, then type, keys (u8 klen, u8 vlen, key, value),
 * data. lost is 0 for an event; n > 0 makes it a loss record: "n events of this type were lost before reaching
 * this ring" (a NATS bridge's, docs/PROTOCOL.md §11.5), counted in the lagged of the subscribers whose filter's
 * type matches, never delivered. A filter is u8 mode, u8 type_len, type, u8 key_count, keys as above. */

/* Open or create the topic `name` ([A-Za-z0-9._-]{1,64}) as `create` allows (SB_CREATE_*). capacity (bytes,
 * power of two) is used only when this call creates it (sb_topic_capacity tells what a joined one has).
 * Returns NULL with *err = -EINVAL, -EPERM (the name is held by another uid), -ENOENT (SB_CREATE_NEVER and
 * nobody holds it), -EEXIST (SB_CREATE_MUST and somebody does), or -errno. When *err is -EAGAIN the handle is
 * joining: call sb_topic_open_finish until it returns 0. */
sb_topic *sb_topic_open_start(const char *name, uint32_t capacity, uint32_t create, int *err);
/* 0 once attached, -EAGAIN while no member has answered (sb_topic_fd becomes readable when one does),
 * -ECONNRESET if the members went away meanwhile (close and open again), -SB_TOPIC_ECORRUPT, or -errno. */
int sb_topic_open_finish(sb_topic *t);
/* Both steps, waiting up to timeout_ms. */
sb_topic *sb_topic_open(const char *name, uint32_t capacity, uint32_t create, int timeout_ms, int *err);
int sb_topic_fd(sb_topic *t); /* the joining socket, or the topic's listening socket (every member holds it) */
/* Housekeeping: collect dead subscribers and publishers, take the keeper role when it is vacant. About every
 * 20 ms while the topic's tail moves, about every second while it does not (then sb_topic_tick_deep: §8.1).
 * Returns 0, or -SB_TOPIC_ECORRUPT if the header was overwritten. Newcomers are answered by the handle's own
 * accept thread, from open to sb_topic_leave, and by a tick too (a joiner in a member's own thread). */
int sb_topic_tick(sb_topic *t);
/* The same, reading /proc for every member (a zombie or a reused pid is collected now): before stats. */
int sb_topic_tick_deep(sb_topic *t);
/* Stop being a member: stop the accept thread, free this handle's publisher entry and let go of the topic's
 * name (the listening socket). Subscriptions keep working until closed;
 * publishing and ticking are over. sb_topic_close does this too. */
void sb_topic_leave(sb_topic *t);
void sb_topic_close(sb_topic *t);

/* ---- facts ---- */
uint8_t *sb_topic_region(sb_topic *t);
uint32_t sb_topic_capacity(sb_topic *t);
double sb_topic_tail(sb_topic *t); /* the tail word (§8.2) now, read whole: it is exact below 2^53 */
int sb_topic_is_keeper(sb_topic *t); /* 1 if this handle is the keeper: it created the topic or took over (§8.1) */
sb_topic_out *sb_topic_out_ptr(sb_topic *t);
const char *sb_topic_error(sb_topic *t);
uint32_t sb_topic_layout_hash(void);

/* ---- publishing ---- */

/* Publish one encoded event. Never blocks. Returns 0 (id and flags in sb_topic_out), -EMSGSIZE (len + 16 over
 * min(capacity / 4, 16 MiB - 16), §8.3), -EINVAL (malformed encoding), -EPERM (the handle could not map the ring writable),
 * -ENOSPC (all 32 publisher entries are taken: a publisher writes only under a fence of its own, §8.3),
 * -EAGAIN (its record was aborted 100 000 times in a row: given up). */
int sb_topic_publish(sb_topic *t, const uint8_t *ev, uint32_t len);
/* Add a late-binding rule: four (u8 len, bytes) strings: type, key A, key B, key C. Returns its index, or
 * -ENOSPC, -EINVAL. Adding a rule that exists returns its index. */
int sb_topic_add_rule(sb_topic *t, const uint8_t *rule, uint32_t len);

/* ---- subscribing ---- */

/* from: SB_FROM_NOW, SB_FROM_OLDEST, an event id to start after, or SB_FROM_AT - p to start at position p (a
 * value the tail once had; the oldest, with out.restarted, if the ring lapped it). queue: 1 .. 1<<20. */
sb_sub *sb_sub_open(sb_topic *t, const uint8_t *filter, uint32_t filter_len, uint32_t queue, double from, int *err);
/* Copy up to max matching events (validated) into the subscriber's private batch: returns how many, or
 * -SB_TOPIC_ECORRUPT. The batch holds whole records (§8.3) one after another, each align16(len) bytes. */
int sb_sub_poll(sb_sub *s, uint32_t max);
uint8_t *sb_sub_batch(sb_sub *s);
uint32_t sb_sub_batch_capacity(sb_sub *s);
double sb_sub_received(sb_sub *s);
double sb_sub_lagged(sb_sub *s);
double sb_sub_corrupt(sb_sub *s);   /* records skipped as corrupt (a hostile or broken publisher, §8.3 R4) */
/* Times lagged was estimated (+1) rather than counted: a corrupt record skipped (by this reader or a pusher),
 * or a subscriber found more than a whole ring behind (§8.4). While 0, received + lagged is exact. */
double sb_sub_estimates(sb_sub *s);
int sb_sub_index(sb_sub *s);
/* 1 if a poll may find something (cheap: no copy). A sleeper calls it now and then (every 20 ms): a wake-up
 * can be lost to a publisher that dies mid-write, and a record it waits at may be due for an abort. */
int sb_sub_pending(sb_sub *s);
/* Announce sleep: 1 if events may have arrived meanwhile (not parked: poll again), 0 if parked: wait for
 * sb_sub_fd to become readable. */
int sb_sub_park(sb_sub *s);
/* Withdraw the announcement (if a publisher has not already) and drain the wake socket. */
void sb_sub_unpark(sb_sub *s);
int sb_sub_fd(sb_sub *s);
/* Park and block until woken or timeout_ms (<0: forever). 1 woken or pending, 0 timeout. */
int sb_sub_wait(sb_sub *s, int timeout_ms);
/* Leave the registry and free everything. */
void sb_sub_close(sb_sub *s);

#ifdef __cplusplus
}
#endif
#endif
