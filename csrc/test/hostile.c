/* A worker's defences against a hub that breaks docs/PROTOCOL.md, through the public API (issue 7, items 4, 12).
 * Usage:
 *   hostile test              run every case; prints "hostile ok: N cases" or exits 1 naming the case
 *   hostile hub MODE NAME     be a hostile hub for other tests: listen as NAME, send a hello per MODE to every
 *                             worker that connects, then keep the connection open (never answer anything)
 *     MODE: devzero (/dev/zero as both doorbells), blocking (blocking socketpairs), eventfd (version 3's Linux
 *           doorbells), dgram (version 3's portable ones), pipe, devzero-region (/dev/zero as the region),
 *           partial (10 bytes, then nothing), v3 (a version 3 hub's hello, eventfd doorbells), honest (a
 *           well-formed hello and region, for contrast)
 * Every case runs under a watchdog: a worker that hangs fails it instead of hanging the run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "slotbus.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

/* docs/PROTOCOL.md §2 for one slot of one page: SLOTS = align64(1024 + 8) = 1088, ARENAS = 4096 */
#define REGION_SIZE (4096u + 2u * 4096u)

static const char *g_case = "setup";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hostile FAILED in %s: ", g_case);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  _exit(1);
}

static void watchdog_fired(int sig) {
  (void)sig;
  static const char msg[] = "hostile FAILED: watchdog: the worker hung in ";
  ssize_t r = write(2, msg, sizeof msg - 1);
  r = write(2, g_case, strlen(g_case));
  r = write(2, "\n", 1);
  (void)r;
  _exit(1);
}

static void case_begin(const char *name) {
  g_case = name;
  alarm(10);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unique_name(char *out, size_t n, const char *what) {
  static int counter;
  snprintf(out, n, "hostile-%s-%d-%d", what, (int)getpid(), counter++);
}

/* ---- a hand-made hub ---- */

/* A region whose header says what the honest hub's would: one slot, one page per arena. */
static int make_region(void) {
  int fd = (int)syscall(SYS_memfd_create, "hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, REGION_SIZE) < 0) die("memfd: %s", strerror(errno));
  uint32_t *h = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (h == MAP_FAILED) die("mmap: %s", strerror(errno));
  h[0] = SB_MAGIC, h[1] = SB_VERSION, h[2] = sb_layout_hash(), h[3] = 1, h[4] = 1, h[5] = 4096;
  uint64_t size = REGION_SIZE;
  memcpy(&h[6], &size, 8);
  h[8] = (uint32_t)getpid();
  munmap(h, REGION_SIZE);
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) die("seal: %s", strerror(errno));
  return fd;
}

static void hello_bytes_of(uint8_t out[32], uint32_t version) {
  uint32_t w[8] = {SB_MAGIC, version, sb_layout_hash(), 0, REGION_SIZE, 0, (uint32_t)getpid(), 0};
  memcpy(out, w, 32); /* region size is the u64 at 16: low word REGION_SIZE, high word 0 */
}

static void send_with_fds(int sock, const uint8_t *bytes, size_t len, const int *fds, int nfds) {
  struct iovec iov = {(void *)bytes, len};
  union {
    char buf[CMSG_SPACE(3 * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds > 0) {
    m.msg_control = u.buf;
    m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  if (sendmsg(sock, &m, MSG_NOSIGNAL) != (ssize_t)len) die("sendmsg: %s", strerror(errno));
}

static void hello_bytes(uint8_t out[32]) { hello_bytes_of(out, SB_VERSION); }

/* The worker's doorbell read end and the hub doorbell's ring end, as §1.2 makes them (type: SOCK_STREAM) or not;
 * the hub's own ends stay open for good (a stalled hub, not a dead one). */
static void bell_pair(int type, int out[2]) {
  int a[2], b[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, a) < 0 || socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, b) < 0)
    die("socketpair: %s", strerror(errno));
  out[0] = a[0], out[1] = b[1];
}

/* Sends the hello MODE asks for. partial: only its first 10 bytes (with the fds); the caller may send the rest. */
static void send_hello_as(int sock, const char *mode) {
  uint8_t hello[32];
  hello_bytes_of(hello, strcmp(mode, "v3") == 0 ? 3 : SB_VERSION);
  int fds[3] = {make_region(), -1, -1};
  if (strcmp(mode, "devzero") == 0) {
    fds[1] = open("/dev/zero", O_RDWR | O_CLOEXEC);
    fds[2] = open("/dev/zero", O_RDWR | O_CLOEXEC);
  } else if (strcmp(mode, "blocking") == 0) {
    bell_pair(SOCK_STREAM, &fds[1]);
  } else if (strcmp(mode, "eventfd") == 0 || strcmp(mode, "v3") == 0) {
    fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    fds[2] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  } else if (strcmp(mode, "dgram") == 0) {
    bell_pair(SOCK_DGRAM | SOCK_NONBLOCK, &fds[1]);
  } else if (strcmp(mode, "pipe") == 0) {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) die("pipe: %s", strerror(errno));
    fds[1] = p[0], fds[2] = p[1];
  } else if (strcmp(mode, "devzero-region") == 0) {
    close(fds[0]);
    fds[0] = open("/dev/zero", O_RDWR | O_CLOEXEC);
    bell_pair(SOCK_STREAM | SOCK_NONBLOCK, &fds[1]);
  } else {
    bell_pair(SOCK_STREAM | SOCK_NONBLOCK, &fds[1]);
  }
  for (int i = 0; i < 3; i++)
    if (fds[i] < 0) die("fd %d for %s: %s", i, mode, strerror(errno));
  send_with_fds(sock, hello, strcmp(mode, "partial") == 0 ? 10 : 32, fds, 3);
  for (int i = 0; i < 3; i++) close(fds[i]);
}

/* Accepts workers forever, greeting each per MODE; keeps every connection open. */
static _Noreturn void hostile_hub(const char *mode, const char *name) {
  int lfd = sb_listen(name);
  if (lfd < 0) die("sb_listen(%s) = %d", name, lfd);
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    int sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (sock < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        struct timespec t = {0, 5000000};
        nanosleep(&t, NULL);
        continue;
      }
      die("accept: %s", strerror(errno));
    }
    send_hello_as(sock, mode); /* and never close it: a stalled hub, not a dead one */
  }
}

/* A hostile hub as a child process, for one connection. Returns its pid; *go is a pipe it waits on before
 * sending the rest of a partial hello. */
static pid_t spawn_hub(const char *mode, const char *name, int *go) {
  int lfd = sb_listen(name);
  if (lfd < 0) die("sb_listen(%s) = %d", name, lfd);
  int p[2];
  if (pipe(p) < 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(p[1]);
    int sock;
    while ((sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct timespec t = {0, 1000000};
      nanosleep(&t, NULL);
    }
    if (sock < 0) _exit(2);
    send_hello_as(sock, mode);
    char c;
    if (read(p[0], &c, 1) == 1 && strcmp(mode, "partial") == 0) {
      uint8_t hello[32];
      hello_bytes(hello);
      send_with_fds(sock, hello + 10, 22, NULL, 0);
    }
    char buf[64];
    while (read(sock, buf, sizeof buf) > 0) {
    } /* until the worker leaves */
    _exit(0);
  }
  close(p[0]);
  close(lfd);
  *go = p[1];
  return pid;
}

static void reap(pid_t pid, int go) {
  close(go);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* ---- cases ---- */

/* Doorbells that are not non-blocking unix stream sockets (§1.2), or a region that is not a sealed memfd: refused at
 * attach as corrupt. Unrefused, /dev/zero spins the doorbell drain for good and a blocking socket hangs it. */
static int case_bad_fds(void) {
  static const char *modes[] = {"devzero", "blocking", "eventfd", "dgram", "pipe", "devzero-region"};
  for (int i = 0; i < 6; i++) {
    char name[64], what[64];
    snprintf(what, sizeof what, "fds: %s", modes[i]);
    case_begin(what);
    unique_name(name, sizeof name, "fds");
    int go;
    pid_t hub = spawn_hub(modes[i], name, &go);
    int err = 0;
    sb_chan *ch = sb_connect(name, -1, 2000, &err);
    if (ch) {
      sb_unpark(ch); /* what a worker does on waking; the watchdog catches it if it never returns */
      sb_close(ch);
      die("a hub sending %s was accepted", modes[i]);
    }
    if (err != -SB_ECORRUPT) die("sb_connect gave %d, expected -SB_ECORRUPT (%d)", err, -SB_ECORRUPT);
    reap(hub, go);
  }
  /* the same hand-made hub with honest fds is accepted: what was refused above was the fds alone */
  case_begin("fds: honest");
  char name[64];
  unique_name(name, sizeof name, "fds");
  int go;
  pid_t hub = spawn_hub("honest", name, &go);
  int err = 0;
  sb_chan *ch = sb_connect(name, -1, 2000, &err);
  if (!ch) die("the honest hand-made hub was refused: %d", err);
  if (sb_slot_count(ch) != 1 || sb_arena_size(ch) != 4096) die("honest hub: geometry %u/%u", sb_slot_count(ch), sb_arena_size(ch));
  sb_unpark(ch);
  if (sb_worker_poll(ch) != -1) die("honest hub: a request out of nowhere");
  sb_close(ch);
  reap(hub, go);
  /* a version 3 hub (eventfd doorbells) is refused by its hello's version, before any fd is looked at */
  case_begin("version: 3");
  unique_name(name, sizeof name, "fds");
  hub = spawn_hub("v3", name, &go);
  ch = sb_connect(name, -1, 2000, &err);
  if (ch) die("a version 3 hub was accepted");
  if (err != -EPROTO) die("sb_connect to a version 3 hub gave %d, expected -EPROTO (%d)", err, -EPROTO);
  reap(hub, go);
  return 8;
}

/* A hub that sends part of its hello and stalls: finish(0) says -EAGAIN at once, a timed connect times out,
 * and once the rest arrives the same channel attaches. Before: MSG_WAITALL on a blocking socket hung finish(0). */
static int case_partial_hello(void) {
  case_begin("partial hello");
  char name[64];
  unique_name(name, sizeof name, "partial");
  int go;
  pid_t hub = spawn_hub("partial", name, &go);
  int err = 0;
  sb_chan *w = sb_connect_start(name, -1, &err);
  if (!w) die("sb_connect_start = %d", err);
  int r;
  int64_t until = now_ms() + 2000;
  /* wait until the 10 bytes are surely there: finish(0) must keep saying -EAGAIN, never block */
  while (now_ms() < until)
    if ((r = sb_connect_finish(w, 0)) != -EAGAIN) die("sb_connect_finish(0) on a partial hello = %d, expected -EAGAIN", r);
  if ((r = sb_connect_finish(w, 100)) != -EAGAIN) die("sb_connect_finish(100) on a partial hello = %d, expected -EAGAIN", r);
  if (write(go, "g", 1) != 1) die("cannot tell the hub to go on");
  if ((r = sb_connect_finish(w, 5000)) != 0) die("sb_connect_finish after the rest of the hello = %d, expected 0", r);
  if (sb_slot_count(w) != 1) die("attached with %u slots", sb_slot_count(w));
  sb_close(w);
  reap(hub, go);

  case_begin("partial hello, blocking connect");
  unique_name(name, sizeof name, "partial");
  hub = spawn_hub("partial", name, &go);
  sb_chan *ch = sb_connect(name, -1, 300, &err);
  if (ch || err != -ETIMEDOUT) die("sb_connect to a stalled hello gave %p/%d, expected -ETIMEDOUT", (void *)ch, err);
  reap(hub, go);
  return 2;
}

/* A hub and a worker in this process: the worker attached with the one-thread trick. */
typedef struct {
  int lfd;
  sb_chan *hub, *worker;
} pair;

static pair pair_open(uint32_t slots) {
  char name[64];
  unique_name(name, sizeof name, "pair");
  pair p;
  p.lfd = sb_listen(name);
  if (p.lfd < 0) die("sb_listen = %d", p.lfd);
  int err = 0;
  p.worker = sb_connect_start(name, -1, &err);
  if (!p.worker) die("sb_connect_start = %d", err);
  sb_hub_config cfg = {.slot_count = slots, .arena_size = 4096, .trim_bytes = 4096};
  uint32_t uid;
  p.hub = sb_accept(p.lfd, &cfg, &err, &uid);
  if (!p.hub) die("sb_accept = %d", err);
  if ((err = sb_connect_finish(p.worker, 1000)) != 0) die("sb_connect_finish = %d", err);
  return p;
}

static void pair_close(pair *p) {
  sb_close(p->worker);
  sb_close(p->hub);
  close(p->lfd);
}

static atomic_int flood_stop;

static void *flood_socket(void *arg) {
  int fd = *(int *)arg;
  static char junk[65536];
  memset(junk, 'D', sizeof junk);
  while (!atomic_load_explicit(&flood_stop, memory_order_relaxed)) {
    ssize_t r = send(fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)r;
  }
  return NULL;
}

/* A peer that never stops writing on the socket: sb_wait still returns (0: nothing for us), both ways of
 * waiting, and one call reads a bounded part of what is queued. Before: peer_gone read for as long as bytes
 * kept coming. */
static int case_socket_flood(void) {
  case_begin("socket flood");
  pair p = pair_open(1);
  int fd = sb_socket_fd(p.hub);
  static char junk[4096];
  memset(junk, 'D', sizeof junk);
  size_t queued = 0;
  ssize_t sent;
  while ((sent = send(fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT)) > 0) queued += (size_t)sent;
  int r = sb_wait(p.worker, 0, 0);
  int left = 0;
  if (r != 0 || ioctl(sb_socket_fd(p.worker), FIONREAD, &left) < 0) die("sb_wait over %zu queued bytes = %d", queued, r);
  if (left <= 0 || (size_t)left < queued / 2) die("one sb_wait read %zu of %zu queued bytes: unbounded", queued - (size_t)left, queued);
  atomic_store(&flood_stop, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, flood_socket, &fd) != 0) die("pthread_create");
  for (int use_futex = 0; use_futex < 2; use_futex++)
    for (int i = 0; i < 20; i++) {
      int r = sb_wait(p.worker, 20, use_futex);
      if (r == -EPIPE || r < 0) die("sb_wait(%s) under a flood = %d", use_futex ? "futex" : "eventfd", r);
    }
  atomic_store(&flood_stop, 1);
  pthread_join(t, NULL);
  pair_close(&p);
  return 1;
}

/* The hub side of the cancelled-slot flood, run inside the worker's own wake-up of the hub: this binary's send()
 * (the worker rings the hub's doorbell after each completion, since the hub says it is parked) publishes slot 0
 * again as cancelled and says "parked" again. So the sq is never empty while sb_worker_poll runs. A ring is a send of
 * one byte (PROTOCOL.md §1.2). */
static uint8_t *g_flood_region; /* the hub's mapping, or NULL */
static int g_flood_left;

static void push_cancelled_slot0(uint8_t *base) {
  _Atomic uint32_t *sq_tail = (_Atomic uint32_t *)(base + 64), *sq = (_Atomic uint32_t *)(base + 1024);
  _Atomic uint32_t *hub_parked = (_Atomic uint32_t *)(base + 384), *state0 = (_Atomic uint32_t *)(base + 1024 + 64);
  atomic_store(state0, SB_CANCELLED);
  uint32_t tail = atomic_load(sq_tail);
  atomic_store(&sq[tail & 7], (tail + 1) << 12); /* slot 0 at position tail (PROTOCOL.md §4) */
  atomic_store(sq_tail, tail + 1);
  atomic_store(hub_parked, SB_PARK_EVENTFD);
}

ssize_t send(int fd, const void *buf, size_t n, int flags) {
  if (g_flood_region && n == 1 && g_flood_left > 0) {
    g_flood_left--;
    push_cancelled_slot0(g_flood_region);
  }
  return syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}

/* A hub that keeps publishing cancelled slots: one sb_worker_poll does at most ring_size of them and returns.
 * Before: it went on for as long as the hub pushed. */
static int case_cancel_flood(void) {
  case_begin("cancelled-slot flood");
  const uint32_t slots = 8; /* ring of 8; slot headers at align64(1024 + 8 * 8) = 1088 */
  pair p = pair_open(slots);
  uint8_t *base = sb_region(p.hub);
  _Atomic uint32_t *cq_tail = (_Atomic uint32_t *)(base + 192);
  uint32_t before = atomic_load(cq_tail);
  g_flood_left = 1000;
  g_flood_region = base;
  push_cancelled_slot0(base);
  int got = sb_worker_poll(p.worker);
  g_flood_region = NULL;
  if (g_flood_left == 1000) die("the worker never rang the parked hub (no send of one byte)");
  uint32_t done = atomic_load(cq_tail) - before;
  if (got != -1) die("sb_worker_poll over cancelled slots = %d (%s)", got, sb_error(p.worker));
  if (done == 0 || done > slots) die("one sb_worker_poll completed %u cancelled slots; the ring holds %u", done, slots);
  pair_close(&p);
  return 1;
}

/* A completion with the generation of the slot's previous request is refused, and the request now in the slot
 * is still open for its own answer. */
static int case_stale_completion(void) {
  case_begin("stale completion");
  pair p = pair_open(1);
  uint32_t gens[2];
  for (int round = 0; round < 2; round++) {
    int slot = sb_hub_claim(p.hub);
    if (slot != 0 || sb_hub_publish(p.hub, 0, SB_KIND_RAW, 100 + round, 0, 0) != 0) die("publish round %d", round);
    if (sb_worker_poll(p.worker) != 0) die("worker poll round %d", round);
    gens[round] = sb_last_msg(p.worker)->gen;
    if (round == 0) {
      if (sb_worker_complete(p.worker, 0, gens[0], 0, 0, 0, 0) != 0) die("first completion refused");
      if (sb_hub_poll(p.hub) != 0 || sb_hub_release(p.hub, 0) != 0) die("hub poll/release");
    }
  }
  if (gens[0] == gens[1]) die("the reused slot kept generation %u", gens[0]);
  int r = sb_worker_complete(p.worker, 0, gens[0], 0, 0, 0, 0);
  if (r != -EINVAL) die("a completion with the old generation gave %d, expected -EINVAL", r);
  if (sb_hub_poll(p.hub) != -1) die("the stale completion reached the hub");
  if ((r = sb_worker_complete(p.worker, 0, gens[1], 0, 0, 0, 0)) != 0) die("the right completion gave %d", r);
  if (sb_hub_poll(p.hub) != 0 || sb_last_msg(p.hub)->id != 101) die("the hub did not get request 101's answer");
  sb_hub_release(p.hub, 0);
  pair_close(&p);
  return 1;
}

/* A worker that never reads cancel_seq (PROTOCOL.md §3 allows it): a cancel wakes its park once, after which it
 * sleeps again, and it sees its hub go while work is still queued. Before: sb_park and sb_wait returned 1 at once
 * for ever after the first cancel (a whole core), and sb_wait never looked at the socket, so it never saw the EOF. */
static int case_cancel_unread(void) {
  for (int use_futex = 0; use_futex < 2; use_futex++) {
    case_begin(use_futex ? "a cancel the worker never reads (futex)" : "a cancel the worker never reads (doorbell)");
    pair p = pair_open(2);
    if (sb_hub_claim(p.hub) != 0 || sb_hub_publish(p.hub, 0, SB_KIND_RAW, 1, 0, 0) != 0) die("publish");
    if (sb_worker_poll(p.worker) != 0) die("worker poll");
    if (sb_hub_cancel(p.hub, 0) != 2) die("the hub's cancel of a claimed request");
    int r = sb_wait(p.worker, 1000, use_futex);
    if (r != 1) die("the cancel did not wake the worker: sb_wait = %d", r);
    for (int i = 0; i < 3; i++) {
      if ((r = sb_park(p.worker)) != 0) die("sb_park after the cancel woke it = %d, expected 0 (parked)", r);
      sb_unpark(p.worker);
      if ((r = sb_wait(p.worker, 20, use_futex)) != 0) die("sb_wait after the cancel woke it = %d, expected 0", r);
    }
    if (sb_hub_cancel(p.hub, 0) != 2 || sb_wait(p.worker, 1000, use_futex) != 1) die("a second cancel did not wake it");
    if (sb_hub_claim(p.hub) != 1 || sb_hub_publish(p.hub, 1, SB_KIND_RAW, 2, 0, 0) != 0) die("publish");
    sb_close(p.hub);
    if ((r = sb_wait(p.worker, 1000, use_futex)) != -EPIPE) die("the hub closed with work queued: sb_wait = %d", r);
    sb_close(p.worker);
    close(p.lfd);
  }
  return 2;
}

/* sb_hub_publish refuses a kind that is no sb_kind with -EINVAL and a request past its arena with -E2BIG, as
 * slotbus.h says; neither reaches the worker, and the slot, unclaimed, is published afresh. */
static int case_publish_refusals(void) {
  case_begin("publish refusals");
  pair p = pair_open(1);
  if (sb_hub_claim(p.hub) != 0) die("claim");
  int r = sb_hub_publish(p.hub, 0, SB_KIND_HTTP + 1, 1, 0, 0);
  if (r != -EINVAL) die("a bad kind gave %d, expected -EINVAL", r);
  if ((r = sb_hub_publish(p.hub, 0, SB_KIND_RAW, 2, 0, 4097)) != -E2BIG) die("4097 bytes gave %d, expected -E2BIG", r);
  if ((r = sb_hub_publish(p.hub, 1, SB_KIND_RAW, 3, 0, 0)) != -EINVAL) die("an unclaimed slot gave %d", r);
  if (sb_worker_poll(p.worker) != -1) die("a refused publish reached the worker");
  if (sb_hub_unclaim(p.hub, 0) != 0 || sb_hub_claim(p.hub) != 0) die("unclaim, claim again");
  if ((r = sb_hub_publish(p.hub, 0, SB_KIND_HTTP, 4, 0, 4096)) != 0) die("a full arena gave %d", r);
  if (sb_worker_poll(p.worker) != 0 || sb_last_msg(p.worker)->id != 4) die("the worker did not get request 4");
  pair_close(&p);
  return 1;
}

/* ---- sb_detach when the zero pages are refused ----
 * This binary's mmap: when armed, the next anonymous MAP_FIXED mapping behaves as older kernels do under strict
 * overcommit: the old range is unmapped, then the call fails with ENOMEM. */
static int fail_zero_swap;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (fail_zero_swap && (flags & MAP_FIXED) && (flags & MAP_ANONYMOUS)) {
    fail_zero_swap = 0;
    syscall(SYS_munmap, addr, len);
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int case_detach_refused(void) {
  case_begin("sb_detach with the zero pages refused");
  pid_t pid = fork(); /* a crash here must be reported, not end the run */
  if (pid == 0) {
    pair p = pair_open(1);
    volatile uint8_t *held = sb_region(p.worker) + (size_t)sb_arena_offset(p.worker, 0, 0);
    sb_region(p.hub)[(size_t)sb_arena_offset(p.hub, 0, 0)] = 42;
    fail_zero_swap = 1;
    int r = sb_detach(p.worker);
    if (r != -ENOMEM) die("sb_detach gave %d, expected -ENOMEM", r);
    if (*held != 42) die("a held view reads %u after the refused swap, expected the region's 42", *held);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) die("a view held across sb_detach crashed with signal %d", WTERMSIG(status));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(1);
  return 1;
}

/* ---- uids: SO_PEERCRED gives the effective uid, so each side compares with its own effective uid ---- */

static int case_effective_uid(void) {
  case_begin("effective uid");
  if (geteuid() != 0) {
    printf("effective uid: skipped, needs root to make a process whose real and effective uids differ\n");
    return 0;
  }
  char name[64];
  unique_name(name, sizeof name, "euid");
  const uid_t nobody = 65534;
  int ready[2];
  if (pipe(ready) < 0) die("pipe");
  pid_t hub = fork();
  if (hub == 0) {
    /* real uid root, effective uid nobody: the hub must treat a worker running as nobody as its own */
    if (setresuid(0, nobody, 0) < 0) die("setresuid: %s", strerror(errno));
    int lfd = sb_listen(name);
    if (lfd < 0) die("hub: sb_listen = %d", lfd);
    if (write(ready[1], "r", 1) != 1) _exit(2);
    sb_hub_config cfg = {.slot_count = 1, .arena_size = 4096, .trim_bytes = 4096};
    for (int64_t until = now_ms() + 5000; now_ms() < until;) {
      int err = 0;
      uint32_t uid = 0;
      sb_chan *ch = sb_accept(lfd, &cfg, &err, &uid);
      if (ch) {
        char c;
        while (read(sb_socket_fd(ch), &c, 1) != 0) {
          struct timespec t = {0, 1000000};
          nanosleep(&t, NULL);
        }
        _exit(0);
      }
      if (err == -EPERM) die("hub (euid %u) refused a worker of uid %u", nobody, uid);
      struct timespec t = {0, 1000000};
      nanosleep(&t, NULL);
    }
    _exit(3);
  }
  char c;
  if (read(ready[0], &c, 1) != 1) die("the hub did not start");
  pid_t worker = fork();
  if (worker == 0) {
    if (setresuid(0, nobody, 0) < 0) die("setresuid: %s", strerror(errno));
    int err = 0;
    sb_chan *ch = sb_connect(name, -1, 3000, &err);
    if (!ch) die("worker (euid %u) could not attach to a hub of euid %u: %d", nobody, nobody, err);
    sb_close(ch);
    _exit(0);
  }
  int ws = 0, hs = 0;
  waitpid(worker, &ws, 0);
  waitpid(hub, &hs, 0);
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !WIFEXITED(hs) || WEXITSTATUS(hs) != 0) _exit(1);
  return 1;
}

int main(int argc, char **argv) {
  signal(SIGALRM, watchdog_fired);
  signal(SIGPIPE, SIG_IGN);
  if (argc == 4 && strcmp(argv[1], "hub") == 0) hostile_hub(argv[2], argv[3]);
  if (argc != 2 || strcmp(argv[1], "test") != 0) {
    fprintf(stderr, "usage: hostile test | hostile hub devzero|blocking|semaphore|pipe|devzero-region|partial|honest NAME\n");
    return 2;
  }
  int n = 0;
  n += case_bad_fds();
  n += case_partial_hello();
  n += case_socket_flood();
  n += case_cancel_flood();
  n += case_stale_completion();
  n += case_cancel_unread();
  n += case_publish_refusals();
  n += case_detach_refused();
  n += case_effective_uid();
  alarm(0);
  printf("hostile ok: %d cases\n", n);
  return 0;
}
