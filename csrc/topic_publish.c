/* Topics, publishing (docs/PROTOCOL.md §8.3, §8.4, §8.6, §8.7): late binding, the publisher's entry and fence,
 * claims, pushing subscribers that lag, waking parked ones. */
#include "topic_internal.h"

/* ---- late binding (§8.6) ---- */

#define BIND_PROBES 16u
#define MAX_VALUE 64u /* longest bound value (A, B or C) */

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
  uint32_t v = shm_load_acquire(rules_version(t));
  if (v == t->rules_version) return;
  t->rules_version = v;
  t->rule_count = 0;
  for (uint32_t i = 0; i < SB_TOPIC_MAX_RULES; i++) {
    uint8_t *r = rule_at(t, i);
    uint8_t buf[SB_TOPIC_RULE_BYTES];
    if (shm_load_acquire(shm_u32(r, 0)) != SB_ENTRY_LIVE) continue;
    shm_load_words(buf, r, SB_TOPIC_RULE_BYTES);
    int ok = 1;
    for (int k = 0; k < 4; k++)
      ok &= buf[RULE_FIELDS + RULE_FIELD * k] >= 1 && buf[RULE_FIELDS + RULE_FIELD * k] < RULE_FIELD;
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
    if (shm_load_acquire(shm_u32(r, 0)) != SB_ENTRY_LIVE) continue;
    shm_load_words(cur, r, SB_TOPIC_RULE_BYTES);
    if (memcmp(cur + RULE_FIELDS, buf + RULE_FIELDS, SB_TOPIC_RULE_BYTES - RULE_FIELDS) == 0) return (int)i;
  }
  int i = claim_entry(t->base + SB_TOPIC_OFF_RULES, SB_TOPIC_RULE_BYTES, SB_TOPIC_MAX_RULES);
  if (i < 0) return -ENOSPC;
  uint8_t *r = rule_at(t, (uint32_t)i);
  shm_store_words(r + RULE_FIELDS, buf + RULE_FIELDS, SB_TOPIC_RULE_BYTES - RULE_FIELDS);
  /* release: the fields before the state; then the version tells publishers to re-read */
  shm_store_release(shm_u32(r, 0), SB_ENTRY_LIVE);
  shm_fetch_add_release(rules_version(t), 1);
  return i;
}

/* Binding entry: u32 seq, u32 rule + 1, then three (u8 len + 63 bytes) values A, B, C at 8, 72, 136. */
static uint32_t binding_hash(uint32_t rule, const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl) {
  uint8_t r = (uint8_t)rule, sep = 0;
  uint32_t h = sys_fnv1a(FNV1A_SEED, &r, 1);
  h = sys_fnv1a(sys_fnv1a(h, a, al), &sep, 1);
  return sys_fnv1a(h, b, bl);
}

static int same_value(const uint8_t *field, const uint8_t *v, uint32_t n) {
  return field[0] == n && memcmp(field + 1, v, n) == 0;
}

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
  uint32_t s = shm_load_relaxed(seq);
  /* acquire: take the entry (odd = being written); give up rather than wait: a binding is best effort */
  if ((s & 1) || !shm_cas_acquire(seq, &s, s + 1)) return;
  shm_fence_release();                       /* readers that see our field writes also see seq odd */
  uint8_t buf[192] = {0};                    /* A, B, C at 8, 72, 136 of the entry */
  buf[0] = (uint8_t)al, memcpy(buf + 1, a, al);
  buf[64] = (uint8_t)bl, memcpy(buf + 65, b, bl);
  buf[128] = (uint8_t)cl, memcpy(buf + 129, c, cl);
  shm_store_relaxed(shm_u32(target, 4), rule + 1);
  shm_store_words(target + 8, buf, 192);
  /* release: the fields before the even seq */
  shm_store_release(seq, s + 2);
}

static int bind_lookup(sb_topic *t, uint32_t rule, const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl,
                       uint8_t *c, uint32_t *cl) {
  uint32_t h = binding_hash(rule, a, al, b, bl);
  for (uint32_t i = 0; i < BIND_PROBES; i++) {
    uint8_t *e = binding_at(t, (h + i) % SB_TOPIC_BINDINGS), cur[200];
    for (int tries = 0; tries < 4; tries++) {
      /* acquire: pairs with the writer's release of an even seq */
      uint32_t s1 = shm_load_acquire(shm_u32(e, 0));
      shm_load_words(cur, e, 200);
      shm_fence_acquire(); /* the copy before the re-check */
      if ((s1 & 1) || shm_load_relaxed(shm_u32(e, 0)) != s1) continue;
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
      if (value_ok(c, cl) && al < MAX_VALUE && bl < MAX_VALUE)
        bind_store(t, r, a, al, b, bl, c, cl);
      else
        flags |= SB_PUB_BAD_BINDING;
    } else if (!c) {
      uint8_t val[MAX_VALUE];
      uint32_t vl;
      if (al >= MAX_VALUE || bl >= MAX_VALUE || !bind_lookup(t, r, a, al, b, bl, val, &vl)) continue;
      if (v.key_count >= SB_TOPIC_MAX_KEYS || *len + 2 + kcl + vl > max_event(t)) { flags |= SB_PUB_UNFILLED; continue; }
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

/* Another subscriber's filter, copied out of its entry and validated; 0 if unusable. */
static uint32_t load_filter(uint8_t *entry, uint8_t *out) {
  uint32_t n = shm_load_relaxed(shm_u32(entry, SB_SUB_FILTER_LEN));
  if (n > SB_TOPIC_FILTER_BYTES) return 0;
  shm_load_words(out, entry + SB_SUB_FILTER, SB_TOPIC_FILTER_BYTES);
  return filter_valid(out, n) ? n : 0;
}

/* A publisher writes into the ring only through a live entry of its own, whose fence others can see (§8.2). */
static int register_publisher(sb_topic *t) {
  if (!shm_load_relaxed(&t->writable)) {
    if (mprotect(t->base + SB_TOPIC_OFF_DATA, t->size - SB_TOPIC_OFF_DATA, PROT_READ | PROT_WRITE) < 0) return -EPERM;
    /* release: a subscription's thread that sees 1 uses this mapping for its aborts */
    shm_store_release(&t->writable, 1);
  }
  if (t->pub_index < 0) {
    int i = claim_entry(t->base + SB_TOPIC_OFF_PUBS, SB_TOPIC_PUB_BYTES, SB_TOPIC_MAX_PUBS);
    if (i < 0) return -ENOSPC; /* no fence to write under: refuse rather than write unseen */
    uint8_t *e = pub_entry(t, (uint32_t)i);
    shm_store_relaxed(shm_u32(e, SB_PUBLISHER_PID), t->pid);
    shm_store_relaxed(shm_u64(e, SB_PUBLISHER_START), t->start);
    shm_store_relaxed(shm_u64(e, SB_PUBLISHER_PUBLISHED), 0);
    shm_store_relaxed(shm_u64(e, SB_PUBLISHER_FENCE), 0); /* a dead predecessor's */
    /* release: the fields before the entry goes live */
    shm_store_release(shm_u32(e, SB_PUBLISHER_STATE), SB_ENTRY_LIVE);
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
    if (shm_load_acquire(shm_u32(e, SB_PUBLISHER_STATE)) != SB_ENTRY_LIVE) continue;
    /* seq_cst: our fence store, then this load; theirs was stored before their claim (§8.3, why) */
    uint64_t f = shm_load_seq_cst(shm_u64(e, SB_PUBLISHER_FENCE));
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
  uint64_t p = c, tail = shm_load_acquire(tail_word(t));
  while (p < line) {
    rec_info ri;
    int r = read_record(t, p, tail, t->walk_head, SB_TOPIC_HEAD_BYTES, 1, &ri);
    if (r == R_EVENT) {
      ev_view v;
      ev_parse(t->walk_head, ri.len, &v);
      uint64_t est = 0;
      *count += filter_count(filter, &v, &est);
      if (est) shm_fetch_add_relaxed(shm_u64(e, SB_SUB_ESTIMATES), est);
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
      shm_fetch_add_relaxed(shm_u64(e, SB_SUB_ESTIMATES), 1);
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
    uint64_t c = shm_load_acquire(shm_u64(e, SB_SUB_CURSOR));
    if (c >= line) break;
    uint64_t count = 0, to = walk(t, e, filter, c, line, &count);
    if (to <= c) break;
    /* acq_rel: exactly one of the subscriber and the pushers moves the cursor past these records */
    if (shm_cas_acq_rel(shm_u64(e, SB_SUB_CURSOR), &c, to)) {
      shm_fetch_add_relaxed(shm_u64(e, SB_SUB_LAGGED), count);
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
    if (shm_load_acquire(shm_u32(e, 0)) != SB_ENTRY_LIVE) continue;
    /* acquire: pairs with the subscriber's cursor CAS */
    if (shm_load_acquire(shm_u64(e, SB_SUB_CURSOR)) < line) push_sub(t, e, line);
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
    if (shm_load_acquire(shm_u32(e, 0)) != SB_ENTRY_LIVE) continue;
    if (shm_load_acquire(shm_u64(e, SB_SUB_CURSOR)) < hard) push_sub(t, e, soft);
  }
}

static void wake_parked(sb_topic *t, const uint8_t *rec, uint32_t len, uint64_t pos) {
  ev_view v;
  if (ev_parse(rec, len, &v)) return;
  uint8_t filter[SB_TOPIC_FILTER_BYTES];
  for (uint32_t i = 0; i < SB_TOPIC_MAX_SUBS; i++) {
    uint8_t *e = sub_entry(t, i);
    if (shm_load_acquire(shm_u32(e, 0)) != SB_ENTRY_LIVE) continue;
    if (shm_load_seq_cst(shm_u32(e, SB_SUB_PARKED)) != 1) continue;
    /* ring it if the event is for it, or if it sleeps behind this very record (it may have later ones) */
    int stuck_here = shm_load_seq_cst(shm_u64(e, SB_SUB_STUCK_AT)) == pos + 1;
    uint64_t est = 0; /* a loss record rings whoever it counts for: its lagged shows at once */
    if (!stuck_here && !(load_filter(e, filter) && filter_count(filter, &v, &est) > 0)) continue;
    uint32_t one = 1;
    /* seq_cst: the one winner of parked 1 -> 0 decrements sleepers and sends the single wake-up */
    if (!shm_cas_seq_cst(shm_u32(e, SB_SUB_PARKED), &one, 0)) continue;
    shm_fetch_sub_seq_cst(sleepers(t), 1);
    struct sockaddr_un a;
    socklen_t alen;
    uint32_t nonce = shm_load_relaxed(shm_u32(e, SB_SUB_NONCE));
    if (wake_addr(t, i, nonce, &a, &alen) == 0)
      (void)sendto(t->send_fd, "w", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
  }
}

/* Claims [T, T + alen) with a header in the given state, or helps whoever claimed T first (§8.3). */
static int claim_at(sb_topic *t, uint64_t T, uint64_t alen, uint32_t state) {
  a64 *w = rec_words(t, T);
  uint64_t v = shm_load_acquire(&w[0]);
  if (hdr_is(v, T)) {
    /* claimed, tail not yet moved: move it for them (so nobody ever waits for a descheduled claimer) */
    uint64_t expect = T;
    shm_cas_seq_cst(tail_word(t), &expect, T + hdr_alen(v));
    return 0;
  }
  /* acquire: if the tail moved on, what we read at T may be a newer lap's record: do not touch it */
  if (shm_load_acquire(tail_word(t)) != T) return 0;
  /* seq_cst: the claim is one word; whoever wins it owns T (and is in the order the park check relies on) */
  if (!shm_cas_seq_cst(&w[0], &v, hdr(T, alen, state))) return 0;
  uint64_t expect = T;
  shm_cas_seq_cst(tail_word(t), &expect, T + alen);
  /* segment index: the first record at or after each boundary this claim covers (§8.4) */
  for (uint64_t b = (T + t->seg - 1) / t->seg * t->seg; b < T + alen; b += t->seg)
    /* release: readers check the record there through its header anyway */
    shm_store_release(seg_start(t, b), b == T ? T : T + alen);
  return 1;
}

static void push_claimed(sb_topic *t, uint64_t pos, uint64_t alen) {
  for (uint64_t b = (pos + t->seg - 1) / t->seg * t->seg; b < pos + alen; b += t->seg) push_laggards(t, b);
}

int sb_topic_publish(sb_topic *t, const uint8_t *ev, uint32_t len) {
  if (!shm_load_relaxed(&t->writable) || t->pub_index < 0) {
    int r = register_publisher(t);
    if (r) return r;
  }
  uint64_t total = (uint64_t)len + 16;
  if (total > max_event(t)) return -EMSGSIZE;
  uint8_t *rec = t->scratch;
  memset(rec, 0, 16);
  memcpy(rec + 16, ev, len);
  uint32_t rlen = (uint32_t)total, flags = 0;
  memcpy(rec + 16, &t->pid, 4);
  ev_view v; /* rec + 28 is the caller's lost: 0 for an event, n for a loss record (§8.3) */
  if (ev_parse(rec, rlen, &v)) return -EINVAL;
  refresh_rules(t);
  if (t->rule_count && v.lost == 0) flags = apply_rules(t, rec, &rlen);
  uint64_t n = align16(rlen), pos = 0;
  memcpy(rec + 8, &rlen, 4);
  a64 *fence = fence_word(t, (uint32_t)t->pub_index);
  for (int attempt = 0;; attempt++) { /* §8.3 P1 */
    if (attempt > 100000) {           /* aborted again and again: give this event up */
      shm_store_release(fence, 0);
      return -EAGAIN;
    }
    /* P2, P3. seq_cst: the tail load, then our fence, then the scan (others scan after their tail load) */
    uint64_t tl = shm_load_seq_cst(tail_word(t)), off = tl & (t->cap - 1);
    uint64_t want = off + n > t->cap ? t->cap - off : n;
    shm_store_seq_cst(fence, hdr(tl, want, 1));
    uint64_t pad = stalled_writer(t, tl, want); /* P4 */
    uint64_t claim = pad ? pad : want;
    push_before_claim(t, tl, claim);
    if (pad || want != n) {
      /* P5 as padding: the end of the ring, or around another publisher's in-flight bytes */
      uint64_t plen = claim;
      if (claim_at(t, tl, plen, SB_REC_PADDING)) {
        /* relaxed: a statistic */
        if (pad) shm_fetch_add_relaxed(fenced(t), 1);
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
    shm_fence_release();
    a64 *w = rec_words(t, pos);
    uint64_t writing = hdr(pos, n, SB_REC_WRITING);
    /* Descheduled for most of a lap since the claim? Our fence kept the bytes ours, but readers have
     * probably aborted the record already: claim afresh rather than write for nobody. */
    if (shm_load_acquire(tail_word(t)) - pos > t->cap - n - t->seg) {
      shm_cas_relaxed(&w[0], &writing, hdr(pos, n, SB_REC_ABORTED));
      continue;
    }
    shm_store_words(&w[1], rec + 8, rlen - 8); /* P7 */
    /* P8. seq_cst: commit; a CAS because a reader may have aborted the record meanwhile (then publish it
     * again, further on), and ordered before the sleepers load below like the subscriber's park (§8.7) */
    if (shm_cas_seq_cst(&w[0], &writing, hdr(pos, n, SB_REC_EVENT))) break;
  }
  /* P9. release: our bytes are final before anyone may claim over them */
  shm_store_release(fence, 0);

  if (shm_load_seq_cst(sleepers(t)) != 0) wake_parked(t, rec, rlen, pos);

  t->published++;
  /* relaxed: a statistic, written only by its owner */
  shm_store_relaxed(shm_u64(pub_entry(t, (uint32_t)t->pub_index), SB_PUBLISHER_PUBLISHED), t->published);
  t->out.pos_lo = (uint32_t)pos;
  t->out.pos_hi = (uint32_t)(pos >> 32);
  t->out.flags = flags;
  return 0;
}
