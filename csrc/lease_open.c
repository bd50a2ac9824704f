/* Lease contests, docs/PROTOCOL.md §7.1: open (the shared listening socket, the hello, the table made or
 * adopted, joining the members) and close. */
#include "lease_internal.h"

/* ---- rendezvous (§7.1) ---- */

uint32_t sbl_layout_hash(void) { return sys_fnv1a(FNV1A_SEED, (const uint8_t *)LAYOUT_DESC, strlen(LAYOUT_DESC)); }

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

/* Where sbl_open's caller wants the pids of stopped members: room for max, *n how many there were. */
typedef struct {
  uint32_t *pids;
  uint32_t max;
  uint32_t *n;
} stopped_out;

/* §7.1 frozen members: 1 when every process holding the contest's listening socket is stopped, their pids in
 * *out; 0 when one runs or nothing can be told (the portable backend cannot, §13.5: the newcomer times out). */
static int members_all_stopped(const char *name, const stopped_out *out) {
  uint32_t n = 0, more = 0;
  if (plat_listeners_stopped("slotbus-lease.", name, out->pids, out->pids ? out->max : 0, &n, &more) != 1) return 0;
  if (out->n) *out->n = n + more;
  return 1;
}

#define FROZEN_CHECK_MS 250

static int recv_hello(int sock, sys_hello *h, int fds[2], int timeout_ms, const char *name,
                      const stopped_out *stopped) {
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
    if (members_all_stopped(name, stopped)) return -EHOSTDOWN;
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
    uint32_t k = shm_load_relaxed(&e->key);
    if ((k & 0xFF) == SBL_KEY_WRITING && ((k >> 8) & 0xFF) == m && (k >> 16) == gen)
      shm_cas_relaxed(&e->key, &k, SBL_KEY_ABANDONED);
    uint64_t w = shm_load_acquire(&e->word);
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
      uint64_t w = shm_load_relaxed(&r->word);
      if (m_state(w) > SBL_MEMBER_ALIVE) return corrupt(c, "bad member word", m, w);
      if (pass == 1 && m_state(w) == SBL_MEMBER_ALIVE) {
        member_alive(c, m, m_gen(w)); /* a full table: reap the dead, then look again */
        w = shm_load_relaxed(&r->word);
      }
      if (pass == 1 && m_state(w) == SBL_MEMBER_JOINING && kill((pid_t)m_pid(w), 0) < 0 && errno == ESRCH)
        reap(c, m, w), w = shm_load_relaxed(&r->word);
      if (m_state(w) != SBL_MEMBER_FREE) continue;
      uint64_t joining = member_word(pid, m_gen(w), SBL_MEMBER_JOINING);
      /* acquire: the previous occupant's fold of its counters is done before we zero them */
      if (!shm_cas_acquire(&r->word, &w, joining)) continue;
      for (int k = 0; k < C_COUNT; k++) shm_store_relaxed(&r->counters[k], 0);
      shm_store_relaxed(&r->start, start);
      sweep_lap(c, m, m_gen(w));
      c->me = m;
      c->my_gen = m_gen(w);
      c->my_word = member_word(pid, c->my_gen, SBL_MEMBER_ALIVE);
      /* release: a checker that loads ALIVE with acquire sees our start time */
      shm_store_release(&r->word, c->my_word);
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
                    uint32_t create, int timeout_ms, const stopped_out *stopped) {
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
    int r = recv_hello(s, &h, fds, timeout_ms, name, stopped);
    close(s);
    if (r) {
      if (fds[0] >= 0) close(fds[0]);
      if (fds[1] >= 0) plat_close_shared(fds[1]);
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
    plat_close_shared(l);
    return r;
  }
  c->listen_fd = l;
  return 1;
}

sbl_contest *sbl_open(const char *name, uint32_t capacity, uint32_t create, int timeout_ms, int *err,
                      uint32_t *stopped, uint32_t stopped_max, uint32_t *stopped_n) {
  struct sockaddr_un a;
  socklen_t alen;
  stopped_out out = {stopped, stopped_max, stopped_n};
  if (stopped_n) *stopped_n = 0;
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
    r = try_open(c, name, &a, alen, capacity, create, timeout_ms < 0 ? ACCEPT_TIMEOUT_MS : timeout_ms, &out);
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
    for (int i = 0; i < C_COUNT; i++) counts[i] = shm_load_relaxed(&r->counters[i]);
    uint64_t w = c->my_word;
    /* release: our last claims' writes precede the record going free; a reaper may have beaten us (then
     * it folded the counters) */
    if (shm_cas_release(&r->word, &w, member_word(0, c->my_gen + 1, SBL_MEMBER_FREE))) {
      for (int i = 0; i < C_COUNT; i++) shm_fetch_add_relaxed(&hdr(c)->totals[i], counts[i]);
      /* our claims are stale now: wake anyone waiting on a subject we held */
      for (uint32_t i = 0; i < c->capacity; i++) {
        entry_t *e = entry_at(c, i);
        uint64_t cw = shm_load_relaxed(&e->word);
        if (w_state(cw) != SBL_FREE && w_member(cw) == c->me && w_gen(cw) == (c->my_gen & 0xFFFF)) {
          shm_fetch_add_seq_cst(&e->wake_seq, 1);
          plat_wake(&e->wake_seq, 1);
        }
      }
    }
  }
  if (c->base != MAP_FAILED) plat_region_unmapped(c->base), munmap(c->base, c->size);
  if (c->memfd >= 0) close(c->memfd);
  if (c->listen_fd >= 0) plat_close_shared(c->listen_fd); /* the last member's close unlinks the name (§13.2) */
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
