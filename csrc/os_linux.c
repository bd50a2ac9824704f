/* The Linux OS primitives of csrc/os.h (docs/PROTOCOL.md §1, §5, §7, §13.5): futex, SO_PEERCRED, /dev/shm, /proc,
 * pidfd, getrandom, thread names. Both schemes use them on Linux. Empty elsewhere. */
#include "sys.h"
#include "os.h"
#if defined(__linux__)
#include <dirent.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* ---- waits on a shared 32-bit word ---- */

void os_wait(_Atomic uint32_t *addr, uint32_t expect, int timeout_ms, int shared) {
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
  syscall(SYS_futex, addr, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, expect, timeout_ms < 0 ? NULL : &ts, NULL, 0);
}

void os_wake(_Atomic uint32_t *addr, int shared) {
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
int os_wait_many(const plat_waitv_entry *v, uint32_t n, int timeout_ms) {
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

/* ---- sockets ---- */

int os_peer(int sock, uint32_t *uid, int32_t *pid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
  *uid = cred.uid;
  if (pid) *pid = cred.pid;
  return 0;
}

int os_drop_empty_datagrams(int sock) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),            /* the datagram's length */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),     /* 0: */
      BPF_STMT(BPF_RET | BPF_K, 0),                     /*   dropped (its sender is told nothing) */
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),           /* else kept whole */
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  return setsockopt(sock, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0 ? -errno : 0;
}

/* ---- files ---- */

int os_user_temp_dir(char *out, size_t n) {
  (void)out, (void)n;
  return -ENOENT;
}

int os_file_reserve(int fd, uint64_t size) {
  int r;
  while ((r = fallocate(fd, 0, 0, (off_t)size)) < 0 && errno == EINTR) {
  }
  return r < 0 ? -errno : 0;
}

/* ---- shared memory ---- */

int os_shm_unnamed(void) {
  int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  /* a kernel before 3.11 says EISDIR, a file system without it EOPNOTSUPP */
  return fd >= 0 ? fd : errno == EISDIR || errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
}

/* What glibc's shm_open does, without librt (glibc 2.27 keeps shm_open there): a file under /dev/shm. */
int os_shm_create(const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/dev/shm%s", name);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  return fd < 0 ? -errno : fd;
}

void os_shm_unlink(const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/dev/shm%s", name);
  unlink(path);
}

/* ---- processes ---- */

/* A process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot), 0 if it is not there. With a
 * recycled pid the start time differs, so pid + start time names one process. *gone: a zombie or dead one;
 * *stopped: state T (a signal) or t (a debugger). */
uint64_t os_proc_start(uint32_t pid, int *gone, int *stopped) {
  char path[48], buf[1024];
  snprintf(path, sizeof path, "/proc/%u/stat", pid);
  if (sys_read_small(path, buf, sizeof buf) < 0) return 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses; the last ')' ends it */
  if (!p || p[1] != ' ') return 0;
  p += 2; /* field 3: state */
  if (gone) *gone = (*p == 'Z' || *p == 'X');
  if (stopped) *stopped = (*p == 'T' || *p == 't');
  for (int field = 3; field < 22 && p; field++) p = strchr(p + 1, ' ');
  return p ? strtoull(p + 1, NULL, 10) : 0;
}

int os_pidfd_open(uint32_t pid) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  return fd < 0 ? -errno : fd;
}

/* The inode of the listening socket bound to want (a socket file's path, as /proc/net/unix shows it), 0 if none. */
static unsigned long listen_inode(const char *want) {
  char line[512], path[128];
  FILE *f = fopen("/proc/net/unix", "re");
  if (!f) return 0;
  unsigned long found = 0, flags, type, st, inode;
  while (!found && fgets(line, sizeof line, f))
    if (sscanf(line, "%*s %*s %*s %lx %lx %lx %lu %127s", &flags, &type, &st, &inode, path) == 5 &&
        (flags & 0x10000) /* __SO_ACCEPTCON: listening */ && strcmp(path, want) == 0)
      found = inode;
  fclose(f);
  return found;
}

/* Stopped is state T or t in /proc/<pid>/stat; the holders are the processes with an fd on the socket's inode. */
int os_listeners_stopped(const char *path, uint32_t *pids, uint32_t max, uint32_t *n_out, uint32_t *more_out) {
  unsigned long inode = listen_inode(path);
  if (!inode) return 0;
  char want[48];
  snprintf(want, sizeof want, "socket:[%lu]", inode);
  uint32_t n = 0, more = 0;
  DIR *proc = opendir("/proc");
  if (!proc) return 0;
  struct dirent *d;
  int running = 0;
  while (!running && (d = readdir(proc))) {
    char *end;
    long pid = strtol(d->d_name, &end, 10);
    if (*end || pid <= 0 || pid == getpid()) continue;
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *fds = opendir(path);
    if (!fds) continue;
    int holds = 0;
    struct dirent *fd;
    while (!holds && (fd = readdir(fds))) {
      char lp[32 + sizeof fd->d_name]; /* room for any name, as gcc checks: an fd's is a short number */
      snprintf(lp, sizeof lp, "/proc/%ld/fd/%s", pid, fd->d_name);
      ssize_t k = readlink(lp, link, sizeof link - 1);
      if (k > 0) link[k] = 0, holds = strcmp(link, want) == 0;
    }
    closedir(fds);
    if (!holds) continue;
    char stat[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t k = sfd >= 0 ? read(sfd, stat, sizeof stat - 1) : -1;
    if (sfd >= 0) close(sfd);
    char *paren = k > 0 ? (stat[k] = 0, strrchr(stat, ')')) : NULL;
    char state = paren && paren[1] && paren[2] ? paren[2] : '?';
    if (state != 'T' && state != 't') running = 1;
    else if (n < max) pids[n++] = (uint32_t)pid;
    else more++;
  }
  closedir(proc);
  *n_out = n, *more_out = more;
  return running || n + more == 0 ? 0 : 1;
}

/* ---- threads and randomness ---- */

int os_cpu(void) { return sched_getcpu(); }

/* The mask the calling thread had before os_keep_off_cpu narrowed it: the one put back. */
static __thread cpu_set_t kept_mask;
static __thread int kept;

/* Narrowing the mask migrates the running thread before sched_setaffinity returns. */
int os_keep_off_cpu(int cpu) {
  if (cpu < 0) {
    if (!kept) return 0;
    kept = 0;
    return sched_setaffinity(0, sizeof kept_mask, &kept_mask) != 0 ? -errno : 0;
  }
  cpu_set_t was, off;
  if (kept)
    was = kept_mask;
  else if (sched_getaffinity(0, sizeof was, &was) != 0)
    return -errno;
  if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &was) || CPU_COUNT(&was) < 2) return -EINVAL;
  off = was;
  CPU_CLR(cpu, &off);
  if (sched_setaffinity(0, sizeof off, &off) != 0) return -errno;
  kept_mask = was;
  kept = 1;
  return sched_getcpu();
}

void os_thread_name(pthread_t t, const char *name) { pthread_setname_np(t, name); }

int os_random(void *buf, size_t n) { return syscall(SYS_getrandom, buf, n, 0) == (long)n ? 0 : -1; }
#endif
