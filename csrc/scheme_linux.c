/* The Linux scheme of csrc/platform.h (docs/PROTOCOL.md §1, §5, §7, §8): memfd with seals, names in the
 * socket directory and the door for other uids (§1.1, csrc/scheme_dir.c), over the Linux OS primitives
 * (csrc/os_linux.c). Empty elsewhere. */
#include "sys.h"
#include "os.h"
#include "scheme.h"
#if defined(__linux__)
#include <sys/syscall.h>

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

static int lnx_socket(int type) { return socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

static int lnx_accept(int listen_fd, int nonblock) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
  return fd < 0 ? -errno : fd;
}

static int lnx_region_create(const char *tag, uint64_t size) {
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
static int lnx_region_check(int fd, uint64_t size) {
  struct stat st;
  int seals = fcntl(fd, F_GET_SEALS); /* fails on anything but a memfd (or another sealable shmem file) */
  return seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW) && fstat(fd, &st) == 0 &&
         S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

static void lnx_region_trim(int fd, off_t off, off_t len) { fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len); }

/* The /proc scan of the OS, for the socket file of "<prefix><name>" (§1.1: /proc/net/unix shows its path). */
static int lnx_listeners_stopped(const char *prefix, const char *name, uint32_t *pids, uint32_t max, uint32_t *n,
                                 uint32_t *more) {
  struct sockaddr_un a;
  socklen_t len;
  int r = scheme_dir_addr(prefix, name, "", &a, &len);
  return r ? r : os_listeners_stopped(a.sun_path, pids, max, n, more);
}

const plat_scheme scheme_linux = {
    .socket = lnx_socket,
    .accept = lnx_accept,
    .addr = scheme_dir_addr, /* the socket directory, as the portable scheme's (§1.1) */
    .door = 1,
    .bind = scheme_dir_bind,
    .connect = scheme_dir_connect,
    .unbind = scheme_dir_unbind,
    .unbind_fd = scheme_dir_unbind_fd,
    .is_listener = scheme_dir_is_listener,
    .region_create = lnx_region_create,
    .region_check = lnx_region_check,
    .region_trim = lnx_region_trim,
    .wait_many = os_wait_many, /* futex_waitv */
    .pidfd_open = os_pidfd_open,
    .listeners_stopped = lnx_listeners_stopped,
    .poll_ms = 0, /* a kernel without futex_waitv is merely old: the caller's own slice */
};
#endif
