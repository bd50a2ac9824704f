/* Lease handover in C, no JS: two processes pinned to CPUs 0 and 1 take turns on one subject. The holder holds
 * 4 ms (asleep, or computing with `work`), reads the clock and releases; the other spins in sbl_try_claim_spin
 * and reads the clock when it holds the subject. `bare` does the same with one shared word (compare-and-swap /
 * store): the floor under any lock. Prints the handover latency's percentiles.
 *   zig-out/bin/lease-handover [lease|bare] [sleep|work]      (bun scripts/zig.ts build lease-handover) */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lease.h"

#define ROUNDS 300

typedef struct {
  double released[2][ROUNDS], acquired[2][ROUNDS];
  _Atomic int ready;
  _Atomic uint32_t word; /* bare mode's lock */
} shared;

static int bare, work;

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity (the figures then include preemption)");
}

/* Holds for ms: asleep, or computing on this CPU. */
static void hold(int ms) {
  if (!work) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
    return;
  }
  double end = now_ns() + ms * 1e6;
  volatile double x = 1;
  while (now_ns() < end)
    for (int k = 0; k < 64; k++) x = x * 1.000001 + 1;
}

typedef struct {
  shared *s;
  sbl_contest *c;
  sbl_holder h;
} party;

static void take(party *p) {
  if (bare) {
    for (uint32_t free_ = 0; !atomic_compare_exchange_weak(&p->s->word, &free_, 1); free_ = 0) __builtin_ia32_pause();
    return;
  }
  static const uint8_t label[] = "bench";
  while (sbl_try_claim_spin(p->c, 1, label, sizeof label - 1, NULL, 0, 0, 1e9, &p->h) != 1) {
  }
}

static void give(party *p) {
  if (bare) atomic_store(&p->s->word, 0);
  else if (sbl_release(p->c, p->h.entry, p->h.version) != 1) {
    fprintf(stderr, "release failed\n");
    exit(1);
  }
}

static void run(shared *s, int role, const char *name) {
  pin(role);
  party p = {.s = s};
  if (!bare) {
    int err = 0;
    p.c = sbl_open(name, 64, SBL_CREATE_IF_MISSING, 5000, &err, NULL, 0, NULL);
    if (!p.c) {
      fprintf(stderr, "sbl_open: %d\n", err);
      exit(1);
    }
  }
  if (role == 0) {
    take(&p);
    atomic_store(&s->ready, 1);
  } else {
    while (!atomic_load(&s->ready)) sched_yield();
  }
  for (int i = 0; i < ROUNDS; i++) {
    if (role == 0) {
      hold(i ? 4 : 100);
      s->released[0][i] = now_ns();
      give(&p);
      hold(2);
      take(&p);
      s->acquired[0][i] = now_ns();
    } else {
      take(&p);
      s->acquired[1][i] = now_ns();
      hold(4);
      s->released[1][i] = now_ns();
      give(&p);
      hold(2);
    }
  }
  if (role == 0) give(&p);
  if (p.c) sbl_close(p.c);
  exit(0);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double t;
  int party, acquire;
} event;

static int by_time(const void *a, const void *b) { return by_value(&((const event *)a)->t, &((const event *)b)->t); }

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "bare")) bare = 1;
    else if (!strcmp(argv[i], "work")) work = 1;
    else if (strcmp(argv[i], "lease") && strcmp(argv[i], "sleep")) {
      fprintf(stderr, "usage: %s [lease|bare] [sleep|work]\n", argv[0]);
      return 2;
    }
  }
  shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) return 1;
  char name[64];
  snprintf(name, sizeof name, "lease-handover-%d", (int)getpid());
  for (int role = 0; role < 2; role++)
    if (fork() == 0) run(s, role, name);
  int ok = 1;
  for (int i = 0; i < 2; i++) {
    int st = 0;
    wait(&st);
    ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  if (!ok) return 1;
  /* A handover is an acquire whose previous event is the other party's release. Anything else (the waiter was
   * descheduled so long that the releaser took the subject back) is counted as starved, as bench/leases does. */
  static event ev[4 * ROUNDS];
  static double d[2 * ROUNDS];
  int m = 0, n = 0, starved = 0;
  for (int party = 0; party < 2; party++)
    for (int i = 0; i < ROUNDS; i++) {
      ev[m++] = (event){s->released[party][i], party, 0};
      ev[m++] = (event){s->acquired[party][i], party, 1};
    }
  qsort(ev, (size_t)m, sizeof ev[0], by_time);
  for (int i = 1; i < m; i++) {
    if (!ev[i].acquire) continue;
    if (!ev[i - 1].acquire && ev[i - 1].party != ev[i].party) d[n++] = ev[i].t - ev[i - 1].t;
    else starved++;
  }
  if (n == 0) return 1;
  qsort(d, (size_t)n, sizeof d[0], by_value);
  printf("%s handover, holder %s: p10 %.0f p50 %.0f p90 %.0f p99 %.0f ns (%d handovers, %d starved)\n",
         bare ? "bare word" : "lease", work ? "working" : "asleep", d[n / 10], d[n / 2], d[n * 9 / 10], d[n * 99 / 100], n,
         starved);
  return 0;
}
