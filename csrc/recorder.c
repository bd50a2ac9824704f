/* The flight recorder (docs/PROTOCOL.md §16): a file any process may read, written by the hub on the slot
 * transitions it already makes. One writer (the hub's thread), so the only ordering is each record's seqlock. */
#include "recorder.h"
#include "slot_internal.h"

struct sb_rec {
  uint8_t *base;
  size_t size;
  char *path;
  uint32_t count, next; /* next: the record to try first */
  uint64_t written;
  uint8_t *busy;        /* private: record i is in flight (phase 1 or 2), never rewritten meanwhile */
  /* Times the caller already has, so the hot path reads no clock for them (sb_rec_stage): [0] the next publish's
   * enqueue time, [1] its dispatch time (0: read the clock, after the slot went out), both read by it, which
   * zeroes [0] and leaves the dispatch time it used in [1]; [2] the clock of the
   * caller's poll pass, read by the first answer of the pass (0: not yet), zeroed by the caller before each pass */
  double stage[3];
  uint32_t refs;        /* attached channels, + 1 until sb_rec_close */
  uint32_t workers;
};

static uint64_t clock_ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

double sb_rec_now(void) { return (double)clock_ns(CLOCK_MONOTONIC); }

static a32 *h32(sb_rec *r, uint32_t off) { return shm_u32(r->base, off); }
static a64 *h64(sb_rec *r, uint32_t off) { return shm_u64(r->base, off); }
static sbr_record *record(sb_rec *r, uint32_t i) { return (sbr_record *)(r->base + SBR_HEADER_BYTES) + i; }
static sbr_worker *wk(sb_chan *ch) { return ch->rec_worker; }
static sbr_worker *worker_at(sb_rec *r, uint32_t i) { return (sbr_worker *)(r->base + SBR_H_WORKER_TABLE) + i; }
/* single writer: a counter is a relaxed load and store, never a read-modify-write on the bus */
static void bump64(a64 *p) { shm_store_relaxed(p, shm_load_relaxed(p) + 1); }
static void add32(a32 *p, int32_t d) { shm_store_relaxed(p, shm_load_relaxed(p) + (uint32_t)d); }

sb_rec *sb_rec_open(const char *path, const char *name, uint32_t record_count, int *err) {
  size_t nlen = name ? strlen(name) : 0;
  if (!path || nlen == 0 || nlen > 64 || record_count == 0 || record_count > SBR_MAX_RECORDS) {
    *err = -EINVAL;
    return NULL;
  }
  sb_rec *r = calloc(1, sizeof *r);
  if (r) r->path = strdup(path), r->busy = calloc(record_count, 1);
  if (!r || !r->path || !r->busy) {
    if (r) free(r->path), free(r->busy), free(r);
    *err = -ENOMEM;
    return NULL;
  }
  r->count = record_count;
  r->size = SBR_HEADER_BYTES + (size_t)SBR_RECORD_BYTES * record_count;
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int e = fd < 0 ? -errno : 0;
  /* tmpfs gives a page on its first touch: with /dev/shm full, a file only sized would SIGBUS the front there */
  if (!e) e = plat_file_reserve(fd, r->size);
  if (!e) {
    r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r->base == MAP_FAILED) e = -errno;
  }
  if (fd >= 0) close(fd);
  if (e) {
    if (fd >= 0) unlink(path);
    free(r->path), free(r->busy), free(r);
    *err = e;
    return NULL;
  }
  /* a fresh file reads zeros: the identity goes in before the magic, so a reader that sees the magic sees it */
  shm_store_relaxed(h32(r, SBR_H_VERSION), SBR_VERSION);
  shm_store_relaxed(h32(r, SBR_H_HEADER_BYTES), SBR_HEADER_BYTES);
  shm_store_relaxed(h32(r, SBR_H_RECORD_BYTES), SBR_RECORD_BYTES);
  shm_store_relaxed(h32(r, SBR_H_RECORD_COUNT), record_count);
  shm_store_relaxed(h32(r, SBR_H_PID), (uint32_t)getpid());
  shm_store_relaxed(h64(r, SBR_H_PID_START), sys_proc_start((uint32_t)getpid()));
  shm_store_relaxed(h64(r, SBR_H_ANCHOR_WALL_NS), clock_ns(CLOCK_REALTIME));
  shm_store_relaxed(h64(r, SBR_H_ANCHOR_MONO_NS), clock_ns(CLOCK_MONOTONIC));
  shm_store_relaxed(h32(r, SBR_H_UID), (uint32_t)geteuid());
  shm_store_relaxed(h32(r, SBR_H_WORKER_ENTRIES), SBR_WORKER_ENTRIES);
  shm_store_words(r->base + SBR_H_NAME, name, nlen);
  shm_store_release(h32(r, SBR_H_MAGIC), SBR_MAGIC);
  r->refs = 1;
  *err = 0;
  return r;
}

static void rec_unref(sb_rec *r) {
  if (--r->refs) return;
  munmap(r->base, r->size);
  free(r->path), free(r->busy), free(r);
}

void sb_rec_close(sb_rec *r) {
  if (!r || !r->path[0]) return;
  unlink(r->path);
  r->path[0] = 0;
  rec_unref(r);
}

double *sb_rec_stage(sb_rec *r) { return r->stage; }

uint8_t *rec_base(sb_rec *r) { return r->base; }

void sb_rec_queued(sb_rec *r, uint32_t n) { shm_store_relaxed(h32(r, SBR_H_QUEUED), n); }

void sb_rec_pools(sb_rec *r, double crash_restarts, uint32_t crash_loop) {
  shm_store_relaxed(h64(r, SBR_H_CRASH_RESTARTS), crash_restarts > 0 ? (uint64_t)crash_restarts : 0);
  shm_store_relaxed(h32(r, SBR_H_CRASH_LOOP), crash_loop ? 1u : 0u);
}

int sb_rec_attach(sb_rec *r, sb_chan *ch) {
  if (!r || !ch || !ch->is_hub || ch->rec) return -EINVAL;
  if (!(ch->rec_at = calloc(ch->g.slot_count, sizeof *ch->rec_at))) return -ENOMEM;
  ch->rec = r;
  r->refs++;
  ch->rec_worker = NULL;
  for (uint32_t i = 0; i < SBR_WORKER_ENTRIES && !ch->rec_worker; i++) {
    sbr_worker *w = worker_at(r, i);
    if (SHM_READ(w->pid) != 0) continue;
    SHM_WRITE(w->in_flight, 0);
    SHM_WRITE(w->requests, 0);
    SHM_WRITE(w->attached_ns, clock_ns(CLOCK_MONOTONIC));
    SHM_WRITE(w->pid, (uint32_t)ch->peer_pid);
    ch->rec_worker = w;
  }
  add32(h32(r, SBR_H_WORKERS), 1);
  return 0;
}

/* ---- records (§16.3): one writer, a seqlock per record ---- */

static uint32_t open_record(sbr_record *x) {
  uint32_t s = shm_load_relaxed(&x->seq) + 1;
  shm_store_relaxed(&x->seq, s); /* odd: a reader that sees it, or sees it change, drops its copy */
  shm_fence_release();            /* the odd seq is visible before any field written below */
  return s;
}
static void close_record(sbr_record *x, uint32_t s) { shm_store_release(&x->seq, s + 1); }

/* The record of the request in `slot`, or NULL when it is not recorded (or no longer in flight). */
static sbr_record *slot_record(sb_chan *ch, uint32_t slot) {
  uint32_t at = ch->rec_at[slot];
  return at ? record(ch->rec, at - 1) : NULL;
}

static void set_outcome(sb_rec *r, sbr_record *x, uint32_t outcome) {
  if (SHM_READ(x->outcome) != SBR_NONE) return;
  SHM_WRITE(x->outcome, outcome);
  static const uint32_t counter[] = {0, SBR_H_ANSWERED, SBR_H_ERRORS, SBR_H_CANCELLED, SBR_H_TIMEOUTS, SBR_H_WORKER_GONE};
  bump64(h64(r, counter[outcome]));
}

/* Phase 3: record i may be reused from now on. Called inside an open record. */
static void finish_record(sb_rec *r, uint32_t i, sbr_record *x, uint64_t now) {
  SHM_WRITE(x->phase, SBR_DONE);
  SHM_WRITE(x->done_ns, now);
  if (!SHM_READ(x->first_byte_ns) && SHM_READ(x->outcome) <= SBR_ERROR) SHM_WRITE(x->first_byte_ns, now);
  r->busy[i] = 0;
  add32(h32(r, SBR_H_IN_FLIGHT), -1);
}

/* finish_record for the request in `slot` of ch, and its worker's count. */
static void finish(sb_chan *ch, uint32_t slot, sbr_record *x, uint64_t now) {
  finish_record(ch->rec, ch->rec_at[slot] - 1, x, now);
  ch->rec_at[slot] = 0;
  if (ch->rec_worker) SHM_WRITE(wk(ch)->in_flight, SHM_READ(wk(ch)->in_flight) - 1);
}

/* The W3C trace id of a "00-<32 hex>-<16 hex>-<2 hex>" traceparent value, or 0 when it is not one. */
static int trace_id(const uint8_t *v, uint32_t len, uint8_t out[16]) {
  if (len < 55 || v[2] != '-' || v[35] != '-') return 0;
  int any = 0;
  for (int i = 0; i < 32; i++) {
    uint8_t c = v[3 + i], d = (uint8_t)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 255);
    if (d == 255) return 0;
    out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | d : d << 4);
    any |= d;
  }
  return any;
}

/* what = "method path" and the trace id, from the head the hub itself just wrote (§6); bounded by head_len. */
static void describe(const uint8_t *head, uint32_t head_len, uint8_t what[SBR_WHAT_BYTES], uint8_t trace[16]) {
  const uint8_t *end = head + head_len, *p = head;
  uint32_t n = 0;
  for (int field = 0; field < 2 && p < end; field++) {
    const uint8_t *z = memchr(p, 0, (size_t)(end - p));
    if (!z) return;
    if (field == 1 && n < SBR_WHAT_BYTES) what[n++] = ' ';
    size_t len = (size_t)(z - p);
    if (len > SBR_WHAT_BYTES - n) len = SBR_WHAT_BYTES - n;
    memcpy(what + n, p, len);
    n += (uint32_t)len;
    p = z + 1;
  }
  while (p < end) { /* name \0 value \0 pairs */
    const uint8_t *zn = memchr(p, 0, (size_t)(end - p));
    if (!zn) return;
    const uint8_t *v = zn + 1, *zv = v < end ? memchr(v, 0, (size_t)(end - v)) : NULL;
    if (!zv) return;
    if (zn - p == 11 && !memcmp(p, "traceparent", 11) && !trace_id(v, (uint32_t)(zv - v), trace)) memset(trace, 0, 16);
    p = zv + 1;
  }
}

/* Begins the next record not in flight for a request to worker_pid (its `head` for what and trace id, NULL for raw):
 * its number + 1, or 0 when every record is in flight and this request goes unrecorded. Reads stage [0] and [1]. */
static uint32_t begin(sb_rec *r, uint32_t kind, uint32_t id, uint32_t worker_pid, uint32_t slot, const uint8_t *head,
                      uint32_t head_len, uint32_t body_len) {
  double enq = r->stage[0], disp = r->stage[1];
  uint64_t now = disp > 0 ? (uint64_t)disp : clock_ns(CLOCK_MONOTONIC);
  r->stage[0] = 0;
  r->stage[1] = (double)now; /* its dispatch time, for a caller that read no clock for it */
  uint32_t i = r->next, tries = 0;
  while (r->busy[i] && ++tries < r->count) i = i + 1 == r->count ? 0 : i + 1;
  if (r->busy[i]) return 0; /* every record is in flight: this one goes unrecorded */
  r->next = i + 1 == r->count ? 0 : i + 1;
  r->busy[i] = 1;
  uint64_t enqueued = enq > 0 && enq <= (double)now ? (uint64_t)enq : now;
  uint8_t text[SBR_WHAT_BYTES + 16] = {0}; /* what, then the trace id */
  if (kind == SB_KIND_HTTP && head) describe(head, head_len, text, text + SBR_WHAT_BYTES);
  sbr_record *x = record(r, i);
  uint32_t s = open_record(x);
  SHM_WRITE(x->phase, SBR_IN_FLIGHT);
  SHM_WRITE(x->outcome, SBR_NONE);
  SHM_WRITE(x->kind, kind);
  SHM_WRITE(x->serial, ++r->written);
  SHM_WRITE(x->id, id);
  SHM_WRITE(x->worker_pid, worker_pid);
  SHM_WRITE(x->slot, slot);
  SHM_WRITE(x->status, 0);
  SHM_WRITE(x->enqueued_ns, enqueued);
  SHM_WRITE(x->dispatched_ns, now);
  SHM_WRITE(x->first_byte_ns, 0);
  SHM_WRITE(x->done_ns, 0);
  SHM_WRITE(x->request_bytes, body_len);
  SHM_WRITE(x->answer_bytes, 0);
  shm_store_words(x->trace_id, text + SBR_WHAT_BYTES, 16);
  shm_store_words(x->what, text, SBR_WHAT_BYTES);
  close_record(x, s);
  shm_store_relaxed(h64(r, SBR_H_WRITTEN), r->written);
  bump64(h64(r, SBR_H_REQUESTS));
  add32(h32(r, SBR_H_IN_FLIGHT), 1);
  return i + 1;
}

void rec_publish(sb_chan *ch, uint32_t slot, uint32_t kind, uint32_t id, uint32_t head_len, uint32_t body_len) {
  uint32_t at = begin(ch->rec, kind, id, (uint32_t)ch->peer_pid, slot, arena(ch, slot, 0), head_len, body_len);
  if (!at) return;
  ch->rec_at[slot] = at;
  if (wk(ch)) {
    SHM_WRITE(wk(ch)->in_flight, SHM_READ(wk(ch)->in_flight) + 1);
    SHM_WRITE(wk(ch)->requests, SHM_READ(wk(ch)->requests) + 1);
  }
}

int sb_rec_note(sb_chan *ch, uint32_t slot, uint32_t outcome) {
  if (!ch->rec) return 0;
  if (slot >= ch->g.slot_count || outcome < SBR_CANCELLED || outcome > SBR_WORKER_GONE) return -EINVAL;
  sbr_record *x = slot_record(ch, slot);
  if (!x) return 0;
  uint32_t s = open_record(x);
  set_outcome(ch->rec, x, outcome);
  close_record(x, s);
  return 1;
}

void rec_cancel(sb_chan *ch, uint32_t slot) { sb_rec_note(ch, slot, SBR_CANCELLED); }

void rec_answer(sb_chan *ch, uint32_t slot, uint32_t status, uint32_t flags, uint32_t body_len) {
  sbr_record *x = slot_record(ch, slot);
  if (!x) return;
  uint32_t s = open_record(x);
  if (SHM_READ(x->outcome) == SBR_NONE) {
    SHM_WRITE(x->status, status);
    SHM_WRITE(x->answer_bytes, body_len);
  }
  set_outcome(ch->rec, x, flags & SB_RESP_ERROR ? SBR_ERROR : flags & SB_RESP_CANCELLED ? SBR_CANCELLED : SBR_ANSWERED);
  /* one clock read per poll pass: the answers a pass takes came in by its first */
  double *pass = &ch->rec->stage[2];
  if (*pass == 0) *pass = (double)clock_ns(CLOCK_MONOTONIC);
  finish(ch, slot, x, (uint64_t)*pass);
  close_record(x, s);
}

void rec_stream_head(sb_chan *ch, uint32_t slot, uint32_t status) {
  sbr_record *x = slot_record(ch, slot);
  if (!x) return;
  uint32_t s = open_record(x);
  SHM_WRITE(x->phase, SBR_STREAMING);
  SHM_WRITE(x->status, status);
  SHM_WRITE(x->first_byte_ns, clock_ns(CLOCK_MONOTONIC));
  close_record(x, s);
}

void rec_stream_end(sb_chan *ch, uint32_t slot, uint32_t flags) {
  sbr_record *x = slot_record(ch, slot);
  if (!x) return;
  uint32_t s = open_record(x);
  set_outcome(ch->rec, x, flags & SB_RESP_ERROR ? SBR_ERROR : flags & SB_RESP_CANCELLED ? SBR_CANCELLED : SBR_ANSWERED);
  finish(ch, slot, x, clock_ns(CLOCK_MONOTONIC));
  close_record(x, s);
}

/* ---- requests to workers on other hosts (§16.3): numbered by the caller's books, no slot, no channel ---- */

uint32_t sb_rec_far_begin(sb_rec *r, uint32_t kind, uint32_t worker_pid, const uint8_t *head, uint32_t head_len,
                          uint32_t body_len) {
  if (!r || kind > SB_KIND_HTTP) return 0;
  return begin(r, kind, 0, worker_pid, SBR_NO_SLOT, head_len ? head : NULL, head_len, body_len);
}

/* Record `at` (sb_rec_far_begin's) while it is in flight, or NULL. */
static sbr_record *far_record(sb_rec *r, uint32_t at) {
  if (!r || at == 0 || at > r->count || !r->busy[at - 1]) return NULL;
  sbr_record *x = record(r, at - 1);
  return SHM_READ(x->slot) == SBR_NO_SLOT ? x : NULL;
}

void sb_rec_far_head(sb_rec *r, uint32_t at, uint32_t status) {
  sbr_record *x = far_record(r, at);
  if (!x || SHM_READ(x->phase) != SBR_IN_FLIGHT) return;
  uint32_t s = open_record(x);
  SHM_WRITE(x->phase, SBR_STREAMING);
  SHM_WRITE(x->status, status);
  SHM_WRITE(x->first_byte_ns, clock_ns(CLOCK_MONOTONIC));
  close_record(x, s);
}

void sb_rec_far_end(sb_rec *r, uint32_t at, uint32_t outcome, uint32_t status, uint32_t answer_bytes) {
  sbr_record *x = far_record(r, at);
  if (!x || outcome < SBR_ANSWERED || outcome > SBR_WORKER_GONE) return;
  uint32_t s = open_record(x);
  if (SHM_READ(x->outcome) == SBR_NONE && outcome <= SBR_ERROR) {
    if (status) SHM_WRITE(x->status, status);
    SHM_WRITE(x->answer_bytes, answer_bytes);
  }
  set_outcome(r, x, outcome);
  finish_record(r, at - 1, x, clock_ns(CLOCK_MONOTONIC));
  close_record(x, s);
}

void rec_chan_gone(sb_chan *ch) {
  sb_rec *r = ch->rec;
  if (!r) return;
  uint64_t now = clock_ns(CLOCK_MONOTONIC);
  for (uint32_t slot = 0; slot < ch->g.slot_count; slot++) {
    sbr_record *x = slot_record(ch, slot);
    if (!x) continue;
    uint32_t s = open_record(x);
    set_outcome(r, x, SBR_WORKER_GONE);
    finish(ch, slot, x, now);
    close_record(x, s);
  }
  if (ch->rec_worker) SHM_WRITE(wk(ch)->pid, 0);
  add32(h32(r, SBR_H_WORKERS), -1);
  free(ch->rec_at);
  ch->rec_at = NULL;
  ch->rec = NULL;
  ch->rec_worker = NULL;
  rec_unref(r);
}
