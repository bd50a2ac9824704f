/* The portable scheme of csrc/platform.h (docs/PROTOCOL.md §13): what macOS has. Shared memory without a name
 * (Linux) or unlinked at once (macOS), socket files and lock files in a private
 * directory (the Linux scheme's names too, §1.1), over the OS primitives of csrc/os.h (os_darwin.c on macOS;
 * os_linux.c on Linux with SLOTBUS_PLATFORM=posix, how CI tests this file). Also the SIGBUS guard of its regions. */
#include "sys.h"
#include "os.h"
#include "scheme.h"
#include <signal.h>

static int fd_setup(int fd, int nonblock) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return -errno;
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one); /* fails harmlessly on a non-socket */
#endif
  return 0;
}

static int psx_socket(int type) {
  int fd = socket(AF_UNIX, type, 0);
  if (fd < 0) return -1;
  if (fd_setup(fd, 1)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int psx_accept(int listen_fd, int nonblock) {
  int fd;
  while ((fd = accept(listen_fd, NULL, NULL)) < 0 && errno == EINTR) {
  }
  if (fd < 0) return -errno;
  /* macOS hands the listener's O_NONBLOCK on to the accepted socket, Linux does not: say it either way */
  int r = fd_setup(fd, nonblock);
  if (r) close(fd);
  return r ? r : fd;
}

/* ---- regions (§13.3) ---- */

/* A named object, unlinked before anything else: its name lives between two system calls (§13.3). */
static int shm_named_then_unlinked(void) {
  for (int attempt = 0; attempt < 16; attempt++) {
    uint64_t rnd;
    if (os_random(&rnd, sizeof rnd) < 0) return -EIO;
    char name[40];
    snprintf(name, sizeof name, "/sb.%016llx", (unsigned long long)rnd); /* macOS: at most 31 bytes */
    int fd = os_shm_create(name);
    if (fd == -EEXIST) continue;
    if (fd >= 0) os_shm_unlink(name);
    return fd;
  }
  return -EEXIST;
}

static int psx_region_create(const char *tag, uint64_t size) {
  (void)tag;
  int fd = os_shm_unnamed(); /* no name at any moment, so a kill -9 leaves none */
  if (fd == -EOPNOTSUPP) fd = shm_named_then_unlinked();
  if (fd < 0) return fd;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || ftruncate(fd, (off_t)size) < 0) {
    int r = -errno;
    close(fd);
    return r;
  }
  return fd;
}

/* No seals to look at: the size now, and the SIGBUS guard for later (§13.3). macOS reports no file type for a
 * shm object. */
static int psx_region_check(int fd, uint64_t size) {
  struct stat st;
  return fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || (st.st_mode & S_IFMT) == 0) && (uint64_t)st.st_size == size;
}

static void psx_region_trim(int fd, off_t off, off_t len) { (void)fd, (void)off, (void)len; }

/* The SIGBUS guard: every region this process maps, so a fault in one (a peer shrank it) is turned into zero
 * pages and a flag, and any other fault goes on to whoever handled SIGBUS before us. */
#define GUARDED 1024
static struct {
  _Atomic uintptr_t base;
  _Atomic size_t size;
  _Atomic int lost;
} guarded[GUARDED];
static struct sigaction previous;
_Atomic int plat_regions_lost;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *ctx) {
  uintptr_t at = (uintptr_t)info->si_addr;
  for (int i = 0; i < GUARDED; i++) {
    uintptr_t b = shm_load_acquire(&guarded[i].base);
    size_t n = shm_load_relaxed(&guarded[i].size);
    if (!b || at < b || at >= b + n) continue;
    /* the access is retried on private zeros; the owner sees the flag at its next poll */
    if (mmap((void *)b, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0) != MAP_FAILED) {
      shm_store_release(&guarded[i].lost, 1);
      shm_fetch_add_release(&plat_regions_lost, 1);
      return;
    }
  }
  if (previous.sa_flags & SA_SIGINFO) return previous.sa_sigaction(sig, info, ctx);
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) return previous.sa_handler(sig);
  signal(SIGBUS, SIG_DFL); /* the fault happens again on return, and is fatal as it would have been */
}

static void guard_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previous);
}

void plat_region_mapped(void *base, size_t size) {
  if (!plat_portable || !base) return;
  pthread_once(&guard_once, guard_install);
  for (int i = 0; i < GUARDED; i++) {
    uintptr_t none = 0;
    shm_store_relaxed(&guarded[i].size, size);
    if (shm_load_relaxed(&guarded[i].base) == 0 && shm_cas_release(&guarded[i].base, &none, (uintptr_t)base)) {
      shm_store_release(&guarded[i].size, size);
      shm_store_relaxed(&guarded[i].lost, 0);
      return;
    }
  }
}

void plat_region_unmapped(void *base) {
  if (!plat_portable || !base) return;
  for (int i = 0; i < GUARDED; i++)
    if (shm_load_relaxed(&guarded[i].base) == (uintptr_t)base) {
      shm_store_relaxed(&guarded[i].lost, 0);
      shm_store_release(&guarded[i].base, 0);
    }
}

int plat_region_lost_(void *base) {
  for (int i = 0; i < GUARDED; i++)
    if (shm_load_acquire(&guarded[i].base) == (uintptr_t)base) return shm_load_acquire(&guarded[i].lost);
  return 0;
}

/* ---- waits and processes (§13.5) ---- */

/* No call waits on several words on macOS, so none here either: the lease waiter thread polls in slices. */
static int psx_wait_many(const plat_waitv_entry *v, uint32_t n, int timeout_ms) {
  (void)v, (void)n, (void)timeout_ms;
  return -ENOSYS;
}

/* No pidfds on macOS, so none here either: liveness is kill + start time. */
static int psx_pidfd_open(uint32_t pid) {
  (void)pid;
  return -ENOSYS;
}

/* Socket files: who holds one is not something macOS tells without walking every process (§13.5). */
static int psx_listeners_stopped(const char *prefix, const char *name, uint32_t *pids, uint32_t max, uint32_t *n,
                                 uint32_t *more) {
  (void)prefix, (void)name, (void)pids, (void)max, (void)n, (void)more;
  return -ENOSYS;
}

const plat_scheme scheme_portable = {
    .socket = psx_socket,
    .accept = psx_accept,
    .addr = scheme_dir_addr,
    .bind = scheme_dir_bind,
    .connect = scheme_dir_connect,
    .unbind = scheme_dir_unbind,
    .unbind_fd = scheme_dir_unbind_fd,
    .is_listener = scheme_dir_is_listener,
    .region_create = psx_region_create,
    .region_check = psx_region_check,
    .region_trim = psx_region_trim,
    .wait_many = psx_wait_many,
    .pidfd_open = psx_pidfd_open,
    .listeners_stopped = psx_listeners_stopped,
    .poll_ms = 5, /* no wait on several words by design: the lease waiter thread's slice while anything is armed */
};

