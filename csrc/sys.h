/* Internal to libslotbus (slotbus.c, lease.c, topic_*.c): the system prelude and the few helpers they share.
 * Include it first, before any system header, so _GNU_SOURCE takes effect. Not part of the public API. */
#ifndef SLOTBUS_SYS_H
#define SLOTBUS_SYS_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fallocate, struct ucred, accept4, pthread_setname_np */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Older libc headers lack these; the values are the kernel's. */
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

#define FNV1A_SEED 2166136261u

/* FNV-1a 32 over n bytes, continuing from h (FNV1A_SEED to start): layout hashes and table hashing. */
static inline uint32_t sys_fnv1a(uint32_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

/* Milliseconds on the monotonic clock. */
static inline int64_t sys_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long sys_futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
  return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

/* The abstract unix address "\0<prefix><name><suffix>" (nothing on disk). name: 1-64 of [A-Za-z0-9._-]. */
static inline int sys_abstract_addr(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a,
                                    socklen_t *len) {
  size_t n = name ? strlen(name) : 0;
  if (n < 1 || n > 64) return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return -EINVAL;
  }
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  int w = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "%s%s%s", prefix, name, suffix ? suffix : "");
  if (w < 0 || (size_t)w >= sizeof a->sun_path - 1) return -EINVAL;
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)w);
  return 0;
}

/* The 32-byte hello that answers a newcomer (docs/PROTOCOL.md §1, §7.1, §8.1): one layout for slot channels,
 * lease contests and topics, each with its own magic, version and layout hash. Each reads it its own way
 * (§1 in pieces, §7.1 in slices watching for stopped members, §8.1 in one non-blocking read). */
typedef struct {
  uint32_t magic, version, layout_hash;
  int32_t status; /* 0, or a positive errno: refused, and no fds come with it */
  uint64_t size;  /* of the region or table the fds map */
  uint32_t pid, reserved;
} sys_hello;
_Static_assert(sizeof(sys_hello) == 32, "hello");

static inline sys_hello sys_hello_make(uint32_t magic, uint32_t version, uint32_t layout_hash, int32_t status,
                                       uint64_t size, uint32_t pid) {
  sys_hello h = {magic, version, layout_hash, status, size, pid, 0};
  return h;
}

/* Sends len bytes with up to 3 fds attached (SCM_RIGHTS; none if nfds is 0). Returns sendmsg's result. */
static inline ssize_t sys_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags) {
  struct iovec iov = {(void *)buf, len};
  union {
    char buf[CMSG_SPACE(3 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds > 0 && nfds <= 3) {
    memset(&u, 0, sizeof u);
    m.msg_control = u.buf;
    m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  return sendmsg(sock, &m, flags);
}

/* recvmsg of up to len bytes with the SCM_RIGHTS fds that come along (EINTR retried). The first max_fds of them
 * go to fds (*nfds, the caller's from here); any beyond are closed and, like truncated control data (more fds
 * than the 3 it has room for), set *excess. Returns recvmsg's result. */
static inline ssize_t sys_recv_fds(int sock, void *buf, size_t len, int flags, int *fds, int max_fds, int *nfds,
                                   int *excess) {
  struct iovec iov = {buf, len};
  union {
    char buf[CMSG_SPACE(3 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  ssize_t r;
  while ((r = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  *nfds = 0;
  *excess = r >= 0 && (m.msg_flags & MSG_CTRUNC) != 0;
  if (r < 0) return r;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare" /* musl's CMSG_NXTHDR */
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (*nfds < max_fds) fds[(*nfds)++] = fd;
      else {
        close(fd);
        *excess = 1;
      }
    }
  }
#pragma GCC diagnostic pop
  return r;
}

/* Reads a small file (a /proc entry) into buf, NUL-terminated; its length, or -1. */
static inline ssize_t sys_read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  return n;
}

/* A process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot), 0 if it is not there. With a
 * recycled pid the start time differs, so pid + start time names one process. *gone: a zombie or dead one. */
static inline uint64_t sys_proc_start(uint32_t pid, int *gone) {
  char path[48], buf[1024];
  snprintf(path, sizeof path, "/proc/%u/stat", pid);
  if (sys_read_small(path, buf, sizeof buf) < 0) return 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses; the last ')' ends it */
  if (!p || p[1] != ' ') return 0;
  p += 2; /* field 3: state */
  if (gone) *gone = (*p == 'Z' || *p == 'X');
  for (int field = 3; field < 22 && p; field++) p = strchr(p + 1, ' ');
  return p ? strtoull(p + 1, NULL, 10) : 0;
}
#endif
