/* Slot channels, docs/PROTOCOL.md §1-§2: listen, accept and the hello, connect, detach and close, the channel's
 * facts, the accept watcher. */
#include "slot_internal.h"
#include "recorder.h"

/* ---- rendezvous (§1) ---- */

uint32_t sb_layout_hash(void) { return sys_fnv1a(FNV1A_SEED, LAYOUT_DESC, strlen(LAYOUT_DESC)); }
uint32_t sb_abi_version(void) { return SB_ABI_VERSION; }

/* "name", or "name~k" for front k (1..SB_MAX_FRONTS-1) of a shared name (§15): the suffix is kept apart, since
 * no name may hold a '~', so a front's address can never be another bus's name. base (65 bytes) gets the name,
 * *suffix "~k" or NULL. 0 or -EINVAL. */
static int split_front(const char *name, char *base, const char **suffix) {
  const char *t = name ? strchr(name, '~') : NULL;
  *suffix = t;
  size_t n = t ? (size_t)(t - name) : name ? strlen(name) : 0;
  if (n > 64) return -EINVAL; /* plat_addr refuses it as well */
  if (name) memcpy(base, name, n);
  base[n] = 0;
  if (!t) return 0;
  size_t d = strlen(t + 1);
  if (n < 1 || d < 1 || d > 2 || t[1] == '0') return -EINVAL;
  unsigned k = 0;
  for (size_t i = 1; i <= d; i++) {
    if (t[i] < '0' || t[i] > '9') return -EINVAL;
    k = k * 10 + (unsigned)(t[i] - '0');
  }
  return k >= SB_MAX_FRONTS ? -EINVAL : 0;
}

/* door: the door for other uids (§1.1), a socket file in the door directory, instead of the socket directory's. */
static int listen_at(const char *name, int door) {
  char base[65];
  const char *suffix;
  int r = split_front(name, base, &suffix);
  return r ? r : plat_listen("slotbus.", base, suffix, door, 64);
}

int sb_listen(const char *name) { return listen_at(name, 0); }
int sb_listen_door(const char *name) { return listen_at(name, 1); }

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

static int out_of_fds(int code) { return code == -EMFILE || code == -ENFILE; }

/* A failure after accept: the worker is told when it is the hub's want of fds (status EMFILE or ENFILE, §1). */
static sb_chan *fail_accepted(sb_chan *ch, int *err, int code) {
  if (out_of_fds(code)) send_hello(ch->sock, -code, 0, NULL, 0);
  return fail(ch, err, code);
}

/* One fd held back for when accept fails for want of fds: freed, it takes the first waiting worker long enough to
 * tell it so, rather than leave it queued until its hello timeout. sb_accept's thread (the hub's) only. */
static int spare_fd = -1;

static int refuse_for_fds(int listen_fd, int code) {
  if (spare_fd < 0) return code;
  close(spare_fd);
  int sock = plat_accept(listen_fd, 1);
  if (sock >= 0) {
    send_hello(sock, -code, 0, NULL, 0);
    close(sock);
  }
  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return code;
}

sb_chan *sb_accept(int listen_fd, const sb_hub_config *cfg, int *err, uint32_t *err_uid) {
  if (!cfg || cfg->slot_count < 1 || cfg->slot_count > SB_MAX_SLOTS || cfg->arena_size < 1 ||
      cfg->arena_size > 0xFFFFFFFFu - PAGE)
    return fail(NULL, err, -EINVAL);
  uint32_t win = cfg->stream_window, arena_size = (uint32_t)align_up(cfg->arena_size, PAGE);
  if (win && (win & (win - 1) || win < 4096 || win > arena_size || win > (1u << 30))) return fail(NULL, err, -EINVAL);
  /* non-blocking: the hello fits any empty socket buffer, and nothing after it is ever waited on */
  if (spare_fd < 0) spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int sock = plat_accept(listen_fd, 1);
  if (sock < 0) return fail(NULL, err, out_of_fds(sock) ? refuse_for_fds(listen_fd, sock) : sock);
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
  ch->peer_start = pid > 0 ? sys_proc_start((uint32_t)pid) : 0;
  ch->peer_uid = (int32_t)uid;
  ch->trim_bytes = cfg->trim_bytes;
  ch->stream_window = win;
  /* Linux: sealed, so the worker can never shrink it under us; portable: the SIGBUS guard (§13.3) */
  ch->memfd = plat_region_create("slotbus", g.region_size);
  if (ch->memfd < 0) return fail_accepted(ch, err, ch->memfd);
  /* each side reads its own doorbell and rings the other's: the two ends of a socketpair each (§1.2) */
  plat_bell hub_bell, worker_bell;
  if ((r = plat_bell_open(&hub_bell))) return fail_accepted(ch, err, r);
  if ((r = plat_bell_open(&worker_bell))) {
    plat_bell_close(&hub_bell);
    return fail_accepted(ch, err, r);
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
  char base[65];
  const char *suffix;
  int r = plat_check();
  /* a worker told a hub uid not its own cannot see that uid's socket directory: the hub's door (§1.1) */
  int door = hub_uid >= 0 && (uid_t)hub_uid != geteuid() && !plat_portable;
  if (r || (r = split_front(name, base, &suffix))) return fail(NULL, err, r);
  geometry none = {0};
  sb_chan *ch = chan_new(0, &none);
  if (!ch) return fail(NULL, err, -ENOMEM);
  /* Non-blocking from the start: a unix connect then never waits; -EAGAIN: the hub is there but its accept queue
   * is full (busy, or flooded), worth retrying for a while */
  uint32_t uid = 0;
  int32_t pid = -1;
  if ((ch->sock = plat_dial("slotbus.", base, suffix, door ? hub_uid : -1, &uid, &pid)) < 0) {
    r = ch->sock;
    ch->sock = -1;
    return fail(ch, err, r);
  }
  if (uid != (hub_uid < 0 ? geteuid() : (uid_t)hub_uid)) return fail(ch, err, -EPERM);
  ch->peer_pid = pid;
  ch->peer_start = pid > 0 ? sys_proc_start((uint32_t)pid) : 0;
  ch->peer_uid = (int32_t)uid;
  if (err) *err = 0;
  return ch;
}

void sb_disconnect(sb_chan *ch) {
  rec_chan_gone(ch); /* its requests still in flight end as "worker gone" (§16.3) */
  shutdown(ch->sock, SHUT_RDWR);
}

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
  if (h->status)
    return h->status == EPERM || h->status == EUSERS || h->status == EMFILE || h->status == ENFILE ? -(int)h->status
                                                                                                      : -SB_ECORRUPT;
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
  rec_chan_gone(ch);
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
  rec_chan_gone(ch);
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
int sb_fd_dup(int fd) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return d < 0 ? -errno : d;
}
int32_t sb_peer_pid(sb_chan *ch) { return ch->peer_pid; }
int32_t sb_peer_uid(sb_chan *ch) { return ch->peer_uid; }
/* Its process exited (a zombie counts: it holds nothing) or its pid is another process's now (§1). Not known
 * (pid 0: another pid namespace; no start time to read) is alive: only EOF tells then. */
int sb_peer_gone(sb_chan *ch) {
  if (ch->peer_pid <= 0) return 0;
  uint32_t pid = (uint32_t)ch->peer_pid;
  if (!sys_proc_exists(pid)) return 1;
  int gone = 0;
  uint64_t now = plat_proc_start(pid, &gone, NULL);
  return gone || (now != 0 && ch->peer_start != 0 && now != ch->peer_start);
}
sb_msg *sb_last_msg(sb_chan *ch) { return &ch->msg; }
const char *sb_error(sb_chan *ch) { return ch->error; }
uint32_t sb_slot_state(sb_chan *ch, uint32_t slot) {
  return slot < ch->g.slot_count ? shm_load_relaxed(&slot_at(ch, slot)->state) : 0;
}

/* ---- accept watcher ---- */

struct sb_accept_watch {
  int listen_fd;
  plat_bell ready, rearm, stop; /* local notes: socketpairs (§1.2) */
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
