/* Internal to the lease files: the contest handle, the table's layout (docs/PROTOCOL.md §7.2) as accessors and
 * the words it packs, and what one file lends the others. Not part of the public API: csrc/lease.h is.
 *   lease_claim.c  member processes and their liveness (§7.5), subjects (§7.3), claims (§7.4)
 *   lease_wait.c   waiting for a claim: one thread per wait, or one waiter thread per contest (§7.4)
 *   lease_open.c   open: the shared listening socket, the hello, the table made or adopted, joining; close (§7.1) */
#ifndef SLOTBUS_LEASE_INTERNAL_H
#define SLOTBUS_LEASE_INTERNAL_H
#include "sys.h"
#include "shm.h"
#include "lease.h"

#include <math.h> /* isfinite, INFINITY: macros only, no libm */

#define HDR_BYTES 4096u
#define MEMBER_BYTES 64u
#define ENTRY_BYTES 256u
#define MEMBERS_OFF HDR_BYTES
#define ENTRIES_OFF (MEMBERS_OFF + MEMBER_BYTES * SBL_MAX_MEMBERS)
#define LAYOUT_DESC "slotbus-lease/1 hdr=4096 member=64x256 entry=256 label=96 owner=64 trace=32 word=ver32:gen16:member8:state8"
#define NO_EXPIRY INT64_MAX
#define TOKEN_SHIFT 20
#define WAIT_SLICE_MS 20
#define LIVENESS_CACHE_NS 2000000ull
#define ACCEPT_TIMEOUT_MS 1000
#define SPIN_LIMIT 20000u /* sched_yield rounds (~tens of ms) before a stalled peer is reported, not awaited */

/* ---- table layout (§7.2) ---- */

typedef struct {
  uint32_t magic, version, layout_hash, capacity;
  uint64_t table_size;
  int64_t epoch;
  uint32_t creator_pid;
} table_identity;

enum { C_CLAIMS, C_YIELDS, C_EXPIRIES, C_TAKEOVERS, C_RELEASES, C_COUNT };

typedef struct {
  _Alignas(64) table_identity id;
  _Alignas(128) _Atomic uint64_t totals[C_COUNT];
} table_hdr;

typedef struct {
  _Atomic uint64_t word; /* pid << 32 | gen << 8 | state */
  _Atomic uint64_t start;
  _Atomic uint64_t counters[C_COUNT];
  uint64_t reserved;
} member_rec;

typedef struct {
  _Atomic uint32_t key; /* state | member << 8 | gen << 16 */
  uint32_t kind, hash, label_len;
  uint8_t label[SBL_LABEL_MAX];
  _Atomic uint32_t waiters;
  _Atomic uint32_t wake_seq;
  _Atomic uint64_t word; /* version << 32 | gen << 16 | member << 8 | state */
  _Atomic uint64_t token;
  _Atomic int64_t claimed_at;
  _Atomic int64_t expires_at;
  _Atomic uint32_t owner_len;
  uint32_t reserved0;
  _Atomic uint64_t owner[SBL_OWNER_MAX / 8];
  _Atomic uint64_t trace[SBL_TRACE_BYTES / 8];
} entry_t;

_Static_assert(offsetof(table_hdr, totals) == 128 && sizeof(table_hdr) <= HDR_BYTES, "layout");
_Static_assert(sizeof(member_rec) == MEMBER_BYTES && offsetof(member_rec, counters) == 16, "layout");
_Static_assert(offsetof(entry_t, label) == 16 && offsetof(entry_t, waiters) == 112, "layout");
_Static_assert(offsetof(entry_t, wake_seq) == 116 && offsetof(entry_t, word) == 120, "layout");
_Static_assert(offsetof(entry_t, token) == 128 && offsetof(entry_t, claimed_at) == 136, "layout");
_Static_assert(offsetof(entry_t, expires_at) == 144 && offsetof(entry_t, owner_len) == 152, "layout");
_Static_assert(offsetof(entry_t, owner) == 160 && sizeof(entry_t) == ENTRY_BYTES, "layout");
_Static_assert(offsetof(entry_t, trace) == 224, "layout");

/* What this process knows about another member's process: a pidfd pinned to the right start time. */
typedef struct {
  uint64_t word;  /* the member word this is about */
  uint64_t start; /* and its recorded start time: a wrapped generation may come back with the same pid */
  int pidfd;
  int alive;
  uint64_t checked_ns;
} liveness;

/* This process's one waiter thread (§7.4 "Waiting"): it sleeps on the wake sequences of the armed entries
 * only, and lists the entries that became claimable for the caller, who reads them after sbl_waiter_fd rings. */
typedef struct {
  pthread_mutex_t lock;
  _Atomic uint32_t ctl;   /* private futex: bumped when the armed set changes or the thread must stop */
  int started, stop;
  plat_bell bell; /* rung when entries became claimable */
  pthread_t thread;
  uint32_t *slot;         /* per entry: 0 not armed, else its index + 1 in armed */
  uint32_t *armed, n_armed;
  uint32_t *ready, n_ready; /* claimable entries not yet taken by sbl_waiter_ready */
  uint8_t *is_ready;
  int no_waitv;
} waiter_set;

struct sbl_contest {
  uint8_t *base;
  uint64_t size;
  uint32_t capacity; /* private copies: the shared header is never trusted after join */
  int64_t epoch;
  int memfd, listen_fd;
  plat_bell stop;
  uint32_t me, my_gen;
  uint64_t my_word;
  uint64_t last_token; /* of the claim publish_claim made last */
  pthread_t acceptor;
  int acceptor_started;
  pthread_mutex_t cache_lock; /* the JS thread and wait threads both check liveness */
  liveness cache[SBL_MAX_MEMBERS];
  int no_pidfd;
  waiter_set ws;
  char error[160];
};

struct sbl_wait {
  sbl_contest *c;
  uint32_t entry;
  plat_bell bell;
  _Atomic int cancel;
  pthread_t thread;
};

static inline uint32_t subject_hash(uint32_t kind, const uint8_t *label, uint32_t len) {
  uint8_t k[4] = {(uint8_t)kind, (uint8_t)(kind >> 8), (uint8_t)(kind >> 16), (uint8_t)(kind >> 24)};
  return sys_fnv1a(sys_fnv1a(FNV1A_SEED, k, 4), label, len);
}

static inline table_hdr *hdr(sbl_contest *c) { return (table_hdr *)c->base; }
static inline member_rec *member_at(sbl_contest *c, uint32_t m) { return (member_rec *)(c->base + MEMBERS_OFF) + m; }
static inline entry_t *entry_at(sbl_contest *c, uint32_t i) { return (entry_t *)(c->base + ENTRIES_OFF) + i; }
static inline uint64_t table_size_for(uint32_t capacity) { return ENTRIES_OFF + (uint64_t)ENTRY_BYTES * capacity; }

/* claim word */
static inline uint32_t w_state(uint64_t w) { return (uint32_t)(w & 0xFF); }
static inline uint32_t w_member(uint64_t w) { return (uint32_t)((w >> 8) & 0xFF); }
static inline uint32_t w_gen(uint64_t w) { return (uint32_t)((w >> 16) & 0xFFFF); }
static inline uint32_t w_version(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint64_t claim_word(uint32_t version, uint32_t gen, uint32_t member, uint32_t state) {
  return (uint64_t)version << 32 | (uint64_t)(gen & 0xFFFF) << 16 | (uint64_t)(member & 0xFF) << 8 | state;
}
/* member word */
static inline uint32_t m_state(uint64_t w) { return (uint32_t)(w & 0xFF); }
static inline uint32_t m_gen(uint64_t w) { return (uint32_t)((w >> 8) & 0xFFFF); }
static inline uint32_t m_pid(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint64_t member_word(uint32_t pid, uint32_t gen, uint32_t state) {
  return (uint64_t)pid << 32 | (uint64_t)(gen & 0xFFFF) << 8 | state;
}

static inline int corrupt(sbl_contest *c, const char *what, uint64_t a, uint64_t b) {
  snprintf(c->error, sizeof c->error, "%s (%llu, %llu)", what, (unsigned long long)a, (unsigned long long)b);
  return -SBL_ECORRUPT;
}

static inline int64_t clock_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- lease_claim.c (hidden: libslotbus exports only what its public headers declare) ---- */

#pragma GCC visibility push(hidden)
void reap(sbl_contest *c, uint32_t m, uint64_t mw);
int member_alive(sbl_contest *c, uint32_t m, uint32_t gen);
int free_claim(sbl_contest *c, uint32_t i, uint64_t w);
#pragma GCC visibility pop
#endif
