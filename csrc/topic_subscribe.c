/* Topics, subscribing (docs/PROTOCOL.md §8.3–§8.5, §8.7): a subscriber's entry and wake socket, poll, pending,
 * park and unpark. */
#include "topic_internal.h"

struct sb_sub {
  sb_topic *t;
  uint32_t index, nonce, queue, filter_len;
  int wake_fd;
  uint8_t filter[SB_TOPIC_FILTER_BYTES];
  uint8_t *batch;
  uint32_t batch_cap;
  uint64_t seen_tail;
  uint64_t received, corrupt;
  uint64_t stuck_pos, stuck_since;   /* the unfinished record we wait at, since when (ns) */
  uint64_t stuck_asked;              /* when its writer was last found running (ns; stuck_since at first) */
  uint8_t head[SB_TOPIC_HEAD_BYTES]; /* a record's head, to filter and count what the batch does not keep */
};

/* How long a subscriber waits at an unfinished record before it asks whether the writer still runs (§8.3, "A
 * publisher killed or stopped mid-write"): 1 ms, plus 1 ns per byte. A writer that runs gets as long again, and so
 * on up to writer_limit_ns: a copy into pages the ring never touched takes tens of ms for 16 MiB. */
static uint64_t patience_ns(uint64_t alen) { return 1000000u + alen; }
static uint64_t writer_limit_ns(uint64_t alen) { return 1000000000u + 100u * alen; }

/* Whether the writer of the unfinished record at p runs: a live publisher entry whose fence is the record's header
 * word (a fence is stored before the claim and cleared after the commit, §8.3 P3, P9), of a process alive, the
 * same one (start time) and not stopped. Slow (a /proc read per candidate): asked once per patience only. */
static int writer_runs(sb_topic *t, uint64_t p, uint64_t alen) {
  uint64_t h = hdr(p, alen, SB_REC_WRITING);
  for (uint32_t i = 0; i < SB_TOPIC_MAX_PUBS; i++) {
    uint8_t *e = pub_entry(t, i);
    /* acquire: pairs with register_publisher's release, so pid and start are the entry's owner's */
    if (shm_load_acquire(shm_u32(e, SB_PUBLISHER_STATE)) != SB_ENTRY_LIVE) continue;
    /* relaxed: read_record's acquire load of the header saw the claim, and the claimer stored its fence before it */
    if (shm_load_relaxed(shm_u64(e, SB_PUBLISHER_FENCE)) != h) continue;
    uint32_t pid = shm_load_relaxed(shm_u32(e, SB_PUBLISHER_PID));
    if (pid == t->pid || sys_proc_runs(pid, shm_load_relaxed(shm_u64(e, SB_PUBLISHER_START)))) return 1;
  }
  return 0;
}

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
  if (plat_random(&rnd, sizeof rnd) < 0) rnd = (uint32_t)mono_ns();
  s->nonce = rnd;
  struct sockaddr_un a;
  socklen_t alen;
  s->wake_fd = plat_socket(SOCK_DGRAM);
  /* an empty datagram is no wake-up: any process of the uid can send one, and a reader may take it for the end */
  int r = s->wake_fd < 0 ? -errno : plat_drop_empty_datagrams(s->wake_fd);
  if (!r) r = wake_addr(t, s->index, s->nonce, &a, &alen);
  if (r || (r = plat_bind(s->wake_fd, &a, alen, 0))) {
    if (s->wake_fd >= 0) close(s->wake_fd);
    s->wake_fd = -1; /* not bound: no file of ours to remove */
    *err = r;
    sb_sub_close(s);
    return NULL;
  }
  uint64_t tail = shm_load_acquire(tail_word(t)), start = tail;
  t->out.restarted = 0;
  if (from == SB_FROM_OLDEST) {
    start = oldest(t, tail);
  } else if (from <= SB_FROM_AT) {
    uint64_t at = (uint64_t)(SB_FROM_AT - from); /* a record boundary: the tail once was there */
    if (at <= tail && tail - at <= t->cap - t->seg)
      start = at;
    else {
      start = oldest(t, tail);
      t->out.restarted = 1;
    }
  } else if (from >= 0) {
    uint64_t id = (uint64_t)from;
    rec_info ri;
    int r = (tail - id <= t->cap - t->seg && id < tail) ? read_record(t, id, tail, s->head, SB_TOPIC_HEAD_BYTES, 1, &ri)
                                                        : R_LAPPED;
    if (r == R_EVENT || r == R_SKIP)
      start = id + ri.alen;
    else if (id != tail) {
      start = oldest(t, tail);
      t->out.restarted = 1;
    }
  }
  uint8_t *e = sub_entry(t, s->index);
  shm_store_relaxed(shm_u32(e, SB_SUB_PID), t->pid);
  shm_store_relaxed(shm_u64(e, SB_SUB_START), t->start);
  shm_store_relaxed(shm_u64(e, SB_SUB_CURSOR), start);
  shm_store_relaxed(shm_u64(e, SB_SUB_RECEIVED), 0);
  shm_store_relaxed(shm_u64(e, SB_SUB_LAGGED), 0);
  shm_store_relaxed(shm_u32(e, SB_SUB_PARKED), 0);
  shm_store_relaxed(shm_u32(e, SB_SUB_NONCE), s->nonce);
  shm_store_relaxed(shm_u32(e, SB_SUB_QUEUE), queue);
  shm_store_relaxed(shm_u32(e, SB_SUB_FILTER_LEN), filter_len);
  shm_store_relaxed(shm_u64(e, SB_SUB_STUCK_AT), 0);
  shm_store_relaxed(shm_u64(e, SB_SUB_ESTIMATES), 0);
  uint8_t fbuf[SB_TOPIC_FILTER_BYTES] = {0};
  memcpy(fbuf, filter, filter_len);
  shm_store_words(e + SB_SUB_FILTER, fbuf, SB_TOPIC_FILTER_BYTES);
  /* release: every field above before the entry is live for publishers */
  shm_store_release(shm_u32(e, SB_SUB_STATE), SB_ENTRY_LIVE);
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
    uint64_t c = shm_load_acquire(shm_u64(e, SB_SUB_CURSOR));
    tail = shm_load_acquire(tail_word(t));
    if (tail - c > t->cap) {
      /* lapped and nobody pushed us (a publisher died mid-push): restart at the oldest, count what we know */
      uint64_t to = oldest(t, tail);
      if (shm_cas_acq_rel(shm_u64(e, SB_SUB_CURSOR), &c, to)) {
        shm_fetch_add_relaxed(shm_u64(e, SB_SUB_LAGGED), 1);
        shm_fetch_add_relaxed(shm_u64(e, SB_SUB_ESTIMATES), 1);
      }
      continue;
    }
    uint64_t p = c, stuck = 0;
    uint32_t out = 0, delivered = 0, matched = 0, corrupt = 0;
    uint64_t remote_lost = 0, estimated = 0; /* loss records' counts (§8.3) */
    int overflow = 0, retry = 0, more = 0;
    while (p < tail) {
      rec_info ri;
      /* past the queue bound only counting is left: examine the record's head */
      int r = overflow ? read_record(t, p, tail, s->head, SB_TOPIC_HEAD_BYTES, 1, &ri)
                       : read_record(t, p, tail, s->batch + out, s->batch_cap - out, 0, &ri);
      if (r == R_SKIP) {
        p += ri.alen;
        continue;
      }
      if (r == R_CLAIMED) {
        /* Wait for it (its publisher rings us when it commits, §8.7) while its writer runs, up to a limit; a
         * writer dead or stopped mid-write loses the record to an abort (a live one publishes it again further
         * on). Whether it runs is asked once per patience, never on the way to a committed record. */
        uint64_t now = mono_ns();
        if (s->stuck_pos != p + 1) s->stuck_pos = p + 1, s->stuck_since = s->stuck_asked = now;
        if (now - s->stuck_asked >= patience_ns(ri.alen)) {
          if (now - s->stuck_since < writer_limit_ns(ri.alen) && writer_runs(t, p, ri.alen)) {
            s->stuck_asked = now;
          } else if (abort_record(t, p, ri.alen)) {
            p += ri.alen;
            continue;
          }
        }
        stuck = p + 1;
        break;
      }
      if (r == R_LAPPED) {
        /* Only a claim past p + cap overwrites p, and it moves the tail first: with the tail where this attempt
         * found it, a record read as lapped lies exactly a ring behind it and was scribbled on. Retrying could
         * not change that (pending() would stay 1 and a reader spin); count it as corrupt like any other. */
        if (shm_load_acquire(tail_word(t)) == tail) {
          corrupt++;
          p = ri.alen && p + ri.alen <= tail ? p + ri.alen : resync(t, p, tail);
          continue;
        }
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
      if (v.lost != 0) { /* a loss record (§8.3): counted, never delivered; the batch space is reused */
        remote_lost += filter_count(s->filter, &v, &estimated);
        p += ri.alen;
        continue;
      }
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
    uint64_t to = p, lost = (overflow ? matched - delivered : 0) + corrupt + remote_lost;
    /* acq_rel: exactly one of us and a pusher moves the cursor past these records (§8.4) */
    if (to != c && !shm_cas_acq_rel(shm_u64(e, SB_SUB_CURSOR), &c, to))
      continue; /* pushed meanwhile: those events are in lagged; read again from the new cursor */
    /* relaxed: statistics, and the wake hint, read by others only for stats and wake_parked */
    if (lost) shm_fetch_add_relaxed(shm_u64(e, SB_SUB_LAGGED), lost);
    if (corrupt + estimated) shm_fetch_add_relaxed(shm_u64(e, SB_SUB_ESTIMATES), corrupt + estimated);
    s->corrupt += corrupt;
    s->received += delivered;
    shm_store_relaxed(shm_u64(e, SB_SUB_RECEIVED), s->received);
    shm_store_seq_cst(shm_u64(e, SB_SUB_STUCK_AT), stuck);
    s->seen_tail = more ? UINT64_MAX : tail; /* more: park must not sleep */
    return (int)delivered;
  }
  s->seen_tail = tail; /* out of attempts: try again once the tail moves (the housekeeping tick asks too) */
  return 0;
}

uint8_t *sb_sub_batch(sb_sub *s) { return s->batch; }
uint32_t sb_sub_batch_capacity(sb_sub *s) { return s->batch_cap; }
double sb_sub_received(sb_sub *s) { return (double)s->received; }
double sb_sub_lagged(sb_sub *s) { return (double)shm_load_relaxed(shm_u64(sub_entry(s->t, s->index), SB_SUB_LAGGED)); }
double sb_sub_corrupt(sb_sub *s) { return (double)s->corrupt; }
double sb_sub_estimates(sb_sub *s) {
  return (double)shm_load_relaxed(shm_u64(sub_entry(s->t, s->index), SB_SUB_ESTIMATES));
}
int sb_sub_index(sb_sub *s) { return (int)s->index; }
int sb_sub_fd(sb_sub *s) { return s->wake_fd; }

/* Might there be something to read since the last poll? (seq_cst loads: the park check of §8.7) */
static int pending(sb_sub *s) {
  sb_topic *t = s->t;
  uint8_t *e = sub_entry(t, s->index);
  uint64_t tail = shm_load_seq_cst(tail_word(t));
  if (tail != s->seen_tail) return 1;
  uint64_t stuck = shm_load_relaxed(shm_u64(e, SB_SUB_STUCK_AT));
  if (stuck == 0) return 0;
  uint64_t h = shm_load_seq_cst(rec_words(t, stuck - 1));
  if (!hdr_is(h, stuck - 1) || hdr_state(h) != SB_REC_WRITING) return 1; /* committed or aborted since */
  return s->stuck_pos == stuck && mono_ns() - s->stuck_asked >= patience_ns(hdr_alen(h)); /* time to ask again */
}

int sb_sub_pending(sb_sub *s) { return pending(s); }

int sb_sub_park(sb_sub *s) {
  uint8_t *e = sub_entry(s->t, s->index);
  /* seq_cst: announce, then re-check; a publisher commits, then loads sleepers (Dekker, §8.7) */
  shm_store_seq_cst(shm_u32(e, SB_SUB_PARKED), 1);
  shm_fetch_add_seq_cst(sleepers(s->t), 1);
  if (!pending(s)) return 0;
  release_parked(s->t, e);
  return 1;
}

void sb_sub_unpark(sb_sub *s) {
  release_parked(s->t, sub_entry(s->t, s->index));
  char buf[64];
  while (recv(s->wake_fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
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
  shm_store_release(shm_u32(e, SB_SUB_STATE), SB_ENTRY_FREE);
  if (s->wake_fd >= 0) unbind_wake(s->t, s->index, s->nonce), close(s->wake_fd);
  free(s->batch);
  free(s);
}
