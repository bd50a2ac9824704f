/* Internal to libslotbus: the OS primitives under both schemes of csrc/platform.h (docs/PROTOCOL.md §13.5), one
 * file per OS, each in this header's section order: csrc/os_linux.c (futex, SO_PEERCRED, /dev/shm, /proc, pidfd,
 * getrandom) and csrc/os_darwin.c (os_sync/ulock, getpeereid, shm_open, proc_pidinfo, arc4random). Chosen at
 * compile time; the file of another OS compiles to nothing. Only platform.c and the schemes (csrc/scheme.h)
 * include it, after sys.h, whose platform.h gives it plat_waitv_entry. Hidden: never exported from the library.
 * Not part of the public API. */
#ifndef SLOTBUS_OS_H
#define SLOTBUS_OS_H
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* ---- waits on a shared 32-bit word ---- */

/* Sleeps while *addr == expect, at most timeout_ms (< 0: no limit); spurious returns allowed. shared: the word
 * is in memory other processes map. */
void os_wait(_Atomic uint32_t *addr, uint32_t expect, int timeout_ms, int shared);
/* Wakes every waiter on addr. */
void os_wake(_Atomic uint32_t *addr, int shared);
/* Several words at once (Linux futex_waitv); -ENOSYS where the kernel has no such call. */
int os_wait_many(const plat_waitv_entry *v, uint32_t n, int timeout_ms);

/* ---- sockets ---- */

/* The peer's effective uid and pid (-1 where the kernel does not say). 0 or -errno. */
int os_peer(int sock, uint32_t *uid, int32_t *pid);

/* A datagram socket that never receives an empty datagram (Linux: a socket filter drops it; a reader such as Bun's
 * takes a read of 0 bytes for the end of the socket). 0 or -errno; 0 where the OS has no such filter. */
int os_drop_empty_datagrams(int sock);

/* ---- files ---- */

/* The user's own temp directory, in which only this uid (and root) can make anything, ending in '/', into out: 0,
 * or -ENOENT where the OS has none that every process of the user finds alike (Linux: $XDG_RUNTIME_DIR belongs to a
 * login session's environment, not to the uid). */
int os_user_temp_dir(char *out, size_t n);
/* Makes the file size bytes long with storage behind every byte (fallocate): 0, -errno (-ENOSPC when the file
 * system is full), or -EOPNOTSUPP where the OS or the file system has no such call. */
int os_file_reserve(int fd, uint64_t size);

/* ---- shared memory ---- */

/* A shared memory object that never has a name, 0600, read-write (Linux: an O_TMPFILE file in /dev/shm), so a
 * kill -9 at any moment leaves nothing. fd, -EOPNOTSUPP where the OS or its /dev/shm cannot make one, or -errno. */
int os_shm_unnamed(void);
/* Creates the POSIX shared memory object name ("/sb.<16 hex>": at most 31 bytes, as macOS allows), exclusively,
 * 0600, read-write. fd, -EEXIST when the name is taken, or -errno. */
int os_shm_create(const char *name);
/* Removes the name of a shared memory object (its fds stay valid). */
void os_shm_unlink(const char *name);

/* ---- processes ---- */

/* A process's start time (units per OS; compared for equality only), 0 if it is not there. *gone: a zombie or
 * dead one. *stopped (if not NULL): stopped by a signal (SIGSTOP) or a debugger. */
uint64_t os_proc_start(uint32_t pid, int *gone, int *stopped);
/* A pidfd, or -errno; -ENOSYS where there are none. */
int os_pidfd_open(uint32_t pid);
/* Whether every other process holding the listening unix socket bound to path (a socket file's, §1.1) is
 * stopped (SIGSTOP or a debugger): 1 and their pids (the first max in pids, *n of them, *more beyond), 0 when one
 * runs or none holds it, -ENOSYS where the OS cannot tell. */
int os_listeners_stopped(const char *path, uint32_t *pids, uint32_t max, uint32_t *n, uint32_t *more);

/* ---- threads and randomness ---- */

/* The CPU the calling thread runs on (Linux: sched_getcpu, no syscall), -1 where the OS does not say. */
int os_cpu(void);
/* Keeps the calling thread off `cpu` (Linux: its affinity mask less that CPU, the mask it had kept to put back) until
 * called with -1, which puts the kept mask back: the CPU it runs on after, 0 for -1, -EINVAL when `cpu` is not in its
 * mask or the mask has one CPU, -ENOSYS where the OS cannot. */
int os_keep_off_cpu(int cpu);
/* Names thread t where the OS can (macOS: only the calling thread). */
void os_thread_name(pthread_t t, const char *name);
/* n random bytes; -1 if the kernel gave none. */
int os_random(void *buf, size_t n);

#pragma GCC visibility pop
#endif
