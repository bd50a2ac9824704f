/* Topics, open and membership (docs/PROTOCOL.md §8.1): create or join through the shared listening socket
 * and its hello, check the region, answer newcomers (the accept thread), collect dead entries (the tick), leave
 * and close. */
#include "topic_internal.h"

uint32_t sb_topic_layout_hash(void) { return sys_fnv1a(FNV1A_SEED, (const uint8_t *)LAYOUT_DESC, strlen(LAYOUT_DESC)); }

/* ---- open (§8.1) ---- */

static sb_topic *topic_new(const char *name) {
  sb_topic *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  snprintf(t->name, sizeof t->name, "%s", name);
  t->listen_fd = t->conn_fd = t->memfd = t->send_fd = -1;
  t->pid = (uint32_t)getpid();
  t->start = plat_proc_start(t->pid, NULL, NULL);
  t->pub_index = -1;
  return t;
}

/* ---- answering newcomers (§8.1) ---- */

static void serve_newcomers(sb_topic *t) {
  for (int i = 0; i < 64; i++) {
    int fd = plat_accept(t->listen_fd, 0);
    if (fd < 0) return;
    uint32_t uid;
    int ok = plat_peer(fd, &uid, NULL) == 0 && uid == getuid();
    sys_hello h =
        sys_hello_make(SB_TOPIC_MAGIC, SB_TOPIC_VERSION, sb_topic_layout_hash(), ok ? 0 : EPERM, t->size, t->pid);
    int both[2] = {t->memfd, t->listen_fd};
    (void)sys_send_fds(fd, &h, sizeof h, both, ok ? 2 : 0, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
  }
}

/* The accept thread (§8.1): asleep in poll until a newcomer connects or sb_topic_leave rings the stop bell. */
static void *accept_main(void *arg) {
  sb_topic *t = arg;
  struct pollfd p[2] = {{t->listen_fd, POLLIN, 0}, {t->stop.rd, POLLIN, 0}};
  plat_thread_name(pthread_self(), "sbt-accept");
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents || (p[0].revents & (POLLERR | POLLNVAL))) break;
    serve_newcomers(t); /* the socket is shared and non-blocking: another member may have taken them */
  }
  return NULL;
}

static int start_acceptor(sb_topic *t) {
  int r = plat_bell_open(&t->stop);
  if (r) return r;
  if ((r = pthread_create(&t->acceptor, NULL, accept_main, t))) {
    plat_bell_close(&t->stop);
    return -r;
  }
  t->acceptor_started = 1;
  plat_thread_name(t->acceptor, "sbt-accept");
  return 0;
}

static void stop_acceptor(sb_topic *t) {
  if (!t->acceptor_started) return;
  plat_bell_ring(t->stop.wr);
  pthread_join(t->acceptor, NULL);
  plat_bell_close(&t->stop);
  t->acceptor_started = 0;
}

static int map_topic(sb_topic *t) {
  /* The ring is mapped read-only until this handle first publishes (§8: subscribers cannot corrupt it). */
  void *p = mmap(NULL, t->size, PROT_READ, MAP_SHARED, t->memfd, 0);
  if (p == MAP_FAILED) return -errno;
  t->base = p;
  plat_region_mapped(p, t->size);
  if (mprotect(p, SB_TOPIC_OFF_DATA, PROT_READ | PROT_WRITE) < 0) return -errno;
  t->cap = ident(t)->capacity;
  t->seg = t->cap / SEGMENTS;
  t->scratch = malloc(t->cap / 4 + 1024);
  t->send_fd = plat_socket(SOCK_DGRAM);
  return t->scratch && t->send_fd >= 0 ? 0 : -ENOMEM;
}

static uint64_t keeper_mine(sb_topic *t) { return (uint64_t)(uint32_t)t->start << 32 | t->pid; }

static int become_keeper(sb_topic *t) {
  t->keeper = 1;
  shm_store_relaxed(keeper_start(t), t->start);
  /* release: pairs with the acquire of keep(); the region reaches others only by sendmsg after this anyway */
  shm_store_release(keeper_word(t), keeper_mine(t));
  return 0;
}

static int create_topic(sb_topic *t, uint32_t capacity) {
  if (capacity < SB_TOPIC_MIN_CAPACITY || capacity > SB_TOPIC_MAX_CAPACITY || (capacity & (capacity - 1)))
    return -EINVAL;
  t->size = (uint64_t)SB_TOPIC_OFF_DATA + capacity;
  t->memfd = plat_region_create("slotbus-topic", t->size);
  if (t->memfd < 0) return t->memfd;
  void *p = mmap(NULL, SB_TOPIC_OFF_DATA, PROT_READ | PROT_WRITE, MAP_SHARED, t->memfd, 0);
  if (p == MAP_FAILED) return -errno;
  identity *id = p;
  uint64_t topic_id = 0;
  if (plat_random(&topic_id, sizeof topic_id) < 0) topic_id = mono_ns() ^ t->pid;
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

/* A wake socket's name after "slotbus.topic.<name>." (§8.7): <16 lowercase hex>.<decimal>.<decimal>, nothing more. */
static int is_wake_rest(const char *rest) {
  for (int i = 0; i < 16; i++)
    if (!((rest[i] >= '0' && rest[i] <= '9') || (rest[i] >= 'a' && rest[i] <= 'f'))) return 0;
  const char *p = rest + 16;
  for (int part = 0; part < 2; part++) {
    if (*p++ != '.' || *p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
  }
  return *p == 0;
}

sb_topic *sb_topic_open_start(const char *name, uint32_t capacity, uint32_t create, int *err) {
  struct sockaddr_un a;
  socklen_t alen;
  int r = create > SB_CREATE_MUST ? -EINVAL : plat_check();
  if (!r) r = rendezvous_addr(name, &a, &alen);
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
    int fd = plat_socket(SOCK_STREAM);
    if (fd < 0) break;
    int e = -plat_connect(fd, &a, alen);
    if (e == 0) {
      uint32_t uid;
      if (plat_peer(fd, &uid, NULL) < 0 || uid != getuid()) {
        close(fd);
        sb_topic_close(t);
        *err = -EPERM;
        return NULL;
      }
      if (create == SB_CREATE_MUST) {
        close(fd);
        sb_topic_close(t);
        *err = -EEXIST;
        return NULL;
      }
      t->conn_fd = fd;
      *err = -EAGAIN;
      return t;
    }
    close(fd);
    if (e == EAGAIN) continue; /* the keeper's backlog is full: try again */
    if (e != ECONNREFUSED || create == SB_CREATE_NEVER) {
      sb_topic_close(t);
      *err = e == ECONNREFUSED ? -ENOENT : -e; /* nobody holds the name: every member has left */
      return NULL;
    }
    fd = plat_socket(SOCK_STREAM);
    if (fd < 0) break;
    if ((e = -plat_bind(fd, &a, alen, 64)) == 0) {
      t->listen_fd = fd;
      r = create_topic(t, capacity);
      if (r) {
        sb_topic_close(t);
        *err = r;
        return NULL;
      }
      /* the wake sockets of an earlier region's subscribers, all killed with it: no entry names them (§13.2) */
      (void)plat_sweep("slotbus.topic.", name, is_wake_rest);
      if ((r = start_acceptor(t))) {
        sb_topic_close(t);
        *err = r;
        return NULL;
      }
      *err = 0;
      return t;
    }
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
  /* the status is read only from a whole hello of ours: a member refuses with EPERM alone, and anything else (a
   * short or foreign hello, another status) is a malformed hello, never an errno the peer chose */
  int whole = n == (ssize_t)sizeof h && h.magic == SB_TOPIC_MAGIC;
  if (n == 0 || !whole || h.status != 0) {
    for (int i = 0; i < nfds; i++) close(fds[i]);
    if (n == 0) return -ECONNRESET;
    if (whole && h.status == EPERM) return -EPERM;
    snprintf(t->err, sizeof t->err, "the keeper's hello is malformed (%zd bytes)", n);
    return -SB_TOPIC_ECORRUPT;
  }
  /* the memfd and the shared listening socket (§8.1): from now on we hold the name too */
  if (nfds == 2) t->listen_fd = fds[1];
  if (n != (ssize_t)sizeof h || excess || nfds != 2 || !plat_is_listener(t->listen_fd) || h.magic != SB_TOPIC_MAGIC ||
      h.version != SB_TOPIC_VERSION || h.layout_hash != sb_topic_layout_hash())
    goto corrupt;
  t->memfd = fd;
  /* Linux: sealed against shrinking, so a peer can never make our reads fault (SIGBUS); portable: §13.3 */
  if (!plat_region_check(fd, h.size) || h.size <= SB_TOPIC_OFF_DATA ||
      h.size > (uint64_t)SB_TOPIC_OFF_DATA + SB_TOPIC_MAX_CAPACITY)
    goto corrupt;
  t->size = h.size;
  int r = map_topic(t);
  if (r) return r;
  if (check_header(t, t->size)) goto corrupt;
  return start_acceptor(t);
corrupt:
  if (fd >= 0 && t->memfd != fd) close(fd);
  snprintf(t->err, sizeof t->err, "the keeper's hello or region is malformed");
  return -SB_TOPIC_ECORRUPT;
}

sb_topic *sb_topic_open(const char *name, uint32_t capacity, uint32_t create, int timeout_ms, int *err) {
  uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    sb_topic *t = sb_topic_open_start(name, capacity, create, err);
    if (!t || *err == 0) return t;
    int r;
    while ((r = sb_topic_open_finish(t)) == -EAGAIN) {
      int64_t left = (int64_t)(deadline - mono_ns()) / 1000000;
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
    if (r != -ECONNRESET || mono_ns() >= deadline) return NULL;
  }
}

/* ---- membership: collecting the dead (§8.1) ---- */

/* Liveness of a registry entry (§8.1): its pid exists; deep: and is still the process that joined. */
static int alive(uint32_t pid, uint64_t start, int deep) {
  return sys_proc_exists(pid) && (!deep || sys_proc_same(pid, start));
}

static void reap(sb_topic *t, int deep) {
  for (uint32_t i = 0; i < SB_TOPIC_MAX_SUBS + SB_TOPIC_MAX_PUBS; i++) {
    int is_sub = i < SB_TOPIC_MAX_SUBS;
    uint8_t *e = is_sub ? sub_entry(t, i) : pub_entry(t, i - SB_TOPIC_MAX_SUBS);
    /* acquire: pid and start time were written before the entry went live */
    if (shm_load_acquire(shm_u32(e, 0)) != SB_ENTRY_LIVE) continue;
    uint32_t pid = shm_load_relaxed(shm_u32(e, 4));
    uint64_t start = shm_load_relaxed(shm_u64(e, 8));
    if (pid == t->pid || alive(pid, start, deep)) continue;
    uint32_t live = SB_ENTRY_LIVE;
    /* acquire: we own the entry's cleanup; exactly one member wins it */
    if (!shm_cas_acquire(shm_u32(e, 0), &live, SB_ENTRY_CLAIMING)) continue;
    if (is_sub) {
      release_parked(t, e);
      unbind_wake(t, i, shm_load_relaxed(shm_u32(e, SB_SUB_NONCE))); /* its file (§13.2) */
    }
    /* release: a new owner claiming it sees the cleanup done */
    shm_store_release(shm_u32(e, 0), SB_ENTRY_FREE);
  }
}

/* The keeper role passes on (§8.1): vacant (0) or held by a dead process, the first member to CAS it takes it. */
static void keep(sb_topic *t, int deep) {
  /* acquire: pairs with become_keeper's release and the winning CAS (pid and start mark are one word) */
  uint64_t w = shm_load_acquire(keeper_word(t));
  uint32_t pid = (uint32_t)w, mark = (uint32_t)(w >> 32);
  if (w == keeper_mine(t)) return; /* this process keeps it (this handle or another of ours) */
  if (w != 0 && sys_proc_exists(pid) && (!deep || !mark || (uint32_t)sys_proc_start(pid) == mark)) return;
  /* acq_rel: exactly one member replaces the word it read; a loser sees the winner's */
  if (!shm_cas_acq_rel(keeper_word(t), &w, keeper_mine(t))) return;
  t->keeper = 1;
  shm_store_relaxed(keeper_start(t), t->start); /* informational: the full start time */
}

static int tick(sb_topic *t, int deep) {
  if (!t->base) return -EINVAL;
  if (plat_region_lost(t->base)) {
    snprintf(t->err, sizeof t->err, "the topic region was truncated by a member (SIGBUS caught)");
    return -SB_TOPIC_ECORRUPT;
  }
  if (check_header(t, t->size)) {
    snprintf(t->err, sizeof t->err, "the topic header was overwritten");
    return -SB_TOPIC_ECORRUPT;
  }
  /* the accept thread answers newcomers; a member in the joiner's own process answers here too, at once */
  if (t->listen_fd >= 0) serve_newcomers(t);
  reap(t, deep);
  keep(t, deep);
  return 0;
}

/* /proc reads (pid reuse, zombies) a few times a second */
int sb_topic_tick(sb_topic *t) { return tick(t, (t->ticks++ % 16) == 0); }
int sb_topic_tick_deep(sb_topic *t) { return tick(t, 1); }

/* ---- leave / close ---- */

void sb_topic_leave(sb_topic *t) {
  if (!t) return;
  stop_acceptor(t); /* before the listening socket goes */
  if (t->base && t->pub_index >= 0) {
    shm_store_relaxed(fence_word(t, (uint32_t)t->pub_index), 0);
    /* release: the fence cleared, then the publisher entry freed */
    shm_store_release(shm_u32(pub_entry(t, (uint32_t)t->pub_index), 0), SB_ENTRY_FREE);
    t->pub_index = -1;
  }
  if (t->base && t->keeper) {
    uint64_t me = keeper_mine(t);
    /* release: vacant for the next member's keep(), which pairs with it */
    shm_cas_release(keeper_word(t), &me, 0);
    t->keeper = 0;
  }
  /* our hold on the name: a handle that stopped ticking must not keep newcomers waiting on it */
  if (t->listen_fd >= 0) plat_close_shared(t->listen_fd); /* the last member's close unlinks the name (§13.2) */
  t->listen_fd = -1;
}

void sb_topic_close(sb_topic *t) {
  if (!t) return;
  sb_topic_leave(t);
  if (t->conn_fd >= 0) close(t->conn_fd);
  if (t->send_fd >= 0) close(t->send_fd);
  if (t->memfd >= 0) close(t->memfd);
  if (t->base) plat_region_unmapped(t->base), munmap(t->base, t->size);
  if (t->alias) plat_region_unmapped(t->alias), munmap(t->alias, t->size);
  free(t->scratch);
  free(t);
}

/* ---- facts ---- */

uint8_t *sb_topic_region(sb_topic *t) { return t->base; }
uint32_t sb_topic_capacity(sb_topic *t) { return t->cap; }
/* acquire: pairs with the publishers' CAS of the tail, as a subscriber's read of it does */
double sb_topic_tail(sb_topic *t) { return (double)shm_load_acquire(tail_word(t)); }
int sb_topic_is_keeper(sb_topic *t) {
  /* relaxed: a fact for the caller, not a guard */
  return t->keeper && t->base && shm_load_relaxed(keeper_word(t)) == keeper_mine(t);
}
int sb_topic_fd(sb_topic *t) { return t->conn_fd >= 0 ? t->conn_fd : t->listen_fd; }
sb_topic_out *sb_topic_out_ptr(sb_topic *t) { return &t->out; }
const char *sb_topic_error(sb_topic *t) { return t->err; }
