/* libslotbus topics: the reference implementation of docs/PROTOCOL.md §8. */
#include "sys.h"
#include "shm.h"
#include "topic.h"

#define LAYOUT_DESC \
  "slotbus-topic/2 hdr=4096 sub=256x64 pub=64x32 fence=24 fenced=216 rule=128x8 bind=256x1024 data=286720 rec=32 hdr=pos40:alen20:state4 align=16 seg=16 head=4400"
#define SEGMENTS 16u
#define BIND_PROBES 16u
#define MAX_VALUE 64u /* longest bound value (A, B or C) */

typedef struct {
  uint32_t magic, version, layout_hash, capacity;
  uint64_t topic_id, region_size;
} identity;

struct sb_topic {
  char name[65];
  int listen_fd, conn_fd, memfd, send_fd;
  uint8_t *base;
  _Atomic(uint8_t *) alias; /* a writable mapping for a read-only subscriber's aborts, made on first need */
  uint64_t size;
  uint32_t cap, seg;
  atomic_int writable; /* the ring mapped read-write (a subscription's thread reads it: §8.3 Threads) */
  int created; /* this handle created the topic (its pid is the header's creator pid) */
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
  sb_topic_out out;
  char err[160];
};

struct sb_sub {
  sb_topic *t;
  uint32_t index, nonce, queue, filter_len;
  int wake_fd;
  uint8_t filter[SB_TOPIC_FILTER_BYTES];
  uint8_t *batch;
  uint32_t batch_cap;
  uint64_t seen_tail;
  uint64_t received, corrupt;
  uint64_t stuck_pos, stuck_since; /* the unfinished record we wait at, since when (ns) */
  uint8_t head[SB_TOPIC_HEAD_BYTES]; /* a record's head, to filter and count what the batch does not keep */
};

/* How long a subscriber waits at an unfinished record before aborting it: 1 ms, plus 1 ns per byte so that a
 * large event being copied in is not aborted again and again. */
static uint64_t patience_ns(uint64_t alen) { return 1000000u + alen; }

/* ---- small helpers ---- */

uint32_t sb_topic_layout_hash(void) { return sys_fnv1a(FNV1A_SEED, (const uint8_t *)LAYOUT_DESC, strlen(LAYOUT_DESC)); }

static uint64_t align16(uint64_t n) { return (n + 15) & ~(uint64_t)15; }
static identity *ident(sb_topic *t) { return (identity *)t->base; }
static a64 *tail_word(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_TAIL); }
static a32 *sleepers(sb_topic *t) { return shm_u32(t->base, SB_TOPIC_OFF_SLEEPERS); }
static a32 *rules_version(sb_topic *t) { return shm_u32(t->base, SB_TOPIC_OFF_RULES_VERSION); }
static a32 *keeper_pid(sb_topic *t) { return shm_u32(t->base, SB_TOPIC_OFF_KEEPER_PID); }
static a64 *keeper_start(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_KEEPER_START); }
static a64 *abandoned(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_ABANDONED); }
static a64 *fenced(sb_topic *t) { return shm_u64(t->base, SB_TOPIC_OFF_FENCED); }
static a64 *seg_start(sb_topic *t, uint64_t boundary) {
  return shm_u64(t->base, SB_TOPIC_OFF_SEGMENTS) + ((boundary / t->seg) % SEGMENTS);
}
static uint8_t *sub_entry(sb_topic *t, uint32_t i) { return t->base + SB_TOPIC_OFF_SUBS + (size_t)SB_TOPIC_SUB_BYTES * i; }
static uint8_t *pub_entry(sb_topic *t, uint32_t i) { return t->base + SB_TOPIC_OFF_PUBS + (size_t)SB_TOPIC_PUB_BYTES * i; }
static uint8_t *rule_at(sb_topic *t, uint32_t i) { return t->base + SB_TOPIC_OFF_RULES + (size_t)SB_TOPIC_RULE_BYTES * i; }
static uint8_t *binding_at(sb_topic *t, uint32_t i) { return t->base + SB_TOPIC_OFF_BINDINGS + (size_t)SB_TOPIC_BINDING_BYTES * i; }
static a64 *fence_word(sb_topic *t, uint32_t i) { return shm_u64(pub_entry(t, i), SB_PUBLISHER_FENCE); }
static a64 *rec_words(sb_topic *t, uint64_t pos) { return shm_u64(t->base, SB_TOPIC_OFF_DATA + (pos & (t->cap - 1))); }
/* The same words, writable: a publisher's own mapping, or for a subscriber (whose mapping of the ring is
 * read-only) a second mapping used only to abort a record it waited at too long. NULL if unavailable. */
static a64 *rec_words_rw(sb_topic *t, uint64_t pos) {
  /* acquire: pairs with register_publisher's release (the mprotect before it) */
  if (atomic_load_explicit(&t->writable, memory_order_acquire)) return rec_words(t, pos);
  uint8_t *a = atomic_load_explicit(&t->alias, memory_order_acquire);
  if (!a) {
    void *p = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *none = NULL;
    /* acq_rel: two subscriptions of one handle on two threads may race here; the loser unmaps its copy */
    if (atomic_compare_exchange_strong_explicit(&t->alias, &none, (uint8_t *)p, memory_order_acq_rel, memory_order_acquire)) {
      a = p;
    } else {
      munmap(p, t->size);
      a = none;
    }
  }
  return shm_u64(a, SB_TOPIC_OFF_DATA + (pos & (t->cap - 1)));
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Liveness of a registry entry: pid alive with the same start time (§8.1). deep: also read /proc. */
static int alive(uint32_t pid, uint64_t start, int deep) {
  if (pid == 0) return 0;
  if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) return 0;
  if (!deep) return 1;
  int zombie = 0;
  uint64_t s = sys_proc_start(pid, &zombie);
  return s != 0 && s == start && !zombie;
}

/* ---- events and filters (validated private copies only) ---- */

typedef struct {
  const uint8_t *type;
  uint32_t type_len, key_count, data_len;
  const uint8_t *keys; /* key_count × (klen, vlen, key, value) */
  uint32_t keys_len;
} ev_view;

/* rec points at a record (32-byte header); len is its len field. Reads no further than its head (at most
 * 32 + 255 + 8 × 512 = 4383 bytes < SB_TOPIC_HEAD_BYTES), so a head-only copy parses too. */
static int ev_parse(const uint8_t *rec, uint32_t len, ev_view *v) {
  if (len < SB_TOPIC_REC_HEADER) return -1;
  uint16_t type_len;
  memcpy(&type_len, rec + 20, 2);
  v->key_count = rec[22];
  memcpy(&v->data_len, rec + 24, 4);
  v->type_len = type_len;
  if (type_len < 1 || type_len > 255 || v->key_count > SB_TOPIC_MAX_KEYS || rec[23] > SB_ENC_JSON) return -1;
  uint64_t off = SB_TOPIC_REC_HEADER + (uint64_t)type_len;
  if (off > len) return -1;
  v->type = rec + SB_TOPIC_REC_HEADER;
  v->keys = rec + off;
  for (uint32_t k = 0; k < v->key_count; k++) {
    if (off + 2 > len) return -1;
    uint32_t kl = rec[off], vl = rec[off + 1];
    if (kl == 0 || vl == 0) return -1;
    off += 2u + kl + vl;
  }
  if (off > len) return -1;
  v->keys_len = (uint32_t)(off - SB_TOPIC_REC_HEADER - type_len);
  return off + v->data_len == len ? 0 : -1;
}

/* The value of key (kl bytes) in the event, or NULL. */
static const uint8_t *ev_key(const ev_view *v, const uint8_t *key, uint32_t kl, uint32_t *vl) {
  const uint8_t *p = v->keys;
  for (uint32_t k = 0; k < v->key_count; k++) {
    uint32_t l = p[0], m = p[1];
    if (l == kl && memcmp(p + 2, key, kl) == 0) {
      *vl = m;
      return p + 2 + l;
    }
    p += 2 + l + m;
  }
  return NULL;
}

/* Filters are validated once (when a subscriber is opened, or copied from another's entry). */
static int filter_valid(const uint8_t *f, uint32_t n) {
  if (n < 3 || n > SB_TOPIC_FILTER_BYTES || f[0] > SB_FILTER_PREFIX) return 0;
  uint32_t off = 2u + f[1];
  if ((f[0] == SB_FILTER_ANY) != (f[1] == 0) || off + 1 > n) return 0;
  uint32_t keys = f[off++];
  if (keys > SB_TOPIC_MAX_FILTER_KEYS) return 0;
  for (uint32_t k = 0; k < keys; k++) {
    if (off + 2 > n || f[off] == 0 || f[off + 1] == 0) return 0;
    off += 2u + f[off] + f[off + 1];
  }
  return off == n;
}

static int filter_match(const uint8_t *f, const ev_view *v) {
  uint32_t tl = f[1];
  if (f[0] == SB_FILTER_EXACT && (v->type_len != tl || memcmp(v->type, f + 2, tl) != 0)) return 0;
  if (f[0] == SB_FILTER_PREFIX && (v->type_len < tl || memcmp(v->type, f + 2, tl) != 0)) return 0;
  const uint8_t *p = f + 2 + tl;
  uint32_t keys = *p++;
  for (uint32_t k = 0; k < keys; k++) {
    uint32_t kl = p[0], vl = p[1], el = 0;
    const uint8_t *val = ev_key(v, p + 2, kl, &el);
    if (!val || el != vl || memcmp(val, p + 2 + kl, vl) != 0) return 0;
    p += 2 + kl + vl;
  }
  return 1;
}

/* Another subscriber's filter, copied out of its entry and validated; 0 if unusable. */
static uint32_t load_filter(uint8_t *entry, uint8_t *out) {
  uint32_t n = atomic_load_explicit(shm_u32(entry, SB_SUB_FILTER_LEN), memory_order_relaxed);
  if (n > SB_TOPIC_FILTER_BYTES) return 0;
  shm_load_words(out, entry + SB_SUB_FILTER, SB_TOPIC_FILTER_BYTES);
  return filter_valid(out, n) ? n : 0;
}

/* ---- reading records (§8.3) ---- */

/* The record header word (§8.3): the record's position (40 bits of pos/16: a wrap every 16 TiB, never
 * ambiguous in a ring of at most 1 GiB), its length rounded to 16 (20 bits of alen/16) and its state (4 bits).
 * Claiming, committing and aborting a record are all compare-and-swaps of this one word. */
#define POS_MASK ((1ull << 40) - 1)
#define MAX_ALEN (((1ull << 20) - 1) << 4)
static uint64_t hdr(uint64_t pos, uint64_t alen, uint32_t state) {
  return ((pos >> 4) & POS_MASK) << 24 | (alen >> 4) << 4 | state;
}
/* Never true of zeroes (a fresh ring): a header has a state and a length. */
static int hdr_is(uint64_t h, uint64_t pos) { return (h >> 24) == ((pos >> 4) & POS_MASK) && (h & 0xFFFFFF) >= 16; }
static uint64_t hdr_alen(uint64_t h) { return ((h >> 4) & 0xFFFFF) << 4; }
static uint32_t hdr_state(uint64_t h) { return (uint32_t)(h & 15); }

enum { R_EVENT, R_SKIP, R_CLAIMED, R_LAPPED, R_CORRUPT, R_TOO_BIG };

typedef struct {
  uint64_t alen; /* bytes the record occupies (R_CORRUPT: 0 unless its header's extent is usable) */
  uint32_t len;  /* its len field (R_EVENT) */
} rec_info;

/* The longest record a publisher may write (§8.3 MAX_EVENT): anything longer is corrupt, never waited for. */
static uint64_t max_event(sb_topic *t) { return t->cap / 4 < MAX_ALEN ? t->cap / 4 : MAX_ALEN; }

/* Whether the ring has come round to p: then what was read at p may be a later lap's (R1, R3). A claim at
 * p + cap replaces p's header while the tail is p + cap; bytes after the header change only once a claim
 * has moved the tail past p + cap. (acquire fence: if our reads saw such a write, that tail is visible.) */
static uint64_t tail_past(sb_topic *t, uint64_t p) {
  atomic_thread_fence(memory_order_acquire);
  return atomic_load_explicit(tail_word(t), memory_order_relaxed) - p;
}
static int lapped(sb_topic *t, uint64_t p) { return tail_past(t, p) >= t->cap; }

/* Reads the record at p (p < tail, §8.3 R1–R3). R_EVENT: dst holds a consistent, validated private copy
 * (head_only: its first min(len, SB_TOPIC_HEAD_BYTES) bytes) whose first 8 bytes are the full position p.
 * R_SKIP: padding or aborted, alen bytes. R_CLAIMED: still being written. R_TOO_BIG: a valid length that
 * does not fit room (the batch is full). */
static int read_record(sb_topic *t, uint64_t p, uint8_t *dst, uint32_t room, int head_only, rec_info *ri) {
  a64 *w = rec_words(t, p);
  ri->alen = 0;
  /* acquire: pairs with the commit CAS, so everything written before it is visible */
  uint64_t h = atomic_load_explicit(&w[0], memory_order_acquire);
  /* the tail only passes p once the header at p is claimed: not for p is a later lap or a scribble */
  if (!hdr_is(h, p)) return lapped(t, p) ? R_LAPPED : R_CORRUPT;
  uint64_t alen = hdr_alen(h), off = p & (t->cap - 1);
  uint32_t state = hdr_state(h);
  if (alen < 16 || off + alen > t->cap || state < SB_REC_WRITING || state > SB_REC_ABORTED)
    return lapped(t, p) ? R_LAPPED : R_CORRUPT;
  ri->alen = alen;
  if (state == SB_REC_PADDING || state == SB_REC_ABORTED) return R_SKIP;
  if (state == SB_REC_WRITING) return R_CLAIMED;
  uint32_t len = (uint32_t)atomic_load_explicit(&w[1], memory_order_relaxed);
  ri->len = len;
  if (len < SB_TOPIC_REC_HEADER || align16(len) != alen || len > max_event(t)) return lapped(t, p) ? R_LAPPED : R_CORRUPT;
  if (!head_only && len > room) return R_TOO_BIG;
  shm_load_words(dst, w, head_only && len > SB_TOPIC_HEAD_BYTES ? SB_TOPIC_HEAD_BYTES : len);
  /* the header again, then the tail (in lapped, after its fence): changed without a lap means somebody
   * scribbled on a committed event, which never changes (§8.3) */
  uint64_t again = atomic_load_explicit(&w[0], memory_order_relaxed), past = tail_past(t, p);
  if (past > t->cap || (again != h && past == t->cap)) return R_LAPPED;
  if (again != h) return R_CORRUPT;
  memcpy(dst, &p, 8);
  ev_view v;
  return ev_parse(dst, len, &v) ? R_CORRUPT : R_EVENT;
}

/* Aborts a record still being written (its publisher publishes it again, further on). 1 if we won. */
static int abort_record(sb_topic *t, uint64_t p, uint64_t alen) {
  a64 *w = rec_words_rw(t, p);
  uint64_t writing = hdr(p, alen, SB_REC_WRITING);
  /* acq_rel: exactly one of this abort and the publisher's commit wins the header word */
  if (!w || !atomic_compare_exchange_strong_explicit(&w[0], &writing, hdr(p, alen, SB_REC_ABORTED), memory_order_acq_rel,
                                                     memory_order_acquire))
    return 0;
  /* relaxed: a statistic */
  atomic_fetch_add_explicit(abandoned(t), 1, memory_order_relaxed);
  return 1;
}

/* First record start of a segment boundary, if its index entry is valid (§8.4); else 0 with *ok = 0. */
static uint64_t segment_first(sb_topic *t, uint64_t b, int *ok) {
  /* acquire: pairs with the publisher's release; the record itself is checked through its header */
  uint64_t v = atomic_load_explicit(seg_start(t, b), memory_order_acquire);
  *ok = v >= b && v < b + t->seg && hdr_is(atomic_load_explicit(rec_words(t, v), memory_order_acquire), v);
  return v;
}

/* The oldest record start still safely in the ring (one segment of margin from the overwrite frontier). */
static uint64_t oldest(sb_topic *t, uint64_t tail) {
  if (tail + t->seg <= t->cap) return 0;
  uint64_t b = (tail - t->cap + t->seg + t->seg - 1) / t->seg * t->seg;
  for (; b < tail; b += t->seg) {
    int ok;
    uint64_t v = segment_first(t, b, &ok);
    if (ok && v <= tail) return v;
  }
  return tail;
}

/* Where a reader goes past a record it cannot read: the next valid segment start after p, or tail. */
static uint64_t resync(sb_topic *t, uint64_t p, uint64_t tail) {
  for (uint64_t b = (p / t->seg + 1) * t->seg; b < tail; b += t->seg) {
    int ok;
    uint64_t v = segment_first(t, b, &ok);
    if (ok && v > p && v <= tail) return v;
  }
  return tail;
}

/* ---- registries ---- */

static int claim_entry(uint8_t *base, uint32_t stride, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    uint32_t expect = SB_ENTRY_FREE;
    /* acquire: the entry's old fields are ours to overwrite only after we own it */
    if (atomic_compare_exchange_strong_explicit(shm_u32(base + (size_t)stride * i, 0), &expect, SB_ENTRY_CLAIMING,
                                                memory_order_acquire, memory_order_relaxed))
      return (int)i;
  }
  return -1;
}

static void release_parked(sb_topic *t, uint8_t *e) {
  uint32_t one = 1;
  /* seq_cst: one side (publisher, owner or reaper) takes the parked flag, and only it decrements sleepers */
  if (atomic_compare_exchange_strong(shm_u32(e, SB_SUB_PARKED), &one, 0)) atomic_fetch_sub(sleepers(t), 1);
}

/* ---- open / close ---- */

static int topic_addr(const char *name, struct sockaddr_un *a, socklen_t *len, const char *suffix) {
  return sys_abstract_addr("slotbus.topic.", name, suffix, a, len);
}

/* Whether fd is a listening unix stream socket: what a member's hello must carry besides the memfd. */
static int listening_socket(int fd) {
  int v[3] = {0, 0, 0};
  socklen_t l = sizeof(int);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v[0], &l) < 0) return 0;
  l = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v[1], &l) < 0) return 0;
  l = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v[2], &l) < 0) return 0;
  return v[0] == AF_UNIX && v[1] == SOCK_STREAM && v[2] == 1;
}

static int wake_addr(sb_topic *t, uint32_t index, uint32_t nonce, struct sockaddr_un *a, socklen_t *len) {
  char suffix[64];
  snprintf(suffix, sizeof suffix, ".%016llx.%u.%u", (unsigned long long)ident(t)->topic_id, index, nonce);
  return topic_addr(t->name, a, len, suffix);
}

static sb_topic *topic_new(const char *name) {
  sb_topic *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  snprintf(t->name, sizeof t->name, "%s", name);
  t->listen_fd = t->conn_fd = t->memfd = t->send_fd = -1;
  t->pid = (uint32_t)getpid();
  t->start = sys_proc_start(t->pid, NULL);
  t->pub_index = -1;
  return t;
}

static int map_topic(sb_topic *t) {
  /* The ring is mapped read-only until this handle first publishes (§8: subscribers cannot corrupt it). */
  void *p = mmap(NULL, t->size, PROT_READ, MAP_SHARED, t->memfd, 0);
  if (p == MAP_FAILED) return -errno;
  t->base = p;
  if (mprotect(p, SB_TOPIC_OFF_DATA, PROT_READ | PROT_WRITE) < 0) return -errno;
  t->cap = ident(t)->capacity;
  t->seg = t->cap / SEGMENTS;
  t->scratch = malloc(t->cap / 4 + 1024);
  t->send_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return t->scratch && t->send_fd >= 0 ? 0 : -ENOMEM;
}

static int become_keeper(sb_topic *t) {
  t->created = 1;
  /* release: newcomers reading the creator see its start time with it */
  atomic_store_explicit(keeper_start(t), t->start, memory_order_relaxed);
  atomic_store_explicit(keeper_pid(t), t->pid, memory_order_release);
  return 0;
}

static int create_topic(sb_topic *t, uint32_t capacity) {
  if (capacity < SB_TOPIC_MIN_CAPACITY || capacity > SB_TOPIC_MAX_CAPACITY || (capacity & (capacity - 1)))
    return -EINVAL;
  /* syscall, not memfd_create(): the libc wrapper would need glibc 2.27 symbols */
  t->memfd = (int)syscall(SYS_memfd_create, "slotbus-topic", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (t->memfd < 0) return -errno;
  t->size = (uint64_t)SB_TOPIC_OFF_DATA + capacity;
  if (ftruncate(t->memfd, (off_t)t->size) < 0 ||
      fcntl(t->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
    return -errno;
  void *p = mmap(NULL, SB_TOPIC_OFF_DATA, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
  if (p == MAP_FAILED) return -errno;
  identity *id = p;
  uint64_t topic_id = 0;
  if (syscall(SYS_getrandom, &topic_id, sizeof topic_id, 0) != sizeof topic_id) topic_id = now_ns() ^ t->pid;
  *id = (identity){SB_TOPIC_MAGIC, SB_TOPIC_VERSION, sb_topic_layout_hash(), capacity, topic_id, t->size};
  munmap(p, SB_TOPIC_OFF_DATA); /* nobody else has the fd yet: plain writes are published by sendmsg */
  int r = map_topic(t);
  return r ? r : become_keeper(t);
}

static int check_header(sb_topic *t, uint64_t size) {
  identity id;
  shm_load_words(&id, t->base, sizeof id);
  if (id.magic != SB_TOPIC_MAGIC || id.version != SB_TOPIC_VERSION || id.layout_hash != sb_topic_layout_hash() ||
      id.capacity < SB_TOPIC_MIN_CAPACITY || id.capacity > SB_TOPIC_MAX_CAPACITY || (id.capacity & (id.capacity - 1)) ||
      id.region_size != size || size != (uint64_t)SB_TOPIC_OFF_DATA + id.capacity)
    return -SB_TOPIC_ECORRUPT;
  return 0;
}

sb_topic *sb_topic_open_start(const char *name, uint32_t capacity, int *err) {
  struct sockaddr_un a;
  socklen_t alen;
  int r = topic_addr(name, &a, &alen, NULL);
  if (r) {
    *err = r;
    return NULL;
  }
  sb_topic *t = topic_new(name);
  if (!t) {
    *err = -ENOMEM;
    return NULL;
  }
  for (int attempt = 0; attempt < 100; attempt++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (connect(fd, (struct sockaddr *)&a, alen) == 0) {
      struct ucred cred;
      socklen_t cl = sizeof cred;
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != getuid()) {
        close(fd);
        sb_topic_close(t);
        *err = -EPERM;
        return NULL;
      }
      t->conn_fd = fd;
      *err = -EAGAIN;
      return t;
    }
    int e = errno;
    close(fd);
    if (e == EAGAIN) continue; /* the keeper's backlog is full: try again */
    if (e != ECONNREFUSED) {
      sb_topic_close(t);
      *err = -e;
      return NULL;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (bind(fd, (struct sockaddr *)&a, alen) == 0 && listen(fd, 64) == 0) {
      t->listen_fd = fd;
      r = create_topic(t, capacity);
      if (r) {
        sb_topic_close(t);
        *err = r;
        return NULL;
      }
      *err = 0;
      return t;
    }
    e = errno;
    close(fd);
    if (e != EADDRINUSE) {
      sb_topic_close(t);
      *err = -e;
      return NULL;
    }
  }
  sb_topic_close(t);
  *err = -EAGAIN;
  return NULL;
}

int sb_topic_open_finish(sb_topic *t) {
  if (t->conn_fd < 0) return t->base ? 0 : -EINVAL;
  sys_hello h;
  int fds[2] = {-1, -1}, nfds = 0, excess;
  ssize_t n = sys_recv_fds(t->conn_fd, &h, sizeof h, MSG_DONTWAIT, fds, 2, &nfds, &excess);
  if (n < 0) return errno == EAGAIN ? -EAGAIN : -errno;
  close(t->conn_fd);
  t->conn_fd = -1;
  int fd = fds[0];
  if (n == 0 || h.status != 0) {
    for (int i = 0; i < nfds; i++) close(fds[i]);
    return n == 0 ? -ECONNRESET : -(int)h.status;
  }
  /* the memfd and the shared listening socket (§8.1): from now on we hold the name too */
  if (nfds == 2) t->listen_fd = fds[1];
  if (n != (ssize_t)sizeof h || excess || nfds != 2 || !listening_socket(t->listen_fd) || h.magic != SB_TOPIC_MAGIC ||
      h.version != SB_TOPIC_VERSION || h.layout_hash != sb_topic_layout_hash())
    goto corrupt;
  t->memfd = fd;
  struct stat st;
  int seals = fcntl(fd, F_GET_SEALS);
  /* sealed against shrinking: a peer can never make our reads fault (SIGBUS) */
  if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != h.size || seals < 0 ||
      (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) || h.size <= SB_TOPIC_OFF_DATA ||
      h.size > (uint64_t)SB_TOPIC_OFF_DATA + SB_TOPIC_MAX_CAPACITY)
    goto corrupt;
  t->size = h.size;
  int r = map_topic(t);
  if (r) return r;
  if (check_header(t, t->size)) goto corrupt;
  return 0;
corrupt:
  if (fd >= 0 && t->memfd != fd) close(fd);
  snprintf(t->err, sizeof t->err, "the keeper's hello or region is malformed");
  return -SB_TOPIC_ECORRUPT;
}

sb_topic *sb_topic_open(const char *name, uint32_t capacity, int timeout_ms, int *err) {
  uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    sb_topic *t = sb_topic_open_start(name, capacity, err);
    if (!t || *err == 0) return t;
    int r;
    while ((r = sb_topic_open_finish(t)) == -EAGAIN) {
      int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
      if (left <= 0) break;
      struct pollfd p = {t->conn_fd, POLLIN, 0};
      poll(&p, 1, left > 50 ? 50 : (int)left);
    }
    if (r == 0) {
      *err = 0;
      return t;
    }
    sb_topic_close(t);
    *err = r == -EAGAIN ? -ETIMEDOUT : r;
    if (r != -ECONNRESET || now_ns() >= deadline) return NULL;
  }
}

static void serve_newcomers(sb_topic *t) {
  for (int i = 0; i < 64; i++) {
    int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return;
    struct ucred cred;
    socklen_t cl = sizeof cred;
    int ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.uid == getuid();
    sys_hello h =
        sys_hello_make(SB_TOPIC_MAGIC, SB_TOPIC_VERSION, sb_topic_layout_hash(), ok ? 0 : EPERM, t->size, t->pid);
    int both[2] = {t->memfd, t->listen_fd};
    (void)sys_send_fds(fd, &h, sizeof h, both, ok ? 2 : 0, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
  }
}

static void reap(sb_topic *t, int deep) {
  for (uint32_t i = 0; i < SB_TOPIC_MAX_SUBS + SB_TOPIC_MAX_PUBS; i++) {
    int is_sub = i < SB_TOPIC_MAX_SUBS;
    uint8_t *e = is_sub ? sub_entry(t, i) : pub_entry(t, i - SB_TOPIC_MAX_SUBS);
    /* acquire: pid and start time were written before the entry went live */
    if (atomic_load_explicit(shm_u32(e, 0), memory_order_acquire) != SB_ENTRY_LIVE) continue;
    uint32_t pid = atomic_load_explicit(shm_u32(e, 4), memory_order_relaxed);
    uint64_t start = atomic_load_explicit(shm_u64(e, 8), memory_order_relaxed);
    if (pid == t->pid || alive(pid, start, deep)) continue;
    uint32_t live = SB_ENTRY_LIVE;
    /* acquire: we own the entry's cleanup; exactly one member wins it */
    if (!atomic_compare_exchange_strong_explicit(shm_u32(e, 0), &live, SB_ENTRY_CLAIMING, memory_order_acquire,
                                                 memory_order_relaxed))
      continue;
    if (is_sub) release_parked(t, e);
    /* release: a new owner claiming it sees the cleanup done */
    atomic_store_explicit(shm_u32(e, 0), SB_ENTRY_FREE, memory_order_release);
  }
}

static int tick(sb_topic *t, int deep) {
  if (!t->base) return -EINVAL;
  if (check_header(t, t->size)) {
    snprintf(t->err, sizeof t->err, "the topic header was overwritten");
    return -SB_TOPIC_ECORRUPT;
  }
  if (t->listen_fd >= 0) serve_newcomers(t); /* every member holds the listening socket: any one answers */
  reap(t, deep);
  return 0;
}

/* /proc reads (pid reuse, zombies) a few times a second */
int sb_topic_tick(sb_topic *t) { return tick(t, (t->ticks++ % 16) == 0); }
int sb_topic_tick_deep(sb_topic *t) { return tick(t, 1); }

void sb_topic_leave(sb_topic *t) {
  if (!t) return;
  if (t->base && t->pub_index >= 0) {
    atomic_store_explicit(fence_word(t, (uint32_t)t->pub_index), 0, memory_order_relaxed);
    /* release: the fence cleared, then the publisher entry freed */
    atomic_store_explicit(shm_u32(pub_entry(t, (uint32_t)t->pub_index), 0), SB_ENTRY_FREE, memory_order_release);
    t->pub_index = -1;
  }
  if (t->base && t->created) {
    uint32_t me = t->pid;
    /* relaxed: informational (stats' creator pid) */
    atomic_compare_exchange_strong_explicit(keeper_pid(t), &me, 0, memory_order_relaxed, memory_order_relaxed);
    t->created = 0;
  }
  /* our hold on the name: a handle that stopped ticking must not keep newcomers waiting on it */
  if (t->listen_fd >= 0) close(t->listen_fd);
  t->listen_fd = -1;
}

void sb_topic_close(sb_topic *t) {
  if (!t) return;
  sb_topic_leave(t);
  if (t->conn_fd >= 0) close(t->conn_fd);
  if (t->send_fd >= 0) close(t->send_fd);
  if (t->memfd >= 0) close(t->memfd);
  if (t->base) munmap(t->base, t->size);
  if (t->alias) munmap(t->alias, t->size);
  free(t->scratch);
  free(t);
}

uint8_t *sb_topic_region(sb_topic *t) { return t->base; }
uint32_t sb_topic_capacity(sb_topic *t) { return t->cap; }
int sb_topic_is_keeper(sb_topic *t) { return t->created; }
int sb_topic_fd(sb_topic *t) { return t->conn_fd >= 0 ? t->conn_fd : t->listen_fd; }
sb_topic_out *sb_topic_out_ptr(sb_topic *t) { return &t->out; }
const char *sb_topic_error(sb_topic *t) { return t->err; }

/* ---- late binding (§8.6) ---- */

/* A rule slot: u32 state, u32 0, then four (u8 len + 29 bytes) fields: type, A, B, C. */
#define RULE_FIELDS 8
#define RULE_FIELD 30

typedef struct {
  const uint8_t *s[4]; /* type, A, B, C */
  uint32_t n[4];
} rule_view;

static int rule_parse(const uint8_t *r, uint32_t len, rule_view *v) {
  uint32_t off = 0;
  for (int i = 0; i < 4; i++) {
    if (off >= len) return -1;
    v->n[i] = r[off];
    if (v->n[i] < 1 || v->n[i] > RULE_FIELD - 1 || off + 1 + v->n[i] > len) return -1;
    v->s[i] = r + off + 1;
    off += 1 + v->n[i];
  }
  return off == len ? 0 : -1;
}

static void refresh_rules(sb_topic *t) {
  /* acquire: pairs with sb_topic_add_rule's release; the rules written before it are visible */
  uint32_t v = atomic_load_explicit(rules_version(t), memory_order_acquire);
  if (v == t->rules_version) return;
  t->rules_version = v;
  t->rule_count = 0;
  for (uint32_t i = 0; i < SB_TOPIC_MAX_RULES; i++) {
    uint8_t *r = rule_at(t, i);
    uint8_t buf[SB_TOPIC_RULE_BYTES];
    if (atomic_load_explicit(shm_u32(r, 0), memory_order_acquire) != SB_ENTRY_LIVE) continue;
    shm_load_words(buf, r, SB_TOPIC_RULE_BYTES);
    int ok = 1;
    for (int k = 0; k < 4; k++) ok &= buf[RULE_FIELDS + RULE_FIELD * k] >= 1 && buf[RULE_FIELDS + RULE_FIELD * k] < RULE_FIELD;
    if (ok) memcpy(t->rules[t->rule_count++], buf, SB_TOPIC_RULE_BYTES);
  }
}

int sb_topic_add_rule(sb_topic *t, const uint8_t *rule, uint32_t len) {
  rule_view v;
  if (rule_parse(rule, len, &v)) return -EINVAL;
  uint8_t buf[SB_TOPIC_RULE_BYTES] = {0};
  for (int k = 0; k < 4; k++) {
    buf[RULE_FIELDS + RULE_FIELD * k] = (uint8_t)v.n[k];
    memcpy(buf + RULE_FIELDS + RULE_FIELD * k + 1, v.s[k], v.n[k]);
  }
  for (uint32_t i = 0; i < SB_TOPIC_MAX_RULES; i++) {
    uint8_t *r = rule_at(t, i);
    uint8_t cur[SB_TOPIC_RULE_BYTES];
    if (atomic_load_explicit(shm_u32(r, 0), memory_order_acquire) != SB_ENTRY_LIVE) continue;
    shm_load_words(cur, r, SB_TOPIC_RULE_BYTES);
    if (memcmp(cur + RULE_FIELDS, buf + RULE_FIELDS, SB_TOPIC_RULE_BYTES - RULE_FIELDS) == 0) return (int)i;
  }
  int i = claim_entry(t->base + SB_TOPIC_OFF_RULES, SB_TOPIC_RULE_BYTES, SB_TOPIC_MAX_RULES);
  if (i < 0) return -ENOSPC;
  uint8_t *r = rule_at(t, (uint32_t)i);
  shm_store_words(r + RULE_FIELDS, buf + RULE_FIELDS, SB_TOPIC_RULE_BYTES - RULE_FIELDS);
  /* release: the fields before the state; then the version tells publishers to re-read */
  atomic_store_explicit(shm_u32(r, 0), SB_ENTRY_LIVE, memory_order_release);
  atomic_fetch_add_explicit(rules_version(t), 1, memory_order_release);
  return i;
}

/* Binding entry: u32 seq, u32 rule + 1, then three (u8 len + 63 bytes) values A, B, C at 8, 72, 136. */
static uint32_t binding_hash(uint32_t rule, const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl) {
  uint8_t r = (uint8_t)rule, sep = 0;
  uint32_t h = sys_fnv1a(FNV1A_SEED, &r, 1);
  h = sys_fnv1a(sys_fnv1a(h, a, al), &sep, 1);
  return sys_fnv1a(h, b, bl);
}

static int same_value(const uint8_t *field, const uint8_t *v, uint32_t n) { return field[0] == n && memcmp(field + 1, v, n) == 0; }

static void bind_store(sb_topic *t, uint32_t rule, const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl,
                       const uint8_t *c, uint32_t cl) {
  uint32_t h = binding_hash(rule, a, al, b, bl);
  uint8_t *target = NULL, cur[200];
  for (uint32_t i = 0; i < BIND_PROBES && !target; i++) {
    uint8_t *e = binding_at(t, (h + i) % SB_TOPIC_BINDINGS);
    shm_load_words(cur, e, 200);
    uint32_t owner;
    memcpy(&owner, cur + 4, 4);
    if (owner == 0 || (owner == rule + 1 && same_value(cur + 8, a, al) && same_value(cur + 72, b, bl))) target = e;
  }
  if (!target) target = binding_at(t, h % SB_TOPIC_BINDINGS); /* full neighbourhood: overwrite the first */
  a32 *seq = shm_u32(target, 0);
  uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
  /* acquire: take the entry (odd = being written); give up rather than wait: a binding is best effort */
  if ((s & 1) || !atomic_compare_exchange_strong_explicit(seq, &s, s + 1, memory_order_acquire, memory_order_relaxed))
    return;
  atomic_thread_fence(memory_order_release); /* readers that see our field writes also see seq odd */
  uint8_t buf[192] = {0}; /* A, B, C at 8, 72, 136 of the entry */
  buf[0] = (uint8_t)al, memcpy(buf + 1, a, al);
  buf[64] = (uint8_t)bl, memcpy(buf + 65, b, bl);
  buf[128] = (uint8_t)cl, memcpy(buf + 129, c, cl);
  atomic_store_explicit(shm_u32(target, 4), rule + 1, memory_order_relaxed);
  shm_store_words(target + 8, buf, 192);
  /* release: the fields before the even seq */
  atomic_store_explicit(seq, s + 2, memory_order_release);
}

static int bind_lookup(sb_topic *t, uint32_t rule, const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl,
                       uint8_t *c, uint32_t *cl) {
  uint32_t h = binding_hash(rule, a, al, b, bl);
  for (uint32_t i = 0; i < BIND_PROBES; i++) {
    uint8_t *e = binding_at(t, (h + i) % SB_TOPIC_BINDINGS), cur[200];
    for (int tries = 0; tries < 4; tries++) {
      /* acquire: pairs with the writer's release of an even seq */
      uint32_t s1 = atomic_load_explicit(shm_u32(e, 0), memory_order_acquire);
      shm_load_words(cur, e, 200);
      atomic_thread_fence(memory_order_acquire); /* the copy before the re-check */
      if ((s1 & 1) || atomic_load_explicit(shm_u32(e, 0), memory_order_relaxed) != s1) continue;
      uint32_t owner;
      memcpy(&owner, cur + 4, 4);
      if (owner == 0) return 0;
      if (owner == rule + 1 && same_value(cur + 8, a, al) && same_value(cur + 72, b, bl)) {
        *cl = cur[136];
        if (*cl < 1 || *cl > MAX_VALUE - 1) return 0;
        memcpy(c, cur + 137, *cl);
        return 1;
      }
      break;
    }
  }
  return 0;
}

static int value_ok(const uint8_t *v, uint32_t n) {
  if (n < 1 || n > MAX_VALUE - 1) return 0;
  for (uint32_t i = 0; i < n; i++)
    if (v[i] < 0x20 || v[i] == 0x7f) return 0;
  return 1;
}

/* Applies the rules to the record in rec (a private buffer with room for one more key); returns flags. */
static uint32_t apply_rules(sb_topic *t, uint8_t *rec, uint32_t *len) {
  uint32_t flags = 0;
  for (uint32_t r = 0; r < t->rule_count; r++) {
    ev_view v;
    if (ev_parse(rec, *len, &v)) return flags;
    const uint8_t *f = t->rules[r] + RULE_FIELDS;
    const uint8_t *type = f + 1, *ka = f + 31, *kb = f + 61, *kc = f + 91;
    uint32_t al, bl, cl, kcl = f[90];
    const uint8_t *a = ev_key(&v, ka, f[30], &al), *b = ev_key(&v, kb, f[60], &bl);
    if (!a || !b) continue;
    const uint8_t *c = ev_key(&v, kc, kcl, &cl);
    if (c && v.type_len == f[0] && memcmp(v.type, type, f[0]) == 0) {
      if (value_ok(c, cl) && al < MAX_VALUE && bl < MAX_VALUE) bind_store(t, r, a, al, b, bl, c, cl);
      else flags |= SB_PUB_BAD_BINDING;
    } else if (!c && v.key_count < SB_TOPIC_MAX_KEYS) {
      uint8_t val[MAX_VALUE];
      uint32_t vl;
      if (al >= MAX_VALUE || bl >= MAX_VALUE || !bind_lookup(t, r, a, al, b, bl, val, &vl)) continue;
      if (*len + 2 + kcl + vl > t->cap / 4) continue;
      /* insert (kc, val) after the existing keys, before the data */
      uint32_t at = SB_TOPIC_REC_HEADER + v.type_len + v.keys_len, add = 2 + kcl + vl;
      memmove(rec + at + add, rec + at, *len - at);
      rec[at] = (uint8_t)kcl, rec[at + 1] = (uint8_t)vl;
      memcpy(rec + at + 2, kc, kcl);
      memcpy(rec + at + 2 + kcl, val, vl);
      rec[22]++;
      *len += add;
      flags |= SB_PUB_FILLED;
    }
  }
  return flags;
}

/* ---- publishing (§8.3) ---- */

/* A publisher writes into the ring only through a live entry of its own, whose fence others can see (§8.2). */
static int register_publisher(sb_topic *t) {
  if (!atomic_load_explicit(&t->writable, memory_order_relaxed)) {
    if (mprotect(t->base + SB_TOPIC_OFF_DATA, t->size - SB_TOPIC_OFF_DATA, PROT_READ | PROT_WRITE) < 0) return -EPERM;
    /* release: a subscription's thread that sees 1 uses this mapping for its aborts */
    atomic_store_explicit(&t->writable, 1, memory_order_release);
  }
  if (t->pub_index < 0) {
    int i = claim_entry(t->base + SB_TOPIC_OFF_PUBS, SB_TOPIC_PUB_BYTES, SB_TOPIC_MAX_PUBS);
    if (i < 0) return -ENOSPC; /* no fence to write under: refuse rather than write unseen */
    uint8_t *e = pub_entry(t, (uint32_t)i);
    atomic_store_explicit(shm_u32(e, SB_PUBLISHER_PID), t->pid, memory_order_relaxed);
    atomic_store_explicit(shm_u64(e, SB_PUBLISHER_START), t->start, memory_order_relaxed);
    atomic_store_explicit(shm_u64(e, SB_PUBLISHER_PUBLISHED), 0, memory_order_relaxed);
    atomic_store_explicit(shm_u64(e, SB_PUBLISHER_FENCE), 0, memory_order_relaxed); /* a dead predecessor's */
    /* release: the fields before the entry goes live */
    atomic_store_explicit(shm_u32(e, SB_PUBLISHER_STATE), SB_ENTRY_LIVE, memory_order_release);
    t->pub_index = i;
  }
  return 0;
}

/* §8.3 P4: the bytes of [T, T + want) that another live publisher may still write (its fence's image, from
 * an earlier lap, or a stale claim it has not yet tried). Returns 0 if there are none, else the length of
 * the padding to claim at T instead: up to the first such image, or through it (and through any image its
 * end falls into), so that the next claim starts at an image's start or past its end, never inside. */
static uint64_t stalled_writer(sb_topic *t, uint64_t T, uint64_t want) {
  uint64_t ot = T & (t->cap - 1), lo[SB_TOPIC_MAX_PUBS], hi[SB_TOPIC_MAX_PUBS], first = UINT64_MAX;
  uint32_t n = 0;
  for (uint32_t i = 0; i < SB_TOPIC_MAX_PUBS; i++) {
    if ((int)i == t->pub_index) continue;
    uint8_t *e = pub_entry(t, i);
    if (atomic_load_explicit(shm_u32(e, SB_PUBLISHER_STATE), memory_order_acquire) != SB_ENTRY_LIVE) continue;
    /* seq_cst: our fence store, then this load; theirs was stored before their claim (§8.3, why) */
    uint64_t f = atomic_load_explicit(shm_u64(e, SB_PUBLISHER_FENCE), memory_order_seq_cst);
    uint64_t a = hdr_alen(f), og = ((f >> 24) << 4) & (t->cap - 1);
    /* A fence whose bytes reach T or past it is no claim made before we loaded T (that would lie wholly
     * below it) but one that lost, or a rival for T itself: its owner's claim can no longer succeed. */
    uint64_t behind = (((T >> 4) - (f >> 24)) & POS_MASK) << 4;
    if (hdr_state(f) != 1 || a < 16 || og + a > t->cap || behind < a) continue;
    lo[n] = og, hi[n] = og + a;
    if (og < ot + want && ot < og + a && og < first) first = og;
    n++;
  }
  if (first == UINT64_MAX) return 0;
  if (first > ot) return first - ot;
  uint64_t end = ot;
  for (uint32_t round = 0, moved = 1; moved && round <= n; round++) {
    moved = 0;
    for (uint32_t k = 0; k < n; k++)
      if (lo[k] <= end && end < hi[k]) end = hi[k], moved = 1;
  }
  return end - ot < MAX_ALEN ? end - ot : MAX_ALEN;
}

/* Walk a lagging subscriber's records from c up to line, counting its matches (§8.4). */
static uint64_t walk(sb_topic *t, uint8_t *e, const uint8_t *filter, uint64_t c, uint64_t line, uint64_t *count) {
  uint64_t p = c, tail = atomic_load_explicit(tail_word(t), memory_order_acquire);
  while (p < line) {
    rec_info ri;
    int r = read_record(t, p, t->walk_head, SB_TOPIC_HEAD_BYTES, 1, &ri);
    if (r == R_EVENT) {
      ev_view v;
      ev_parse(t->walk_head, ri.len, &v);
      *count += filter_match(filter, &v);
      p += ri.alen;
    } else if (r == R_SKIP) {
      p += ri.alen;
    } else if (r == R_CLAIMED) {
      /* half a ring back and still being written: abort it, its publisher publishes it again ahead of the
       * subscriber; if the commit won meanwhile, read it again */
      if (abort_record(t, p, ri.alen)) p += ri.alen;
    } else if (r == R_LAPPED) {
      return p; /* overwritten under us: push as far as we got */
    } else {
      /* corrupt (a hostile publisher): the records up to the line cannot be told apart, so one event is
       * counted for them (the one estimate, §8.4) */
      *count += 1;
      atomic_fetch_add_explicit(shm_u64(e, SB_SUB_ESTIMATES), 1, memory_order_relaxed);
      int ok;
      uint64_t v = segment_first(t, line, &ok);
      return ok ? v : resync(t, p, tail);
    }
  }
  return p;
}

/* Pushes one subscriber (entry e) whose cursor is below line up to it, counting what it skips (§8.4). */
static void push_sub(sb_topic *t, uint8_t *e, uint64_t line) {
  uint8_t filter[SB_TOPIC_FILTER_BYTES];
  if (!load_filter(e, filter)) return;
  for (int tries = 0; tries < 4; tries++) {
    /* acquire: pairs with the subscriber's cursor CAS, so we never count what it already received */
    uint64_t c = atomic_load_explicit(shm_u64(e, SB_SUB_CURSOR), memory_order_acquire);
    if (c >= line) break;
    uint64_t count = 0, to = walk(t, e, filter, c, line, &count);
    if (to <= c) break;
    /* acq_rel: exactly one of the subscriber and the pushers moves the cursor past these records */
    if (atomic_compare_exchange_strong_explicit(shm_u64(e, SB_SUB_CURSOR), &c, to, memory_order_acq_rel,
                                                memory_order_acquire)) {
      atomic_fetch_add_explicit(shm_u64(e, SB_SUB_LAGGED), count, memory_order_relaxed);
      break;
    }
  }
}

/* Keeps every subscriber within half a ring of the tail, so a push has 7 segments of claims to finish in
 * before the records it walks are overwritten (§8.4). */
static void push_laggards(sb_topic *t, uint64_t b) {
  if (b + t->seg <= t->cap / 2) return; /* nobody can be that far behind yet */
  uint64_t line = b + t->seg - t->cap / 2;
  for (uint32_t i = 0; i < SB_TOPIC_MAX_SUBS; i++) {
    uint8_t *e = sub_entry(t, i);
    if (atomic_load_explicit(shm_u32(e, 0), memory_order_acquire) != SB_ENTRY_LIVE) continue;
    /* acquire: pairs with the subscriber's cursor CAS */
    if (atomic_load_explicit(shm_u64(e, SB_SUB_CURSOR), memory_order_acquire) < line) push_sub(t, e, line);
  }
}

/* §8.3 P4b: before a claim [T, T + len) that covers a segment boundary, push every subscriber whose unread
 * records this claim or any claim before the next boundary would overwrite (cursor below T + len + seg -
 * capacity). The claim succeeds only if nobody claimed since, and cursors only grow, so no subscriber is
 * ever lapped unpushed, however long the pushers of the boundaries before were descheduled (they push after
 * their own claims, which may come too late). Claims between boundaries need no check: the one that
 * covered the last boundary checked for them. */
static void push_before_claim(sb_topic *t, uint64_t T, uint64_t len) {
  uint64_t first_b = (T + t->seg - 1) / t->seg * t->seg;
  if (first_b >= T + len || T + len + t->seg <= t->cap) return;
  uint64_t hard = T + len + t->seg - t->cap, soft = T + len + t->seg - t->cap / 2;
  for (uint32_t i = 0; i < SB_TOPIC_MAX_SUBS; i++) {
    uint8_t *e = sub_entry(t, i);
    if (atomic_load_explicit(shm_u32(e, 0), memory_order_acquire) != SB_ENTRY_LIVE) continue;
    if (atomic_load_explicit(shm_u64(e, SB_SUB_CURSOR), memory_order_acquire) < hard) push_sub(t, e, soft);
  }
}

static void wake_parked(sb_topic *t, const uint8_t *rec, uint32_t len, uint64_t pos) {
  ev_view v;
  if (ev_parse(rec, len, &v)) return;
  uint8_t filter[SB_TOPIC_FILTER_BYTES];
  for (uint32_t i = 0; i < SB_TOPIC_MAX_SUBS; i++) {
    uint8_t *e = sub_entry(t, i);
    if (atomic_load_explicit(shm_u32(e, 0), memory_order_acquire) != SB_ENTRY_LIVE) continue;
    if (atomic_load_explicit(shm_u32(e, SB_SUB_PARKED), memory_order_seq_cst) != 1) continue;
    /* ring it if the event is for it, or if it sleeps behind this very record (it may have later ones) */
    int stuck_here = atomic_load_explicit(shm_u64(e, SB_SUB_STUCK_AT), memory_order_seq_cst) == pos + 1;
    if (!stuck_here && !(load_filter(e, filter) && filter_match(filter, &v))) continue;
    uint32_t one = 1;
    /* seq_cst: the one winner of parked 1 -> 0 decrements sleepers and sends the single wake-up */
    if (!atomic_compare_exchange_strong(shm_u32(e, SB_SUB_PARKED), &one, 0)) continue;
    atomic_fetch_sub(sleepers(t), 1);
    struct sockaddr_un a;
    socklen_t alen;
    uint32_t nonce = atomic_load_explicit(shm_u32(e, SB_SUB_NONCE), memory_order_relaxed);
    if (wake_addr(t, i, nonce, &a, &alen) == 0)
      (void)sendto(t->send_fd, "w", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
  }
}

/* Claims [T, T + alen) with a header in the given state, or helps whoever claimed T first (§8.3). */
static int claim_at(sb_topic *t, uint64_t T, uint64_t alen, uint32_t state) {
  a64 *w = rec_words(t, T);
  uint64_t v = atomic_load_explicit(&w[0], memory_order_acquire);
  if (hdr_is(v, T)) {
    /* claimed, tail not yet moved: move it for them (so nobody ever waits for a descheduled claimer) */
    uint64_t expect = T;
    atomic_compare_exchange_strong_explicit(tail_word(t), &expect, T + hdr_alen(v), memory_order_seq_cst, memory_order_relaxed);
    return 0;
  }
  /* acquire: if the tail moved on, what we read at T may be a newer lap's record: do not touch it */
  if (atomic_load_explicit(tail_word(t), memory_order_acquire) != T) return 0;
  /* seq_cst: the claim is one word; whoever wins it owns T (and is in the order the park check relies on) */
  if (!atomic_compare_exchange_strong_explicit(&w[0], &v, hdr(T, alen, state), memory_order_seq_cst, memory_order_relaxed))
    return 0;
  uint64_t expect = T;
  atomic_compare_exchange_strong_explicit(tail_word(t), &expect, T + alen, memory_order_seq_cst, memory_order_relaxed);
  /* segment index: the first record at or after each boundary this claim covers (§8.4) */
  for (uint64_t b = (T + t->seg - 1) / t->seg * t->seg; b < T + alen; b += t->seg)
    /* release: readers check the record there through its header anyway */
    atomic_store_explicit(seg_start(t, b), b == T ? T : T + alen, memory_order_release);
  return 1;
}

static void push_claimed(sb_topic *t, uint64_t pos, uint64_t alen) {
  for (uint64_t b = (pos + t->seg - 1) / t->seg * t->seg; b < pos + alen; b += t->seg) push_laggards(t, b);
}

int sb_topic_publish(sb_topic *t, const uint8_t *ev, uint32_t len) {
  if (!atomic_load_explicit(&t->writable, memory_order_relaxed) || t->pub_index < 0) {
    int r = register_publisher(t);
    if (r) return r;
  }
  uint64_t total = (uint64_t)len + 16;
  if (total > t->cap / 4 || align16(total) > MAX_ALEN) return -EMSGSIZE;
  uint8_t *rec = t->scratch;
  memset(rec, 0, 16);
  memcpy(rec + 16, ev, len);
  uint32_t rlen = (uint32_t)total, flags = 0;
  memcpy(rec + 16, &t->pid, 4);
  memset(rec + 28, 0, 4);
  ev_view v;
  if (ev_parse(rec, rlen, &v)) return -EINVAL;
  refresh_rules(t);
  if (t->rule_count) flags = apply_rules(t, rec, &rlen);
  uint64_t n = align16(rlen), pos = 0;
  memcpy(rec + 8, &rlen, 4);
  a64 *fence = fence_word(t, (uint32_t)t->pub_index);
  for (int attempt = 0;; attempt++) { /* §8.3 P1 */
    if (attempt > 100000) { /* aborted again and again: give this event up */
      atomic_store_explicit(fence, 0, memory_order_release);
      return -EAGAIN;
    }
    /* P2, P3. seq_cst: the tail load, then our fence, then the scan (others scan after their tail load) */
    uint64_t tl = atomic_load_explicit(tail_word(t), memory_order_seq_cst), off = tl & (t->cap - 1);
    uint64_t want = off + n > t->cap ? t->cap - off : n;
    atomic_store_explicit(fence, hdr(tl, want, 1), memory_order_seq_cst);
    uint64_t pad = stalled_writer(t, tl, want); /* P4 */
    uint64_t claim = pad ? pad : want;
    push_before_claim(t, tl, claim);
    if (pad || want != n) {
      /* P5 as padding: the end of the ring, or around another publisher's in-flight bytes */
      uint64_t plen = claim;
      if (claim_at(t, tl, plen, SB_REC_PADDING)) {
        /* relaxed: a statistic */
        if (pad) atomic_fetch_add_explicit(fenced(t), 1, memory_order_relaxed);
        push_claimed(t, tl, plen);
      }
      continue;
    }
    if (!claim_at(t, tl, n, SB_REC_WRITING)) continue; /* P5 */
    pos = tl;
    /* push now, not after the commit: a publisher stopped mid-copy must not hold back the push of the
     * boundaries it claimed, or a laggard can be lapped before anyone pushes it (§8.4) */
    push_claimed(t, pos, n);
    /* P6. release: a reader that sees any byte we write below also sees our claim (the tail past pos) */
    atomic_thread_fence(memory_order_release);
    a64 *w = rec_words(t, pos);
    uint64_t writing = hdr(pos, n, SB_REC_WRITING);
    /* Descheduled for most of a lap since the claim? Our fence kept the bytes ours, but readers have
     * probably aborted the record already: claim afresh rather than write for nobody. */
    if (atomic_load_explicit(tail_word(t), memory_order_acquire) - pos > t->cap - n - t->seg) {
      atomic_compare_exchange_strong_explicit(&w[0], &writing, hdr(pos, n, SB_REC_ABORTED), memory_order_relaxed,
                                              memory_order_relaxed);
      continue;
    }
    shm_store_words(&w[1], rec + 8, rlen - 8); /* P7 */
    /* P8. seq_cst: commit; a CAS because a reader may have aborted the record meanwhile (then publish it
     * again, further on), and ordered before the sleepers load below like the subscriber's park (§8.7) */
    if (atomic_compare_exchange_strong_explicit(&w[0], &writing, hdr(pos, n, SB_REC_EVENT), memory_order_seq_cst,
                                                memory_order_relaxed))
      break;
  }
  /* P9. release: our bytes are final before anyone may claim over them */
  atomic_store_explicit(fence, 0, memory_order_release);

  if (atomic_load_explicit(sleepers(t), memory_order_seq_cst) != 0) wake_parked(t, rec, rlen, pos);

  t->published++;
  /* relaxed: a statistic, written only by its owner */
  atomic_store_explicit(shm_u64(pub_entry(t, (uint32_t)t->pub_index), SB_PUBLISHER_PUBLISHED), t->published,
                        memory_order_relaxed);
  t->out.pos_lo = (uint32_t)pos;
  t->out.pos_hi = (uint32_t)(pos >> 32);
  t->out.flags = flags;
  return 0;
}

/* ---- subscribing ---- */

sb_sub *sb_sub_open(sb_topic *t, const uint8_t *filter, uint32_t filter_len, uint32_t queue, double from, int *err) {
  if (!filter_valid(filter, filter_len) || queue < 1 || queue > (1u << 20)) {
    *err = -EINVAL;
    return NULL;
  }
  sb_sub *s = calloc(1, sizeof *s);
  if (!s) {
    *err = -ENOMEM;
    return NULL;
  }
  s->t = t;
  s->queue = queue;
  s->filter_len = filter_len;
  s->wake_fd = -1;
  memcpy(s->filter, filter, filter_len);
  s->batch_cap = t->cap / 4 > (1u << 20) ? t->cap / 4 : (1u << 20);
  s->batch = malloc(s->batch_cap);
  int i = claim_entry(t->base + SB_TOPIC_OFF_SUBS, SB_TOPIC_SUB_BYTES, SB_TOPIC_MAX_SUBS);
  if (!s->batch || i < 0) {
    free(s->batch);
    free(s);
    *err = i < 0 ? -ENOSPC : -ENOMEM;
    return NULL;
  }
  s->index = (uint32_t)i;
  uint32_t rnd = 0;
  if (syscall(SYS_getrandom, &rnd, sizeof rnd, 0) != sizeof rnd) rnd = (uint32_t)now_ns();
  s->nonce = rnd;
  struct sockaddr_un a;
  socklen_t alen;
  s->wake_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->wake_fd < 0 || wake_addr(t, s->index, s->nonce, &a, &alen) || bind(s->wake_fd, (struct sockaddr *)&a, alen) < 0) {
    *err = -errno;
    sb_sub_close(s);
    return NULL;
  }
  uint64_t tail = atomic_load_explicit(tail_word(t), memory_order_acquire), start = tail;
  t->out.restarted = 0;
  if (from == SB_FROM_OLDEST) {
    start = oldest(t, tail);
  } else if (from >= 0) {
    uint64_t id = (uint64_t)from;
    rec_info ri;
    int r = (tail - id <= t->cap - t->seg && id < tail) ? read_record(t, id, s->head, SB_TOPIC_HEAD_BYTES, 1, &ri) : R_LAPPED;
    if (r == R_EVENT || r == R_SKIP) start = id + ri.alen;
    else if (id != tail) {
      start = oldest(t, tail);
      t->out.restarted = 1;
    }
  }
  uint8_t *e = sub_entry(t, s->index);
  atomic_store_explicit(shm_u32(e, SB_SUB_PID), t->pid, memory_order_relaxed);
  atomic_store_explicit(shm_u64(e, SB_SUB_START), t->start, memory_order_relaxed);
  atomic_store_explicit(shm_u64(e, SB_SUB_CURSOR), start, memory_order_relaxed);
  atomic_store_explicit(shm_u64(e, SB_SUB_RECEIVED), 0, memory_order_relaxed);
  atomic_store_explicit(shm_u64(e, SB_SUB_LAGGED), 0, memory_order_relaxed);
  atomic_store_explicit(shm_u32(e, SB_SUB_PARKED), 0, memory_order_relaxed);
  atomic_store_explicit(shm_u32(e, SB_SUB_NONCE), s->nonce, memory_order_relaxed);
  atomic_store_explicit(shm_u32(e, SB_SUB_QUEUE), queue, memory_order_relaxed);
  atomic_store_explicit(shm_u32(e, SB_SUB_FILTER_LEN), filter_len, memory_order_relaxed);
  atomic_store_explicit(shm_u64(e, SB_SUB_STUCK_AT), 0, memory_order_relaxed);
  atomic_store_explicit(shm_u64(e, SB_SUB_ESTIMATES), 0, memory_order_relaxed);
  uint8_t fbuf[SB_TOPIC_FILTER_BYTES] = {0};
  memcpy(fbuf, filter, filter_len);
  shm_store_words(e + SB_SUB_FILTER, fbuf, SB_TOPIC_FILTER_BYTES);
  /* release: every field above before the entry is live for publishers */
  atomic_store_explicit(shm_u32(e, SB_SUB_STATE), SB_ENTRY_LIVE, memory_order_release);
  s->seen_tail = tail;
  *err = 0;
  return s;
}

#define POLL_ATTEMPTS 64 /* a poll that keeps losing its cursor CAS or re-reading a lapped record gives up */

int sb_sub_poll(sb_sub *s, uint32_t max) {
  sb_topic *t = s->t;
  uint8_t *e = sub_entry(t, s->index);
  if (max > s->queue) max = s->queue;
  uint64_t tail = 0;
  for (int attempt = 0; attempt < POLL_ATTEMPTS; attempt++) {
    /* acquire: pairs with a pusher's CAS */
    uint64_t c = atomic_load_explicit(shm_u64(e, SB_SUB_CURSOR), memory_order_acquire);
    tail = atomic_load_explicit(tail_word(t), memory_order_acquire);
    if (tail - c > t->cap) {
      /* lapped and nobody pushed us (a publisher died mid-push): restart at the oldest, count what we know */
      uint64_t to = oldest(t, tail);
      if (atomic_compare_exchange_strong_explicit(shm_u64(e, SB_SUB_CURSOR), &c, to, memory_order_acq_rel,
                                                  memory_order_acquire)) {
        atomic_fetch_add_explicit(shm_u64(e, SB_SUB_LAGGED), 1, memory_order_relaxed);
        atomic_fetch_add_explicit(shm_u64(e, SB_SUB_ESTIMATES), 1, memory_order_relaxed);
      }
      continue;
    }
    uint64_t p = c, stuck = 0;
    uint32_t out = 0, delivered = 0, matched = 0, corrupt = 0;
    int overflow = 0, retry = 0, more = 0;
    while (p < tail) {
      rec_info ri;
      /* past the queue bound only counting is left: examine the record's head */
      int r = overflow ? read_record(t, p, s->head, SB_TOPIC_HEAD_BYTES, 1, &ri)
                       : read_record(t, p, s->batch + out, s->batch_cap - out, 0, &ri);
      if (r == R_SKIP) {
        p += ri.alen;
        continue;
      }
      if (r == R_CLAIMED) {
        /* Wait for it (its publisher rings us when it commits, §8.7), but not forever: a publisher that is
         * descheduled or dead mid-write loses the record to an abort and publishes it again further on. */
        uint64_t now = now_ns();
        if (s->stuck_pos != p + 1) s->stuck_pos = p + 1, s->stuck_since = now;
        if (now - s->stuck_since >= patience_ns(ri.alen) && abort_record(t, p, ri.alen)) {
          p += ri.alen;
          continue;
        }
        stuck = p + 1;
        break;
      }
      if (r == R_LAPPED) {
        retry = 1;
        break;
      }
      if (r == R_TOO_BIG && out > 0) { /* the batch is full: the rest next time */
        more = 1;
        break;
      }
      if (r != R_EVENT) {
        /* R4: corrupt (or, impossibly, too big for an empty batch): never waited for, counted, passed by
         * its header's extent when that is usable, else at the next valid segment start */
        corrupt++;
        p = ri.alen && p + ri.alen <= tail ? p + ri.alen : resync(t, p, tail);
        continue;
      }
      ev_view v;
      ev_parse(overflow ? s->head : s->batch + out, ri.len, &v);
      if (filter_match(s->filter, &v)) {
        if (++matched > s->queue) {
          overflow = 1; /* more than queue pending: the first ones are kept, the rest are lagged (§8.5) */
        } else if (!overflow) {
          if (delivered == max) { /* the caller asked for fewer: leave the rest pending */
            more = 1;
            matched--;
            break;
          }
          delivered++;
          out += (uint32_t)ri.alen;
        }
      }
      p += ri.alen;
    }
    if (retry) continue;
    uint64_t to = p, lost = (overflow ? matched - delivered : 0) + corrupt;
    /* acq_rel: exactly one of us and a pusher moves the cursor past these records (§8.4) */
    if (to != c && !atomic_compare_exchange_strong_explicit(shm_u64(e, SB_SUB_CURSOR), &c, to, memory_order_acq_rel,
                                                            memory_order_acquire))
      continue; /* pushed meanwhile: those events are in lagged; read again from the new cursor */
    /* relaxed: statistics, and the wake hint, read by others only for stats and wake_parked */
    if (lost) atomic_fetch_add_explicit(shm_u64(e, SB_SUB_LAGGED), lost, memory_order_relaxed);
    if (corrupt) atomic_fetch_add_explicit(shm_u64(e, SB_SUB_ESTIMATES), corrupt, memory_order_relaxed);
    s->corrupt += corrupt;
    s->received += delivered;
    atomic_store_explicit(shm_u64(e, SB_SUB_RECEIVED), s->received, memory_order_relaxed);
    atomic_store_explicit(shm_u64(e, SB_SUB_STUCK_AT), stuck, memory_order_seq_cst);
    s->seen_tail = more ? UINT64_MAX : tail; /* more: park must not sleep */
    return (int)delivered;
  }
  s->seen_tail = tail; /* out of attempts: try again once the tail moves (the housekeeping tick asks too) */
  return 0;
}

uint8_t *sb_sub_batch(sb_sub *s) { return s->batch; }
uint32_t sb_sub_batch_capacity(sb_sub *s) { return s->batch_cap; }
double sb_sub_received(sb_sub *s) { return (double)s->received; }
double sb_sub_lagged(sb_sub *s) {
  return (double)atomic_load_explicit(shm_u64(sub_entry(s->t, s->index), SB_SUB_LAGGED), memory_order_relaxed);
}
double sb_sub_corrupt(sb_sub *s) { return (double)s->corrupt; }
double sb_sub_estimates(sb_sub *s) {
  return (double)atomic_load_explicit(shm_u64(sub_entry(s->t, s->index), SB_SUB_ESTIMATES), memory_order_relaxed);
}
int sb_sub_index(sb_sub *s) { return (int)s->index; }
int sb_sub_fd(sb_sub *s) { return s->wake_fd; }

/* Might there be something to read since the last poll? (seq_cst loads: the park check of §8.7) */
static int pending(sb_sub *s) {
  sb_topic *t = s->t;
  uint8_t *e = sub_entry(t, s->index);
  uint64_t tail = atomic_load_explicit(tail_word(t), memory_order_seq_cst);
  if (tail != s->seen_tail) return 1;
  uint64_t stuck = atomic_load_explicit(shm_u64(e, SB_SUB_STUCK_AT), memory_order_relaxed);
  if (stuck == 0) return 0;
  uint64_t h = atomic_load_explicit(rec_words(t, stuck - 1), memory_order_seq_cst);
  if (!hdr_is(h, stuck - 1) || hdr_state(h) != SB_REC_WRITING) return 1; /* committed or aborted since */
  return s->stuck_pos == stuck && now_ns() - s->stuck_since >= patience_ns(hdr_alen(h)); /* time to abort it */
}

int sb_sub_pending(sb_sub *s) { return pending(s); }

int sb_sub_park(sb_sub *s) {
  uint8_t *e = sub_entry(s->t, s->index);
  /* seq_cst: announce, then re-check; a publisher commits, then loads sleepers (Dekker, §8.7) */
  atomic_store(shm_u32(e, SB_SUB_PARKED), 1);
  atomic_fetch_add(sleepers(s->t), 1);
  if (!pending(s)) return 0;
  release_parked(s->t, e);
  return 1;
}

void sb_sub_unpark(sb_sub *s) {
  release_parked(s->t, sub_entry(s->t, s->index));
  char buf[64];
  while (recv(s->wake_fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

int sb_sub_wait(sb_sub *s, int timeout_ms) {
  if (sb_sub_park(s)) return 1;
  struct pollfd p = {s->wake_fd, POLLIN, 0};
  int n = poll(&p, 1, timeout_ms);
  sb_sub_unpark(s);
  return n > 0 ? 1 : 0;
}

void sb_sub_close(sb_sub *s) {
  if (!s) return;
  uint8_t *e = sub_entry(s->t, s->index);
  release_parked(s->t, e);
  /* release: our last writes before the entry is free */
  atomic_store_explicit(shm_u32(e, SB_SUB_STATE), SB_ENTRY_FREE, memory_order_release);
  if (s->wake_fd >= 0) close(s->wake_fd);
  free(s->batch);
  free(s);
}
