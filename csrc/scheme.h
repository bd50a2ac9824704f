/* Internal to libslotbus: the two schemes under csrc/platform.h (docs/PROTOCOL.md §13), one table each, chosen by
 * platform.c at load. csrc/scheme_linux.c: memfd with seals (Linux only).
 * csrc/scheme_portable.c: POSIX shared memory, socket files and lock files, what macOS runs (Linux too with
 * SLOTBUS_PLATFORM=posix). Both stand on the OS primitives of csrc/os.h, and both name things in the socket
 * directory (csrc/sockdir.c finds it, csrc/scheme_dir.c names files in it). Only platform.c, the schemes and those
 * two include it, after sys.h. Hidden: never exported from the library. Not part of the public API. */
#ifndef SLOTBUS_SCHEME_H
#define SLOTBUS_SCHEME_H

#pragma GCC visibility push(hidden)

/* sun_path's size on macOS; used on Linux too, so a name fits or not the same way on both (§13.2). */
#define SUN_MAX 104
/* The longest directory that leaves room in sun_path for "/h." and 16 hex digits. */
#define DIR_MAX (SUN_MAX - 1 - 19)

/* What differs by scheme; each entry does what platform.h says of the plat_ call of the same name. */
typedef struct {
  int (*socket)(int type);
  int (*accept)(int listen_fd, int nonblock);
  int (*addr)(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a, socklen_t *len);
  /* the door of a hub that allows other uids (§1.1), 0 where there is none (portable) */
  int door;
  int (*bind)(int fd, const struct sockaddr_un *a, socklen_t len, int backlog);
  int (*connect)(int fd, const struct sockaddr_un *a, socklen_t len);
  void (*unbind)(const struct sockaddr_un *a, socklen_t len);
  void (*unbind_fd)(int fd);
  int (*is_listener)(int fd);
  int (*region_create)(const char *tag, uint64_t size);
  int (*region_check)(int fd, uint64_t size);
  void (*region_trim)(int fd, off_t off, off_t len);
  int (*wait_many)(const plat_waitv_entry *v, uint32_t n, int timeout_ms);
  int (*pidfd_open)(uint32_t pid);
  int (*listeners_stopped)(const char *prefix, const char *name, uint32_t *pids, uint32_t max, uint32_t *n,
                           uint32_t *more);
  int poll_ms;
} plat_scheme;

extern const plat_scheme scheme_portable;
#if defined(__linux__)
extern const plat_scheme scheme_linux;
#endif

/* The socket directory (§13.2), csrc/sockdir.c: this euid's, found (and kept) into out (SUN_MAX bytes), 0 or
 * -PLAT_ESOCKDIR; and dir still ours (made again if removed) before each bind, connect and host lock, 0 or
 * -PLAT_ESOCKDIR. */
int sockdir_find(char *out);
int sockdir_ready(const char *dir);
/* Door directories (§1.1), csrc/sockdir.c: path is one of uid's; this euid's, found or made, into out (SUN_MAX
 * bytes), 0 or -PLAT_ESOCKDIR; each of uid's in §1.1's order given to each with arg until it returns nonzero (that
 * value, or 0). */
int doordir_ok(const char *path, uid_t uid);
int doordir_own(char *out);
int doordir_env(char *out);
int doordir_each(uid_t uid, int (*each)(const char *dir, void *arg), void *arg);

/* The socket directory's names (§1.1, §13.2), both schemes': csrc/scheme_dir.c. Each does what platform.h says
 * of the plat_ call of the same name. */
int scheme_dir_addr(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a, socklen_t *len);
int scheme_dir_bind(int fd, const struct sockaddr_un *a, socklen_t len, int backlog);
int scheme_dir_connect(int fd, const struct sockaddr_un *a, socklen_t len);
void scheme_dir_unbind(const struct sockaddr_un *a, socklen_t len);
void scheme_dir_unbind_fd(int fd);
int scheme_dir_is_listener(int fd);
/* plat_close_shared */
void scheme_dir_close_shared(int fd);
int scheme_dir_sweep(const char *prefix, const char *name, int (*match)(const char *rest));
/* The door (§1.1): the socket file named file bound in this euid's door directory (found or made) and
 * listening, 0 or -errno; and a socket of make_socket's connected to file in hub_uid's door directory, the fd or
 * -ECONNREFUSED (none answers) or -EAGAIN (the first that answers has a full accept queue). */
int scheme_door_bind(int fd, const char *file, int backlog);
int scheme_door_connect(const char *file, uint32_t hub_uid, int (*make_socket)(int type));
/* plat_host_free */
int scheme_dir_free(const char *prefix, const char *name, char *path, int keep);

/* An advisory lock on the file <socket dir>/<prefix><name>.lock (the portable scheme's directory and hashing),
 * whichever scheme runs: plat_host_lock. fd, -EWOULDBLOCK when held, or -errno. */
int scheme_portable_host_lock(const char *prefix, const char *name, int exclusive);
/* Closes fd of scheme_portable_host_lock, its file unlinked first if nobody else holds it (§12.5): plat_host_unlock. */
void scheme_portable_host_unlock(int fd);

#pragma GCC visibility pop
#endif
