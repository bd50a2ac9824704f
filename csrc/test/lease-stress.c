/* Stress test of the lease contest table (docs/PROTOCOL.md §7): THREADS members (one sbl_contest each, all
 * in this process, so ThreadSanitizer sees every access) claim SUBJECTS subjects over and over. Whoever
 * holds a subject updates plain, non-atomic per-subject state: a data race on it (TSan) or a second holder
 * inside the critical section (the owner check) means mutual exclusion broke. Tokens must strictly increase
 * per subject in holding order. Yielders sometimes wait on the entry's futex through sbl_wait_*, a scanner
 * thread reads holders and stats meanwhile (the seqlock read side).
 * Usage: lease-stress [iterations-per-thread]   Build with -fsanitize=thread too (test/leases/c-stress.test.ts). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lease.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
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

#define THREADS 4
#define SUBJECTS 3

/* ---- TSan: one address for the table ----
 * TSan tracks memory by virtual address; each member maps the memfd separately, so accesses through two
 * mappings would never be compared. In the TSan build a second MAP_SHARED mapping of a memfd already mapped
 * returns the first address (same pages, same semantics), as csrc/test/stress.c does for the slot region. */
#if STRESS_TSAN
#if defined(__clang__)
#define NOT_INSTRUMENTED __attribute__((disable_sanitizer_instrumentation))
#else
#define NOT_INSTRUMENTED __attribute__((no_sanitize_thread))
#endif
extern void *__interceptor_mmap(void *, size_t, int, int, int, off_t) __attribute__((weak));
extern int __interceptor_munmap(void *, size_t) __attribute__((weak));
static struct {
  dev_t dev;
  ino_t ino;
  size_t len;
  void *addr;
  int refs;
} maps[8];
static atomic_flag maps_lock = ATOMIC_FLAG_INIT;

NOT_INSTRUMENTED static void maps_acquire(void) {
  while (atomic_flag_test_and_set_explicit(&maps_lock, memory_order_acquire)) sched_yield();
}
NOT_INSTRUMENTED static void maps_release(void) { atomic_flag_clear_explicit(&maps_lock, memory_order_release); }

NOT_INSTRUMENTED void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  struct stat st;
  if (addr || fd < 0 || off != 0 || !(flags & MAP_SHARED) || !__interceptor_mmap || fstat(fd, &st) != 0)
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  maps_acquire();
  void *p = MAP_FAILED;
  int free_entry = -1;
  for (int i = 0; i < 8; i++) {
    if (maps[i].refs == 0) {
      if (free_entry < 0) free_entry = i;
    } else if (maps[i].dev == st.st_dev && maps[i].ino == st.st_ino && maps[i].len == len) {
      maps[i].refs++;
      p = maps[i].addr;
      break;
    }
  }
  if (p == MAP_FAILED) {
    p = __interceptor_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && free_entry >= 0) {
      maps[free_entry].dev = st.st_dev;
      maps[free_entry].ino = st.st_ino;
      maps[free_entry].len = len;
      maps[free_entry].addr = p;
      maps[free_entry].refs = 1;
    }
  }
  maps_release();
  return p;
}

NOT_INSTRUMENTED int munmap(void *addr, size_t len) {
  int tracked = 0;
  maps_acquire();
  for (int i = 0; i < 8; i++) {
    if (maps[i].refs > 0 && maps[i].addr == addr && maps[i].len == len) {
      tracked = 1;
      if (--maps[i].refs > 0) {
        maps_release();
        return 0;
      }
      break;
    }
  }
  maps_release();
  if (tracked && __interceptor_munmap) return __interceptor_munmap(addr, len);
  return (int)syscall(SYS_munmap, addr, len);
}
#endif

static char g_name[64];
static long g_iterations = 20000;
static _Atomic int g_done;

/* Touched only by the holder of subject s: plain memory on purpose. */
static struct {
  long holder; /* -1 when nobody is inside */
  long count;
  uint64_t last_token;
} g_subject[SUBJECTS];

static _Atomic long g_claims, g_yields, g_waits, g_renews;

#define FAIL(...)                          \
  do {                                     \
    fprintf(stderr, "lease stress FAILED: " __VA_ARGS__); \
    fputc('\n', stderr);                   \
    _exit(1);                              \
  } while (0)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *member_main(void *arg) {
  long id = (long)arg;
  int err;
  sbl_contest *c = sbl_open(g_name, 64, 5000, &err);
  if (!c) FAIL("thread %ld: sbl_open: %d", id, err);
  sbl_holder h;
  unsigned seed = (unsigned)id * 2654435761u;
  for (long i = 0; i < g_iterations; i++) {
    uint32_t s = (uint32_t)(rand_r(&seed) % SUBJECTS);
    char label[16];
    int len = snprintf(label, sizeof label, "subject-%u", s);
    int r = sbl_try_claim(c, 1, (const uint8_t *)label, (uint32_t)len, (const uint8_t *)"stress", 6, now_ms(), 0, &h);
    if (r < 0) FAIL("try_claim: %d (%s)", r, sbl_error(c));
    if (r == 0) {
      atomic_fetch_add_explicit(&g_yields, 1, memory_order_relaxed);
      if (rand_r(&seed) % 8 == 0) { /* wait on the futex until it may be free */
        sbl_wait *w = sbl_wait_start(c, h.entry, &err);
        if (!w) FAIL("wait_start: %d", err);
        struct pollfd p = {sbl_wait_fd(w), POLLIN, 0};
        poll(&p, 1, 1000);
        sbl_wait_end(w);
        atomic_fetch_add_explicit(&g_waits, 1, memory_order_relaxed);
      }
      continue;
    }
    /* inside: nobody else may be */
    if (g_subject[s].holder != -1) FAIL("subject %u held by %ld and %ld at once", s, g_subject[s].holder, id);
    g_subject[s].holder = id;
    if (h.token <= g_subject[s].last_token) FAIL("token %llu after %llu on subject %u", (unsigned long long)h.token, (unsigned long long)g_subject[s].last_token, s);
    g_subject[s].last_token = h.token;
    g_subject[s].count++;
    uint32_t version = h.version;
    if (rand_r(&seed) % 16 == 0) { /* renew far into the future: still ours, new version */
      if (sbl_renew(c, h.entry, version, now_ms(), 1e9, &h) != 1) FAIL("renew of a held claim failed");
      version = h.version;
      atomic_fetch_add_explicit(&g_renews, 1, memory_order_relaxed);
    }
    if (rand_r(&seed) % 4 == 0) sched_yield(); /* hold it a while */
    if (g_subject[s].holder != id) FAIL("subject %u changed hands while held", s);
    g_subject[s].holder = -1;
    if (sbl_release(c, h.entry, version) != 1) FAIL("release of a held claim failed");
    atomic_fetch_add_explicit(&g_claims, 1, memory_order_relaxed);
  }
  sbl_close(c);
  return NULL;
}

static void *scanner_main(void *arg) {
  (void)arg;
  int err;
  sbl_contest *c = sbl_open(g_name, 64, 5000, &err);
  if (!c) FAIL("scanner: sbl_open: %d", err);
  sbl_holder h;
  double st[8];
  while (!atomic_load_explicit(&g_done, memory_order_acquire)) {
    for (int i = 0; (i = sbl_next_holder(c, (uint32_t)i, now_ms(), &h)) >= 0; i++)
      if (h.owner_len != 6 || memcmp(h.owner, "stress", 6) != 0 || h.kind != 1) FAIL("scanner read a torn holder");
    sbl_stats(c, st);
    sched_yield();
  }
  sbl_close(c);
  return NULL;
}

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "lease stress FAILED: watchdog: hung\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(1);
}

int main(int argc, char **argv) {
  if (argc > 1) g_iterations = atol(argv[1]);
  snprintf(g_name, sizeof g_name, "lease-stress-%d", (int)getpid());
  for (int s = 0; s < SUBJECTS; s++) g_subject[s].holder = -1;
  signal(SIGALRM, watchdog);
  alarm(300);
  int err;
  sbl_contest *anchor = sbl_open(g_name, 64, 5000, &err); /* holds the contest open for the whole run */
  if (!anchor) FAIL("sbl_open: %d", err);
  pthread_t t[THREADS], scanner;
  pthread_create(&scanner, NULL, scanner_main, NULL);
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, member_main, (void *)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  atomic_store_explicit(&g_done, 1, memory_order_release);
  pthread_join(scanner, NULL);
  long total = 0;
  for (int s = 0; s < SUBJECTS; s++) total += g_subject[s].count;
  long claims = atomic_load(&g_claims);
  if (total != claims) FAIL("%ld claims counted inside, %ld outside", total, claims);
  double st[8];
  sbl_stats(anchor, st);
  if ((long)st[0] != claims) FAIL("stats say %.0f claims, threads made %ld", st[0], claims);
  sbl_close(anchor);
  printf("lease stress ok: claims=%ld yields=%ld waits=%ld renews=%ld tsan=%d\n", claims, atomic_load(&g_yields),
         atomic_load(&g_waits), atomic_load(&g_renews), STRESS_TSAN);
  return 0;
}
