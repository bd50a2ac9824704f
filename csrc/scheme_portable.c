/* The portable scheme of csrc/platform.h (docs/PROTOCOL.md §13): what macOS has. Shared memory without a name
 * (Linux) or unlinked at once (macOS), socket files and lock files in a private
 * directory (the Linux scheme's names too, §1.1), over the OS primitives of csrc/os.h (os_darwin.c on macOS;
 * os_linux.c on Linux with SLOTBUS_PLATFORM=posix, how CI tests this file). Also the SIGBUS guard of its regions. */
#include "sys.h"
#include "os.h"
#include "scheme.h"
#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>

/* sun_path's size on macOS; used on Linux too, so a name fits or not the same way on both (§13.2). */
#define SUN_MAX 104

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

/* ---- the socket directory (§13.2) ---- */

/* The longest directory that leaves room in sun_path for "/h." and 16 hex digits. */
#define DIR_MAX (SUN_MAX - 1 - 19)

/* Why this thread's last use of the socket directory was refused (-PLAT_ESOCKDIR): plat_socket_dir_error. */
static _Thread_local char dir_problem[1024];

const char *plat_socket_dir_error(void) { return dir_problem; }

enum { DIR_OURS, DIR_MISSING, DIR_UNSEEN, DIR_TAKEN, DIR_BAD };

/* What path is, looked at without following a link: ours (a directory of our euid, mode 0700), missing, unseen
 * (lstat failed otherwise), taken (a link, a file or another uid's directory: someone else's doing) or bad (our
 * own directory with another mode). Anything but ours also in words into why. */
static int dir_judge(const char *path, char *why, size_t n) {
  struct stat st;
  unsigned me = (unsigned)geteuid();
  if (lstat(path, &st) < 0) {
    int missing = errno == ENOENT;
    if (missing) snprintf(why, n, "does not exist");
    else snprintf(why, n, "cannot be looked at (%s)", strerror(errno));
    return missing ? DIR_MISSING : DIR_UNSEEN;
  }
  unsigned mode = (unsigned)st.st_mode & 07777, owner = (unsigned)st.st_uid;
  int dir = S_ISDIR(st.st_mode);
  if (dir && owner == me && (mode & 0777) == 0700) return DIR_OURS;
  const char *type = S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISREG(st.st_mode) ? "a regular file" : dir ? "a directory" : "a special file";
  char what[48];
  if (S_ISLNK(st.st_mode)) snprintf(what, sizeof what, "not a directory (a link is never followed)");
  else if (!dir) snprintf(what, sizeof what, "not a directory");
  else if (owner != me) snprintf(what, sizeof what, "not this user's (euid %u)", me);
  else snprintf(what, sizeof what, "not 0700: group or others may use it");
  snprintf(why, n, "is %s of uid %u with mode %04o, %s", type, owner, mode, what);
  return dir && owner == me ? DIR_BAD : DIR_TAKEN;
}

/* dir_judge, after making path (mode 0700) if it is missing. */
static int dir_make(const char *path, char *why, size_t n) {
  if (strlen(path) > DIR_MAX) {
    snprintf(why, n, "is %zu bytes long, more than the %d that leave room for a socket's name", strlen(path), DIR_MAX);
    return DIR_BAD;
  }
  int j = dir_judge(path, why, n);
  if (j != DIR_MISSING) return j;
  if (mkdir(path, 0700) < 0 && errno != EEXIST) {
    snprintf(why, n, "cannot be made (%s)", strerror(errno));
    return DIR_UNSEEN;
  }
  return dir_judge(path, why, n);
}

__attribute__((format(printf, 1, 2))) static int dir_refused(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(dir_problem, sizeof dir_problem, fmt, ap);
  va_end(ap);
  if (w > 0 && (size_t)w < sizeof dir_problem)
    snprintf(dir_problem + w, sizeof dir_problem - (size_t)w,
             "; set SLOTBUS_SOCKET_DIR to a directory of this user's (euid %u) with mode 0700, the same for every "
             "process of the user",
             (unsigned)geteuid());
  return -PLAT_ESOCKDIR;
}

/* <home>/.slotbus, home the euid's in the password database (never $HOME: environments differ), into out; 0, or
 * -1 with why. */
static int home_fallback(char *out, size_t n, char *why, size_t wn) {
  struct passwd pw, *found = NULL;
  char buf[4096];
  int e = getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found);
  if (!found || !pw.pw_dir || !pw.pw_dir[0]) {
    snprintf(why, wn, "euid %u has no home directory in the password database%s%s", (unsigned)geteuid(), e ? ": " : "",
             e ? strerror(e) : "");
    return -1;
  }
  int w = snprintf(out, n, "%s%s.slotbus", pw.pw_dir, pw.pw_dir[strlen(pw.pw_dir) - 1] == '/' ? "" : "/");
  if (w < 0 || (size_t)w >= n) {
    snprintf(why, wn, "the home directory %s is too long", pw.pw_dir);
    return -1;
  }
  return 0;
}

/* What path (from where) is as the socket directory, made if missing: 0, or -PLAT_ESOCKDIR saying why. */
static int dir_settle(const char *path, const char *where) {
  char why[256];
  int j = dir_make(path, why, sizeof why);
  return j == DIR_OURS ? 0 : dir_refused("the socket directory %s (%s) %s", path, where, why);
}

/* The socket directory, found in §13.2's order, into out (SUN_MAX bytes): 0, or -PLAT_ESOCKDIR. */
static int dir_find(char *out) {
  const char *env = getenv("SLOTBUS_SOCKET_DIR");
  if (env && *env) {
    snprintf(out, SUN_MAX, "%s", env); /* whole whenever dir_settle accepts it */
    return dir_settle(env, "from SLOTBUS_SOCKET_DIR");
  }
  char temp[SUN_MAX];
  if (os_user_temp_dir(temp, sizeof temp) == 0 && snprintf(out, SUN_MAX, "%sslotbus", temp) < SUN_MAX)
    return dir_settle(out, "in the user's temp directory, confstr(_CS_DARWIN_USER_TEMP_DIR)");
  char home[SUN_MAX], why[256], home_why[256];
  int has_home = home_fallback(home, sizeof home, home_why, sizeof home_why) == 0;
  int j = has_home ? dir_judge(home, why, sizeof why) : DIR_MISSING;
  if (j != DIR_MISSING && j != DIR_UNSEEN) {
    snprintf(out, SUN_MAX, "%s", home);
    return dir_settle(out, "the fallback once /tmp/slotbus-<euid> was taken");
  }
  snprintf(out, SUN_MAX, "/tmp/slotbus-%u", (unsigned)geteuid());
  if ((j = dir_make(out, why, sizeof why)) == DIR_OURS) return 0;
  if (j != DIR_TAKEN) return dir_refused("the socket directory %s %s", out, why);
  if (!has_home) return dir_refused("the socket directory %s %s, and it has no fallback: %s", out, why, home_why);
  if ((j = dir_make(home, home_why, sizeof home_why)) == DIR_OURS) {
    snprintf(out, SUN_MAX, "%s", home);
    return 0;
  }
  return dir_refused("the socket directory %s %s, and its fallback %s %s", out, why, home, home_why);
}

/* The directory found last, kept while SLOTBUS_SOCKET_DIR and the euid stay the same: finding it reads the
 * password database, and a topic's publisher asks on each wake of a parked subscriber. (A process that changes its
 * euid, a forked child that drops root, has another directory.) dir_ready forgets it when it is refused, so the next
 * look finds it again (a /tmp name taken after it was removed sends us to the fallback). */
static struct {
  pthread_mutex_t lock;
  int valid;
  uid_t euid;
  char env[SUN_MAX + 1], dir[SUN_MAX];
} dir_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int sock_dir(char *out) {
  const char *env = getenv("SLOTBUS_SOCKET_DIR");
  char key[SUN_MAX + 1];
  snprintf(key, sizeof key, "%s", env ? env : "");
  pthread_mutex_lock(&dir_cache.lock);
  int r = 0;
  uid_t me = geteuid();
  if (!dir_cache.valid || strcmp(dir_cache.env, key) != 0 || dir_cache.euid != me) {
    dir_problem[0] = 0;
    if ((r = dir_find(dir_cache.dir)) == 0) snprintf(dir_cache.env, sizeof dir_cache.env, "%s", key);
    dir_cache.euid = me;
    dir_cache.valid = r == 0;
  }
  if (r == 0) snprintf(out, SUN_MAX, "%s", dir_cache.dir);
  pthread_mutex_unlock(&dir_cache.lock);
  return r;
}

/* Before each bind, connect and host lock: the directory of the address is still ours (made again if it was
 * removed), or -PLAT_ESOCKDIR. */
static int dir_ready(const char *dir) {
  char why[256];
  int j = dir_make(dir, why, sizeof why);
  if (j == DIR_OURS) return 0;
  pthread_mutex_lock(&dir_cache.lock);
  dir_cache.valid = 0;
  pthread_mutex_unlock(&dir_cache.lock);
  return dir_refused("the socket directory %s %s", dir, why);
}

/* ---- names: socket files in the socket directory (§1.1, §13.2), both schemes' (scheme.h) ---- */

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
  int r = sock_dir(dir);
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

/* An advisory lock on the file <socket dir>/<prefix><name>.lock (§13.2's directory and hashing), held by the
 * returned fd until it is closed or the process dies: the contest markers of §12.5. fd, -EWOULDBLOCK when held, or -errno. */
int scheme_portable_host_lock(const char *prefix, const char *name, int exclusive) {
  struct sockaddr_un a;
  socklen_t len;
  char dir[SUN_MAX];
  int r = scheme_dir_addr(prefix, name, ".lock", &a, &len);
  if (r) return r;
  dir_of(&a, dir, sizeof dir);
  if ((r = dir_ready(dir))) return r;
  int fd = open(a.sun_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -errno;
  while (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* What is at the path for a socket of type: NAME_HELD (a socket is bound there), NAME_STALE (a file nobody is bound
 * to: its process died), NAME_NONE (no file), or -errno. The look connects with the other type (§13.2): both
 * kernels answer EPROTOTYPE for a bound socket of another type before they queue anything for accept, so the holder
 * never sees it (a same-type probe was a peer a hub accepted and took for a worker until it closed), and a full
 * accept queue cannot make a live listener look stale. */
enum { NAME_NONE, NAME_STALE, NAME_HELD };
static int name_state(const struct sockaddr_un *a, socklen_t len, int type) {
  int s = psx_socket(type == SOCK_DGRAM ? SOCK_STREAM : SOCK_DGRAM);
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
  char lock[SUN_MAX + 16];
  int r = 0;
  snprintf(lock, sizeof lock, "%s/.lock", dir);
  int lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lk < 0) return -errno;
  /* one binder at a time per directory: probe, unlink a stale file, bind and listen are one step */
  while (flock(lk, LOCK_EX) < 0 && errno == EINTR) {
  }
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
  int r = dir_ready(dir);
  return r ? r : bind_locked(fd, a, len, backlog, dir, 0);
}

/* The socket file of <prefix><name> made ready for a stream bind that the caller makes itself (Bun.listen: §1.1's
 * elections): its path into path (SUN_MAX bytes), a stale file unlinked under the directory's lock. 0 when nobody
 * holds it, -EADDRINUSE when a process does (path written for both), or -errno. The caller's bind is safe after
 * it: bind fails on any file that is there, and a file goes away only when its holder closes, or under the lock
 * once seen stale. */
int scheme_dir_free(const char *prefix, const char *name, char *path) {
  struct sockaddr_un a;
  socklen_t len;
  char dir[SUN_MAX + 8], lock[SUN_MAX + 16];
  int r = scheme_dir_addr(prefix, name, "", &a, &len);
  if (r) return r;
  dir_of(&a, dir, SUN_MAX);
  if ((r = dir_ready(dir))) return r;
  snprintf(path, SUN_MAX, "%.*s", SUN_MAX - 1, a.sun_path); /* psx_addr wrote at most SUN_MAX bytes */
  snprintf(lock, sizeof lock, "%s/.lock", dir);
  int lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lk < 0) return -errno;
  while (flock(lk, LOCK_EX) < 0 && errno == EINTR) {
  }
  /* Only a file seen stale is unlinked, never "whatever is there now" after seeing none: the caller binds after
   * the lock is released, so a file found missing can be another candidate's by the time unlink ran (two held the
   * name at once, found by test/kit/host/seat.test.ts). A stale file cannot become live: a bind fails on it, and
   * only a binder holding this lock removes it. */
  int state = name_state(&a, len, SOCK_STREAM);
  if (state == NAME_HELD) r = -EADDRINUSE;
  else if (state < 0) r = state;
  else if (state == NAME_STALE && unlink(a.sun_path) < 0 && errno != ENOENT) r = -errno;
  close(lk);
  return r;
}

int scheme_dir_connect(int fd, const struct sockaddr_un *a, socklen_t len) {
  char dir[SUN_MAX + 8];
  int r = 0;
  if (a->sun_path[0]) {
    dir_of(a, dir, SUN_MAX);
    if ((r = dir_ready(dir))) return r;
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

/* A door directory of uid: a directory (lstat: a link is never followed) owned by uid, mode exactly 0711. */
static int door_dir_ok(const char *path, uid_t uid) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid && (st.st_mode & 0777) == 0711;
}

/* path as a door directory of ours, made (0711 whatever the umask) when missing. */
static int door_dir_make(const char *path) {
  if (mkdir(path, 0711) == 0) chmod(path, 0711);
  return door_dir_ok(path, geteuid());
}

/* Each door directory of uid under /tmp in §1.1's order (/tmp/slotbus-door-<uid>, then /tmp/slotbus-door-<uid>.*)
 * given to each with arg until it returns nonzero: that value, or 0. */
static int door_dirs(uid_t uid, int (*each)(const char *dir, void *arg), void *arg) {
  char dir[SUN_MAX], prefix[40];
  int n = snprintf(prefix, sizeof prefix, "slotbus-door-%u.", (unsigned)uid);
  snprintf(dir, sizeof dir, "/tmp/slotbus-door-%u", (unsigned)uid);
  int r = door_dir_ok(dir, uid) ? each(dir, arg) : 0;
  DIR *d = r ? NULL : opendir("/tmp");
  if (!d) return r;
  struct dirent *e;
  while (!r && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, (size_t)n) != 0 || snprintf(dir, sizeof dir, "/tmp/%s", e->d_name) > DIR_MAX)
      continue;
    if (door_dir_ok(dir, uid)) r = each(dir, arg);
  }
  closedir(d);
  return r;
}

static int door_take(const char *dir, void *out) {
  snprintf(out, SUN_MAX, "%s", dir);
  return 1;
}

/* This euid's door directory, found or made as §1.1 says, into out (SUN_MAX bytes): 0, or -PLAT_ESOCKDIR. */
static int door_dir_own(char *out) {
  uid_t me = geteuid();
  const char *env = getenv("SLOTBUS_DOOR_DIR");
  if (env && *env) {
    snprintf(out, SUN_MAX, "%s", env);
    if (strlen(env) <= DIR_MAX && door_dir_make(env)) return 0;
    snprintf(dir_problem, sizeof dir_problem,
             "the door directory %s (from SLOTBUS_DOOR_DIR) is not a directory of this user's (euid %u) with mode "
             "0711, nor could it be made one",
             env, (unsigned)me);
    return -PLAT_ESOCKDIR;
  }
  snprintf(out, SUN_MAX, "/tmp/slotbus-door-%u", (unsigned)me);
  if (door_dir_make(out) || door_dirs(me, door_take, out)) return 0;
  snprintf(out, SUN_MAX, "/tmp/slotbus-door-%u.XXXXXX", (unsigned)me);
  if (mkdtemp(out) && chmod(out, 0711) == 0 && door_dir_ok(out, me)) return 0;
  snprintf(dir_problem, sizeof dir_problem, "no door directory could be made in /tmp for euid %u (%s)", (unsigned)me,
           strerror(errno));
  return -PLAT_ESOCKDIR;
}

int scheme_door_bind(int fd, const char *file, int backlog) {
  char dir[SUN_MAX];
  struct sockaddr_un a;
  socklen_t len;
  int r = door_dir_own(dir);
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
  const char *env = getenv("SLOTBUS_DOOR_DIR");
  if (env && *env) {
    if (door_dir_ok(env, (uid_t)hub_uid)) door_connect_in(env, &t);
  } else {
    door_dirs((uid_t)hub_uid, door_connect_in, &t);
  }
  return t.fd;
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
