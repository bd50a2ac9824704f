/* The macOS OS primitives of csrc/os.h (docs/PROTOCOL.md §13.5): os_sync/ulock, getpeereid, shm_open,
 * proc_pidinfo, arc4random. Under the portable scheme, the only one macOS runs. Empty elsewhere. */
#include "sys.h"
#include "os.h"
#if defined(__APPLE__)
#include <dlfcn.h>
#include <libproc.h>
#include <sys/proc_info.h>
#include <sys/sysctl.h>

/* ---- waits on a shared 32-bit word ---- */

#define OS_SYNC_SHARED 1u        /* OS_SYNC_WAIT_ON_ADDRESS_SHARED, OS_SYNC_WAKE_BY_ADDRESS_SHARED */
#define OS_CLOCK_MACH_ABS 32u    /* OS_CLOCK_MACH_ABSOLUTE_TIME */
#define UL_COMPARE_AND_WAIT 1u
#define UL_COMPARE_AND_WAIT_SHARED 3u
#define ULF_WAKE_ALL 0x100u
/* Found at run time: os_sync_* from macOS 14.4 on, __ulock_* (private, present since 10.12) before. */
static struct {
  int (*wait)(void *, uint64_t, size_t, uint32_t);
  int (*wait_for)(void *, uint64_t, size_t, uint32_t, uint32_t, uint64_t);
  int (*wake_all)(void *, size_t, uint32_t);
  int (*ulock_wait)(uint32_t, void *, uint64_t, uint32_t);
  int (*ulock_wake)(uint32_t, void *, uint64_t);
} mac;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static void mac_find(void) {
  mac.wait = (int (*)(void *, uint64_t, size_t, uint32_t))dlsym(RTLD_DEFAULT, "os_sync_wait_on_address");
  mac.wait_for = (int (*)(void *, uint64_t, size_t, uint32_t, uint32_t, uint64_t))dlsym(
      RTLD_DEFAULT, "os_sync_wait_on_address_with_timeout");
  mac.wake_all = (int (*)(void *, size_t, uint32_t))dlsym(RTLD_DEFAULT, "os_sync_wake_by_address_all");
  if (!mac.wait || !mac.wait_for || !mac.wake_all) mac.wait = NULL;
  mac.ulock_wait = (int (*)(uint32_t, void *, uint64_t, uint32_t))dlsym(RTLD_DEFAULT, "__ulock_wait");
  mac.ulock_wake = (int (*)(uint32_t, void *, uint64_t))dlsym(RTLD_DEFAULT, "__ulock_wake");
}

void os_wait(_Atomic uint32_t *addr, uint32_t expect, int timeout_ms, int shared) {
  pthread_once(&mac_once, mac_find);
  if (timeout_ms == 0) return;
  if (mac.wait) {
    uint32_t flags = shared ? OS_SYNC_SHARED : 0;
    if (timeout_ms < 0) mac.wait((void *)addr, expect, 4, flags);
    else mac.wait_for((void *)addr, expect, 4, flags, OS_CLOCK_MACH_ABS, (uint64_t)timeout_ms * 1000000u);
  } else if (mac.ulock_wait) {
    /* a timeout of 0 is "for ever" to ulock */
    mac.ulock_wait(shared ? UL_COMPARE_AND_WAIT_SHARED : UL_COMPARE_AND_WAIT, (void *)addr, expect,
                   timeout_ms < 0 ? 0 : (uint32_t)timeout_ms * 1000u);
  } else if (shm_load_acquire(addr) == expect) {
    struct timespec ts = {0, 1000000L}; /* neither call: a poll (§13.5) */
    nanosleep(&ts, NULL);
  }
}

void os_wake(_Atomic uint32_t *addr, int shared) {
  pthread_once(&mac_once, mac_find);
  if (mac.wait) mac.wake_all((void *)addr, 4, shared ? OS_SYNC_SHARED : 0);
  else if (mac.ulock_wake)
    mac.ulock_wake((shared ? UL_COMPARE_AND_WAIT_SHARED : UL_COMPARE_AND_WAIT) | ULF_WAKE_ALL, (void *)addr, 0);
}

/* No call waits on several words: the lease waiter thread polls in slices instead (§13.5). */
int os_wait_many(const plat_waitv_entry *v, uint32_t n, int timeout_ms) {
  (void)v, (void)n, (void)timeout_ms;
  return -ENOSYS;
}

/* ---- sockets ---- */

int os_peer(int sock, uint32_t *uid, int32_t *pid) {
  uid_t u;
  gid_t g;
  if (getpeereid(sock, &u, &g) < 0) return -errno;
  *uid = (uint32_t)u;
  if (pid) {
    pid_t p = -1;
    socklen_t pl = sizeof p;
    if (getsockopt(sock, SOL_LOCAL, LOCAL_PEERPID, &p, &pl) < 0) p = -1;
    *pid = (int32_t)p;
  }
  return 0;
}

int os_drop_empty_datagrams(int sock) {
  (void)sock; /* no socket filters: an empty datagram reaches the reader */
  return 0;
}

/* ---- files ---- */

/* /var/folders/…/T/: made 0700 for each uid by the system, the same for every process of the user */
int os_user_temp_dir(char *out, size_t n) {
  size_t k = confstr(_CS_DARWIN_USER_TEMP_DIR, out, n);
  return k > 1 && k <= n ? 0 : -ENOENT;
}

/* No posix_fallocate on macOS: plat_file_reserve writes the zeros itself. */
int os_file_reserve(int fd, uint64_t size) {
  (void)fd, (void)size;
  return -EOPNOTSUPP;
}

/* ---- shared memory ---- */

/* Every shm object has a name on macOS */
int os_shm_unnamed(void) { return -EOPNOTSUPP; }

int os_shm_create(const char *name) {
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  return fd < 0 ? -errno : fd;
}

void os_shm_unlink(const char *name) { shm_unlink(name); }

/* ---- processes ---- */

uint64_t os_proc_start(uint32_t pid, int *gone, int *stopped) {
  struct proc_bsdinfo info;
  if (proc_pidinfo((int)pid, PROC_PIDTBSDINFO, 0, &info, sizeof info) != (int)sizeof info) return 0;
  if (gone) *gone = info.pbi_status == SZOMB;
  if (stopped) *stopped = info.pbi_status == SSTOP;
  return (uint64_t)info.pbi_start_tvsec * 1000000u + info.pbi_start_tvusec;
}

int os_pidfd_open(uint32_t pid) {
  (void)pid;
  return -ENOSYS;
}

/* Not without walking every process's fds (proc_pidinfo), which §13.5 does not do. */
int os_listeners_stopped(const char *path, uint32_t *pids, uint32_t max, uint32_t *n, uint32_t *more) {
  (void)path, (void)pids, (void)max, (void)n, (void)more;
  return -ENOSYS;
}

/* ---- threads and randomness ---- */

int os_cpu(void) { return -1; }

int os_keep_off_cpu(int cpu) {
  (void)cpu;
  return -ENOSYS;
}

void os_thread_name(pthread_t t, const char *name) {
  if (pthread_equal(t, pthread_self())) pthread_setname_np(name);
}

int os_random(void *buf, size_t n) {
  arc4random_buf(buf, n);
  return 0;
}
#endif
