/* Internal to the topic files: the handle, the region's layout (docs/PROTOCOL.md §8.2) as accessors, the record
 * header word, and what topic_ring.c lends the others. Not part of the public API: csrc/topic.h is.
 *   topic_open.c       open, the shared listening socket and the hello, housekeeping, leave, close
 *   topic_ring.c       what publishers and subscribers both read: events, filters, records, the segment index
 *   topic_publish.c    late binding, publisher entries and fences, claims, pushes, wake-ups
 *   topic_subscribe.c  subscriber entries, poll, pending, park */
#ifndef SLOTBUS_TOPIC_INTERNAL_H
#define SLOTBUS_TOPIC_INTERNAL_H
#include "sys.h"
#include "shm.h"
#include "topic.h"

#define LAYOUT_DESC                                                                                                    \
  "slotbus-topic/3 hdr=4096 sub=256x64 pub=64x32 fence=24 fenced=216 rule=128x8 bind=256x1024 data=286720 rec=32 "     \
  "hdr=pos40:alen20:state4 align=16 seg=16 head=4400 lost=28"
#define SEGMENTS 16u

typedef struct {
  uint32_t magic, version, layout_hash, capacity;
  uint64_t topic_id, region_size;
} identity;
_Static_assert(offsetof(identity, topic_id) == SB_TOPIC_OFF_ID, "layout");

struct sb_topic {
  char name[65];
  int listen_fd, conn_fd, memfd, send_fd;
  uint8_t *base;
  _Atomic(uint8_t *) alias; /* a writable mapping for a read-only subscriber's aborts, made on first need */
  uint64_t size;
  uint32_t cap, seg;
  atomic_int writable; /* the ring mapped read-write (a subscription's thread reads it: §8.3 Threads) */
  int keeper;          /* this handle holds the keeper role (the header's keeper word is its own, §8.1) */
  uint32_t pid;
  uint64_t start;
  int pub_index;
  uint64_t published;
  uint32_t rules_version, rule_count;
  uint8_t rules[SB_TOPIC_MAX_RULES][SB_TOPIC_RULE_BYTES];
  uint8_t *scratch; /* cap/4 + room for a filled key: the event being published (the publishing thread's) */
  uint8_t walk_head[SB_TOPIC_HEAD_BYTES]; /* a pushed subscriber's record heads (the publishing thread's; a
                                           * padding claim pushes while the event waits in scratch) */
  uint32_t ticks;
  pthread_t acceptor; /* answers newcomers (§8.1) from open to leave; it reads only what is fixed by then */
  int acceptor_started;
  plat_bell stop;
  sb_topic_out out;
  char err[160];
};

/* ---- the region (§8.2) ---- */

static inline uint64_t align16(uint64_t n) { return (n + 15) & ~(uint64_t)15; }
static inline identity *ident(sb_topic *t) { return (identity *)t->base; }
static inline a64 *tail_word(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_TAIL); }
static inline a32 *sleepers(sb_topic *t) { return shm_u32(t->base, SB_TOPIC_OFF_SLEEPERS); }
static inline a32 *rules_version(sb_topic *t) { return shm_u32(t->base, SB_TOPIC_OFF_RULES_VERSION); }
/* the keeper word (§8.1): pid in the low half, the low 32 bits of its start time in the high half */
static inline a64 *keeper_word(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_KEEPER_PID); }
static inline a64 *keeper_start(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_KEEPER_START); }
static inline a64 *abandoned(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_ABANDONED); }
static inline a64 *fenced(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_FENCED); }
static inline a64 *seg_start(sb_topic *t, uint64_t boundary) {
  return shm_u64(t->base, SB_TOPIC_OFF_SEGMENTS) + ((boundary / t->seg) % SEGMENTS);
}
static inline uint8_t *sub_entry(sb_topic *t, uint32_t i) {
  return t->base + SB_TOPIC_OFF_SUBS + (size_t)SB_TOPIC_SUB_BYTES * i;
}
static inline uint8_t *pub_entry(sb_topic *t, uint32_t i) {
  return t->base + SB_TOPIC_OFF_PUBS + (size_t)SB_TOPIC_PUB_BYTES * i;
}
static inline uint8_t *rule_at(sb_topic *t, uint32_t i) {
  return t->base + SB_TOPIC_OFF_RULES + (size_t)SB_TOPIC_RULE_BYTES * i;
}
static inline uint8_t *binding_at(sb_topic *t, uint32_t i) {
  return t->base + SB_TOPIC_OFF_BINDINGS + (size_t)SB_TOPIC_BINDING_BYTES * i;
}
static inline a64 *fence_word(sb_topic *t, uint32_t i) { return shm_u64(pub_entry(t, i), SB_PUBLISHER_FENCE); }
static inline a64 *rec_words(sb_topic *t, uint64_t pos) {
  return shm_u64(t->base, SB_TOPIC_OFF_DATA + (pos & (t->cap - 1)));
}

static inline int topic_addr(const char *name, struct sockaddr_un *a, socklen_t *len, const char *suffix) {
  return plat_addr("slotbus.topic.", name, suffix, a, len);
}

/* The rendezvous name (§8.1): a socket file in this euid's socket directory (§1.1), so no other uid can take it. */
static inline int rendezvous_addr(const char *name, struct sockaddr_un *a, socklen_t *len) {
  return topic_addr(name, a, len, NULL);
}

static inline int wake_addr(sb_topic *t, uint32_t index, uint32_t nonce, struct sockaddr_un *a, socklen_t *len) {
  char suffix[64];
  snprintf(suffix, sizeof suffix, ".%016llx.%u.%u", (unsigned long long)ident(t)->topic_id, index, nonce);
  return topic_addr(t->name, a, len, suffix);
}

/* Removes a subscriber's wake socket file. */
static inline void unbind_wake(sb_topic *t, uint32_t index, uint32_t nonce) {
  struct sockaddr_un a;
  socklen_t len;
  if (wake_addr(t, index, nonce, &a, &len) == 0) plat_unbind(&a, len);
}

/* ---- records (§8.3) ---- */

/* The record header word (§8.3): the record's position (40 bits of pos/16: a wrap every 16 TiB, never
 * ambiguous in a ring of at most 1 GiB), its length rounded to 16 (20 bits of alen/16) and its state (4 bits).
 * Claiming, committing and aborting a record are all compare-and-swaps of this one word. */
#define POS_MASK ((1ull << 40) - 1)
#define MAX_ALEN (((1ull << 20) - 1) << 4)
/* A record's longest length (§8.3 MAX_EVENT): a quarter of the ring, and what 20 bits of alen/16 say. */
static inline uint64_t max_event(const sb_topic *t) { return t->cap / 4 < MAX_ALEN ? t->cap / 4 : MAX_ALEN; }
static inline uint64_t hdr(uint64_t pos, uint64_t alen, uint32_t state) {
  return ((pos >> 4) & POS_MASK) << 24 | (alen >> 4) << 4 | state;
}
/* Never true of zeroes (a fresh ring): a header has a state and a length. */
static inline int hdr_is(uint64_t h, uint64_t pos) {
  return (h >> 24) == ((pos >> 4) & POS_MASK) && (h & 0xFFFFFF) >= 16;
}
static inline uint64_t hdr_alen(uint64_t h) { return ((h >> 4) & 0xFFFFF) << 4; }
static inline uint32_t hdr_state(uint64_t h) { return (uint32_t)(h & 15); }

enum { R_EVENT, R_SKIP, R_CLAIMED, R_LAPPED, R_CORRUPT, R_TOO_BIG };

typedef struct {
  uint64_t alen; /* bytes the record occupies (R_CORRUPT: 0 unless its header's extent is usable) */
  uint32_t len;  /* its len field (R_EVENT) */
} rec_info;

/* An event as ev_parse finds it in a record: always in a private copy, never in the ring itself. */
typedef struct {
  const uint8_t *type;
  uint32_t type_len, key_count, data_len;
  const uint8_t *keys; /* key_count × (klen, vlen, key, value) */
  uint32_t keys_len;
  uint32_t lost; /* 0: an event; n > 0: a loss record standing for n lost events of its type (§8.3) */
} ev_view;

/* ---- topic_ring.c (hidden: libslotbus exports only what its public headers declare) ---- */

#pragma GCC visibility push(hidden)
int ev_parse(const uint8_t *rec, uint32_t len, ev_view *v);
const uint8_t *ev_key(const ev_view *v, const uint8_t *key, uint32_t kl, uint32_t *vl);
int filter_valid(const uint8_t *f, uint32_t n);
int filter_match(const uint8_t *f, const ev_view *v);
uint64_t filter_count(const uint8_t *f, const ev_view *v, uint64_t *estimated);
int read_record(sb_topic *t, uint64_t p, uint64_t tail, uint8_t *dst, uint32_t room, int head_only, rec_info *ri);
int abort_record(sb_topic *t, uint64_t p, uint64_t alen);
uint64_t segment_first(sb_topic *t, uint64_t b, int *ok);
uint64_t oldest(sb_topic *t, uint64_t tail);
uint64_t resync(sb_topic *t, uint64_t p, uint64_t tail);
int claim_entry(uint8_t *base, uint32_t stride, uint32_t count);
void release_parked(sb_topic *t, uint8_t *e);
#pragma GCC visibility pop
#endif
