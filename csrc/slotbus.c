/* Slot channels, hub and worker: the reference implementation of docs/PROTOCOL.md §1–§6, and the hub's accept
 * watcher. */
#include "slot_internal.h"

uint32_t sb_layout_hash(void) { return sys_fnv1a(FNV1A_SEED, LAYOUT_DESC, strlen(LAYOUT_DESC)); }
uint32_t sb_abi_version(void) { return SB_ABI_VERSION; }

static int park_as(sb_chan *ch, uint32_t how) {
  atomic_store_explicit(my_parked(ch), how, memory_order_seq_cst);
  /* seq_cst loads after the seq_cst store: either we see the peer's push or cancel, or it sees us parked */
  if (!ring_tail_empty(ch, atomic_load_explicit(my_tail(ch), memory_order_seq_cst)) || cancels_pending(ch) ||
      slot_credit_moved(ch)) {
    atomic_store_explicit(my_parked(ch), SB_AWAKE, memory_order_relaxed);
    return 1;
  }
  return 0;
}

int sb_park(sb_chan *ch) { return park_as(ch, SB_PARK_EVENTFD); }

void sb_yield(void) { sched_yield(); }

void sb_unpark(sb_chan *ch) {
  atomic_store_explicit(my_parked(ch), SB_AWAKE, memory_order_relaxed);
  plat_bell_drain(ch->my_bell);
}

/* Reads and discards control bytes (§1): a C side has no use for them, and unread they would keep the
 * socket readable forever and hide the EOF behind them. */
int slot_peer_gone(sb_chan *ch) {
  char buf[256];
  /* Bounded: a peer that keeps writing must not keep us here. Whatever is left is read on the next call;
   * the protocol sends a handful of bytes per connection, so this bound is never reached by an honest one. */
  for (int reads = 0; reads < 16; reads++) {
    ssize_t r = recv(ch->sock, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) continue;
    return r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  return 0;
}

int sb_wait(sb_chan *ch, int timeout_ms, int use_futex) {
  /* A grant moves no ring tail, so a stream waiting for credit must sleep on the doorbell (§9.4). */
  if (ch->waiting_streams) use_futex = 0;
  if (park_as(ch, use_futex ? SB_PARK_FUTEX : SB_PARK_EVENTFD)) return 1;
  int result = 0;
  if (!use_futex) {
    struct pollfd fds[2] = {{ch->my_bell, POLLIN, 0}, {ch->sock, POLLIN, 0}};
    int n = poll(fds, 2, timeout_ms);
    if (n > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && slot_peer_gone(ch)) result = -EPIPE;
    else if (n > 0 && (fds[0].revents & POLLIN)) result = 1;
  } else {
    int left = timeout_ms;
    for (;;) {
      int slice = (left < 0 || left > 10) ? 10 : left;
      /* the tail as park_as found it: our head, or one behind while the push we took last completes */
      uint32_t seen = atomic_load_explicit(my_tail(ch), memory_order_acquire);
      if (ring_tail_empty(ch, seen)) plat_wait(my_tail(ch), seen, slice, 1);
      if (!ring_tail_empty(ch, atomic_load_explicit(my_tail(ch), memory_order_acquire)) || cancels_pending(ch)) { result = 1; break; }
      if (slot_peer_gone(ch)) { result = -EPIPE; break; }
      if (left >= 0 && (left -= slice) <= 0) break;
    }
  }
  sb_unpark(ch);
  return result;
}

/* The first two lines of a slot's arena (where a small message lies), fetched while the slot header's line comes:
 * one cache miss's wait instead of two in a row (docs/perf/request-path.md). */
static inline void prefetch_arena(sb_chan *ch, uint32_t slot, int response, int for_write) {
  uint8_t *a = arena(ch, slot, response);
  if (for_write) __builtin_prefetch(a, 1, 3), __builtin_prefetch(a + 64, 1, 3);
  else __builtin_prefetch(a, 0, 3), __builtin_prefetch(a + 64, 0, 3);
}

/* ---- hub side: slot transitions ---- */

static void trim(sb_chan *ch, uint32_t slot, int response);

int sb_hub_claim(sb_chan *ch) {
  if (ch->free_top == 0) return -1;
  uint32_t i = ch->free_stack[--ch->free_top];
  ch->busy[i] = HUB_CLAIMED;
  atomic_store_explicit(&slot_at(ch, i)->state, word(ch->gen[i], SB_WRITING), memory_order_relaxed);
  return (int)i;
}

int sb_hub_unclaim(sb_chan *ch, uint32_t slot) {
  if (slot >= ch->g.slot_count || ch->busy[slot] != HUB_CLAIMED) return -EINVAL;
  /* however much of the arena the failed fill wrote, hand it back */
  ch->hiwater[2 * slot] = ch->g.arena_size;
  trim(ch, slot, 0);
  /* relaxed: the worker never saw this generation (nothing was pushed), so there is nothing to order against */
  atomic_store_explicit(&slot_at(ch, slot)->state, word(ch->gen[slot], SB_FREE), memory_order_relaxed);
  ch->busy[slot] = HUB_FREE;
  ch->free_stack[ch->free_top++] = slot;
  return 0;
}

int sb_hub_publish(sb_chan *ch, uint32_t slot, uint32_t kind, uint32_t id, uint32_t head_len, uint32_t body_len) {
  if (slot >= ch->g.slot_count || ch->busy[slot] != HUB_CLAIMED) return -EINVAL;
  if (kind > SB_KIND_HTTP || !fits(ch, head_len, body_len)) return -E2BIG;
  slot_hdr *s = slot_at(ch, slot);
  SHM_WRITE(s->kind, kind);
  SHM_WRITE(s->id, id);
  SHM_WRITE(s->req_head, head_len);
  SHM_WRITE(s->req_body, body_len);
  /* the stream offer (§9.1): every request gets the channel's window, and a fresh credit */
  hub_stream *st = &ch->hs[slot];
  *st = (hub_stream){.window = ch->stream_window, .limit = ch->stream_window};
  SHM_WRITE(s->window, ch->stream_window);
  atomic_store_explicit(&s->limit, ch->stream_window, memory_order_relaxed);
  atomic_store_explicit(&s->notify, 0, memory_order_relaxed);
  uint32_t used = align8(head_len) + body_len;
  if (used > ch->hiwater[2 * slot]) ch->hiwater[2 * slot] = used;
  ch->busy[slot] = HUB_PUBLISHED;
  /* release: the worker's acquire CAS on this word makes the arena and fields above visible */
  atomic_store_explicit(&s->state, word(ch->gen[slot], SB_READY), memory_order_release);
  ring_push(ch, sq(ch), &ch->hdr->sq_tail, slot);
  wake_peer(ch, &ch->hdr->worker_parked, &ch->hdr->sq_tail);
  return 0;
}

int sb_hub_cancel(sb_chan *ch, uint32_t slot) {
  if (slot >= ch->g.slot_count || (ch->busy[slot] != HUB_PUBLISHED && ch->busy[slot] != HUB_STREAMING)) return -EINVAL;
  slot_hdr *s = slot_at(ch, slot);
  uint32_t expect = word(ch->gen[slot], SB_READY);
  /* relaxed: the CAS only decides who owns the edge; nothing else is published with it */
  if (atomic_compare_exchange_strong_explicit(&s->state, &expect, word(ch->gen[slot], SB_CANCELLED), memory_order_relaxed,
                                              memory_order_relaxed))
    return 1;
  /* The worker has it (or already answered): ask it to give up. The cancel word goes first, then the counter with
   * seq_cst, which orders both before our load of worker_parked (§5) and pairs with the worker's acquire of it. */
  ch->hs[slot].flags |= HS_CANCEL; /* from now on an END may say "cancelled" (§9.5) */
  SHM_WRITE(s->cancel, word(ch->gen[slot], 1));
  atomic_fetch_add_explicit(&ch->hdr->cancel_seq, 1, memory_order_seq_cst);
  wake_peer(ch, &ch->hdr->worker_parked, &ch->hdr->sq_tail);
  return 2;
}

int sb_hub_poll(sb_chan *ch) {
  int r = ring_pop(ch, cq(ch), &ch->hdr->cq_tail, &ch->hdr->cq_head);
  if (r < 0) return r;
  uint32_t i = (uint32_t)r;
  slot_hdr *s = slot_at(ch, i);
  prefetch_arena(ch, i, 1, 0);
  /* acquire: pairs with the worker's release store of DONE, so the response is complete */
  uint32_t w = atomic_load_explicit(&s->state, memory_order_acquire);
  if (w == word(ch->gen[i], SB_STREAMING)) return slot_stream_notified(ch, i);
  if (ch->busy[i] != HUB_PUBLISHED) return corrupt(ch, "completed a slot the hub did not publish", i, w);
  if (w != word(ch->gen[i], SB_DONE)) return corrupt(ch, "completed slot has a bad state word", i, w);
  sb_msg *m = &ch->msg;
  m->slot = (int32_t)i;
  m->id = SHM_READ(s->id);
  m->kind = SHM_READ(s->kind);
  m->status = SHM_READ(s->status);
  m->flags = SHM_READ(s->flags);
  m->head_len = SHM_READ(s->resp_head);
  m->body_len = SHM_READ(s->resp_body);
  m->gen = ch->gen[i];
  /* read once into private memory above, then validate the private copies only */
  if (m->flags > (SB_RESP_ERROR | SB_RESP_CANCELLED)) return corrupt(ch, "bad response flags", i, m->flags);
  if (!fits(ch, m->head_len, m->body_len)) return corrupt(ch, "response does not fit its arena", m->head_len, m->body_len);
  m->body_off = align8(m->head_len);
  uint32_t used = m->body_off + m->body_len;
  if (used > ch->hiwater[2 * i + 1]) ch->hiwater[2 * i + 1] = used;
  ch->busy[i] = HUB_COMPLETED;
  return (int)i;
}

static void trim(sb_chan *ch, uint32_t slot, int response) {
  uint32_t *hw = &ch->hiwater[2 * slot + (response ? 1 : 0)];
  uint64_t keep = align_up(ch->trim_bytes, PAGE);
  if (*hw <= keep) return;
  off_t off = (off_t)(arena(ch, slot, response) - ch->base + keep);
  plat_region_trim(ch->memfd, off, (off_t)(align_up(*hw, PAGE) - keep));
  *hw = (uint32_t)keep;
}

int sb_hub_release(sb_chan *ch, uint32_t slot) {
  if (slot >= ch->g.slot_count) return -EINVAL;
  /* a stream goes back after its END and its final notification, never before: a late one would name the next request */
  if (ch->busy[slot] != HUB_COMPLETED &&
      (ch->busy[slot] != HUB_STREAMING || (ch->hs[slot].flags & (HS_END | HS_FINAL)) != (HS_END | HS_FINAL)))
    return -EINVAL;
  trim(ch, slot, 0);
  trim(ch, slot, 1);
  ch->gen[slot] = (ch->gen[slot] + 1) & 0xFFFFFFu;
  atomic_store_explicit(&slot_at(ch, slot)->state, word(ch->gen[slot], SB_FREE), memory_order_relaxed);
  ch->busy[slot] = HUB_FREE;
  ch->free_stack[ch->free_top++] = slot;
  return 0;
}

/* ---- worker side ---- */

static void worker_finish(sb_chan *ch, slot_hdr *s, uint32_t slot, uint32_t gen) {
  atomic_store_explicit(&s->state, word(gen, SB_DONE), memory_order_release);
  ring_push(ch, cq(ch), &ch->hdr->cq_tail, slot);
  wake_peer(ch, &ch->hdr->hub_parked, &ch->hdr->cq_tail);
}

int sb_worker_poll(sb_chan *ch) {
  /* Each slot can be in the sq once, so more than ring_size cancelled entries in one call means a hub that keeps
   * pushing: return and let the caller come back, rather than spin here for as long as it pushes. */
  for (uint32_t budget = ch->g.ring_size; budget > 0; budget--) {
    int r = ring_pop(ch, sq(ch), &ch->hdr->sq_tail, &ch->hdr->sq_head);
    if (r < 0) return r;
    uint32_t i = (uint32_t)r;
    slot_hdr *s = slot_at(ch, i);
    prefetch_arena(ch, i, 0, 0);
    prefetch_arena(ch, i, 1, 1); /* for writing: the answer goes there */
    uint32_t w = atomic_load_explicit(&s->state, memory_order_relaxed);
    /* acquire on success: pairs with the hub's release store of READY. Strong, and tried once: on failure w holds
     * the new word, and the only legal change is the hub's cancel; a hub flipping the word cannot keep us here. */
    int claimed = (w & 0xFF) == SB_READY &&
                  atomic_compare_exchange_strong_explicit(&s->state, &w, word(w >> 8, SB_CLAIMED), memory_order_acquire,
                                                          memory_order_relaxed);
    if (!claimed && (w & 0xFF) == SB_CANCELLED) {
      SHM_WRITE(s->status, 0);
      SHM_WRITE(s->flags, SB_RESP_CANCELLED);
      SHM_WRITE(s->resp_head, 0);
      SHM_WRITE(s->resp_body, 0);
      worker_finish(ch, s, i, w >> 8);
      continue;
    }
    if (!claimed) return corrupt(ch, "published slot is not ready", i, w);
    sb_msg *m = &ch->msg;
    m->slot = (int32_t)i;
    m->kind = SHM_READ(s->kind);
    m->id = SHM_READ(s->id);
    m->head_len = SHM_READ(s->req_head);
    m->body_len = SHM_READ(s->req_body);
    m->status = m->flags = 0;
    m->gen = w >> 8;
    m->pos = 0;
    m->window = SHM_READ(s->window); /* the stream offer, read once (§9.6) */
    ch->ws[i] = (worker_stream){.gen = m->gen, .window = m->window};
    if (m->window && (m->window & (m->window - 1) || m->window < 4096 || m->window > ch->g.arena_size ||
                      m->window > (1u << 30)))
      return corrupt(ch, "bad stream window", i, m->window);
    if (m->kind > SB_KIND_HTTP) return corrupt(ch, "bad request kind", i, m->kind);
    if (!fits(ch, m->head_len, m->body_len)) return corrupt(ch, "request does not fit its arena", m->head_len, m->body_len);
    m->body_off = align8(m->head_len);
    return (int)i;
  }
  return -1;
}

uint32_t sb_worker_cancel_seq(sb_chan *ch) {
  /* acquire: pairs with the hub's seq_cst increment, so the cancel words written before it are visible */
  ch->cancel_seen = atomic_load_explicit(&ch->hdr->cancel_seq, memory_order_acquire);
  return ch->cancel_seen;
}

int sb_worker_cancelled(sb_chan *ch, uint32_t slot, uint32_t gen) {
  if (slot >= ch->g.slot_count || gen > 0xFFFFFFu) return -EINVAL;
  /* one read; any value the hub writes is harmless: it only matters when it names exactly this generation */
  return SHM_READ(slot_at(ch, slot)->cancel) == word(gen, 1);
}

int sb_worker_complete(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t status, uint32_t flags, uint32_t head_len,
                       uint32_t body_len) {
  if (slot >= ch->g.slot_count || flags > SB_RESP_ERROR || !fits(ch, head_len, body_len)) return -EINVAL;
  slot_hdr *s = slot_at(ch, slot);
  /* relaxed: only this side moves a slot out of CLAIMED, so the word cannot change under us legitimately.
   * The generation is what makes a second completion of an old request fail instead of answering the next one. */
  uint32_t w = atomic_load_explicit(&s->state, memory_order_relaxed);
  if (gen > 0xFFFFFFu || w != word(gen, SB_CLAIMED)) return -EINVAL;
  SHM_WRITE(s->status, status);
  SHM_WRITE(s->flags, flags);
  SHM_WRITE(s->resp_head, head_len);
  SHM_WRITE(s->resp_body, body_len);
  worker_finish(ch, s, slot, gen);
  return 0;
}

/* ---- rendezvous (§1) ---- */

static int name_to_addr(const char *name, struct sockaddr_un *a, socklen_t *len) {
  return plat_addr("slotbus.", name, NULL, a, len);
}

int sb_listen(const char *name) {
  struct sockaddr_un a;
  socklen_t len;
  int r = plat_check();
  if (r || (r = name_to_addr(name, &a, &len))) return r;
  int fd = plat_socket(SOCK_STREAM);
  if (fd < 0) return -errno;
  if ((r = plat_bind(fd, &a, len, 64))) {
    close(fd);
    return r;
  }
  return fd;
}

void sb_unlisten(int listen_fd) { plat_unbind_fd(listen_fd); }

static int send_hello(int sock, int32_t status, uint64_t region_size, const int *fds, int nfds) {
  sys_hello h = sys_hello_make(SB_MAGIC, SB_VERSION, sb_layout_hash(), status, region_size, (uint32_t)getpid());
  ssize_t r = sys_send_fds(sock, &h, sizeof h, fds, nfds, MSG_NOSIGNAL);
  return r == (ssize_t)sizeof h ? 0 : (r < 0 ? -errno : -EPIPE);
}

static sb_chan *chan_new(int is_hub, const geometry *g) {
  sb_chan *ch = calloc(1, sizeof *ch);
  if (!ch) return NULL;
  ch->is_hub = is_hub;
  ch->sock = ch->memfd = ch->my_bell = ch->peer_bell = -1;
  ch->base = MAP_FAILED;
  ch->g = *g;
  ch->msg.slot = -1;
  if (is_hub) {
    ch->gen = calloc(g->slot_count, sizeof *ch->gen);
    ch->busy = calloc(g->slot_count, 1);
    ch->free_stack = calloc(g->slot_count, sizeof *ch->free_stack);
    ch->hiwater = calloc(2ull * g->slot_count, sizeof *ch->hiwater);
    ch->hs = calloc(g->slot_count, sizeof *ch->hs);
    if (!ch->gen || !ch->busy || !ch->free_stack || !ch->hiwater || !ch->hs) {
      sb_close(ch);
      return NULL;
    }
    /* reversed, so slot 0 is claimed first */
    for (uint32_t i = 0; i < g->slot_count; i++) ch->free_stack[i] = g->slot_count - 1 - i;
    ch->free_top = g->slot_count;
  }
  return ch;
}

static int map_region(sb_chan *ch) {
  void *p = mmap(NULL, ch->g.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, ch->memfd, 0);
  if (p == MAP_FAILED) return -errno;
  ch->base = p;
  ch->hdr = p;
  plat_region_mapped(p, ch->g.region_size);
  return 0;
}

/* The uid's bit in cfg->full_mask, or 0 when it is not allowed at all. SO_PEERCRED reports the peer's
   effective uid, so ours is the one to compare with. */
static uint32_t uid_bit(const sb_hub_config *cfg, uint32_t uid) {
  if (uid == (uint32_t)geteuid()) return SB_FULL_OWN_UID;
  for (uint32_t i = 0; i < cfg->allow_uid_count && i < SB_MAX_ALLOW_UIDS; i++)
    if (cfg->allow_uids[i] == uid) return 1u << i;
  return 0;
}

static sb_chan *fail(sb_chan *ch, int *err, int code) {
  if (ch) sb_close(ch);
  if (err) *err = code;
  return NULL;
}

sb_chan *sb_accept(int listen_fd, const sb_hub_config *cfg, int *err, uint32_t *err_uid) {
  if (!cfg || cfg->slot_count < 1 || cfg->slot_count > SB_MAX_SLOTS || cfg->arena_size < 1 ||
      cfg->arena_size > 0xFFFFFFFFu - PAGE)
    return fail(NULL, err, -EINVAL);
  uint32_t win = cfg->stream_window, arena_size = (uint32_t)align_up(cfg->arena_size, PAGE);
  if (win && (win & (win - 1) || win < 4096 || win > arena_size || win > (1u << 30))) return fail(NULL, err, -EINVAL);
  /* non-blocking: the hello fits any empty socket buffer, and nothing after it is ever waited on */
  int sock = plat_accept(listen_fd, 1);
  if (sock < 0) return fail(NULL, err, sock);
  uint32_t uid = 0;
  int32_t pid = -1;
  int r = plat_peer(sock, &uid, &pid);
  if (r == 0 && !uid_bit(cfg, uid)) {
    send_hello(sock, EPERM, 0, NULL, 0);
    if (err_uid) *err_uid = uid;
    r = -EPERM;
  } else if (r == 0 && (cfg->full_mask & (SB_FULL_ALL | uid_bit(cfg, uid)))) {
    send_hello(sock, EUSERS, 0, NULL, 0);
    if (err_uid) *err_uid = uid;
    r = -EUSERS;
  }
  if (r) {
    close(sock);
    return fail(NULL, err, r);
  }
  geometry g = geometry_for(cfg->slot_count, (uint32_t)align_up(cfg->arena_size, PAGE));
  sb_chan *ch = chan_new(1, &g);
  if (!ch) {
    close(sock);
    return fail(NULL, err, -ENOMEM);
  }
  ch->sock = sock;
  ch->peer_pid = pid;
  ch->peer_uid = (int32_t)uid;
  ch->trim_bytes = cfg->trim_bytes;
  ch->stream_window = win;
  /* Linux: sealed, so the worker can never shrink it under us; portable: the SIGBUS guard (§13.3) */
  ch->memfd = plat_region_create("slotbus", g.region_size);
  if (ch->memfd < 0) return fail(ch, err, ch->memfd);
  /* each side reads its own doorbell and rings the other's: one eventfd each, or the two ends of a pair (§13.4) */
  plat_bell hub_bell, worker_bell;
  if ((r = plat_bell_open(&hub_bell))) return fail(ch, err, r);
  if ((r = plat_bell_open(&worker_bell))) {
    plat_bell_close(&hub_bell);
    return fail(ch, err, r);
  }
  ch->my_bell = hub_bell.rd;
  ch->peer_bell = worker_bell.wr;
  int give[2] = {worker_bell.rd, hub_bell.wr}; /* the worker's ends; ours too where rd == wr */
  if ((r = map_region(ch))) {
    for (int i = 0; i < 2; i++)
      if (give[i] != ch->my_bell && give[i] != ch->peer_bell) close(give[i]);
    return fail(ch, err, r);
  }
  hdr_identity *id = &ch->hdr->id;
  id->magic = SB_MAGIC;
  id->version = SB_VERSION;
  id->layout_hash = sb_layout_hash();
  id->slot_count = g.slot_count;
  id->ring_size = g.ring_size;
  id->arena_size = g.arena_size;
  id->region_size = g.region_size;
  id->hub_pid = (uint32_t)getpid();
  int fds[3] = {ch->memfd, give[0], give[1]};
  r = send_hello(sock, 0, g.region_size, fds, 3);
  for (int i = 0; i < 2; i++)
    if (give[i] != ch->my_bell && give[i] != ch->peer_bell) close(give[i]);
  if (r) return fail(ch, err, r);
  if (err) *err = 0;
  return ch;
}

/* Reads whatever has arrived of the hello, never blocking: a hub that sends part of it and stalls must not stall
 * us. The fds travel with the first byte; any that come later, or beyond three, are a broken hub.
 * 0: complete; -EAGAIN: not yet; -ECONNRESET, -SB_ECORRUPT, -errno. */
static int hello_read(sb_chan *ch) {
  while (ch->hello_got < sizeof ch->hello) {
    int fds[3], nfds, bad;
    ssize_t r = sys_recv_fds(ch->sock, (uint8_t *)&ch->hello + ch->hello_got, sizeof ch->hello - ch->hello_got,
                             MSG_DONTWAIT, fds, ch->hello_got == 0 ? 3 : 0, &nfds, &bad);
    if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    int *into[3] = {&ch->memfd, &ch->my_bell, &ch->peer_bell};
    for (int i = 0; i < nfds; i++) *into[ch->hello_fds++] = fds[i]; /* owned by ch from here */
    if (bad) return -SB_ECORRUPT;
    if (r == 0) return -ECONNRESET;
    ch->hello_got += (uint32_t)r;
  }
  return 0;
}

/* A region of exactly the size the hello announced (Linux: a sealed memfd; §1, §13.3). */
static int is_region(int fd, uint64_t size) { return size >= HDR_BYTES && plat_region_check(fd, size); }

/* The header is the hub's word; check it is self-consistent and matches what the hello and fstat said. */
static int check_header(sb_chan *ch, uint64_t size) {
  /* one copy, field by field, then only the copy is examined */
  const hdr_identity *shared = &ch->hdr->id;
  hdr_identity id = {SHM_READ(shared->magic),      SHM_READ(shared->version),    SHM_READ(shared->layout_hash),
                     SHM_READ(shared->slot_count), SHM_READ(shared->ring_size),  SHM_READ(shared->arena_size),
                     SHM_READ(shared->region_size), 0, 0};
  if (id.magic != SB_MAGIC || id.version != SB_VERSION || id.layout_hash != sb_layout_hash()) return -SB_ECORRUPT;
  if (id.slot_count < 1 || id.slot_count > SB_MAX_SLOTS || id.arena_size == 0 || id.arena_size % PAGE) return -SB_ECORRUPT;
  geometry g = geometry_for(id.slot_count, id.arena_size);
  if (g.ring_size != id.ring_size || g.region_size != id.region_size || g.region_size != size) return -SB_ECORRUPT;
  ch->g = g;
  return 0;
}

sb_chan *sb_connect_start(const char *name, int64_t hub_uid, int *err) {
  struct sockaddr_un a;
  socklen_t len;
  int r = plat_check();
  if (r || (r = name_to_addr(name, &a, &len))) return fail(NULL, err, r);
  geometry none = {0};
  sb_chan *ch = chan_new(0, &none);
  if (!ch) return fail(NULL, err, -ENOMEM);
  /* Non-blocking from the start: a unix connect then never waits (a full backlog says EAGAIN at once). */
  ch->sock = plat_socket(SOCK_STREAM);
  if (ch->sock < 0) return fail(ch, err, -errno);
  /* -EAGAIN: the hub is there but its accept queue is full (busy, or flooded); worth retrying for a while */
  if ((r = plat_connect(ch->sock, &a, len))) return fail(ch, err, r == -EWOULDBLOCK ? -EAGAIN : r);
  uint32_t uid = 0;
  int32_t pid = -1;
  if ((r = plat_peer(ch->sock, &uid, &pid))) return fail(ch, err, r);
  if (uid != (hub_uid < 0 ? geteuid() : (uid_t)hub_uid)) return fail(ch, err, -EPERM);
  ch->peer_pid = pid;
  ch->peer_uid = (int32_t)uid;
  if (err) *err = 0;
  return ch;
}

void sb_disconnect(sb_chan *ch) { shutdown(ch->sock, SHUT_RDWR); }

int sb_connect_finish(sb_chan *ch, int timeout_ms) {
  if (ch->base != MAP_FAILED) return 0;
  int64_t deadline = timeout_ms < 0 ? -1 : sys_now_ms() + timeout_ms;
  int r;
  while ((r = hello_read(ch)) == -EAGAIN) {
    int64_t left = deadline < 0 ? -1 : deadline - sys_now_ms();
    if (deadline >= 0 && left <= 0) return -EAGAIN;
    struct pollfd p = {ch->sock, POLLIN, 0};
    if (poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR) return -errno;
  }
  if (r) return r;
  const sys_hello *h = &ch->hello;
  if (h->magic != SB_MAGIC || h->version != SB_VERSION || h->layout_hash != sb_layout_hash()) return -EPROTO;
  if (h->status) return h->status == EPERM || h->status == EUSERS ? -(int)h->status : -SB_ECORRUPT;
  if (ch->hello_fds != 3 || !is_region(ch->memfd, h->size) || !plat_bell_check(ch->my_bell) ||
      !plat_bell_check(ch->peer_bell))
    return -SB_ECORRUPT;
  ch->g.region_size = h->size;
  if ((r = map_region(ch))) return r;
  if ((r = check_header(ch, h->size))) return r;
  if (!(ch->ws = calloc(ch->g.slot_count, sizeof *ch->ws))) return -ENOMEM;
  SHM_WRITE(ch->hdr->id.worker_pid, (uint32_t)getpid());
  return 0;
}

sb_chan *sb_connect(const char *name, int64_t hub_uid, int timeout_ms, int *err) {
  sb_chan *ch = sb_connect_start(name, hub_uid, err);
  if (!ch) return NULL;
  int r = sb_connect_finish(ch, timeout_ms);
  if (r) return fail(ch, err, r == -EAGAIN ? -ETIMEDOUT : r);
  return ch;
}

static void close_fds(sb_chan *ch) {
  int *fds[4] = {&ch->sock, &ch->memfd, &ch->my_bell, &ch->peer_bell};
  for (int i = 0; i < 4; i++)
    if (*fds[i] >= 0) {
      close(*fds[i]);
      *fds[i] = -1;
    }
}

int sb_detach(sb_chan *ch) {
  int r = 0;
  if (ch->base != MAP_FAILED) {
    plat_region_unmapped(ch->base);
    /* MAP_FIXED swaps the shared pages for private zero pages in one step: no window where the range is unmapped */
    void *p = mmap(ch->base, ch->g.region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
      /* Under strict overcommit the zero pages can be refused, and older kernels have unmapped the range by then.
       * Map the region itself back (its memory is already paid for): views stay valid, and the memory stays
       * until sb_close. */
      r = -errno;
      if (mmap(ch->base, ch->g.region_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, ch->memfd, 0) == MAP_FAILED)
        r = -EFAULT; /* nothing left to try: the range is gone, and a held view with it */
    }
  }
  close_fds(ch);
  return r;
}

void sb_close(sb_chan *ch) {
  if (!ch) return;
  if (ch->base != MAP_FAILED && ch->base) {
    plat_region_unmapped(ch->base);
    munmap(ch->base, ch->g.region_size);
  }
  close_fds(ch);
  free(ch->gen);
  free(ch->busy);
  free(ch->free_stack);
  free(ch->hiwater);
  free(ch->hs);
  free(ch->ws);
  free(ch);
}

/* ---- channel facts ---- */

uint8_t *sb_region(sb_chan *ch) { return ch->base; }
double sb_region_size(sb_chan *ch) { return (double)ch->g.region_size; }
uint32_t sb_slot_count(sb_chan *ch) { return ch->g.slot_count; }
uint32_t sb_arena_size(sb_chan *ch) { return ch->g.arena_size; }
double sb_arena_offset(sb_chan *ch, uint32_t slot, int response) {
  return slot < ch->g.slot_count ? (double)(arena(ch, slot, response) - ch->base) : -1;
}
int sb_socket_fd(sb_chan *ch) { return ch->sock; }
int sb_doorbell_fd(sb_chan *ch) { return ch->my_bell; }
int32_t sb_peer_pid(sb_chan *ch) { return ch->peer_pid; }
int32_t sb_peer_uid(sb_chan *ch) { return ch->peer_uid; }
sb_msg *sb_last_msg(sb_chan *ch) { return &ch->msg; }
const char *sb_error(sb_chan *ch) { return ch->error; }
uint32_t sb_slot_state(sb_chan *ch, uint32_t slot) {
  return slot < ch->g.slot_count ? atomic_load_explicit(&slot_at(ch, slot)->state, memory_order_relaxed) : 0;
}

/* ---- accept watcher ---- */

struct sb_accept_watch {
  int listen_fd;
  plat_bell ready, rearm, stop; /* local notes: eventfds, or socketpairs (§13.4) */
  pthread_t thread;
};

/* Blocks until fd is readable (1) or stop_fd is (0). */
static int wait_readable(int fd, int stop_fd) {
  struct pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  for (;;) {
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return 0;
    if (p[0].revents) return 1; /* POLLIN, or an error the caller's accept will report */
  }
}

static void *accept_watch_main(void *arg) {
  sb_accept_watch *w = arg;
  plat_thread_name(pthread_self(), "slotbus-accept");
  while (wait_readable(w->listen_fd, w->stop.rd)) {
    plat_bell_ring(w->ready.wr); /* full: already rung, the caller will look anyway */
    if (!wait_readable(w->rearm.rd, w->stop.rd)) break;
    plat_bell_drain(w->rearm.rd);
  }
  return NULL;
}

sb_accept_watch *sb_accept_watch_start(int listen_fd, int *err) {
  sb_accept_watch *w = calloc(1, sizeof *w);
  if (!w) {
    if (err) *err = -ENOMEM;
    return NULL;
  }
  w->listen_fd = listen_fd;
  w->ready.rd = w->ready.wr = w->rearm.rd = w->rearm.wr = w->stop.rd = w->stop.wr = -1;
  int r = plat_bell_open(&w->ready);
  if (!r) r = plat_bell_open(&w->rearm);
  if (!r) r = plat_bell_open(&w->stop);
  if (!r && (r = -pthread_create(&w->thread, NULL, accept_watch_main, w)) == 0) {
    plat_thread_name(w->thread, "slotbus-accept");
    if (err) *err = 0;
    return w;
  }
  plat_bell_close(&w->ready);
  plat_bell_close(&w->rearm);
  plat_bell_close(&w->stop);
  free(w);
  if (err) *err = r;
  return NULL;
}

int sb_accept_watch_fd(sb_accept_watch *w) { return w->ready.rd; }

void sb_accept_watch_rearm(sb_accept_watch *w) { plat_bell_ring(w->rearm.wr); /* full: already re-armed */ }

void sb_accept_watch_stop(sb_accept_watch *w) {
  if (!w) return;
  plat_bell_ring(w->stop.wr);
  pthread_join(w->thread, NULL);
  plat_bell_close(&w->ready);
  plat_bell_close(&w->rearm);
  plat_bell_close(&w->stop);
  free(w);
}
