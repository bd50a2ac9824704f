/* Lease contests: the reference implementation of docs/PROTOCOL.md §7. */
#include "sys.h"
#include "shm.h"
#include "lease.h"

#include <math.h> /* isfinite, INFINITY: macros only, no libm */

#define HDR_BYTES 4096u
#define MEMBER_BYTES 64u
#define ENTRY_BYTES 256u
#define MEMBERS_OFF HDR_BYTES
#define ENTRIES_OFF (MEMBERS_OFF + MEMBER_BYTES * SBL_MAX_MEMBERS)
#define LAYOUT_DESC "slotbus-lease/1 hdr=4096 member=64x256 entry=256 label=96 owner=64 word=ver32:gen16:member8:state8"
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
  uint64_t reserved[4];
} entry_t;

_Static_assert(offsetof(table_hdr, totals) == 128 && sizeof(table_hdr) <= HDR_BYTES, "layout");
_Static_assert(sizeof(member_rec) == MEMBER_BYTES && offsetof(member_rec, counters) == 16, "layout");
_Static_assert(offsetof(entry_t, label) == 16 && offsetof(entry_t, waiters) == 112, "layout");
_Static_assert(offsetof(entry_t, wake_seq) == 116 && offsetof(entry_t, word) == 120, "layout");
_Static_assert(offsetof(entry_t, token) == 128 && offsetof(entry_t, claimed_at) == 136, "layout");
_Static_assert(offsetof(entry_t, expires_at) == 144 && offsetof(entry_t, owner_len) == 152, "layout");
_Static_assert(offsetof(entry_t, owner) == 160 && sizeof(entry_t) == ENTRY_BYTES, "layout");

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

uint32_t sbl_layout_hash(void) { return sys_fnv1a(FNV1A_SEED, (const uint8_t *)LAYOUT_DESC, strlen(LAYOUT_DESC)); }

static uint32_t subject_hash(uint32_t kind, const uint8_t *label, uint32_t len) {
  uint8_t k[4] = {(uint8_t)kind, (uint8_t)(kind >> 8), (uint8_t)(kind >> 16), (uint8_t)(kind >> 24)};
  return sys_fnv1a(sys_fnv1a(FNV1A_SEED, k, 4), label, len);
}

static table_hdr *hdr(sbl_contest *c) { return (table_hdr *)c->base; }
static member_rec *member_at(sbl_contest *c, uint32_t m) { return (member_rec *)(c->base + MEMBERS_OFF) + m; }
static entry_t *entry_at(sbl_contest *c, uint32_t i) { return (entry_t *)(c->base + ENTRIES_OFF) + i; }
static uint64_t table_size_for(uint32_t capacity) { return ENTRIES_OFF + (uint64_t)ENTRY_BYTES * capacity; }

/* claim word */
static uint32_t w_state(uint64_t w) { return (uint32_t)(w & 0xFF); }
static uint32_t w_member(uint64_t w) { return (uint32_t)((w >> 8) & 0xFF); }
static uint32_t w_gen(uint64_t w) { return (uint32_t)((w >> 16) & 0xFFFF); }
static uint32_t w_version(uint64_t w) { return (uint32_t)(w >> 32); }
static uint64_t claim_word(uint32_t version, uint32_t gen, uint32_t member, uint32_t state) {
  return (uint64_t)version << 32 | (uint64_t)(gen & 0xFFFF) << 16 | (uint64_t)(member & 0xFF) << 8 | state;
}
/* member word */
static uint32_t m_state(uint64_t w) { return (uint32_t)(w & 0xFF); }
static uint32_t m_gen(uint64_t w) { return (uint32_t)((w >> 8) & 0xFFFF); }
static uint32_t m_pid(uint64_t w) { return (uint32_t)(w >> 32); }
static uint64_t member_word(uint32_t pid, uint32_t gen, uint32_t state) {
  return (uint64_t)pid << 32 | (uint64_t)(gen & 0xFFFF) << 8 | state;
}

static int corrupt(sbl_contest *c, const char *what, uint64_t a, uint64_t b) {
  snprintf(c->error, sizeof c->error, "%s (%llu, %llu)", what, (unsigned long long)a, (unsigned long long)b);
  return -SBL_ECORRUPT;
}

static int64_t clock_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* ---- processes: start time and liveness (§7.5) ---- */

/* Is the process behind member word mw still the one that joined? Caller holds cache_lock. */
static int probe(sbl_contest *c, uint32_t m, uint64_t mw, liveness *l) {
  uint32_t pid = m_pid(mw);
  /* relaxed: written before the ALIVE store we loaded with acquire */
  uint64_t start = atomic_load_explicit(&member_at(c, m)->start, memory_order_relaxed);
  if (pid == 0 || start == 0) return 0;
  if (!c->no_pidfd && l->pidfd < 0) {
    int fd = plat_pidfd_open(pid); /* -ENOSYS on the portable backend: kill + start time below (§13.5) */
    if (fd == -ESRCH) return 0;
    if (fd == -ENOSYS || fd == -EPERM) c->no_pidfd = 1;
    /* opened first, then the start time compared: the pidfd now pins the process we verified */
    if (fd >= 0 && !sys_proc_same(pid, start)) {
      close(fd);
      return 0;
    }
    l->pidfd = fd;
  }
  if (l->pidfd >= 0) {
    struct pollfd p = {l->pidfd, POLLIN, 0};
    return !(poll(&p, 1, 0) > 0 && (p.revents & POLLIN)); /* readable: the process has exited */
  }
  return sys_proc_same(pid, start);
}

/* Frees a dead member's record; its claims are stale from then on (§7.5). */
static void reap(sbl_contest *c, uint32_t m, uint64_t mw) {
  member_rec *r = member_at(c, m);
  uint64_t counts[C_COUNT];
  /* relaxed: the dead member can no longer write them */
  for (int i = 0; i < C_COUNT; i++) counts[i] = atomic_load_explicit(&r->counters[i], memory_order_relaxed);
  /* acq_rel: one reaper wins; the counters read above belong to exactly the generation it frees */
  if (atomic_compare_exchange_strong_explicit(&r->word, &mw, member_word(0, m_gen(mw) + 1, SBL_MEMBER_FREE),
                                              memory_order_acq_rel, memory_order_relaxed))
    for (int i = 0; i < C_COUNT; i++) atomic_fetch_add_explicit(&hdr(c)->totals[i], counts[i], memory_order_relaxed);
}

/* 1: member m of generation gen is alive; 0: it is not (left, reaped or dead: reaped now). fresh: ask the
   kernel even if it answered "alive" less than LIVENESS_CACHE_NS ago (stats must see a kill -9 at once). */
static int member_alive_as_of(sbl_contest *c, uint32_t m, uint32_t gen, int fresh) {
  if (m == c->me && gen == c->my_gen) return 1;
  /* acquire: pairs with the joiner's release store of ALIVE, so its start time is visible */
  uint64_t mw = atomic_load_explicit(&member_at(c, m)->word, memory_order_acquire);
  if (m_state(mw) != SBL_MEMBER_ALIVE || m_gen(mw) != (gen & 0xFFFF)) return 0;
  pthread_mutex_lock(&c->cache_lock);
  liveness *l = &c->cache[m];
  uint64_t now = mono_ns();
  /* relaxed: written before the ALIVE store we loaded with acquire */
  uint64_t start = atomic_load_explicit(&member_at(c, m)->start, memory_order_relaxed);
  if (l->word != mw || l->start != start) {
    if (l->pidfd >= 0) close(l->pidfd);
    l->word = mw;
    l->start = start;
    l->pidfd = -1;
    l->checked_ns = 0;
  }
  int alive;
  if (!fresh && l->checked_ns && l->alive && now - l->checked_ns < LIVENESS_CACHE_NS) {
    alive = 1;
  } else {
    alive = probe(c, m, mw, l);
    l->alive = alive;
    l->checked_ns = now;
  }
  pthread_mutex_unlock(&c->cache_lock);
  if (!alive) reap(c, m, mw);
  return alive;
}

static int member_alive(sbl_contest *c, uint32_t m, uint32_t gen) { return member_alive_as_of(c, m, gen, 0); }

static void count(sbl_contest *c, int which) {
  /* relaxed load + store: only this member writes its counters */
  _Atomic uint64_t *p = &member_at(c, c->me)->counters[which];
  atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* ---- subjects (§7.3) ---- */

static int find_entry(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t len, int insert, uint32_t *out) {
  if (plat_region_lost(c->base)) return corrupt(c, "the table was truncated by a member (SIGBUS caught)", 0, 0);
  uint32_t h = subject_hash(kind, label, len);
  uint32_t mask = c->capacity - 1;
  uint32_t i = h & mask, stalls = 0;
  for (uint32_t probes = 0; probes < c->capacity;) {
    entry_t *e = entry_at(c, i);
    /* acquire: pairs with the inserter's release of READY, so kind, hash and label are complete */
    uint32_t k = atomic_load_explicit(&e->key, memory_order_acquire);
    uint32_t st = k & 0xFF;
    if (st == SBL_KEY_EMPTY) {
      if (!insert) return -ENOENT;
      uint32_t mine = SBL_KEY_WRITING | c->me << 8 | (c->my_gen & 0xFFFF) << 16;
      /* relaxed: the key is private to us until the release store of READY below */
      if (!atomic_compare_exchange_strong_explicit(&e->key, &k, mine, memory_order_relaxed, memory_order_relaxed))
        continue; /* someone else is inserting here: look again */
      e->kind = kind;
      e->hash = h;
      e->label_len = len;
      memcpy(e->label, label, len);
      atomic_store_explicit(&e->key, SBL_KEY_READY, memory_order_release);
      *out = i;
      return 0;
    }
    if (st == SBL_KEY_WRITING) {
      uint32_t m = (k >> 8) & 0xFF;
      /* we insert from one thread per member, so our own WRITING here means someone forged it */
      if (m == c->me && (k >> 16) == (c->my_gen & 0xFFFF)) return corrupt(c, "subject key forged with our member", i, k);
      if (++stalls > SPIN_LIMIT) return corrupt(c, "subject insert never completed", i, k);
      if (!member_alive(c, m, k >> 16))
        atomic_compare_exchange_strong_explicit(&e->key, &k, SBL_KEY_ABANDONED, memory_order_relaxed, memory_order_relaxed);
      else
        sched_yield(); /* a live inserter is a few stores from READY */
      continue;
    }
    if (st == SBL_KEY_READY) {
      uint32_t elen = SHM_READ(e->label_len); /* read once: a scribbler may change it under us */
      if (elen > SBL_LABEL_MAX) return corrupt(c, "subject label length out of range", i, elen);
      if (e->hash == h && e->kind == kind && elen == len && memcmp(e->label, label, len) == 0) {
        *out = i;
        return 0;
      }
    } else if (st != SBL_KEY_ABANDONED) {
      return corrupt(c, "bad subject key word", i, k);
    }
    i = (i + 1) & mask;
    probes++;
  }
  return insert ? -ENOSPC : -ENOENT;
}

/* ---- claims (§7.4) ---- */

static int check_word(sbl_contest *c, uint32_t i, uint64_t w) {
  if (w_state(w) > SBL_HELD) return corrupt(c, "bad claim state", i, w);
  if (w_state(w) == SBL_FREE && (w & 0xFFFFFFFFu) != 0) return corrupt(c, "free claim names a holder", i, w);
  return 0;
}

static double ms_out(int64_t v) { return v == NO_EXPIRY ? INFINITY : (double)v; }

/* Reads a held claim's details seqlock-style. 1: *out consistent for word w; 0: the word moved on. */
static int read_claim(sbl_contest *c, uint32_t i, uint64_t w, sbl_holder *out) {
  entry_t *e = entry_at(c, i);
  uint64_t owner[SBL_OWNER_MAX / 8];
  /* relaxed loads validated by the fence + reload below (seqlock read side) */
  uint64_t token = atomic_load_explicit(&e->token, memory_order_relaxed);
  int64_t at = atomic_load_explicit(&e->claimed_at, memory_order_relaxed);
  int64_t exp = atomic_load_explicit(&e->expires_at, memory_order_relaxed);
  uint32_t olen = atomic_load_explicit(&e->owner_len, memory_order_relaxed);
  shm_load_words(owner, e->owner, SBL_OWNER_MAX);
  atomic_thread_fence(memory_order_acquire);
  if (atomic_load_explicit(&e->word, memory_order_relaxed) != w) return 0;
  if (olen > SBL_OWNER_MAX) return corrupt(c, "owner length out of range", i, olen);
  out->entry = i;
  out->version = w_version(w);
  out->member = w_member(w);
  uint64_t mw = atomic_load_explicit(&member_at(c, out->member)->word, memory_order_relaxed);
  out->pid = m_pid(mw);
  out->token = token;
  out->claimed_at = (double)at;
  out->expires_at = ms_out(exp);
  out->owner_len = olen;
  memcpy(out->owner, owner, SBL_OWNER_MAX);
  out->kind = e->kind;
  uint32_t label_len = SHM_READ(e->label_len); /* read once: checked, then used */
  out->label_len = label_len <= SBL_LABEL_MAX ? label_len : 0;
  memcpy(out->label, e->label, out->label_len);
  return 1;
}

/* Writes our claim's details in CLAIMING (seqlock write side), then publishes HELD. */
static uint64_t publish_claim(sbl_contest *c, uint32_t i, uint64_t claiming, const uint8_t *owner, uint32_t owner_len,
                              int64_t at, int64_t exp, int new_token) {
  entry_t *e = entry_at(c, i);
  /* release fence: a reader that sees any detail written below also sees the CLAIMING word before it */
  atomic_thread_fence(memory_order_release);
  if (new_token) {
    uint64_t prev = atomic_load_explicit(&e->token, memory_order_relaxed);
    int64_t now = clock_ms(CLOCK_REALTIME);
    uint64_t floor = (uint64_t)(now > c->epoch ? now : c->epoch) << TOKEN_SHIFT;
    c->last_token = prev + 1 > floor ? prev + 1 : floor;
    atomic_store_explicit(&e->token, c->last_token, memory_order_relaxed);
    atomic_store_explicit(&e->claimed_at, at, memory_order_relaxed);
    uint64_t words[SBL_OWNER_MAX / 8] = {0};
    memcpy(words, owner, owner_len);
    shm_store_words(e->owner, words, SBL_OWNER_MAX);
    atomic_store_explicit(&e->owner_len, owner_len, memory_order_relaxed);
  }
  atomic_store_explicit(&e->expires_at, exp, memory_order_relaxed);
  uint64_t held = claim_word(w_version(claiming) + 1, c->my_gen, c->me, SBL_HELD);
  /* release: the details above are visible to whoever loads HELD with acquire */
  atomic_store_explicit(&e->word, held, memory_order_release);
  return held;
}

/* ms as an integer, rounded down; no libm (glibc 2.27 keeps floor in a library of its own) */
static int64_t ms_floor(double v) {
  if (!isfinite(v) || v >= 9.2e18 || v <= -9.2e18) return v > 0 ? NO_EXPIRY : 0;
  int64_t t = (int64_t)v;
  return (double)t > v ? t - 1 : t;
}

static int64_t expiry_for(double now_ms, double ttl_ms) {
  if (!(ttl_ms > 0) || !isfinite(ttl_ms) || !isfinite(now_ms)) return NO_EXPIRY;
  return ms_floor(now_ms + ttl_ms);
}

static void wake_waiters(entry_t *e) {
  /* seq_cst: ordered after the seq_cst CAS that freed the entry, against the waiter's seq_cst increment
   * before it checks the entry (Dekker): either it sees the entry free or we see it waiting */
  if (atomic_load_explicit(&e->waiters, memory_order_seq_cst) == 0) return;
  atomic_fetch_add_explicit(&e->wake_seq, 1, memory_order_seq_cst);
  plat_wake(&e->wake_seq, 1);
}

int sbl_try_claim(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t label_len, const uint8_t *owner,
                  uint32_t owner_len, double now_ms, double ttl_ms, sbl_holder *out) {
  if (label_len > SBL_LABEL_MAX || owner_len > SBL_OWNER_MAX) return -E2BIG;
  uint32_t i;
  int r = find_entry(c, kind, label, label_len, 1, &i);
  if (r) return r;
  entry_t *e = entry_at(c, i);
  int64_t now = ms_floor(now_ms);
  for (uint32_t spins = 0;; spins++) {
    /* acquire: the previous holder's release (or HELD publish) happens-before our reads and our claim */
    uint64_t w = atomic_load_explicit(&e->word, memory_order_acquire);
    if ((r = check_word(c, i, w))) return r;
    uint32_t how = SBL_HOW_FREE;
    if (w_state(w) != SBL_FREE) {
      if (!member_alive(c, w_member(w), w_gen(w))) {
        how = SBL_HOW_DEAD;
      } else if (w_state(w) == SBL_CLAIMING) {
        if (w_member(w) == c->me && w_gen(w) == (c->my_gen & 0xFFFF)) return corrupt(c, "claim forged with our member", i, w);
        if (spins < 64) {
          cpu_relax();
          continue;
        }
        if (spins < SPIN_LIMIT) {
          sched_yield(); /* a live claimant is a few stores from HELD */
          continue;
        }
        /* a claimant stopped mid-claim (SIGSTOP, debugger): yield to it with what the words say */
        memset(out, 0, sizeof *out);
        out->entry = i;
        out->version = w_version(w);
        out->member = w_member(w);
        out->pid = m_pid(atomic_load_explicit(&member_at(c, out->member)->word, memory_order_relaxed));
        out->expires_at = INFINITY;
        count(c, C_YIELDS);
        return 0;
      } else {
        r = read_claim(c, i, w, out);
        if (r < 0) return r;
        if (r == 0) continue;
        if (out->expires_at > (double)now) {
          out->how = SBL_HOW_FREE;
          count(c, C_YIELDS);
          return 0;
        }
        how = SBL_HOW_EXPIRED;
      }
    }
    uint64_t claiming = claim_word(w_version(w) + 1, c->my_gen, c->me, SBL_CLAIMING);
    /* acquire on success: we now own the details; relaxed on failure: we simply look again */
    if (!atomic_compare_exchange_weak_explicit(&e->word, &w, claiming, memory_order_acquire, memory_order_relaxed))
      continue;
    int64_t exp = expiry_for(now_ms, ttl_ms);
    uint64_t held = publish_claim(c, i, claiming, owner, owner_len, now, exp, 1);
    count(c, C_CLAIMS);
    if (how == SBL_HOW_EXPIRED) count(c, C_EXPIRIES);
    if (how == SBL_HOW_DEAD) count(c, C_TAKEOVERS);
    /* our own claim: the caller has the subject and owner already, so only what we decided goes out */
    out->entry = i;
    out->version = w_version(held);
    out->member = c->me;
    out->pid = m_pid(c->my_word);
    out->kind = kind;
    out->label_len = out->owner_len = 0;
    out->how = how;
    out->token = c->last_token;
    out->claimed_at = (double)now;
    out->expires_at = ms_out(exp);
    return 1;
  }
}

int sbl_try_claim_spin(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t label_len, const uint8_t *owner,
                       uint32_t owner_len, double ttl_ms, double spin_ns, sbl_holder *out) {
  uint64_t start = mono_ns();
  for (;;) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int r = sbl_try_claim(c, kind, label, label_len, owner, owner_len, (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6,
                          ttl_ms, out);
    if (r != 0) return r;
    /* yielded: watch the claim word (one cache line, no syscall) until it moves, then try again; every
     * millisecond try anyway, which notices an expiry or the holder's death */
    entry_t *e = entry_at(c, out->entry);
    uint64_t seen = atomic_load_explicit(&e->word, memory_order_relaxed);
    uint64_t retry_at = mono_ns() + 1000000ull;
    for (uint32_t n = 1;; n++) {
      cpu_relax();
      /* relaxed: only a hint to try again; the claim itself is the acquire CAS in sbl_try_claim */
      if (atomic_load_explicit(&e->word, memory_order_relaxed) != seen) break;
      if ((n & 63) == 0) {
        uint64_t now = mono_ns();
        if ((double)(now - start) >= spin_ns) return 0;
        if (now >= retry_at) break;
      }
    }
  }
}

/* Our claim (entry, version) as its current word, or 0 if it is not ours any more. */
static uint64_t our_word(sbl_contest *c, uint32_t i, uint32_t version) {
  /* acquire: anything we read after deciding the claim is ours was published before */
  uint64_t w = atomic_load_explicit(&entry_at(c, i)->word, memory_order_acquire);
  if (w_state(w) != SBL_HELD || w_version(w) != version || w_member(w) != c->me || w_gen(w) != (c->my_gen & 0xFFFF))
    return 0;
  return w;
}

static int free_claim(sbl_contest *c, uint32_t i, uint64_t w) {
  entry_t *e = entry_at(c, i);
  /* seq_cst: release for the next holder's acquire, and ordered before wake_waiters' load of waiters */
  if (!atomic_compare_exchange_strong_explicit(&e->word, &w, claim_word(w_version(w) + 1, 0, 0, SBL_FREE),
                                               memory_order_seq_cst, memory_order_relaxed))
    return 0;
  wake_waiters(e);
  return 1;
}

int sbl_release(sbl_contest *c, uint32_t entry, uint32_t version) {
  if (entry >= c->capacity) return -EINVAL;
  uint64_t w = our_word(c, entry, version);
  if (!w || !free_claim(c, entry, w)) return 0;
  count(c, C_RELEASES);
  return 1;
}

int sbl_release_holder(sbl_contest *c, uint32_t entry, uint32_t version) {
  if (entry >= c->capacity) return -EINVAL;
  uint64_t w = atomic_load_explicit(&entry_at(c, entry)->word, memory_order_acquire);
  if (w_state(w) != SBL_HELD || w_version(w) != version || !free_claim(c, entry, w)) return 0;
  count(c, C_RELEASES);
  return 1;
}

int sbl_check(sbl_contest *c, uint32_t entry, uint32_t version, double now_ms) {
  if (entry >= c->capacity) return -EINVAL;
  if (!our_word(c, entry, version)) return 0;
  /* relaxed: only we write it while we hold the claim */
  int64_t exp = atomic_load_explicit(&entry_at(c, entry)->expires_at, memory_order_relaxed);
  return (double)exp > now_ms;
}

int sbl_renew(sbl_contest *c, uint32_t entry, uint32_t version, double now_ms, double ttl_ms, sbl_holder *out) {
  if (entry >= c->capacity) return -EINVAL;
  if (sbl_check(c, entry, version, now_ms) != 1) return 0;
  entry_t *e = entry_at(c, entry);
  uint64_t w = claim_word(version, c->my_gen, c->me, SBL_HELD);
  uint64_t claiming = claim_word(version + 1, c->my_gen, c->me, SBL_CLAIMING);
  /* acquire: pairs with nothing new (we held it), but keeps the expiry write below after the CAS */
  if (!atomic_compare_exchange_strong_explicit(&e->word, &w, claiming, memory_order_acquire, memory_order_relaxed))
    return 0;
  uint64_t held = publish_claim(c, entry, claiming, NULL, 0, 0, expiry_for(now_ms, ttl_ms), 0);
  int r = read_claim(c, entry, held, out);
  if (r < 0) return r;
  if (r == 0) return 0; /* reset under our feet */
  return 1;
}

int sbl_next_holder(sbl_contest *c, uint32_t from, double now_ms, sbl_holder *out) {
  for (uint32_t i = from; i < c->capacity; i++) {
    entry_t *e = entry_at(c, i);
    if ((atomic_load_explicit(&e->key, memory_order_acquire) & 0xFF) != SBL_KEY_READY) continue;
    for (;;) {
      uint64_t w = atomic_load_explicit(&e->word, memory_order_acquire);
      int r = check_word(c, i, w);
      if (r) return r;
      if (w_state(w) != SBL_HELD || !member_alive(c, w_member(w), w_gen(w))) break;
      r = read_claim(c, i, w, out);
      if (r < 0) return r;
      if (r == 0) continue;
      if (out->expires_at <= now_ms) break;
      out->how = SBL_HOW_FREE;
      return (int)i;
    }
  }
  return -ENOENT;
}

static int reset_entry(sbl_contest *c, uint32_t i) {
  entry_t *e = entry_at(c, i);
  for (uint32_t spins = 0;;) {
    uint64_t w = atomic_load_explicit(&e->word, memory_order_acquire);
    int r = check_word(c, i, w);
    if (r) return r;
    if (w_state(w) == SBL_FREE) return 0;
    /* a live claimant in CLAIMING is about to store HELD over anything we write: let it finish */
    if (w_state(w) == SBL_CLAIMING && member_alive(c, w_member(w), w_gen(w))) {
      if (++spins > SPIN_LIMIT) return 0;
      sched_yield();
      continue;
    }
    if (free_claim(c, i, w)) return 1;
  }
}

int sbl_reset(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t label_len) {
  if (label_len > SBL_LABEL_MAX) return -E2BIG;
  uint32_t i;
  int r = find_entry(c, kind, label, label_len, 0, &i);
  if (r == -ENOENT) return 0;
  return r ? r : reset_entry(c, i);
}

int sbl_reset_all(sbl_contest *c) {
  int n = 0;
  for (uint32_t i = 0; i < c->capacity; i++) {
    if ((atomic_load_explicit(&entry_at(c, i)->key, memory_order_acquire) & 0xFF) != SBL_KEY_READY) continue;
    int r = reset_entry(c, i);
    if (r < 0) return r;
    n += r;
  }
  return n;
}

void sbl_stats(sbl_contest *c, double *out) {
  uint64_t sum[C_COUNT];
  /* relaxed everywhere: statistics, not synchronisation. The dead are reaped first (reap folds their counters into
     the totals), then the totals are read, then the living: a member killed since the last call is counted once,
     in the totals, instead of in neither (it was reaped between reading the totals and skipping it) */
  for (uint32_t m = 0; m < SBL_MAX_MEMBERS; m++) {
    uint64_t mw = atomic_load_explicit(&member_at(c, m)->word, memory_order_relaxed);
    if (m_state(mw) == SBL_MEMBER_ALIVE) (void)member_alive_as_of(c, m, m_gen(mw), 1);
  }
  for (int k = 0; k < C_COUNT; k++) sum[k] = atomic_load_explicit(&hdr(c)->totals[k], memory_order_relaxed);
  uint32_t members = 0, subjects = 0;
  for (uint32_t m = 0; m < SBL_MAX_MEMBERS; m++) {
    member_rec *r = member_at(c, m);
    uint64_t mw = atomic_load_explicit(&r->word, memory_order_relaxed);
    if (m_state(mw) != SBL_MEMBER_ALIVE) continue;
    members++;
    for (int k = 0; k < C_COUNT; k++) sum[k] += atomic_load_explicit(&r->counters[k], memory_order_relaxed);
  }
  for (uint32_t i = 0; i < c->capacity; i++)
    if ((atomic_load_explicit(&entry_at(c, i)->key, memory_order_relaxed) & 0xFF) == SBL_KEY_READY) subjects++;
  for (int k = 0; k < C_COUNT; k++) out[k] = (double)sum[k];
  out[5] = members;
  out[6] = subjects;
  out[7] = c->capacity;
}

/* ---- waiting (§7.4) ---- */

/* 0: the entry can be claimed now; otherwise ms to sleep at most before looking again. */
static int claimable_in(sbl_contest *c, uint32_t i) {
  entry_t *e = entry_at(c, i);
  uint64_t w = atomic_load_explicit(&e->word, memory_order_acquire);
  if (w_state(w) > SBL_HELD || w_state(w) == SBL_FREE) return 0; /* corruption: let the claimant report it */
  if (!member_alive(c, w_member(w), w_gen(w))) return 0;
  if (w_state(w) == SBL_CLAIMING) return 1;
  int64_t exp = atomic_load_explicit(&e->expires_at, memory_order_relaxed);
  int64_t left = exp == NO_EXPIRY ? WAIT_SLICE_MS : exp - clock_ms(CLOCK_REALTIME);
  if (left <= 0) return 0;
  return left < WAIT_SLICE_MS ? (int)left : WAIT_SLICE_MS;
}

static void *wait_main(void *arg) {
  sbl_wait *wt = arg;
  entry_t *e = entry_at(wt->c, wt->entry);
  /* seq_cst: see wake_waiters */
  atomic_fetch_add_explicit(&e->waiters, 1, memory_order_seq_cst);
  while (!atomic_load_explicit(&wt->cancel, memory_order_acquire)) {
    uint32_t seq = atomic_load_explicit(&e->wake_seq, memory_order_seq_cst);
    int ms = claimable_in(wt->c, wt->entry);
    if (ms == 0) break;
    plat_wait(&e->wake_seq, seq, ms, 1);
  }
  atomic_fetch_sub_explicit(&e->waiters, 1, memory_order_relaxed);
  plat_bell_ring(wt->bell.wr);
  return NULL;
}

sbl_wait *sbl_wait_start(sbl_contest *c, uint32_t entry, int *err) {
  if (entry >= c->capacity) {
    *err = -EINVAL;
    return NULL;
  }
  sbl_wait *wt = calloc(1, sizeof *wt);
  if (!wt) {
    *err = -ENOMEM;
    return NULL;
  }
  wt->c = c;
  wt->entry = entry;
  int r = plat_bell_open(&wt->bell);
  if (r) {
    *err = r;
    free(wt);
    return NULL;
  }
  r = pthread_create(&wt->thread, NULL, wait_main, wt);
  if (r) {
    plat_bell_close(&wt->bell);
    free(wt);
    *err = -r;
    return NULL;
  }
  *err = 0;
  return wt;
}

int sbl_wait_fd(sbl_wait *w) { return w->bell.rd; }

void sbl_wait_end(sbl_wait *w) {
  if (!w) return;
  atomic_store_explicit(&w->cancel, 1, memory_order_release);
  /* wakes every waiter of this entry, in every process: each just looks again */
  plat_wake(&entry_at(w->c, w->entry)->wake_seq, 1);
  pthread_join(w->thread, NULL);
  plat_bell_close(&w->bell);
  free(w);
}

/* ---- the waiter thread: one per contest and process, however many claims wait (§7.4) ---- */

#define WAITV_MAX 128 /* the kernel's limit; one is the control word */

/* Caller holds ws->lock. */
static void unarm(sbl_contest *c, uint32_t i) {
  waiter_set *ws = &c->ws;
  uint32_t k = ws->slot[i];
  if (!k) return;
  uint32_t last = ws->armed[--ws->n_armed];
  ws->armed[k - 1] = last;
  ws->slot[last] = k;
  ws->slot[i] = 0;
  atomic_fetch_sub_explicit(&entry_at(c, i)->waiters, 1, memory_order_relaxed);
}

static void *waiter_main(void *arg) {
  sbl_contest *c = arg;
  waiter_set *ws = &c->ws;
  plat_waitv_entry v[WAITV_MAX];
  plat_thread_name(pthread_self(), "sbl-waiter");
  for (;;) {
    pthread_mutex_lock(&ws->lock);
    if (ws->stop) {
      pthread_mutex_unlock(&ws->lock);
      return NULL;
    }
    /* read before the checks: an arm after them changes it, and the wait below returns at once */
    uint32_t ctl = atomic_load_explicit(&ws->ctl, memory_order_seq_cst);
    uint32_t nv = 1, rang = 0;
    int min_ms = -1;
    v[0] = (plat_waitv_entry){&ws->ctl, ctl, 0};
    for (uint32_t k = 0; k < ws->n_armed;) {
      uint32_t i = ws->armed[k];
      entry_t *e = entry_at(c, i);
      /* seq_cst: the waiters increment (at arm) precedes this load; see wake_waiters */
      uint32_t seq = atomic_load_explicit(&e->wake_seq, memory_order_seq_cst);
      int ms = claimable_in(c, i);
      if (ms == 0) {
        unarm(c, i); /* swaps the last armed entry into k: look at k again */
        if (!ws->is_ready[i]) ws->is_ready[i] = 1, ws->ready[ws->n_ready++] = i;
        rang = 1;
        continue;
      }
      if (nv < WAITV_MAX) v[nv++] = (plat_waitv_entry){&e->wake_seq, seq, 1};
      else ms = ms < 2 ? ms : 2; /* beyond the kernel's 127: look again soon */
      if (min_ms < 0 || ms < min_ms) min_ms = ms;
      k++;
    }
    pthread_mutex_unlock(&ws->lock);
    if (rang) plat_bell_ring(ws->bell.wr);
    if (!ws->no_waitv && plat_wait_many(v, nv, min_ms) == -ENOSYS) ws->no_waitv = 1;
    if (ws->no_waitv) {
      /* kernels before 5.16, and the portable backend: the control word only, in slices; on the portable
       * backend short ones while anything is armed, as nothing else wakes us for a release (§13.5) */
      int poll = plat_poll_ms();
      int slice = poll && nv > 1 ? poll : WAIT_SLICE_MS;
      plat_wait(&ws->ctl, ctl, min_ms < 0 || min_ms > slice ? slice : min_ms, 0);
    }
  }
}

static void waiter_poke(waiter_set *ws) {
  atomic_fetch_add_explicit(&ws->ctl, 1, memory_order_seq_cst);
  plat_wake(&ws->ctl, 0);
}

int sbl_waiter_fd(sbl_contest *c) {
  waiter_set *ws = &c->ws;
  if (ws->started) return ws->bell.rd;
  if (!ws->slot) {
    ws->slot = calloc(c->capacity, sizeof *ws->slot);
    ws->armed = calloc(c->capacity, sizeof *ws->armed);
    ws->ready = calloc(c->capacity, sizeof *ws->ready);
    ws->is_ready = calloc(c->capacity, 1);
    if (!ws->slot || !ws->armed || !ws->ready || !ws->is_ready) return -ENOMEM;
  }
  int r = plat_bell_open(&ws->bell);
  if (r) return r;
  ws->stop = 0;
  r = pthread_create(&ws->thread, NULL, waiter_main, c);
  if (r) {
    plat_bell_close(&ws->bell);
    return -r;
  }
  plat_thread_name(ws->thread, "sbl-waiter");
  ws->started = 1;
  return ws->bell.rd;
}

int sbl_waiter_arm(sbl_contest *c, uint32_t entry) {
  waiter_set *ws = &c->ws;
  if (entry >= c->capacity || !ws->started) return -EINVAL;
  pthread_mutex_lock(&ws->lock);
  if (!ws->slot[entry]) {
    /* seq_cst: before the thread's load of the wake sequence and its check (Dekker with wake_waiters) */
    atomic_fetch_add_explicit(&entry_at(c, entry)->waiters, 1, memory_order_seq_cst);
    ws->armed[ws->n_armed++] = entry;
    ws->slot[entry] = ws->n_armed;
  }
  pthread_mutex_unlock(&ws->lock);
  waiter_poke(ws);
  return 0;
}

int sbl_waiter_disarm(sbl_contest *c, uint32_t entry) {
  waiter_set *ws = &c->ws;
  if (entry >= c->capacity || !ws->started) return -EINVAL;
  pthread_mutex_lock(&ws->lock);
  unarm(c, entry);
  pthread_mutex_unlock(&ws->lock); /* the thread notices at its next wake; waking it costs more than that */
  return 0;
}

int sbl_waiter_ready(sbl_contest *c, uint32_t *out, uint32_t max) {
  waiter_set *ws = &c->ws;
  if (!ws->started) return 0;
  pthread_mutex_lock(&ws->lock);
  uint32_t n = ws->n_ready < max ? ws->n_ready : max;
  for (uint32_t k = 0; k < n; k++) out[k] = ws->ready[ws->n_ready - 1 - k], ws->is_ready[out[k]] = 0;
  ws->n_ready -= n;
  pthread_mutex_unlock(&ws->lock);
  return (int)n;
}

void sbl_waiter_stop(sbl_contest *c) {
  waiter_set *ws = &c->ws;
  if (!ws->started) return;
  pthread_mutex_lock(&ws->lock);
  ws->stop = 1;
  while (ws->n_armed) unarm(c, ws->armed[0]);
  for (uint32_t k = 0; k < ws->n_ready; k++) ws->is_ready[ws->ready[k]] = 0;
  ws->n_ready = 0;
  pthread_mutex_unlock(&ws->lock);
  waiter_poke(ws);
  pthread_join(ws->thread, NULL);
  plat_bell_close(&ws->bell);
  ws->started = 0;
}

/* ---- rendezvous (§7.1) ---- */

static int name_to_addr(const char *name, struct sockaddr_un *a, socklen_t *len) {
  return plat_addr("slotbus-lease.", name, NULL, a, len);
}

static void serve_newcomer(sbl_contest *c, int sock) {
  uint32_t uid;
  int fds[2] = {c->memfd, c->listen_fd};
  int ok = plat_peer(sock, &uid, NULL) == 0 && uid == getuid();
  sys_hello h =
      sys_hello_make(SBL_MAGIC, SBL_VERSION, sbl_layout_hash(), ok ? 0 : EPERM, ok ? c->size : 0, (uint32_t)getpid());
  ssize_t r = sys_send_fds(sock, &h, sizeof h, fds, ok ? 2 : 0, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)r; /* a newcomer that vanished simply tries again */
}

static void *accept_main(void *arg) {
  sbl_contest *c = arg;
  struct pollfd p[2] = {{c->listen_fd, POLLIN, 0}, {c->stop.rd, POLLIN, 0}};
  plat_thread_name(pthread_self(), "sbl-accept");
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) break;
    if (p[0].revents & (POLLERR | POLLNVAL)) break;
    /* the listening socket is shared and non-blocking: another member may have taken this one */
    int s = plat_accept(c->listen_fd, 0);
    if (s >= 0) {
      serve_newcomer(c, s);
      close(s);
    }
  }
  return NULL;
}

static _Thread_local char open_error[256];
const char *sbl_open_error(void) { return open_error; }

/* §7.1 frozen members: 1 when every process holding the contest's listening socket is stopped, their pids in
 * open_error; 0 when one runs or nothing can be told (the portable backend cannot, §13.5: the newcomer times out). */
static int members_all_stopped(const char *name) {
  uint32_t pids[16], n = 0, more = 0;
  if (plat_listeners_stopped("slotbus-lease.", name, pids, 16, &n, &more) != 1) return 0;
  int off = snprintf(open_error, sizeof open_error, "every member is stopped (SIGSTOP or a debugger): pids");
  for (uint32_t i = 0; i < n && off < (int)sizeof open_error; i++)
    off += snprintf(open_error + off, sizeof open_error - (size_t)off, " %u", pids[i]);
  if (more && off < (int)sizeof open_error) snprintf(open_error + off, sizeof open_error - (size_t)off, " and %u more", more);
  return 1;
}

#define FROZEN_CHECK_MS 250

static int recv_hello(int sock, sys_hello *h, int fds[2], int timeout_ms, const char *name) {
  struct pollfd p = {sock, POLLIN, 0};
  int n;
  /* in slices: a hello that does not come may mean every member is stopped, then waiting is pointless */
  for (int waited = 0;;) {
    int slice = timeout_ms - waited < FROZEN_CHECK_MS ? timeout_ms - waited : FROZEN_CHECK_MS;
    while ((n = poll(&p, 1, slice < 0 ? 0 : slice)) < 0 && errno == EINTR) {
    }
    if (n != 0) break;
    waited += slice;
    if (waited >= timeout_ms) return -ETIMEDOUT;
    if (members_all_stopped(name)) return -EHOSTDOWN;
  }
  if (n < 0) return -errno;
  int got, excess;
  ssize_t r = sys_recv_fds(sock, h, sizeof *h, MSG_WAITALL, fds, 2, &got, &excess);
  if (r < 0) return -errno;
  if (r == 0) return -ECONNRESET; /* the member that accepted us went away: try again */
  if (r != (ssize_t)sizeof *h || excess) return -SBL_ECORRUPT;
  if (h->magic != SBL_MAGIC || h->version != SBL_VERSION || h->layout_hash != sbl_layout_hash()) return -EPROTO;
  if (h->status) return h->status == EPERM ? -EPERM : -SBL_ECORRUPT;
  return got == 2 ? 0 : -SBL_ECORRUPT;
}

static int map_table(sbl_contest *c) {
  void *p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
  if (p == MAP_FAILED) return -errno;
  c->base = p;
  plat_region_mapped(p, c->size);
  return 0;
}

/* The header is another member's word: check it against itself, the hello and fstat, then keep a copy. */
static int adopt_table(sbl_contest *c, uint64_t size) {
  if (size < ENTRIES_OFF || !plat_region_check(c->memfd, size)) return -SBL_ECORRUPT;
  c->size = size;
  int r = map_table(c);
  if (r) return r;
  table_identity id;
  shm_load_words(&id, &hdr(c)->id, sizeof id);
  if (id.magic != SBL_MAGIC || id.version != SBL_VERSION || id.layout_hash != sbl_layout_hash()) return -SBL_ECORRUPT;
  if (id.capacity < SBL_MIN_CAPACITY || id.capacity > SBL_MAX_CAPACITY || (id.capacity & (id.capacity - 1)) ||
      table_size_for(id.capacity) != size || id.table_size != size)
    return -SBL_ECORRUPT;
  c->capacity = id.capacity;
  c->epoch = id.epoch;
  return 0;
}

static int create_table(sbl_contest *c, uint32_t capacity) {
  c->size = table_size_for(capacity);
  c->capacity = capacity;
  c->memfd = plat_region_create("slotbus-lease", c->size);
  if (c->memfd < 0) return c->memfd;
  int r = map_table(c);
  if (r) return r;
  /* wait for the next millisecond: every token of an earlier table used a millisecond before it (§7.6) */
  int64_t t0 = clock_ms(CLOCK_REALTIME);
  while ((c->epoch = clock_ms(CLOCK_REALTIME)) == t0) {
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
  table_identity *id = &hdr(c)->id;
  id->magic = SBL_MAGIC;
  id->version = SBL_VERSION;
  id->layout_hash = sbl_layout_hash();
  id->capacity = capacity;
  id->table_size = c->size;
  id->epoch = c->epoch;
  id->creator_pid = (uint32_t)getpid();
  return 0;
}

/* §7.5 join: no claim or key left by member m of an earlier lap of generation gen survives into ours. */
static void sweep_lap(sbl_contest *c, uint32_t m, uint32_t gen) {
  gen &= 0xFFFF;
  for (uint32_t i = 0; i < c->capacity; i++) {
    entry_t *e = entry_at(c, i);
    uint32_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
    if ((k & 0xFF) == SBL_KEY_WRITING && ((k >> 8) & 0xFF) == m && (k >> 16) == gen)
      atomic_compare_exchange_strong_explicit(&e->key, &k, SBL_KEY_ABANDONED, memory_order_relaxed, memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&e->word, memory_order_acquire);
    if (w_state(w) != SBL_FREE && w_state(w) <= SBL_HELD && w_member(w) == m && w_gen(w) == gen)
      free_claim(c, i, w); /* seq_cst CAS + wake, as a release; a claimant that beat us took it already */
  }
}

static int join_members(sbl_contest *c) {
  uint32_t pid = (uint32_t)getpid();
  uint64_t start = sys_proc_start(pid);
  for (int pass = 0; pass < 2; pass++) {
    for (uint32_t m = 0; m < SBL_MAX_MEMBERS; m++) {
      member_rec *r = member_at(c, m);
      uint64_t w = atomic_load_explicit(&r->word, memory_order_relaxed);
      if (m_state(w) > SBL_MEMBER_ALIVE) return corrupt(c, "bad member word", m, w);
      if (pass == 1 && m_state(w) == SBL_MEMBER_ALIVE) {
        member_alive(c, m, m_gen(w)); /* a full table: reap the dead, then look again */
        w = atomic_load_explicit(&r->word, memory_order_relaxed);
      }
      if (pass == 1 && m_state(w) == SBL_MEMBER_JOINING && kill((pid_t)m_pid(w), 0) < 0 && errno == ESRCH)
        reap(c, m, w), w = atomic_load_explicit(&r->word, memory_order_relaxed);
      if (m_state(w) != SBL_MEMBER_FREE) continue;
      uint64_t joining = member_word(pid, m_gen(w), SBL_MEMBER_JOINING);
      /* acquire: the previous occupant's fold of its counters is done before we zero them */
      if (!atomic_compare_exchange_strong_explicit(&r->word, &w, joining, memory_order_acquire, memory_order_relaxed))
        continue;
      for (int k = 0; k < C_COUNT; k++) atomic_store_explicit(&r->counters[k], 0, memory_order_relaxed);
      atomic_store_explicit(&r->start, start, memory_order_relaxed);
      sweep_lap(c, m, m_gen(w));
      c->me = m;
      c->my_gen = m_gen(w);
      c->my_word = member_word(pid, c->my_gen, SBL_MEMBER_ALIVE);
      /* release: a checker that loads ALIVE with acquire sees our start time */
      atomic_store_explicit(&r->word, c->my_word, memory_order_release);
      return 0;
    }
  }
  return -EUSERS;
}

static sbl_contest *contest_new(void) {
  sbl_contest *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->memfd = c->listen_fd = c->stop.rd = c->stop.wr = -1;
  c->base = MAP_FAILED;
  c->me = UINT32_MAX;
  pthread_mutex_init(&c->cache_lock, NULL);
  pthread_mutex_init(&c->ws.lock, NULL);
  c->ws.bell.rd = c->ws.bell.wr = -1;
  for (uint32_t m = 0; m < SBL_MAX_MEMBERS; m++) c->cache[m].pidfd = -1;
  return c;
}

static sbl_contest *fail(sbl_contest *c, int *err, int code) {
  if (c) sbl_close(c);
  if (err) *err = code;
  return NULL;
}

/* One attempt: 1 joined, 0 try again, <0 error. */
static int try_open(sbl_contest *c, const char *name, const struct sockaddr_un *a, socklen_t alen, uint32_t capacity,
                    uint32_t create, int timeout_ms) {
  int s = plat_socket(SOCK_STREAM);
  if (s < 0) return -errno;
  int e = -plat_connect(s, a, alen);
  if (e == 0) {
    /* whoever listens must be our uid before we read a byte: another user may have bound the name after
     * the last member died, and would hand us a table it controls */
    uint32_t uid;
    if (plat_peer(s, &uid, NULL) < 0 || uid != getuid()) {
      close(s);
      return -EACCES;
    }
    if (create == SBL_CREATE_MUST) {
      close(s);
      return -EEXIST;
    }
    sys_hello h;
    int fds[2] = {-1, -1};
    int r = recv_hello(s, &h, fds, timeout_ms, name);
    close(s);
    if (r) {
      for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) close(fds[i]);
      return r == -ECONNRESET ? 0 : r;
    }
    c->memfd = fds[0];
    c->listen_fd = fds[1];
    return (r = adopt_table(c, h.size)) ? r : 1;
  }
  close(s);
  if (e != ECONNREFUSED && e != ENOENT && e != EAGAIN) return -e;
  if (create == SBL_CREATE_NEVER) return e == EAGAIN ? 0 : -ENOENT; /* EAGAIN: a member's backlog is full */
  /* nobody listens: become the first member */
  int l = plat_socket(SOCK_STREAM);
  if (l < 0) return -errno;
  /* listening at once: a newcomer that connects before the table exists waits for its hello, which only an
   * accept thread sends, after the table is made (and a portable binder must never see a bound, refusing
   * file: it would take it for stale, §13.2) */
  if ((e = -plat_bind(l, a, alen, 128))) {
    close(l);
    return e == EADDRINUSE ? 0 : -e; /* someone else won: connect to them */
  }
  int r = create_table(c, capacity);
  if (r) {
    close(l);
    return r;
  }
  c->listen_fd = l;
  return 1;
}

sbl_contest *sbl_open(const char *name, uint32_t capacity, uint32_t create, int timeout_ms, int *err) {
  struct sockaddr_un a;
  socklen_t alen;
  open_error[0] = 0;
  int r = plat_check();
  if (!r) r = name_to_addr(name, &a, &alen);
  if (r) return fail(NULL, err, r);
  if (capacity < SBL_MIN_CAPACITY || capacity > SBL_MAX_CAPACITY || (capacity & (capacity - 1)) ||
      create > SBL_CREATE_MUST)
    return fail(NULL, err, -EINVAL);
  sbl_contest *c = contest_new();
  if (!c) return fail(NULL, err, -ENOMEM);
  uint64_t deadline = mono_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
  for (;;) {
    r = try_open(c, name, &a, alen, capacity, create, timeout_ms < 0 ? ACCEPT_TIMEOUT_MS : timeout_ms);
    if (r == 1) break;
    if (r < 0) return fail(c, err, r);
    if (mono_ns() > deadline) return fail(c, err, -ETIMEDOUT);
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  if ((r = join_members(c))) return fail(c, err, r);
  if ((r = plat_bell_open(&c->stop))) return fail(c, err, r);
  if ((r = pthread_create(&c->acceptor, NULL, accept_main, c))) return fail(c, err, -r);
  c->acceptor_started = 1;
  plat_thread_name(c->acceptor, "sbl-accept");
  if (err) *err = 0;
  return c;
}

void sbl_close(sbl_contest *c) {
  if (!c) return;
  sbl_waiter_stop(c);
  if (c->acceptor_started) {
    plat_bell_ring(c->stop.wr);
    pthread_join(c->acceptor, NULL);
  }
  if (c->base != MAP_FAILED && c->me != UINT32_MAX) {
    member_rec *r = member_at(c, c->me);
    uint64_t counts[C_COUNT];
    for (int i = 0; i < C_COUNT; i++) counts[i] = atomic_load_explicit(&r->counters[i], memory_order_relaxed);
    uint64_t w = c->my_word;
    /* release: our last claims' writes precede the record going free; a reaper may have beaten us (then
     * it folded the counters) */
    if (atomic_compare_exchange_strong_explicit(&r->word, &w, member_word(0, c->my_gen + 1, SBL_MEMBER_FREE),
                                                memory_order_release, memory_order_relaxed)) {
      for (int i = 0; i < C_COUNT; i++) atomic_fetch_add_explicit(&hdr(c)->totals[i], counts[i], memory_order_relaxed);
      /* our claims are stale now: wake anyone waiting on a subject we held */
      for (uint32_t i = 0; i < c->capacity; i++) {
        entry_t *e = entry_at(c, i);
        uint64_t cw = atomic_load_explicit(&e->word, memory_order_relaxed);
        if (w_state(cw) != SBL_FREE && w_member(cw) == c->me && w_gen(cw) == (c->my_gen & 0xFFFF)) {
          atomic_fetch_add_explicit(&e->wake_seq, 1, memory_order_seq_cst);
          plat_wake(&e->wake_seq, 1);
        }
      }
    }
  }
  if (c->base != MAP_FAILED) plat_region_unmapped(c->base), munmap(c->base, c->size);
  int fds[2] = {c->memfd, c->listen_fd};
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0) close(fds[i]);
  plat_bell_close(&c->stop);
  for (uint32_t m = 0; m < SBL_MAX_MEMBERS; m++)
    if (c->cache[m].pidfd >= 0) close(c->cache[m].pidfd);
  pthread_mutex_destroy(&c->cache_lock);
  pthread_mutex_destroy(&c->ws.lock);
  free(c->ws.slot), free(c->ws.armed), free(c->ws.ready), free(c->ws.is_ready);
  free(c);
}

uint8_t *sbl_table(sbl_contest *c) { return c->base; }
double sbl_table_size(sbl_contest *c) { return (double)c->size; }
int32_t sbl_member_index(sbl_contest *c) { return (int32_t)c->me; }
double sbl_epoch(sbl_contest *c) { return (double)c->epoch; }
const char *sbl_error(sbl_contest *c) { return c->error; }
