/* Where the directories of socket files are (docs/PROTOCOL.md §1.1, §13.2), for both schemes: the socket directory
 * of this euid, found in §13.2's order, checked and kept; and the door directories (§1.1). The names in them are
 * csrc/scheme_dir.c's. */
#include "sys.h"
#include "os.h"
#include "scheme.h"
#include <dirent.h>
#include <pwd.h>
#include <stdarg.h>

/* ---- the socket directory (§13.2) ---- */

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

/* What to set when a directory is refused: SLOTBUS_SOCKET_DIR's advice, or SLOTBUS_DOOR_DIR's. */
enum { ADVISE_SOCKET_DIR, ADVISE_DOOR_DIR };

static int refused(int advice, const char *fmt, va_list ap) {
  int w = vsnprintf(dir_problem, sizeof dir_problem, fmt, ap);
  if (w > 0 && (size_t)w < sizeof dir_problem)
    snprintf(dir_problem + w, sizeof dir_problem - (size_t)w,
             "; set %s to %s directory of this user's (euid %u) with mode %s, the same for every process of the user",
             advice == ADVISE_DOOR_DIR ? "SLOTBUS_DOOR_DIR" : "SLOTBUS_SOCKET_DIR",
             advice == ADVISE_DOOR_DIR ? "the absolute path of a" : "a", (unsigned)geteuid(),
             advice == ADVISE_DOOR_DIR ? "0711" : "0700");
  return -PLAT_ESOCKDIR;
}

__attribute__((format(printf, 1, 2))) static int dir_refused(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = refused(ADVISE_SOCKET_DIR, fmt, ap);
  va_end(ap);
  return r;
}

__attribute__((format(printf, 2, 3))) static int dir_refused_as(int advice, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = refused(advice, fmt, ap);
  va_end(ap);
  return r;
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

/* The fallbacks beside a taken /tmp/slotbus-<euid> (§13.2): /tmp/slotbus-<euid>.<n>, n in decimal without leading
 * zeros, 1 to FALLBACK_MAX: more than another uid can make, so a squat cannot use them all up. */
#define FALLBACK_MAX 2147483647u

/* The n of the fallbacks one readdir saw, whoever made them: sorted by fallback_scan. */
struct seen {
  uint32_t *n;
  size_t len, cap;
};

/* n of a /tmp entry named <prefix><n> (prefix "slotbus-<euid>."), or 0. */
static uint32_t fallback_number(const char *entry, const char *prefix, size_t plen) {
  if (strncmp(entry, prefix, plen) != 0) return 0;
  const char *d = entry + plen;
  uint64_t n = 0;
  if (*d < '1' || *d > '9') return 0;
  for (; *d >= '0' && *d <= '9' && n <= FALLBACK_MAX; d++) n = n * 10 + (uint64_t)(*d - '0');
  return *d || n > FALLBACK_MAX ? 0 : (uint32_t)n;
}

static int seen_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* One readdir of /tmp: the lowest n whose /tmp/slotbus-<euid>.<n> is ours, into out (0 when none is), and every n
 * that is there at all, whoever made it, into seen, sorted; -1 when seen cannot grow (out of memory). */
static long fallback_scan(char *out, struct seen *seen) {
  char prefix[32];
  size_t plen = (size_t)snprintf(prefix, sizeof prefix, "slotbus-%u.", (unsigned)geteuid());
  uint32_t best = 0;
  int full = 0;
  DIR *d = opendir("/tmp");
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    uint32_t n = fallback_number(e->d_name, prefix, plen);
    if (!n) continue;
    if (seen->len == seen->cap) {
      size_t cap = seen->cap ? seen->cap * 2 : 64;
      uint32_t *grown = realloc(seen->n, cap * sizeof *grown);
      if (!grown) {
        full = 1;
        break;
      }
      seen->n = grown, seen->cap = cap;
    }
    seen->n[seen->len++] = n;
    char path[SUN_MAX], why[160];
    int w = snprintf(path, sizeof path, "/tmp/%s", e->d_name);
    if (w < 0 || (size_t)w >= sizeof path) continue; /* not reached: fallback_number took a short name */
    if ((!best || n < best) && dir_judge(path, why, sizeof why) == DIR_OURS) {
      best = n;
      snprintf(out, SUN_MAX, "%s", path);
    }
  }
  if (d) closedir(d);
  if (full) return -1;
  qsort(seen->n, seen->len, sizeof *seen->n, seen_cmp);
  return best;
}

/* A new fallback: mkdir of the lowest n not seen, so processes of the user that start together make the same one;
 * one another uid made meanwhile is seen too and skipped. 0 with it in out, or -1 with why (naming the path). */
static int fallback_make(char *out, const struct seen *seen, char *why, size_t wn) {
  size_t i = 0;
  for (uint32_t n = 1; n <= FALLBACK_MAX; n++) {
    while (i < seen->len && seen->n[i] < n) i++;
    if (i < seen->len && seen->n[i] == n) continue;
    snprintf(out, SUN_MAX, "/tmp/slotbus-%u.%u", (unsigned)geteuid(), n);
    char inner[200];
    int j = dir_make(out, inner, sizeof inner);
    if (j == DIR_OURS) return 0;
    if (j != DIR_TAKEN) return snprintf(why, wn, "%s %s", out, inner), -1;
  }
  snprintf(why, wn, "every /tmp/slotbus-%u.<n> from 1 to %u is taken", (unsigned)geteuid(), FALLBACK_MAX);
  return -1;
}

/* A directory named by an environment variable (SLOTBUS_SOCKET_DIR, SLOTBUS_DOOR_DIR; `advice` says which), into
 * out (SUN_MAX bytes) without its trailing slashes: 0, or -PLAT_ESOCKDIR. Absolute, so every process finds the same
 * one wherever it was started; and without them, since lstat follows a link named with a trailing slash, and
 * `dir//file` is a byte longer than `dir/file`. */
static int env_path(const char *env, int advice, char *out) {
  const char *what = advice == ADVISE_DOOR_DIR ? "door" : "socket";
  const char *var = advice == ADVISE_DOOR_DIR ? "SLOTBUS_DOOR_DIR" : "SLOTBUS_SOCKET_DIR";
  size_t len = strlen(env);
  while (len > 1 && env[len - 1] == '/') len--;
  if (env[0] != '/')
    return dir_refused_as(advice,
                          "the %s directory %s (from %s) is a relative path; it must be absolute, since each process "
                          "would look for it from its own working directory",
                          what, env, var);
  if (len > DIR_MAX)
    return dir_refused_as(advice,
                          "the %s directory %s (from %s) is %zu bytes long, more than the %d that leave room for a "
                          "socket's name",
                          what, env, var, len, DIR_MAX);
  snprintf(out, SUN_MAX, "%.*s", (int)len, env);
  const char *last = strrchr(out, '/') + 1;
  if (!strcmp(last, ".") || !strcmp(last, ".."))
    return dir_refused_as(advice,
                          "the %s directory %s (from %s) ends in /%s, which lstat would resolve through a link; name "
                          "the directory itself",
                          what, env, var, last);
  return 0;
}

/* $SLOTBUS_SOCKET_DIR as the socket directory (§13.2's 1), into out (SUN_MAX bytes): 0, or -PLAT_ESOCKDIR. */
static int env_dir(const char *env, char *out) {
  int r = env_path(env, ADVISE_SOCKET_DIR, out);
  return r ? r : dir_settle(out, "from SLOTBUS_SOCKET_DIR");
}

/* The socket directory, found in §13.2's order, into out (SUN_MAX bytes): 0, or -PLAT_ESOCKDIR. */
static int dir_find(char *out) {
  const char *env = getenv("SLOTBUS_SOCKET_DIR");
  if (env && *env) return env_dir(env, out);
  char temp[SUN_MAX];
  if (os_user_temp_dir(temp, sizeof temp) == 0 && snprintf(out, SUN_MAX, "%sslotbus", temp) < SUN_MAX)
    return dir_settle(out, "in the user's temp directory, confstr(_CS_DARWIN_USER_TEMP_DIR)");
  char home[SUN_MAX], why[256], home_why[256];
  int has_home = home_fallback(home, sizeof home, home_why, sizeof home_why) == 0;
  int j = has_home ? dir_judge(home, why, sizeof why) : DIR_MISSING;
  /* ours (a bad mode of ours is refused, saying so); another uid's (a home in a directory anybody may write in,
   * /tmp, or one that does not exist yet) is a squat like a taken /tmp name, passed over, never a failed listen */
  if (j == DIR_OURS || j == DIR_BAD) {
    snprintf(out, SUN_MAX, "%s", home);
    return dir_settle(out, "made as the fallback while /tmp/slotbus-<euid> was taken");
  }
  char fixed[SUN_MAX];
  snprintf(fixed, SUN_MAX, "/tmp/slotbus-%u", (unsigned)geteuid());
  if ((j = dir_judge(fixed, why, sizeof why)) == DIR_OURS) return snprintf(out, SUN_MAX, "%s", fixed), 0;
  if (j != DIR_MISSING && j != DIR_TAKEN) return dir_refused("the socket directory %s %s", fixed, why);
  struct seen seen = {0};
  int r = 0;
  long found = fallback_scan(out, &seen);
  if (found < 0) {
    r = dir_refused("the socket directory %s %s, and its fallbacks cannot be looked for (%s)", fixed, why,
                    strerror(ENOMEM));
    goto done;
  }
  if (found) goto done; /* one made before, while /tmp/slotbus-<euid> was taken */
  if (j == DIR_MISSING && (j = dir_make(fixed, why, sizeof why)) == DIR_OURS) {
    snprintf(out, SUN_MAX, "%s", fixed);
    goto done;
  }
  if (j != DIR_TAKEN) {
    r = dir_refused("the socket directory %s %s", fixed, why);
    goto done;
  }
  if (has_home && dir_make(home, home_why, sizeof home_why) == DIR_OURS) {
    snprintf(out, SUN_MAX, "%s", home);
    goto done;
  }
  char fallback_why[256];
  if (fallback_make(out, &seen, fallback_why, sizeof fallback_why) < 0)
    r = dir_refused("the socket directory %s %s, and no fallback could be made: %s%s%s; %s", fixed, why,
                    has_home ? home : "", has_home ? " " : "", home_why, fallback_why);
done:
  free(seen.n);
  return r;
}

/* The directory found last, kept while SLOTBUS_SOCKET_DIR and the euid stay the same: finding it reads the
 * password database, and a topic's publisher asks on each wake of a parked subscriber. (A process that changes its
 * euid, a forked child that drops root, has another directory.) sockdir_ready forgets it when it is refused, so the next
 * look finds it again (a /tmp name taken after it was removed sends us to the fallback). */
static struct {
  pthread_mutex_t lock;
  int valid;
  uid_t euid;
  char env[SUN_MAX + 1], dir[SUN_MAX];
} dir_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

int sockdir_find(char *out) {
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
int sockdir_ready(const char *dir) {
  char why[256];
  int j = dir_make(dir, why, sizeof why);
  if (j == DIR_OURS) return 0;
  pthread_mutex_lock(&dir_cache.lock);
  dir_cache.valid = 0;
  pthread_mutex_unlock(&dir_cache.lock);
  return dir_refused("the socket directory %s %s", dir, why);
}

/* ---- door directories (§1.1), the Linux scheme's ---- */

/* A door directory of uid: a directory (lstat: a link is never followed) owned by uid, mode exactly 0711. */
int doordir_ok(const char *path, uid_t uid) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid && (st.st_mode & 0777) == 0711;
}

/* path as a door directory of ours, made (0711 whatever the umask) when missing. */
static int door_dir_make(const char *path) {
  if (mkdir(path, 0711) == 0) chmod(path, 0711);
  return doordir_ok(path, geteuid());
}

/* Each door directory of uid under /tmp in §1.1's order (/tmp/slotbus-door-<uid>, then /tmp/slotbus-door-<uid>.*)
 * given to each with arg until it returns nonzero: that value, or 0. */
int doordir_each(uid_t uid, int (*each)(const char *dir, void *arg), void *arg) {
  char dir[SUN_MAX], prefix[40];
  int n = snprintf(prefix, sizeof prefix, "slotbus-door-%u.", (unsigned)uid);
  snprintf(dir, sizeof dir, "/tmp/slotbus-door-%u", (unsigned)uid);
  int r = doordir_ok(dir, uid) ? each(dir, arg) : 0;
  DIR *d = r ? NULL : opendir("/tmp");
  if (!d) return r;
  struct dirent *e;
  while (!r && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, (size_t)n) != 0 || snprintf(dir, sizeof dir, "/tmp/%s", e->d_name) > DIR_MAX)
      continue;
    if (doordir_ok(dir, uid)) r = each(dir, arg);
  }
  closedir(d);
  return r;
}

static int door_take(const char *dir, void *out) {
  snprintf(out, SUN_MAX, "%s", dir);
  return 1;
}

/* $SLOTBUS_DOOR_DIR (§1.1's 1) into out (SUN_MAX bytes) as env_path takes it: 1; 0 when it is not set, or
 * -PLAT_ESOCKDIR. */
int doordir_env(char *out) {
  const char *env = getenv("SLOTBUS_DOOR_DIR");
  if (!env || !*env) return 0;
  int r = env_path(env, ADVISE_DOOR_DIR, out);
  return r ? r : 1;
}

/* This euid's door directory, found or made as §1.1 says, into out (SUN_MAX bytes): 0, or -PLAT_ESOCKDIR. */
int doordir_own(char *out) {
  uid_t me = geteuid();
  int set = doordir_env(out);
  if (set < 0) return set;
  if (set) {
    if (door_dir_make(out)) return 0;
    return dir_refused_as(ADVISE_DOOR_DIR,
                          "the door directory %s (from SLOTBUS_DOOR_DIR) is not a directory of this user's with mode "
                          "0711, nor could it be made one",
                          out);
  }
  snprintf(out, SUN_MAX, "/tmp/slotbus-door-%u", (unsigned)me);
  if (door_dir_make(out) || doordir_each(me, door_take, out)) return 0;
  snprintf(out, SUN_MAX, "/tmp/slotbus-door-%u.XXXXXX", (unsigned)me);
  if (mkdtemp(out) && chmod(out, 0711) == 0 && doordir_ok(out, me)) return 0;
  snprintf(dir_problem, sizeof dir_problem, "no door directory could be made in /tmp for euid %u (%s)", (unsigned)me,
           strerror(errno));
  return -PLAT_ESOCKDIR;
}
