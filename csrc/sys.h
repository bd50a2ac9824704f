/* Internal to libslotbus (slot_*.c, stream.c, lease_*.c, topic_*.c, the platform files): the system prelude and
 * the few helpers they share. Include it first, before any system header, so _GNU_SOURCE takes effect. Not part
 * of the public API. */
#ifndef SLOTBUS_SYS_H
#define SLOTBUS_SYS_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fallocate, struct ucred, accept4, pthread_setname_np (scheme_linux.c, os_linux.c) */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "platform.h"

#define FNV1A_SEED 2166136261u

/* FNV-1a 32 over n bytes, continuing from h (FNV1A_SEED to start): layout hashes and table hashing. */
static inline uint32_t sys_fnv1a(uint32_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
  return h;
}

/* Process identity, one way for every protocol (docs/PROTOCOL.md §7.5, §8.1): a member is the pid and the start
 * time its process had when it joined, so a reused pid is another process; a zombie holds nothing any more. */

/* The start time of pid (plat_proc_start), 0 when it is gone or a zombie. */
static inline uint64_t sys_proc_start(uint32_t pid) {
  int gone = 0;
  uint64_t start = plat_proc_start(pid, &gone, NULL);
  return gone ? 0 : start;
}

/* 1 while pid is still the process that started at `start`. Where start times cannot be read (no /proc) both
 * sides read 0 and a process that exists counts as the same one: a holder is never judged dead while alive. */
static inline int sys_proc_same(uint32_t pid, uint64_t start) {
  return pid != 0 && sys_proc_start(pid) == start;
}

/* 1 while pid is the process that started at `start`, alive and not stopped (SIGSTOP, a debugger): whatever it is
 * doing, it goes on with. One kill(pid, 0) and one read of /proc/<pid>/stat (Linux). */
static inline int sys_proc_runs(uint32_t pid, uint64_t start) {
  int gone = 0, stopped = 0;
  if (pid == 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) return 0;
  uint64_t now = plat_proc_start(pid, &gone, &stopped);
  return !gone && !stopped && now == start;
}

/* 1 while some process has pid: one cheap kill(pid, 0), blind to a reused pid (sys_proc_same is not). */
static inline int sys_proc_exists(uint32_t pid) {
  return pid != 0 && !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
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

/* Milliseconds on the monotonic clock. */
static inline int64_t sys_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
  int cloexec_here = MSG_CMSG_CLOEXEC == 0; /* macOS: no MSG_CMSG_CLOEXEC */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare" /* musl's CMSG_NXTHDR */
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (cloexec_here) fcntl(fd, F_SETFD, FD_CLOEXEC);
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

/* The monotonic clock in ns, and the pause a spinning loop makes between polls. */
static inline uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#endif
