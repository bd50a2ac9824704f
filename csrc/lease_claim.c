/* Lease contests, docs/PROTOCOL.md §7.3-§7.5: member processes and their liveness, subjects, claims. */
#include "lease_internal.h"

/* ---- processes: start time and liveness (§7.5) ---- */

/* Is the process behind member word mw still the one that joined? Caller holds cache_lock. */
static int probe(sbl_contest *c, uint32_t m, uint64_t mw, liveness *l) {
  uint32_t pid = m_pid(mw);
  /* relaxed: written before the ALIVE store we loaded with acquire */
  uint64_t start = shm_load_relaxed(&member_at(c, m)->start);
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
void reap(sbl_contest *c, uint32_t m, uint64_t mw) {
  member_rec *r = member_at(c, m);
  uint64_t counts[C_COUNT];
  /* relaxed: the dead member can no longer write them */
  for (int i = 0; i < C_COUNT; i++) counts[i] = shm_load_relaxed(&r->counters[i]);
  /* acq_rel: one reaper wins; the counters read above belong to exactly the generation it frees */
  if (shm_cas_acq_rel(&r->word, &mw, member_word(0, m_gen(mw) + 1, SBL_MEMBER_FREE)))
    for (int i = 0; i < C_COUNT; i++) shm_fetch_add_relaxed(&hdr(c)->totals[i], counts[i]);
}

/* 1: member m of generation gen is alive; 0: it is not (left, reaped or dead: reaped now). fresh: ask the
   kernel even if it answered "alive" less than LIVENESS_CACHE_NS ago (stats must see a kill -9 at once). */
static int member_alive_as_of(sbl_contest *c, uint32_t m, uint32_t gen, int fresh) {
  if (m == c->me && gen == c->my_gen) return 1;
  /* acquire: pairs with the joiner's release store of ALIVE, so its start time is visible */
  uint64_t mw = shm_load_acquire(&member_at(c, m)->word);
  if (m_state(mw) != SBL_MEMBER_ALIVE || m_gen(mw) != (gen & 0xFFFF)) return 0;
  pthread_mutex_lock(&c->cache_lock);
  liveness *l = &c->cache[m];
  uint64_t now = mono_ns();
  /* relaxed: written before the ALIVE store we loaded with acquire */
  uint64_t start = shm_load_relaxed(&member_at(c, m)->start);
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

int member_alive(sbl_contest *c, uint32_t m, uint32_t gen) { return member_alive_as_of(c, m, gen, 0); }

static void count(sbl_contest *c, int which) {
  /* relaxed load + store: only this member writes its counters */
  _Atomic uint64_t *p = &member_at(c, c->me)->counters[which];
  shm_store_relaxed(p, shm_load_relaxed(p) + 1);
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
    uint32_t k = shm_load_acquire(&e->key);
    uint32_t st = k & 0xFF;
    if (st == SBL_KEY_EMPTY) {
      if (!insert) return -ENOENT;
      uint32_t mine = SBL_KEY_WRITING | c->me << 8 | (c->my_gen & 0xFFFF) << 16;
      /* relaxed: the key is private to us until the release store of READY below */
      if (!shm_cas_relaxed(&e->key, &k, mine)) continue; /* someone else is inserting here: look again */
      e->kind = kind;
      e->hash = h;
      e->label_len = len;
      memcpy(e->label, label, len);
      shm_store_release(&e->key, SBL_KEY_READY);
      *out = i;
      return 0;
    }
    if (st == SBL_KEY_WRITING) {
      uint32_t m = (k >> 8) & 0xFF;
      /* we insert from one thread per member, so our own WRITING here means someone forged it */
      if (m == c->me && (k >> 16) == (c->my_gen & 0xFFFF)) return corrupt(c, "subject key forged with our member", i, k);
      if (++stalls > SPIN_LIMIT) return corrupt(c, "subject insert never completed", i, k);
      if (!member_alive(c, m, k >> 16))
        shm_cas_relaxed(&e->key, &k, SBL_KEY_ABANDONED);
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
  uint64_t owner[SBL_OWNER_MAX / 8], trace[SBL_TRACE_BYTES / 8];
  /* relaxed loads validated by the fence + reload below (seqlock read side) */
  uint64_t token = shm_load_relaxed(&e->token);
  int64_t at = shm_load_relaxed(&e->claimed_at);
  int64_t exp = shm_load_relaxed(&e->expires_at);
  uint32_t olen = shm_load_relaxed(&e->owner_len);
  shm_load_words(owner, e->owner, SBL_OWNER_MAX);
  shm_load_words(trace, e->trace, SBL_TRACE_BYTES);
  shm_fence_acquire();
  if (shm_load_relaxed(&e->word) != w) return 0;
  if (olen > SBL_OWNER_MAX) return corrupt(c, "owner length out of range", i, olen);
  out->entry = i;
  out->version = w_version(w);
  out->member = w_member(w);
  uint64_t mw = shm_load_relaxed(&member_at(c, out->member)->word);
  out->pid = m_pid(mw);
  out->token = token;
  out->claimed_at = (double)at;
  out->expires_at = ms_out(exp);
  out->owner_len = olen;
  memcpy(out->owner, owner, SBL_OWNER_MAX);
  memcpy(out->trace, trace, SBL_TRACE_BYTES);
  out->kind = e->kind;
  uint32_t label_len = SHM_READ(e->label_len); /* read once: checked, then used */
  out->label_len = label_len <= SBL_LABEL_MAX ? label_len : 0;
  memcpy(out->label, e->label, out->label_len);
  return 1;
}

/* Writes our claim's details in CLAIMING (seqlock write side), then publishes HELD. A new claim's trace context
 * replaces the last claim's, which goes to `replaced` (ours while CLAIMING: nobody else writes it). */
static uint64_t publish_claim(sbl_contest *c, uint32_t i, uint64_t claiming, const uint8_t *owner, uint32_t owner_len,
                              int64_t at, int64_t exp, int new_token, const uint8_t *trace, uint8_t *replaced) {
  entry_t *e = entry_at(c, i);
  /* release fence: a reader that sees any detail written below also sees the CLAIMING word before it */
  shm_fence_release();
  if (new_token) {
    uint64_t prev = shm_load_relaxed(&e->token);
    int64_t now = clock_ms(CLOCK_REALTIME);
    uint64_t floor = (uint64_t)(now > c->epoch ? now : c->epoch) << TOKEN_SHIFT;
    c->last_token = prev + 1 > floor ? prev + 1 : floor;
    shm_store_relaxed(&e->token, c->last_token);
    shm_store_relaxed(&e->claimed_at, at);
    uint64_t words[SBL_OWNER_MAX / 8] = {0};
    memcpy(words, owner, owner_len);
    shm_store_words(e->owner, words, SBL_OWNER_MAX);
    shm_store_relaxed(&e->owner_len, owner_len);
    shm_load_words(replaced, e->trace, SBL_TRACE_BYTES);
    uint64_t tw[SBL_TRACE_BYTES / 8] = {0};
    if (trace) memcpy(tw, trace, SBL_TRACE_BYTES);
    shm_store_words(e->trace, tw, SBL_TRACE_BYTES);
  }
  shm_store_relaxed(&e->expires_at, exp);
  uint64_t held = claim_word(w_version(claiming) + 1, c->my_gen, c->me, SBL_HELD);
  /* release: the details above are visible to whoever loads HELD with acquire */
  shm_store_release(&e->word, held);
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
  if (shm_load_seq_cst(&e->waiters) == 0) return;
  shm_fetch_add_seq_cst(&e->wake_seq, 1);
  plat_wake(&e->wake_seq, 1);
}

int sbl_try_claim(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t label_len, const uint8_t *owner,
                  uint32_t owner_len, double now_ms, double ttl_ms, const uint8_t *trace, sbl_holder *out) {
  if (label_len > SBL_LABEL_MAX || owner_len > SBL_OWNER_MAX) return -E2BIG;
  uint32_t i;
  int r = find_entry(c, kind, label, label_len, 1, &i);
  if (r) return r;
  entry_t *e = entry_at(c, i);
  int64_t now = ms_floor(now_ms);
  for (uint32_t spins = 0;; spins++) {
    /* acquire: the previous holder's release (or HELD publish) happens-before our reads and our claim */
    uint64_t w = shm_load_acquire(&e->word);
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
        out->pid = m_pid(shm_load_relaxed(&member_at(c, out->member)->word));
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
    /* acquire on success: we now own the details; on failure we simply look again */
    if (!shm_cas_acquire(&e->word, &w, claiming)) continue;
    int64_t exp = expiry_for(now_ms, ttl_ms);
    uint64_t held = publish_claim(c, i, claiming, owner, owner_len, now, exp, 1, trace, out->trace);
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
                       uint32_t owner_len, double ttl_ms, double spin_ns, const uint8_t *trace, sbl_holder *out) {
  uint64_t start = mono_ns();
  for (;;) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int r = sbl_try_claim(c, kind, label, label_len, owner, owner_len, (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6,
                          ttl_ms, trace, out);
    if (r != 0) return r;
    /* yielded: watch the claim word (one cache line, no syscall) until it moves, then try again; every
     * millisecond try anyway, which notices an expiry or the holder's death */
    entry_t *e = entry_at(c, out->entry);
    uint64_t seen = shm_load_relaxed(&e->word);
    uint64_t retry_at = mono_ns() + 1000000ull;
    for (uint32_t n = 1;; n++) {
      cpu_relax();
      /* relaxed: only a hint to try again; the claim itself is the acquire CAS in sbl_try_claim */
      if (shm_load_relaxed(&e->word) != seen) break;
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
  uint64_t w = shm_load_acquire(&entry_at(c, i)->word);
  if (w_state(w) != SBL_HELD || w_version(w) != version || w_member(w) != c->me || w_gen(w) != (c->my_gen & 0xFFFF))
    return 0;
  return w;
}

int free_claim(sbl_contest *c, uint32_t i, uint64_t w) {
  entry_t *e = entry_at(c, i);
  /* seq_cst: release for the next holder's acquire, and ordered before wake_waiters' load of waiters */
  if (!shm_cas_seq_cst(&e->word, &w, claim_word(w_version(w) + 1, 0, 0, SBL_FREE))) return 0;
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
  uint64_t w = shm_load_acquire(&entry_at(c, entry)->word);
  if (w_state(w) != SBL_HELD || w_version(w) != version || !free_claim(c, entry, w)) return 0;
  count(c, C_RELEASES);
  return 1;
}

int sbl_check(sbl_contest *c, uint32_t entry, uint32_t version, double now_ms) {
  if (entry >= c->capacity) return -EINVAL;
  if (!our_word(c, entry, version)) return 0;
  /* relaxed: only we write it while we hold the claim */
  int64_t exp = shm_load_relaxed(&entry_at(c, entry)->expires_at);
  return (double)exp > now_ms;
}

int sbl_renew(sbl_contest *c, uint32_t entry, uint32_t version, double now_ms, double ttl_ms, sbl_holder *out) {
  if (entry >= c->capacity) return -EINVAL;
  if (sbl_check(c, entry, version, now_ms) != 1) return 0;
  entry_t *e = entry_at(c, entry);
  uint64_t w = claim_word(version, c->my_gen, c->me, SBL_HELD);
  uint64_t claiming = claim_word(version + 1, c->my_gen, c->me, SBL_CLAIMING);
  /* acquire: pairs with nothing new (we held it), but keeps the expiry write below after the CAS */
  if (!shm_cas_acquire(&e->word, &w, claiming)) return 0;
  uint64_t held = publish_claim(c, entry, claiming, NULL, 0, 0, expiry_for(now_ms, ttl_ms), 0, NULL, NULL);
  int r = read_claim(c, entry, held, out);
  if (r < 0) return r;
  if (r == 0) return 0; /* reset under our feet */
  return 1;
}

int sbl_next_holder(sbl_contest *c, uint32_t from, double now_ms, sbl_holder *out) {
  for (uint32_t i = from; i < c->capacity; i++) {
    entry_t *e = entry_at(c, i);
    if ((shm_load_acquire(&e->key) & 0xFF) != SBL_KEY_READY) continue;
    for (;;) {
      uint64_t w = shm_load_acquire(&e->word);
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
    uint64_t w = shm_load_acquire(&e->word);
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
    if ((shm_load_acquire(&entry_at(c, i)->key) & 0xFF) != SBL_KEY_READY) continue;
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
    uint64_t mw = shm_load_relaxed(&member_at(c, m)->word);
    if (m_state(mw) == SBL_MEMBER_ALIVE) (void)member_alive_as_of(c, m, m_gen(mw), 1);
  }
  for (int k = 0; k < C_COUNT; k++) sum[k] = shm_load_relaxed(&hdr(c)->totals[k]);
  uint32_t members = 0, subjects = 0;
  for (uint32_t m = 0; m < SBL_MAX_MEMBERS; m++) {
    member_rec *r = member_at(c, m);
    uint64_t mw = shm_load_relaxed(&r->word);
    if (m_state(mw) != SBL_MEMBER_ALIVE) continue;
    members++;
    for (int k = 0; k < C_COUNT; k++) sum[k] += shm_load_relaxed(&r->counters[k]);
  }
  for (uint32_t i = 0; i < c->capacity; i++)
    if ((shm_load_relaxed(&entry_at(c, i)->key) & 0xFF) == SBL_KEY_READY) subjects++;
  for (int k = 0; k < C_COUNT; k++) out[k] = (double)sum[k];
  out[5] = members;
  out[6] = subjects;
  out[7] = c->capacity;
}
