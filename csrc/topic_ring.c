/* Topics, what publishers and subscribers both read (docs/PROTOCOL.md §8.3–§8.5): events and filters, the
 * records of the ring (reading one, aborting one), the segment index, and the registries' entries. */
#include "topic_internal.h"

/* ---- events and filters (validated private copies only) ---- */

/* rec points at a record (32-byte header); len is its len field. Reads no further than its head (at most
 * 32 + 255 + 8 × 512 = 4383 bytes < SB_TOPIC_HEAD_BYTES), so a head-only copy parses too. */
int ev_parse(const uint8_t *rec, uint32_t len, ev_view *v) {
  if (len < SB_TOPIC_REC_HEADER) return -1;
  uint16_t type_len;
  memcpy(&type_len, rec + 20, 2);
  v->key_count = rec[22];
  memcpy(&v->data_len, rec + 24, 4);
  memcpy(&v->lost, rec + 28, 4);
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
const uint8_t *ev_key(const ev_view *v, const uint8_t *key, uint32_t kl, uint32_t *vl) {
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
int filter_valid(const uint8_t *f, uint32_t n) {
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

static int type_match(const uint8_t *f, const ev_view *v) {
  uint32_t tl = f[1];
  if (f[0] == SB_FILTER_EXACT && (v->type_len != tl || memcmp(v->type, f + 2, tl) != 0)) return 0;
  if (f[0] == SB_FILTER_PREFIX && (v->type_len < tl || memcmp(v->type, f + 2, tl) != 0)) return 0;
  return 1;
}

/* How many of the subscriber's events a record stands for: an event 0 or 1; a loss record (§8.3, lost > 0) its
 * count when the filter's type matches. A loss record carries no routing keys (they were lost with the events),
 * so for a filter with keys its count is an upper bound: *estimated gets 1 (§8.4 estimates). */
uint64_t filter_count(const uint8_t *f, const ev_view *v, uint64_t *estimated) {
  if (v->lost == 0) return (uint64_t)filter_match(f, v);
  if (!type_match(f, v)) return 0;
  if (f[2 + f[1]] != 0) *estimated += 1;
  return v->lost;
}

int filter_match(const uint8_t *f, const ev_view *v) {
  if (v->lost != 0 || !type_match(f, v)) return 0; /* a loss record is never delivered */
  uint32_t tl = f[1];
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

/* ---- reading records (§8.3) ---- */

/* The longest record a publisher may write (§8.3 MAX_EVENT): anything longer is corrupt, never waited for. */

/* Whether the ring has come round to p: then what was read at p may be a later lap's (R1, R3). A claim at
 * p + cap replaces p's header while the tail is p + cap; bytes after the header change only once a claim
 * has moved the tail past p + cap. (acquire fence: if our reads saw such a write, that tail is visible.) */
static uint64_t tail_past(sb_topic *t, uint64_t p) {
  shm_fence_acquire();
  return shm_load_relaxed(tail_word(t)) - p;
}
static int lapped(sb_topic *t, uint64_t p) { return tail_past(t, p) >= t->cap; }

/* rec_words, writable: a publisher's own mapping, or for a subscriber (whose mapping of the ring is
 * read-only) a second mapping used only to abort a record it waited at too long. NULL if unavailable. */
static a64 *rec_words_rw(sb_topic *t, uint64_t pos) {
  /* acquire: pairs with register_publisher's release (the mprotect before it) */
  if (shm_load_acquire(&t->writable)) return rec_words(t, pos);
  uint8_t *a = shm_load_acquire(&t->alias);
  if (!a) {
    void *p = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *none = NULL;
    /* acq_rel: two subscriptions of one handle on two threads may race here; the loser unmaps its copy */
    if (shm_cas_acq_rel(&t->alias, &none, (uint8_t *)p)) {
      a = p;
      plat_region_mapped(p, t->size);
    } else {
      munmap(p, t->size);
      a = none;
    }
  }
  return shm_u64(a, SB_TOPIC_OFF_DATA + (pos & (t->cap - 1)));
}

/* Reads the record at p (p < tail, the tail the caller loaded; §8.3 R1–R3). R_EVENT: dst holds a consistent, validated private copy
 * (head_only: its first min(len, SB_TOPIC_HEAD_BYTES) bytes) whose first 8 bytes are the full position p.
 * R_SKIP: padding or aborted, alen bytes. R_CLAIMED: still being written. R_TOO_BIG: a valid length that
 * does not fit room (the batch is full). */
int read_record(sb_topic *t, uint64_t p, uint64_t tail, uint8_t *dst, uint32_t room, int head_only, rec_info *ri) {
  a64 *w = rec_words(t, p);
  ri->alen = 0;
  /* acquire: pairs with the commit CAS, so everything written before it is visible */
  uint64_t h = shm_load_acquire(&w[0]);
  /* the tail only passes p once the header at p is claimed: not for p is a later lap or a scribble */
  if (!hdr_is(h, p)) return lapped(t, p) ? R_LAPPED : R_CORRUPT;
  uint64_t alen = hdr_alen(h), off = p & (t->cap - 1);
  uint32_t state = hdr_state(h);
  /* the tail moved from p to p + alen in one step, so a record below it ends at or before it: a longer
   * extent is a scribble, and stepping over it would put the reader's cursor past the tail */
  if (alen < 16 || off + alen > t->cap || alen > tail - p || state < SB_REC_WRITING || state > SB_REC_ABORTED)
    return lapped(t, p) ? R_LAPPED : R_CORRUPT;
  ri->alen = alen;
  if (state == SB_REC_PADDING || state == SB_REC_ABORTED) return R_SKIP;
  if (state == SB_REC_WRITING) return R_CLAIMED;
  uint32_t len = (uint32_t)shm_load_relaxed(&w[1]);
  ri->len = len;
  if (len < SB_TOPIC_REC_HEADER || align16(len) != alen || len > max_event(t))
    return lapped(t, p) ? R_LAPPED : R_CORRUPT;
  if (!head_only && len > room) return R_TOO_BIG;
  shm_load_words(dst, w, head_only && len > SB_TOPIC_HEAD_BYTES ? SB_TOPIC_HEAD_BYTES : len);
  /* the header again, then the tail (in lapped, after its fence): changed without a lap means somebody
   * scribbled on a committed event, which never changes (§8.3) */
  uint64_t again = shm_load_relaxed(&w[0]), past = tail_past(t, p);
  if (past > t->cap || (again != h && past == t->cap)) return R_LAPPED;
  if (again != h) return R_CORRUPT;
  memcpy(dst, &p, 8);
  ev_view v;
  return ev_parse(dst, len, &v) ? R_CORRUPT : R_EVENT;
}

/* Aborts a record still being written (its publisher publishes it again, further on). 1 if we won. */
int abort_record(sb_topic *t, uint64_t p, uint64_t alen) {
  a64 *w = rec_words_rw(t, p);
  uint64_t writing = hdr(p, alen, SB_REC_WRITING);
  /* acq_rel: exactly one of this abort and the publisher's commit wins the header word */
  if (!w || !shm_cas_acq_rel(&w[0], &writing, hdr(p, alen, SB_REC_ABORTED))) return 0;
  /* relaxed: a statistic */
  shm_fetch_add_relaxed(abandoned(t), 1);
  return 1;
}

/* First record start of a segment boundary, if its index entry is valid (§8.4); else 0 with *ok = 0. */
uint64_t segment_first(sb_topic *t, uint64_t b, int *ok) {
  /* acquire: pairs with the publisher's release; the record itself is checked through its header */
  uint64_t v = shm_load_acquire(seg_start(t, b));
  *ok = v >= b && v < b + t->seg && hdr_is(shm_load_acquire(rec_words(t, v)), v);
  return v;
}

/* The oldest record start still safely in the ring (one segment of margin from the overwrite frontier). */
uint64_t oldest(sb_topic *t, uint64_t tail) {
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
uint64_t resync(sb_topic *t, uint64_t p, uint64_t tail) {
  for (uint64_t b = (p / t->seg + 1) * t->seg; b < tail; b += t->seg) {
    int ok;
    uint64_t v = segment_first(t, b, &ok);
    if (ok && v > p && v <= tail) return v;
  }
  return tail;
}

/* ---- registries ---- */

int claim_entry(uint8_t *base, uint32_t stride, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    uint32_t expect = SB_ENTRY_FREE;
    /* acquire: the entry's old fields are ours to overwrite only after we own it */
    if (shm_cas_acquire(shm_u32(base + (size_t)stride * i, 0), &expect, SB_ENTRY_CLAIMING)) return (int)i;
  }
  return -1;
}

void release_parked(sb_topic *t, uint8_t *e) {
  uint32_t one = 1;
  /* seq_cst: one side (publisher, owner or reaper) takes the parked flag, and only it decrements sleepers */
  if (shm_cas_seq_cst(shm_u32(e, SB_SUB_PARKED), &one, 0)) shm_fetch_sub_seq_cst(sleepers(t), 1);
}
