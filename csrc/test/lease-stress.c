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

#include "tsan-shared-maps.h"

#define THREADS 4
#define SUBJECTS 3

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
  sbl_contest *c = sbl_open(g_name, 64, SBL_CREATE_IF_MISSING, 5000, &err, NULL, 0, NULL);
  if (!c) FAIL("thread %ld: sbl_open: %d", id, err);
  sbl_holder h;
  unsigned seed = (unsigned)id * 2654435761u;
  for (long i = 0; i < g_iterations; i++) {
    uint32_t s = (uint32_t)(rand_r(&seed) % SUBJECTS);
    char label[16];
    int len = snprintf(label, sizeof label, "subject-%u", s);
    int r = sbl_try_claim(c, 1, (const uint8_t *)label, (uint32_t)len, (const uint8_t *)"stress", 6, now_ms(), 0, NULL, &h);
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
  sbl_contest *c = sbl_open(g_name, 64, SBL_CREATE_IF_MISSING, 5000, &err, NULL, 0, NULL);
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
  sbl_contest *anchor = sbl_open(g_name, 64, SBL_CREATE_IF_MISSING, 5000, &err, NULL, 0, NULL); /* holds the contest open for the whole run */
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
