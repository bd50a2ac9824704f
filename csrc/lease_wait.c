/* Lease contests, docs/PROTOCOL.md §7.4 "Waiting": a thread per wait, and the waiter thread. */
#include "lease_internal.h"

/* ---- waiting (§7.4) ---- */

/* 0: the entry can be claimed now; otherwise ms to sleep at most before looking again. */
static int claimable_in(sbl_contest *c, uint32_t i) {
  entry_t *e = entry_at(c, i);
  uint64_t w = shm_load_acquire(&e->word);
  if (w_state(w) > SBL_HELD || w_state(w) == SBL_FREE) return 0; /* corruption: let the claimant report it */
  if (!member_alive(c, w_member(w), w_gen(w))) return 0;
  if (w_state(w) == SBL_CLAIMING) return 1;
  int64_t exp = shm_load_relaxed(&e->expires_at);
  int64_t left = exp == NO_EXPIRY ? WAIT_SLICE_MS : exp - clock_ms(CLOCK_REALTIME);
  if (left <= 0) return 0;
  return left < WAIT_SLICE_MS ? (int)left : WAIT_SLICE_MS;
}

static void *wait_main(void *arg) {
  sbl_wait *wt = arg;
  entry_t *e = entry_at(wt->c, wt->entry);
  /* seq_cst: see wake_waiters */
  shm_fetch_add_seq_cst(&e->waiters, 1);
  while (!shm_load_acquire(&wt->cancel)) {
    uint32_t seq = shm_load_seq_cst(&e->wake_seq);
    int ms = claimable_in(wt->c, wt->entry);
    if (ms == 0) break;
    plat_wait(&e->wake_seq, seq, ms, 1);
  }
  shm_fetch_sub_relaxed(&e->waiters, 1);
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
  shm_store_release(&w->cancel, 1);
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
  shm_fetch_sub_relaxed(&entry_at(c, i)->waiters, 1);
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
    uint32_t ctl = shm_load_seq_cst(&ws->ctl);
    uint32_t nv = 1, rang = 0;
    int min_ms = -1;
    v[0] = (plat_waitv_entry){&ws->ctl, ctl, 0};
    for (uint32_t k = 0; k < ws->n_armed;) {
      uint32_t i = ws->armed[k];
      entry_t *e = entry_at(c, i);
      /* seq_cst: the waiters increment (at arm) precedes this load; see wake_waiters */
      uint32_t seq = shm_load_seq_cst(&e->wake_seq);
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
  shm_fetch_add_seq_cst(&ws->ctl, 1);
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
    shm_fetch_add_seq_cst(&entry_at(c, entry)->waiters, 1);
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
