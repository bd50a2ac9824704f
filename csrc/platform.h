/* Internal to libslotbus: the one seam between the protocol code and the kernel (docs/PROTOCOL.md §13). Two axes
 * behind it. The scheme, chosen at load in csrc/platform.c (csrc/scheme.h): Linux (memfd + seals;
 * csrc/scheme_linux.c) or portable (POSIX shm; csrc/scheme_portable.c); both ring socketpair doorbells (§1.2); both name things
 * with socket files and lock files in the socket directory (§1.1: csrc/sockdir.c, csrc/scheme_dir.c). macOS always runs the portable one; Linux runs it when SLOTBUS_PLATFORM=posix at load.
 * Under either, the OS primitives, chosen at compile time (csrc/os.h): futex, SO_PEERCRED, /proc, pidfd on Linux
 * (csrc/os_linux.c); os_sync/ulock, getpeereid, proc_pidinfo on macOS (csrc/os_darwin.c). Nothing above this
 * header says #ifdef __APPLE__ or __linux__. Include it through sys.h. Not part of the public API. */
#ifndef SLOTBUS_PLATFORM_H
#define SLOTBUS_PLATFORM_H
#include <pthread.h>
#include "shm.h" /* the named atomics; plain headers only, so no circle */
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: the portable sockets are made with SO_NOSIGPIPE instead */
#endif
#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0 /* macOS: sys_recv_fds sets FD_CLOEXEC on what it receives */
#endif

/* The portable socket directory cannot be used (§13.2): slotbus.h's SB_ESOCKDIR, which csrc/host.c checks it is.
 * Nothing here includes the public API: csrc/host.c, above this header, gives its calls over the ones below. */
#define PLAT_ESOCKDIR 1002

/* Hidden: libslotbus exports only what its public headers declare (slotbus.h, lease.h, topic.h). */
#pragma GCC visibility push(hidden)
/* 1 on the portable backend. Set once, before any other call (a constructor); read on hot paths. */
extern int plat_portable;
/* 0, or -EINVAL when SLOTBUS_PLATFORM names no backend: every open returns it. */
int plat_check(void);
/* "linux" or "posix": the scheme that runs (§13.1); NULL when SLOTBUS_PLATFORM names neither. */
const char *plat_name(void);

/* ---- sockets and names (§1.1, §13.2) ---- */

/* AF_UNIX socket of type, non-blocking and close-on-exec, never raising SIGPIPE. */
int plat_socket(int type);
/* accept, close-on-exec, non-blocking if nonblock, never raising SIGPIPE; -errno. */
int plat_accept(int listen_fd, int nonblock);
/* The address for "<prefix><name><suffix>": a socket file in the private socket directory (§1.1). name: 1-64 of
 * [A-Za-z0-9._-]. 0, -PLAT_ESOCKDIR or -errno. */
int plat_addr(const char *prefix, const char *name, const char *suffix, struct sockaddr_un *a, socklen_t *len);
/* bind, and listen(backlog) if backlog > 0; a stale socket file is recovered. 0, -EADDRINUSE, -errno. */
int plat_bind(int fd, const struct sockaddr_un *a, socklen_t len, int backlog);
/* connect; a missing socket file reads as -ECONNREFUSED. 0 or -errno. */
int plat_connect(int fd, const struct sockaddr_un *a, socklen_t len);
/* The set-up every rendezvous shares: check the scheme, make the address (plat_addr's), a socket, then bind and
 * listen(backlog); closed again on any failure. With door, the socket file "<prefix><name><suffix>" in this euid's
 * door directory instead, bound for any uid to connect (§1.1; -ENOTSUP on the portable scheme, which has none).
 * The fd, or -errno. */
int plat_listen(const char *prefix, const char *name, const char *suffix, int door, int backlog);
/* The same address connected to (door_uid >= 0: the door in door_uid's door directory, §1.1): the fd and the
 * listener's uid and pid (pid may be NULL), or -errno (-EAGAIN: its accept queue is full, worth retrying). The
 * caller checks the uid. */
int plat_dial(const char *prefix, const char *name, const char *suffix, int64_t door_uid, uint32_t *uid, int32_t *pid);
/* One datagram of n bytes to the unix socket at path ('@' first: an abstract name, systemd's spelling), never
 * blocking: 0, -EAGAIN when the receiver's queue is full, -EMSGSIZE, -EINVAL or -errno. */
int plat_dgram_send(const char *path, const void *buf, size_t n);
/* Removes the socket file of an address (nothing for an abstract one). */
void plat_unbind(const struct sockaddr_un *a, socklen_t len);
/* Removes the socket file fd is bound to (nothing for an abstract one). */
void plat_unbind_fd(int fd);
/* The peer's effective uid and pid (-1 where the kernel does not say). 0 or -errno. */
int plat_peer(int sock, uint32_t *uid, int32_t *pid);
/* os_drop_empty_datagrams: a datagram socket that never receives an empty datagram. 0 or -errno. */
int plat_drop_empty_datagrams(int sock);
/* Closes this process's descriptor of a listening socket its members share (a topic's, a contest's) and unlinks
 * the socket file when that was the last one, so nothing listens there any more (§13.2); nothing else for an
 * abstract address. */
void plat_close_shared(int fd);
/* Unlinks the stale socket files named <prefix><name>.<rest> for which match(rest) says yes: those nobody is bound
 * to, looked at under the directory's lock without connecting to any (§13.2). The count unlinked, or -errno. */
int plat_sweep(const char *prefix, const char *name, int (*match)(const char *rest));
/* Whether fd is a listening AF_UNIX stream socket. */
int plat_is_listener(int fd);
/* After -PLAT_ESOCKDIR: which directory, what is there and what to do; this thread's last (sockdir.c). */
const char *plat_socket_dir_error(void);
/* An advisory lock on <socket dir>/<prefix><name>.lock, whichever scheme runs (§13.2): exclusive or shared, never
 * waiting, held by the returned fd. name as plat_addr's. fd, -EWOULDBLOCK when another holds it, or -errno. */
int plat_host_lock(const char *prefix, const char *name, int exclusive);
/* Lets go of plat_host_lock's fd: closes it, its file unlinked first if nobody else holds it (§12.5). */
void plat_host_unlock(int fd);
/* The socket file of "<prefix><name>" (§1.1) made ready for a stream bind the caller makes itself (an election's):
 * its path into path (104 bytes), a stale file recovered. 0 when nobody holds it (keep: the directory lock's fd,
 * still held, which the caller closes after its bind and listen), -EADDRINUSE when a process does, -PLAT_ESOCKDIR
 * or -errno. */
int plat_host_free(const char *prefix, const char *name, char *path, int keep);

/* ---- regions (§13.3) ---- */

/* A shared-memory fd of exactly size bytes that nobody can resize (Linux) or that has no name left (portable). */
int plat_region_create(const char *tag, uint64_t size);
/* Whether a received fd is a region of exactly size bytes, as the hello said. */
int plat_region_check(int fd, uint64_t size);
/* Gives back the pages of [off, off+len) (arena trimming; Linux only, a no-op on the portable backend). */
void plat_region_trim(int fd, off_t off, off_t len);
/* The portable backend's SIGBUS guard: a fault in a registered mapping turns it into private zero pages and
 * marks it lost. No-ops on Linux, where seals make the fault impossible. */
void plat_region_mapped(void *base, size_t size);
void plat_region_unmapped(void *base);
int plat_region_lost_(void *base);
extern _Atomic int plat_regions_lost; /* how many faults the guard has caught in this process: 0 almost always */
/* One load on every poll; the table is looked at only once some region was lost. */
static inline int plat_region_lost(void *base) {
  return plat_portable && shm_load_acquire(&plat_regions_lost) && plat_region_lost_(base);
}

/* ---- files ---- */

/* Makes fd size bytes long with storage behind every byte, taken now: a full file system (any user can fill
 * /dev/shm) is -ENOSPC here, never a SIGBUS at the first touch of a page of a shared mapping. 0 or -errno. */
int plat_file_reserve(int fd, uint64_t size);

/* ---- doorbells and notes (§13.4) ---- */

/* A doorbell: ring rd's process by writing wr. A non-blocking AF_UNIX stream socketpair on every backend (§1.2). */
typedef struct {
  int rd, wr;
} plat_bell;
int plat_bell_open(plat_bell *b);
void plat_bell_close(plat_bell *b);
/* Whether a received fd is a doorbell end as §1 / §1.2 require (a non-blocking unix stream socket). */
int plat_bell_check(int fd);

/* ---- waits on a shared 32-bit word (§13.5) ---- */

/* Sleeps while *addr == expect, at most timeout_ms (< 0: no limit); spurious returns allowed. shared: the
 * word is in memory other processes map. */
void plat_wait(_Atomic uint32_t *addr, uint32_t expect, int timeout_ms, int shared);
void plat_wake(_Atomic uint32_t *addr, int shared); /* wakes every waiter */
/* Several words at once (Linux futex_waitv); -ENOSYS where there is no such call. */
typedef struct {
  _Atomic uint32_t *addr;
  uint32_t expect;
  int shared;
} plat_waitv_entry;
int plat_wait_many(const plat_waitv_entry *v, uint32_t n, int timeout_ms);
/* How often, in ms, a thread that polls words other processes change (plat_wait_many being -ENOSYS) should look
 * while it sleeps on another word: 5 on the portable backend, which has no wake for them by design (§13.5); 0
 * where the caller's own slice will do (a Linux kernel before 5.16 is merely old). */
int plat_poll_ms(void);

/* ---- processes (§13.5) ---- */

/* A process's start time (units per backend; compared for equality only), 0 if it is not there. *gone: a
 * zombie or dead one. *stopped (if not NULL): stopped by a signal (SIGSTOP) or a debugger. */
uint64_t plat_proc_start(uint32_t pid, int *gone, int *stopped);
/* A pidfd, or -ENOSYS where there are none (then liveness is kill + start time). */
int plat_pidfd_open(uint32_t pid);
/* §7.1 frozen members: whether every other process holding the listening socket of "<prefix><name>" is stopped
 * (SIGSTOP or a debugger): 1 and their pids (the first max in pids, *n of them, *more beyond), 0 when one runs or
 * none holds it, -ENOSYS where the backend cannot tell (portable, §13.5). */
int plat_listeners_stopped(const char *prefix, const char *name, uint32_t *pids, uint32_t max, uint32_t *n,
                           uint32_t *more);
/* Names thread t (for ps and debuggers). macOS can only name the calling thread, so a new thread is named by its
 * creator (at once, on Linux) and again by itself (macOS). */
void plat_thread_name(pthread_t t, const char *name);
/* n random bytes; -1 if the kernel gave none. */
int plat_random(void *buf, size_t n);
/* The CPU the calling thread runs on, -1 where the OS does not say (macOS). */
int plat_cpu(void);
int plat_keep_off_cpu(int cpu); /* os_keep_off_cpu */
#pragma GCC visibility pop

/* ---- hot paths: inline, the same on every backend ---- */

#include <sys/socket.h>
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: the pair has SO_NOSIGPIPE instead */
#endif
static inline void plat_bell_ring(int wr) {
  char one = 1;
  ssize_t r = send(wr, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)r; /* EAGAIN: a full buffer has rung already; a closed reader is the connection socket's news to tell */
}
static inline void plat_bell_drain(int rd) {
  /* One recv takes every pending ring (§1.2); looping until EAGAIN would let a peer that never stops ringing keep
   * us here. */
  char buf[4096];
  ssize_t r = recv(rd, buf, sizeof buf, MSG_DONTWAIT);
  (void)r;
}
#endif
