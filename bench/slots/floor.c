/* The machine's floor for a request/response round trip between two processes: a fork()ed pair sharing
 * anonymous memory, two single-producer rings and one request and one response buffer per slot. None of
 * slotbus's bookkeeping (no rendezvous, no validation, no generations), but the same three copies per echo:
 * request in, request to response (worker), response out.
 *
 *   floor <spin|futex|yield> <size> <inflight> <ms> <samples-file>
 *
 * spin: both sides busy-poll. futex: a side with nothing to do sleeps on the ring's tail at once (no spinning),
 * so every message pays a wake-up. yield: a side with nothing to do calls sched_yield after every empty poll, as a
 * slotbus pump that finds its peer on its own CPU does: pinned to one CPU (taskset -c 0), the floor of a pair that
 * shares one (docs/perf/round-nine-cliffs.md). Writes one u32 round-trip time in ns per measured request to samples-file
 * and prints one JSON line: count, elapsed_s, hub_cpu_s, worker_cpu_s (each side's own getrusage), and parts: the
 * msg/s of PARTS runs of equal count of the measured round trips, or one over them all when they are too few
 * (partRates in bench/slots/measure.ts). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING 128u /* > MAX_INFLIGHT + the two marks, so a ring never overflows */
#define MAX_INFLIGHT 64u
#define MAX_SAMPLES (4u << 20)
#define MARK_START 0x80000001u /* worker: take the starting getrusage */
#define MARK_END 0x80000002u   /* worker: take the final getrusage */
#define STOP 0xFFFFFFFFu
#define PARTS 5u
#define MIN_RUN_TRIPS_PER_LOOP 4u /* fewer round trips than PARTS runs of this many per loop: one rate */

typedef struct {
  _Alignas(64) _Atomic uint32_t tail; /* producer writes; the consumer's futex word */
  _Alignas(64) _Atomic uint32_t parked; /* consumer: 1 while it may sleep; only the consumer writes it */
  _Alignas(64) uint32_t ent[RING];
} ring;

typedef struct {
  ring sq, cq;
  _Alignas(64) double worker_cpu[2];
} shared;

static int use_futex;
static int use_yield;

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static double cpu_seconds(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void push(ring *r, uint32_t *tail, uint32_t v) {
  r->ent[*tail % RING] = v;
  /* seq_cst: ordered before the load of the consumer's parked word below (the consumer does the mirror) */
  atomic_store_explicit(&r->tail, ++*tail, memory_order_seq_cst);
  /* The producer never clears `parked`: swapping it to 0 could eat the flag of the consumer's next sleep while
   * this wake lands before that sleep, and a futex wake, unlike an eventfd write, is not remembered. */
  if (use_futex && atomic_load_explicit(&r->parked, memory_order_seq_cst))
    syscall(SYS_futex, &r->tail, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Next entry, waiting for one. With block == 0 returns STOP at once when the ring is empty. */
static uint32_t pop(ring *r, uint32_t *head, int block) {
  for (;;) {
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (t != *head) return r->ent[(*head)++ % RING];
    if (!block) return STOP;
    if (!use_futex) {
      if (use_yield)
        sched_yield();
      else
        cpu_relax();
      continue;
    }
    atomic_store_explicit(&r->parked, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&r->tail, memory_order_seq_cst) == *head)
      syscall(SYS_futex, &r->tail, FUTEX_WAIT, *head, NULL, NULL, 0);
    atomic_store_explicit(&r->parked, 0, memory_order_relaxed);
  }
}

static void serve(shared *sh, uint8_t *arenas, size_t size) {
  uint32_t head = 0, tail = 0;
  double start = 0;
  for (;;) {
    uint32_t e = pop(&sh->sq, &head, 1);
    if (e == STOP) return;
    if (e == MARK_START) start = cpu_seconds();
    else if (e == MARK_END) sh->worker_cpu[0] = cpu_seconds() - start;
    else {
      memcpy(arenas + (2 * (size_t)e + 1) * size, arenas + 2 * (size_t)e * size, size);
      push(&sh->cq, &tail, e);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: floor <spin|futex|yield> <size> <inflight> <ms> <samples-file>\n");
    return 2;
  }
  use_futex = strcmp(argv[1], "futex") == 0;
  use_yield = strcmp(argv[1], "yield") == 0;
  size_t size = strtoul(argv[2], NULL, 10);
  uint32_t inflight = (uint32_t)strtoul(argv[3], NULL, 10);
  uint64_t run_ns = strtoull(argv[4], NULL, 10) * 1000000u;
  if ((!use_futex && !use_yield && strcmp(argv[1], "spin")) || size == 0 || inflight == 0 || inflight > MAX_INFLIGHT) {
    fprintf(stderr, "floor: bad arguments\n");
    return 2;
  }

  size_t arena_bytes = 2 * (size_t)inflight * size;
  shared *sh = mmap(NULL, sizeof *sh + arena_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return perror("mmap"), 1;
  uint8_t *arenas = (uint8_t *)(sh + 1);
  memset(arenas, 0, arena_bytes); /* fault the pages in before either side starts */

  pid_t pid = fork();
  if (pid < 0) return perror("fork"), 1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the hub, however it ends */
    if (getppid() == 1) _exit(1);
    serve(sh, arenas, size);
    _exit(0);
  }

  uint8_t *src = malloc(size), *dst = malloc(size);
  uint32_t *samples = malloc(MAX_SAMPLES * sizeof *samples);
  uint64_t *ends = malloc(MAX_SAMPLES * sizeof *ends);
  uint64_t sent_at[MAX_INFLIGHT];
  if (!src || !dst || !samples || !ends) return perror("malloc"), 1;
  for (size_t i = 0; i < size; i++) src[i] = (uint8_t)i;

  uint32_t head = 0, tail = 0, count = 0, outstanding = 0;
  uint64_t warm_until = now_ns() + run_ns / 8, t_start = 0, t_end = 0;
  double hub_start = 0;
  int phase = 0; /* 0 warm-up, 1 measuring, 2 draining */

  for (uint32_t i = 0; i < inflight; i++) {
    memcpy(arenas + 2 * (size_t)i * size, src, size);
    sent_at[i] = now_ns();
    push(&sh->sq, &tail, i);
    outstanding++;
  }
  while (outstanding > 0) {
    uint32_t i = pop(&sh->cq, &head, 1);
    memcpy(dst, arenas + (2 * (size_t)i + 1) * size, size);
    uint64_t t = now_ns();
    outstanding--;
    if (phase == 1 && count < MAX_SAMPLES) {
      uint64_t rtt = t - sent_at[i];
      ends[count] = t;
      samples[count++] = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
    }
    if (phase == 0 && t >= warm_until) {
      phase = 1;
      push(&sh->sq, &tail, MARK_START);
      hub_start = cpu_seconds();
      t_start = now_ns();
    } else if (phase == 1 && (t - t_start >= run_ns || count >= MAX_SAMPLES)) {
      phase = 2;
    }
    if (phase == 2) continue;
    memcpy(arenas + 2 * (size_t)i * size, src, size);
    sent_at[i] = t; /* one clock read per echo, as the Bun lanes */
    push(&sh->sq, &tail, i);
    outstanding++;
  }
  t_end = now_ns();
  double hub_cpu = cpu_seconds() - hub_start;
  push(&sh->sq, &tail, MARK_END);
  push(&sh->sq, &tail, STOP);
  int status;
  waitpid(pid, &status, 0);
  if (memcmp(src, dst, size) != 0) return fprintf(stderr, "floor: echo mismatch\n"), 1;

  FILE *f = fopen(argv[5], "wb");
  if (!f || fwrite(samples, sizeof *samples, count, f) != count || fclose(f)) return perror(argv[5]), 1;
  printf("{\"count\":%u,\"elapsed_s\":%.9f,\"hub_cpu_s\":%.6f,\"worker_cpu_s\":%.6f,\"parts\":[", count,
         (t_end - t_start) / 1e9, hub_cpu, sh->worker_cpu[0]);
  if (count < PARTS * MIN_RUN_TRIPS_PER_LOOP * inflight) {
    uint64_t span = count ? ends[count - 1] - t_start : 0;
    printf("%.3f", count ? count * 1e9 / (double)(span ? span : 1) : 0.0);
  } else {
    uint64_t from = t_start;
    uint32_t done = 0;
    for (uint32_t k = 1; k <= PARTS; k++) {
      uint32_t upto = (uint32_t)((uint64_t)k * count / PARTS);
      uint64_t span = ends[upto - 1] - from;
      printf("%s%.3f", k > 1 ? "," : "", (upto - done) * 1e9 / (double)(span ? span : 1));
      from = ends[upto - 1];
      done = upto;
    }
  }
  printf("]}\n");
  return 0;
}
