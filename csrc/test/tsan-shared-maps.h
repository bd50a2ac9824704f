/* Shared by the C stress tests: STRESS_TSAN (built with ThreadSanitizer or not) and, in TSan builds, one
 * address for a shared memfd mapped twice. Include after the system headers. */
#ifndef SLOTBUS_TSAN_SHARED_MAPS_H
#define SLOTBUS_TSAN_SHARED_MAPS_H
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif
#ifndef STRESS_TSAN
#define STRESS_TSAN 0
#endif

/* ---- TSan: one address for a shared memfd ----
 * TSan tracks memory by virtual address. Two mappings of one memfd (the hub's and the worker's region, two
 * members' lease tables) would put every access pair on different addresses, and TSan could never see a race
 * across them. In the TSan build a second MAP_SHARED mapping of a memfd already mapped returns the first
 * address (same pages, same semantics), using the foreign-interceptor protocol of
 * sanitizer_common/interception.h. shared_maps_aliased counts the aliased mappings. */
#if STRESS_TSAN
#if defined(__clang__)
#define NOT_INSTRUMENTED __attribute__((disable_sanitizer_instrumentation))
#else
#define NOT_INSTRUMENTED __attribute__((no_sanitize_thread))
#endif
extern void *__interceptor_mmap(void *, size_t, int, int, int, off_t) __attribute__((weak));
extern int __interceptor_munmap(void *, size_t) __attribute__((weak));

/* Not instrumented and no intercepted calls on the anonymous path: the runtime's own symbolizer calls
 * mmap/munmap through these symbols while TSan is still initializing (gcc's libtsan does). */
static struct {
  dev_t dev;
  ino_t ino;
  size_t len;
  void *addr;
  int refs;
} shared_maps[16];
static atomic_flag shared_maps_lock = ATOMIC_FLAG_INIT;
static int shared_maps_aliased;

NOT_INSTRUMENTED static void shared_maps_acquire(void) {
  while (atomic_flag_test_and_set_explicit(&shared_maps_lock, memory_order_acquire)) sched_yield();
}

NOT_INSTRUMENTED static void shared_maps_release(void) {
  atomic_flag_clear_explicit(&shared_maps_lock, memory_order_release);
}

NOT_INSTRUMENTED void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  struct stat st;
  if (addr || fd < 0 || off != 0 || !(flags & MAP_SHARED) || !__interceptor_mmap || fstat(fd, &st) != 0)
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  shared_maps_acquire();
  void *p = MAP_FAILED;
  int free_entry = -1;
  for (int i = 0; i < 16; i++) {
    if (shared_maps[i].refs == 0) {
      if (free_entry < 0) free_entry = i;
    } else if (shared_maps[i].dev == st.st_dev && shared_maps[i].ino == st.st_ino && shared_maps[i].len == len) {
      shared_maps[i].refs++;
      shared_maps_aliased++;
      p = shared_maps[i].addr;
      break;
    }
  }
  if (p == MAP_FAILED) {
    p = __interceptor_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && free_entry >= 0) {
      shared_maps[free_entry].dev = st.st_dev;
      shared_maps[free_entry].ino = st.st_ino;
      shared_maps[free_entry].len = len;
      shared_maps[free_entry].addr = p;
      shared_maps[free_entry].refs = 1;
    }
  }
  shared_maps_release();
  return p;
}

NOT_INSTRUMENTED int munmap(void *addr, size_t len) {
  int tracked = 0;
  shared_maps_acquire();
  for (int i = 0; i < 16; i++) {
    if (shared_maps[i].refs > 0 && shared_maps[i].addr == addr && shared_maps[i].len == len) {
      tracked = 1;
      if (--shared_maps[i].refs > 0) {
        shared_maps_release();
        return 0;
      }
      break;
    }
  }
  shared_maps_release();
  if (tracked && __interceptor_munmap) return __interceptor_munmap(addr, len);
  return (int)syscall(SYS_munmap, addr, len);
}
#endif
#endif
