/* The Linux backend of csrc/platform.h (docs/PROTOCOL.md §1, §5, §7, §8): memfd with seals, eventfd, futex,
 * abstract unix sockets, SO_PEERCRED, pidfd, /proc. Also what the portable backend borrows on Linux (futex,
 * SO_PEERCRED, /proc start times: §13.5). Empty elsewhere. */
#include "sys.h"
#if defined(__linux__)
#include <sys/eventfd.h>

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
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

int lnx_socket(int type) { return socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int lnx_accept(int listen_fd, int nonblock) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
  return fd < 0 ? -errno : fd;
}

/* The abstract unix address "\0<prefix><name><suffix>" (nothing on disk). */
int lnx_addr(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a, socklen_t *len) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  int w = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "%s%s%s", prefix, name, suffix);
  if (w < 0 || (size_t)w >= sizeof a->sun_path - 1) return -EINVAL;
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)w);
  return 0;
}

int lnx_bind(int fd, const struct sockaddr_un *a, socklen_t len, int backlog) {
  if (bind(fd, (const struct sockaddr *)a, len) < 0 || (backlog > 0 && listen(fd, backlog) < 0)) return -errno;
  return 0;
}

int lnx_connect(int fd, const struct sockaddr_un *a, socklen_t len) {
  int r;
  /* an interrupted unix connect leaves the socket unconnected, so trying again is right */
  while ((r = connect(fd, (const struct sockaddr *)a, len)) < 0 && errno == EINTR) {
  }
  return r < 0 ? -errno : 0;
}

void lnx_unbind(const struct sockaddr_un *a, socklen_t len) { (void)a, (void)len; }
void lnx_unbind_fd(int fd) { (void)fd; }

int lnx_peer(int sock, uint32_t *uid, int32_t *pid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
  *uid = cred.uid;
  if (pid) *pid = cred.pid;
  return 0;
}

int lnx_is_listener(int fd) {
  int v[3] = {0, 0, 0};
  socklen_t l = sizeof(int);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v[0], &l) < 0) return 0;
  l = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v[1], &l) < 0) return 0;
  l = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v[2], &l) < 0) return 0;
  return v[0] == AF_UNIX && v[1] == SOCK_STREAM && v[2] == 1;
}

int lnx_region_create(const char *tag, uint64_t size) {
  /* syscall, not memfd_create(): the libc wrapper would need glibc 2.27 symbols */
  int fd = (int)syscall(SYS_memfd_create, tag, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  /* sealed so no peer can ever shrink it under us and turn our reads into SIGBUS */
  if (ftruncate(fd, (off_t)size) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    int r = -errno;
    close(fd);
    return r;
  }
  return fd;
}

/* A sealed memfd of exactly the size the hello announced. */
int lnx_region_check(int fd, uint64_t size) {
  struct stat st;
  int seals = fcntl(fd, F_GET_SEALS); /* fails on anything but a memfd (or another sealable shmem file) */
  return seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW) && fstat(fd, &st) == 0 &&
         S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

void lnx_region_trim(int fd, off_t off, off_t len) { fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len); }

int lnx_bell_open(plat_bell *b) {
  b->rd = b->wr = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return b->rd < 0 ? -errno : 0;
}

/* Reads a small file (a /proc entry) into buf, NUL-terminated; its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  return n;
}

/* An eventfd the peer created non-blocking and not as a semaphore, as §1 says: a blocking one would hang whoever
 * empties it, a semaphore would stay readable after its one read, and another kind of fd (/dev/zero) reads for
 * ever. /proc/self/fdinfo says which: only an eventfd has an eventfd-count line. */
int lnx_bell_check(int fd) {
  char path[64], info[512];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  if (read_small(path, info, sizeof info) < 0) return 0;
  const char *sem = strstr(info, "eventfd-semaphore:");
  if (sem) sem += strspn(sem + 18, " \t") + 18;
  int flags = fcntl(fd, F_GETFL);
  return strstr(info, "eventfd-count:") != NULL && (!sem || *sem == '0') && flags >= 0 && (flags & O_NONBLOCK);
}

void lnx_wait(_Atomic uint32_t *addr, uint32_t expect, int timeout_ms, int shared) {
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
  syscall(SYS_futex, addr, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, expect, timeout_ms < 0 ? NULL : &ts, NULL, 0);
}

void lnx_wake(_Atomic uint32_t *addr, int shared) {
  syscall(SYS_futex, addr, shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

struct futex_waitv_ {
  uint64_t val, uaddr;
  uint32_t flags, reserved;
};
#define FUTEX2_U32 0x02
#define FUTEX2_PRIVATE_ 128
#define WAITV_MAX 128 /* the kernel's limit */

/* -ENOSYS before Linux 5.16. */
int lnx_wait_many(const plat_waitv_entry *v, uint32_t n, int timeout_ms) {
  struct futex_waitv_ w[WAITV_MAX];
  if (n > WAITV_MAX) n = WAITV_MAX;
  for (uint32_t i = 0; i < n; i++)
    w[i] = (struct futex_waitv_){v[i].expect, (uint64_t)(uintptr_t)v[i].addr, FUTEX2_U32 | (v[i].shared ? 0 : FUTEX2_PRIVATE_), 0};
  struct timespec ts;
  if (timeout_ms >= 0) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)timeout_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
  }
  long r = syscall(SYS_futex_waitv, w, n, 0, timeout_ms >= 0 ? &ts : NULL, CLOCK_MONOTONIC);
  return r < 0 && errno == ENOSYS ? -ENOSYS : 0;
}

/* A process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot), 0 if it is not there. With a
 * recycled pid the start time differs, so pid + start time names one process. *gone: a zombie or dead one. */
uint64_t lnx_proc_start(uint32_t pid, int *gone) {
  char path[48], buf[1024];
  snprintf(path, sizeof path, "/proc/%u/stat", pid);
  if (read_small(path, buf, sizeof buf) < 0) return 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses; the last ')' ends it */
  if (!p || p[1] != ' ') return 0;
  p += 2; /* field 3: state */
  if (gone) *gone = (*p == 'Z' || *p == 'X');
  for (int field = 3; field < 22 && p; field++) p = strchr(p + 1, ' ');
  return p ? strtoull(p + 1, NULL, 10) : 0;
}

int lnx_pidfd_open(uint32_t pid) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  return fd < 0 ? -errno : fd;
}

void lnx_thread_name(pthread_t t, const char *name) { pthread_setname_np(t, name); }

int lnx_random(void *buf, size_t n) { return syscall(SYS_getrandom, buf, n, 0) == (long)n ? 0 : -1; }
#endif
