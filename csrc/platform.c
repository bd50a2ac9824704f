/* The scheme choice (docs/PROTOCOL.md §13.1) and csrc/platform.h over it: what differs by scheme goes to the
 * chosen table of csrc/scheme.h, what differs by OS only straight to csrc/os.h. */
#include "sys.h"
#include "os.h"
#include "scheme.h"

int plat_portable = 1;
static int plat_invalid;
static const plat_scheme *scheme = &scheme_portable;

#if defined(__linux__)
/* Read once, before anything else runs: a scheme never changes under an open channel. */
__attribute__((constructor)) static void plat_choose(void) {
  const char *v = getenv("SLOTBUS_PLATFORM");
  plat_portable = v && strcmp(v, "posix") == 0;
  plat_invalid = v && *v && strcmp(v, "posix") != 0 && strcmp(v, "linux") != 0;
  if (!plat_portable) scheme = &scheme_linux;
}
#endif

int plat_check(void) { return plat_invalid ? -EINVAL : 0; }

const char *plat_name(void) { return plat_invalid ? NULL : plat_portable ? "posix" : "linux"; }

int plat_socket(int type) { return scheme->socket(type); }
int plat_accept(int listen_fd, int nonblock) { return scheme->accept(listen_fd, nonblock); }
/* A name as §1 allows one: 1-64 of [A-Za-z0-9._-]. */
static int valid_name(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n < 1 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

int plat_addr(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a, socklen_t *len) {
  if (!valid_name(name)) return -EINVAL;
  return scheme->addr(prefix, name, suffix ? suffix : "", a, len);
}
/* The door's file name "<prefix><name><suffix>" (§1.1) into file (160 bytes): 0, or -EINVAL, -ENOTSUP (no door). */
static int door_file(const char *prefix, const char *name, const char *suffix, char *file) {
  int r = plat_check();
  if (r) return r;
  if (!valid_name(name)) return -EINVAL;
  if (!scheme->door) return -ENOTSUP;
  snprintf(file, 160, "%s%s%s", prefix, name, suffix ? suffix : "");
  return 0;
}
int plat_bind(int fd, const struct sockaddr_un *a, socklen_t len, int backlog) { return scheme->bind(fd, a, len, backlog); }
int plat_connect(int fd, const struct sockaddr_un *a, socklen_t len) { return scheme->connect(fd, a, len); }
static int name_addr(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a, socklen_t *len) {
  int r = plat_check();
  return r ? r : plat_addr(prefix, name, suffix, a, len);
}

int plat_listen(const char *prefix, const char *name, const char *suffix, int door, int backlog) {
  struct sockaddr_un a;
  socklen_t len;
  char file[160];
  int r = door ? door_file(prefix, name, suffix, file) : name_addr(prefix, name, suffix, &a, &len);
  if (r) return r;
  int fd = plat_socket(SOCK_STREAM);
  if (fd < 0) return -errno;
  if ((r = door ? scheme_door_bind(fd, file, backlog) : plat_bind(fd, &a, len, backlog))) {
    close(fd);
    return r;
  }
  return fd;
}

int plat_dial(const char *prefix, const char *name, const char *suffix, int64_t door_uid, uint32_t *uid, int32_t *pid) {
  struct sockaddr_un a;
  socklen_t len;
  char file[160];
  int r = door_uid >= 0 ? door_file(prefix, name, suffix, file) : name_addr(prefix, name, suffix, &a, &len);
  if (r) return r;
  int fd = door_uid >= 0 ? scheme_door_connect(file, (uint32_t)door_uid, scheme->socket) : plat_socket(SOCK_STREAM);
  if (fd < 0) return door_uid >= 0 ? fd : -errno;
  if ((door_uid < 0 && (r = plat_connect(fd, &a, len))) || (r = plat_peer(fd, uid, pid))) {
    close(fd);
    return r == -EWOULDBLOCK ? -EAGAIN : r;
  }
  return fd;
}

int plat_dgram_send(const char *path, const void *buf, size_t n) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t k = path ? strlen(path) : 0;
  if (k == 0 || k >= sizeof a.sun_path || n == 0) return -EINVAL;
  memcpy(a.sun_path, path, k);
  if (a.sun_path[0] == '@') a.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return -errno;
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  /* MSG_DONTWAIT: a receiver whose queue is full (busy, or a socket nobody reads) is -EAGAIN (macOS says
   * ENOBUFS), instead of a sendto that would hold the caller's event loop until it reads */
  ssize_t sent = sendto(fd, buf, n, MSG_DONTWAIT, (struct sockaddr *)&a,
                        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + k));
  int r = sent < 0 ? (errno == EWOULDBLOCK || errno == ENOBUFS ? -EAGAIN : -errno) : (size_t)sent == n ? 0 : -EMSGSIZE;
  close(fd);
  return r;
}
void plat_unbind(const struct sockaddr_un *a, socklen_t len) { scheme->unbind(a, len); }
void plat_unbind_fd(int fd) { scheme->unbind_fd(fd); }
void plat_close_shared(int fd) { scheme_dir_close_shared(fd); }
int plat_sweep(const char *prefix, const char *name, int (*match)(const char *rest)) {
  return scheme_dir_sweep(prefix, name, match);
}
int plat_peer(int sock, uint32_t *uid, int32_t *pid) { return os_peer(sock, uid, pid); }
int plat_drop_empty_datagrams(int sock) { return os_drop_empty_datagrams(sock); }
int plat_is_listener(int fd) { return scheme->is_listener(fd); }
int plat_region_create(const char *tag, uint64_t size) { return scheme->region_create(tag, size); }
int plat_region_check(int fd, uint64_t size) { return scheme->region_check(fd, size); }
void plat_region_trim(int fd, off_t off, off_t len) { scheme->region_trim(fd, off, len); }
void plat_wait(_Atomic uint32_t *addr, uint32_t expect, int timeout_ms, int shared) {
  os_wait(addr, expect, timeout_ms, shared);
}
void plat_wake(_Atomic uint32_t *addr, int shared) { os_wake(addr, shared); }
int plat_wait_many(const plat_waitv_entry *v, uint32_t n, int timeout_ms) { return scheme->wait_many(v, n, timeout_ms); }
int plat_poll_ms(void) { return scheme->poll_ms; }
uint64_t plat_proc_start(uint32_t pid, int *gone, int *stopped) { return os_proc_start(pid, gone, stopped); }
int plat_pidfd_open(uint32_t pid) { return scheme->pidfd_open(pid); }
int plat_listeners_stopped(const char *prefix, const char *name, uint32_t *pids, uint32_t max, uint32_t *n,
                           uint32_t *more) {
  return scheme->listeners_stopped(prefix, name, pids, max, n, more);
}
void plat_thread_name(pthread_t t, const char *name) { os_thread_name(t, name); }
int plat_random(void *buf, size_t n) { return os_random(buf, n); }
int plat_cpu(void) { return os_cpu(); }
int plat_keep_off_cpu(int cpu) { return os_keep_off_cpu(cpu); }

int plat_file_reserve(int fd, uint64_t size) {
  int r = os_file_reserve(fd, size);
  if (r != -EOPNOTSUPP && r != -ENOSYS) return r;
  /* no fallocate here (macOS; a Linux file system without it): zeros written take the storage as well */
  static const char zeros[4096];
  for (uint64_t at = 0; at < size;) {
    size_t n = size - at < sizeof zeros ? (size_t)(size - at) : sizeof zeros;
    ssize_t w = pwrite(fd, zeros, n, (off_t)at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? -errno : -EIO;
    at += (uint64_t)w;
  }
  return 0;
}

/* ---- doorbells (§1.2): the same stream socketpair on every backend ---- */

static int bell_end_setup(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -errno;
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return 0;
}

int plat_bell_open(plat_bell *b) {
  int sv[2];
  b->rd = b->wr = -1;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return -errno;
  int r = bell_end_setup(sv[0]);
  if (!r) r = bell_end_setup(sv[1]);
  if (r) {
    close(sv[0]);
    close(sv[1]);
    return r;
  }
  b->rd = sv[0];
  b->wr = sv[1];
  return 0;
}

/* A non-blocking unix stream socket, as §1 says: a blocking one would hang whoever empties it, and another kind of
 * fd (/dev/zero, a file) could read for ever. */
int plat_bell_check(int fd) {
  struct stat st;
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  int type = 0;
  socklen_t tl = sizeof type;
  int flags = fcntl(fd, F_GETFL);
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
         type == SOCK_STREAM && getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.sun_family == AF_UNIX &&
         flags >= 0 && (flags & O_NONBLOCK);
}

void plat_bell_close(plat_bell *b) {
  if (b->wr >= 0 && b->wr != b->rd) close(b->wr);
  if (b->rd >= 0) close(b->rd);
  b->rd = b->wr = -1;
}

/* The file is in the socket directory under either scheme (§1.1, §12.5). */
int plat_host_lock(const char *prefix, const char *name, int exclusive) {
  if (!prefix || !valid_name(name)) return -EINVAL;
  return scheme_portable_host_lock(prefix, name, exclusive);
}

void plat_host_unlock(int fd) { scheme_portable_host_unlock(fd); }

int plat_host_free(const char *prefix, const char *name, char *path, int keep) {
  if (!prefix || !valid_name(name)) return -EINVAL;
  return scheme_dir_free(prefix, name, path, keep);
}
