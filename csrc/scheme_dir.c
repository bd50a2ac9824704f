/* The names in the socket directory and the door directories of csrc/sockdir.c (docs/PROTOCOL.md §1.1, §13.2),
 * both schemes': addresses (long names hashed), binding with stale files recovered under the directory's lock,
 * connecting, unlinking, the door, and the host lock. */
#include "sys.h"
#include "scheme.h"
#include <dirent.h>
#include <sys/file.h>

/* A socket to look at a name with (name_state): never written to, closed at once. */
static int probe_socket(int type) {
  int fd = socket(AF_UNIX, type, 0);
  if (fd < 0) return -1;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* The address of file in dir, hashed when too long (§13.2). */
static int path_addr(const char *dir, const char *file, struct sockaddr_un *a, socklen_t *len) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  int w = snprintf(a->sun_path, SUN_MAX, "%s/%s", dir, file);
  if (w < 0 || w >= SUN_MAX) {
    /* too long for sun_path: the FNV-1a 64 of the file name instead (§13.2) */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = file; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    w = snprintf(a->sun_path, SUN_MAX, "%s/h.%016llx", dir, (unsigned long long)h);
    if (w < 0 || w >= SUN_MAX) return -ENAMETOOLONG; /* not reached: dir_make refuses a longer directory */
  }
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)w + 1);
  return 0;
}

int scheme_dir_addr(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a, socklen_t *len) {
  char dir[SUN_MAX], file[160];
  int r = sockdir_find(dir);
  if (r) return r;
  snprintf(file, sizeof file, "%s%s%s", prefix, name, suffix);
  return path_addr(dir, file, a, len);
}

/* The directory part of a socket file's path, into dir. */
static void dir_of(const struct sockaddr_un *a, char *dir, size_t n) {
  snprintf(dir, n, "%s", a->sun_path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) *slash = 0;
}

/* The directory's lock (§13.2: binding, a stale file's unlink), held exclusive: its fd (closing it lets go), or
 * -errno. tries 0 waits for it (a filesystem that refuses flock goes on unlocked, as binding always has); tries > 0
 * never waits long: that many attempts 100 µs apart, then -EWOULDBLOCK (its holder is held up: stopped with SIGSTOP
 * inside its few microseconds under the lock, say). */
static int dir_lock(const char *dir, int tries) {
  char lock[SUN_MAX + 16];
  snprintf(lock, sizeof lock, "%s/.lock", dir);
  int lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lk < 0) return -errno;
  if (tries == 0) {
    while (flock(lk, LOCK_EX) < 0 && errno == EINTR) {
    }
    return lk;
  }
  for (int i = 0; i < tries; i++) {
    if (flock(lk, LOCK_EX | LOCK_NB) == 0) return lk;
    if (errno != EWOULDBLOCK && errno != EINTR) break;
    usleep(100);
  }
  close(lk);
  return -EWOULDBLOCK;
}

/* The marker files this process holds, by fd: what scheme_portable_host_unlock unlinks when it lets go of the
 * last lock on one (§12.5). A full table only leaves that file behind. */
#define HELD_MAX 64
static struct {
  int fd;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} held[HELD_MAX];
static int held_n;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

/* Whether path names the file fd has open (§12.5: a marker unlinked after it was opened is nobody's). */
static int same_file(int fd, const char *path) {
  struct stat f, p;
  return fstat(fd, &f) == 0 && lstat(path, &p) == 0 && f.st_dev == p.st_dev && f.st_ino == p.st_ino;
}

/* An advisory lock on the file <socket dir>/<prefix><name>.lock (§13.2's directory and hashing), held by the
 * returned fd until scheme_portable_host_unlock or the process dies: the contest markers of §12.5. fd,
 * -EWOULDBLOCK when held, or -errno. */
int scheme_portable_host_lock(const char *prefix, const char *name, int exclusive) {
  struct sockaddr_un a;
  socklen_t len;
  char dir[SUN_MAX];
  int r = scheme_dir_addr(prefix, name, ".lock", &a, &len);
  if (r) return r;
  dir_of(&a, dir, sizeof dir);
  if ((r = sockdir_ready(dir))) return r;
  for (int tries = 0; tries < 100; tries++) {
    int fd = open(a.sun_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -errno;
    while (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return -e;
    }
    if (!same_file(fd, a.sun_path)) {
      close(fd); /* its last holder unlinked it after our open: take the file the path names now */
      continue;
    }
    pthread_mutex_lock(&held_mu);
    if (held_n < HELD_MAX) {
      held[held_n].fd = fd;
      memcpy(held[held_n].path, a.sun_path, sizeof held[held_n].path);
      held_n++;
    }
    pthread_mutex_unlock(&held_mu);
    return fd;
  }
  return -EWOULDBLOCK; /* unlinked under us 100 times in a row: as good as held */
}

/* Lets go of a lock of scheme_portable_host_lock, unlinking its file if nobody else holds it (§12.5). */
void scheme_portable_host_unlock(int fd) {
  char path[sizeof held[0].path];
  path[0] = 0;
  pthread_mutex_lock(&held_mu);
  for (int i = 0; i < held_n; i++) {
    if (held[i].fd != fd) continue;
    memcpy(path, held[i].path, sizeof path);
    held[i] = held[--held_n];
    break;
  }
  pthread_mutex_unlock(&held_mu);
  /* exclusive without waiting: got, nobody else holds it (a refusal drops ours, which closing does anyway) */
  if (path[0] && flock(fd, LOCK_EX | LOCK_NB) == 0 && same_file(fd, path)) unlink(path);
  close(fd);
}

/* What is at the path for a socket of type: NAME_HELD (a socket is bound there), NAME_STALE (a file nobody is bound
 * to: its process died), NAME_NONE (no file), or -errno. The look connects with the other type (§13.2): both
 * kernels answer EPROTOTYPE for a bound socket of another type before they queue anything for accept, so the holder
 * never sees it (a same-type probe was a peer a hub accepted and took for a worker until it closed), and a full
 * accept queue cannot make a live listener look stale. */
enum { NAME_NONE, NAME_STALE, NAME_HELD };
static int name_state(const struct sockaddr_un *a, socklen_t len, int type) {
  int s = probe_socket(type == SOCK_DGRAM ? SOCK_STREAM : SOCK_DGRAM);
  if (s < 0) return -errno;
  int r = connect(s, (const struct sockaddr *)a, len), e = errno;
  close(s);
  if (r < 0 && e == ENOENT) return NAME_NONE;
  if (r < 0 && e == ECONNREFUSED) return NAME_STALE;
  if (r == 0 || e == EPROTOTYPE || e == EAGAIN || e == EWOULDBLOCK || e == EINPROGRESS) return NAME_HELD;
  return -e;
}

/* An abstract address (sun_path[0] == 0; no name of §1.1 is one) is bound or reached as it is. */
static int abstract_bind(int fd, const struct sockaddr_un *a, socklen_t len, int backlog) {
  if (bind(fd, (const struct sockaddr *)a, len) < 0 || (backlog > 0 && listen(fd, backlog) < 0)) return -errno;
  return 0;
}

/* §13.2's binding of a in dir, under dir's lock; mode: the socket file's, set between bind and listen (0: as made). */
static int bind_locked(int fd, const struct sockaddr_un *a, socklen_t len, int backlog, const char *dir, mode_t mode) {
  int r = 0;
  /* one binder at a time per directory: probe, unlink a stale file, bind and listen are one step */
  int lk = dir_lock(dir, 0);
  if (lk < 0) return lk;
  int type = 0;
  socklen_t tl = sizeof type;
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
  int state = name_state(a, len, type);
  if (state == NAME_HELD) r = -EADDRINUSE;
  else if (state < 0) r = state;
  else {
    if (unlink(a->sun_path) < 0 && errno != ENOENT) r = -errno; /* stale: its process died without unlinking it */
    else if (bind(fd, (const struct sockaddr *)a, len) < 0) r = -errno;
    else if ((mode && chmod(a->sun_path, mode) < 0) || (backlog > 0 && listen(fd, backlog) < 0)) {
      r = -errno;
      unlink(a->sun_path);
    }
  }
  close(lk); /* releases the lock */
  return r;
}

int scheme_dir_bind(int fd, const struct sockaddr_un *a, socklen_t len, int backlog) {
  if (!a->sun_path[0]) return abstract_bind(fd, a, len, backlog);
  char dir[SUN_MAX + 8];
  dir_of(a, dir, SUN_MAX);
  int r = sockdir_ready(dir);
  return r ? r : bind_locked(fd, a, len, backlog, dir, 0);
}

/* The socket file of <prefix><name> made ready for a stream bind that the caller makes itself (Bun.listen: §1.1's
 * elections): its path into path (SUN_MAX bytes), a stale file unlinked under the directory's lock. 0 when nobody
 * holds it (keep: the lock's fd instead, still held), -EADDRINUSE when a process does (path written for both), or
 * -errno. A candidate binds with the lock kept and closes it after its listen: bind fails on any file that is
 * there, and a file goes away only when its holder closes, or under the lock once seen stale. */
int scheme_dir_free(const char *prefix, const char *name, char *path, int keep) {
  struct sockaddr_un a;
  socklen_t len;
  char dir[SUN_MAX + 8];
  int r = scheme_dir_addr(prefix, name, "", &a, &len);
  if (r) return r;
  dir_of(&a, dir, SUN_MAX);
  if ((r = sockdir_ready(dir))) return r;
  snprintf(path, SUN_MAX, "%.*s", SUN_MAX - 1, a.sun_path); /* psx_addr wrote at most SUN_MAX bytes */
  int lk = dir_lock(dir, 0);
  if (lk < 0) return lk;
  /* Only a file seen stale is unlinked, never "whatever is there now" after seeing none: a caller that did not
   * keep the lock binds after it is released, so a file found missing can be another candidate's by the time
   * unlink ran (two held the name at once, found by test/kit/host/seat.test.ts). A stale file cannot become live:
   * a bind fails on it, and only a binder holding this lock removes it. */
  int state = name_state(&a, len, SOCK_STREAM);
  if (state == NAME_HELD) r = -EADDRINUSE;
  else if (state < 0) r = state;
  else if (state == NAME_STALE && unlink(a.sun_path) < 0 && errno != ENOENT) r = -errno;
  /* A file being bound looks stale for an instant (Linux makes the inode, then hashes the socket by it: a probe
   * between the two reads ECONNREFUSED), so a probe must never run while a candidate binds: the candidate binds
   * under this lock, as bind_locked does (test/kit/host/seat-race.test.ts). */
  if (r == 0 && keep) return lk;
  close(lk);
  return r;
}

int scheme_dir_connect(int fd, const struct sockaddr_un *a, socklen_t len) {
  char dir[SUN_MAX + 8];
  int r = 0;
  if (a->sun_path[0]) {
    dir_of(a, dir, SUN_MAX);
    if ((r = sockdir_ready(dir))) return r;
  }
  while ((r = connect(fd, (const struct sockaddr *)a, len)) < 0 && errno == EINTR) {
  }
  if (r == 0 || errno == EINPROGRESS) return 0;
  return errno == ENOENT ? -ECONNREFUSED : -errno; /* no file: nobody listens, as an abstract name says */
}

void scheme_dir_unbind(const struct sockaddr_un *a, socklen_t len) {
  (void)len;
  if (a->sun_path[0]) unlink(a->sun_path);
}

void scheme_dir_unbind_fd(int fd) {
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  if (getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.sun_family == AF_UNIX && a.sun_path[0] == '/')
    unlink(a.sun_path);
}

void scheme_dir_close_shared(int fd) {
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  int named = getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.sun_family == AF_UNIX && a.sun_path[0] == '/';
  close(fd);
  if (!named) return;
  char dir[SUN_MAX + 8];
  dir_of(&a, dir, SUN_MAX);
  /* under the binders' lock: what is seen stale is still the file nobody listens on when it is unlinked. A close
   * waits at most ~10 ms for it; a lock held longer leaves the file, to the next binder (as a kill -9 does). */
  int lk = dir_lock(dir, 100);
  if (lk < 0) return;
  if (name_state(&a, len, SOCK_STREAM) == NAME_STALE) unlink(a.sun_path);
  close(lk);
}

/* What is at the path, whatever the type of the socket bound there (§13.2's sweep): a SOCK_SEQPACKET look, which a
 * bound stream or datagram socket refuses with EPROTOTYPE, so nothing is ever connected to; where AF_UNIX has no
 * SOCK_SEQPACKET (macOS), the look at a datagram name. */
static int any_name_state(const struct sockaddr_un *a, socklen_t len) {
  int s = probe_socket(SOCK_SEQPACKET);
  if (s < 0) return name_state(a, len, SOCK_DGRAM);
  int r = connect(s, (const struct sockaddr *)a, len), e = errno;
  close(s);
  if (r < 0 && e == ENOENT) return NAME_NONE;
  if (r < 0 && e == ECONNREFUSED) return NAME_STALE;
  return NAME_HELD;
}

int scheme_dir_sweep(const char *prefix, const char *name, int (*match)(const char *rest)) {
  struct sockaddr_un a;
  socklen_t len;
  char dir[SUN_MAX + 8], start[160];
  int r = scheme_dir_addr(prefix, name, "", &a, &len);
  if (r) return r;
  if (!a.sun_path[0]) return 0;
  dir_of(&a, dir, SUN_MAX);
  size_t n = (size_t)snprintf(start, sizeof start, "%s%s.", prefix, name);
  int lk = dir_lock(dir, 100); /* a lock held long (its holder stopped): the files wait for the next creator */
  if (lk < 0) return lk;
  DIR *d = opendir(dir);
  if (!d) r = -errno;
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strncmp(e->d_name, start, n) || !match(e->d_name + n) || path_addr(dir, e->d_name, &a, &len)) continue;
    if (any_name_state(&a, len) == NAME_STALE && unlink(a.sun_path) == 0) r++;
  }
  if (d) closedir(d);
  close(lk);
  return r;
}

int scheme_dir_is_listener(int fd) {
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  int type = 0, acc = 0;
  socklen_t l = sizeof type;
  if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0 || a.sun_family != AF_UNIX) return 0;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0) return 0;
  l = sizeof acc;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0) return 0;
  return type == SOCK_STREAM && acc != 0;
}

/* ---- the door for other uids (§1.1), the Linux scheme's ---- */

int scheme_door_bind(int fd, const char *file, int backlog) {
  char dir[SUN_MAX];
  struct sockaddr_un a;
  socklen_t len;
  int r = doordir_own(dir);
  if (!r) r = path_addr(dir, file, &a, &len);
  return r ? r : bind_locked(fd, &a, len, backlog, dir, 0666);
}

typedef struct {
  const char *file;
  int (*make_socket)(int type);
  int fd;
} door_try;

/* Connect to the door in dir: 1 with the fd in t when it answers, 0 to look on. */
static int door_connect_in(const char *dir, void *arg) {
  door_try *t = arg;
  struct sockaddr_un a;
  socklen_t len;
  if (path_addr(dir, t->file, &a, &len)) return 0;
  int fd = t->make_socket(SOCK_STREAM);
  if (fd < 0) return 0;
  int r;
  while ((r = connect(fd, (const struct sockaddr *)&a, len)) < 0 && errno == EINTR) {
  }
  if (r == 0 || errno == EINPROGRESS) {
    t->fd = fd;
    return 1;
  }
  int e = errno;
  close(fd);
  if (e != EAGAIN) return 0;
  t->fd = -EAGAIN; /* the hub is here, its accept queue full: worth retrying */
  return 1;
}

int scheme_door_connect(const char *file, uint32_t hub_uid, int (*make_socket)(int type)) {
  door_try t = {.file = file, .make_socket = make_socket, .fd = -ECONNREFUSED};
  char env[SUN_MAX];
  int set = doordir_env(env);
  if (set < 0) return set;
  if (set) {
    if (doordir_ok(env, (uid_t)hub_uid)) door_connect_in(env, &t);
  } else {
    doordir_each((uid_t)hub_uid, door_connect_in, &t);
  }
  return t.fd;
}
