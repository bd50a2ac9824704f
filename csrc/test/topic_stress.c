/* Stress test of the topic ring (docs/PROTOCOL.md §8): publisher threads and filtered subscriber threads on
 * one small topic so lapping, pushes, padding and parking all happen. Publisher 0 and subscriber 1 share one
 * handle (§8.3 Threads); the others have their own. Checks: each subscriber receives each publisher's
 * events in publish order, every data byte is its (publisher, seq) pattern, never an event outside its
 * filter, and received + lagged equals the matching events published.
 *   topic_stress [N]              3 publishers × N events on a 1 MiB ring    "topic stress ok: ..."
 *   topic_stress stall [N]        4 publishers of 2–12 KB events on a 64 KiB ring, a staller thread stopping
 *                                 them at random points (SIGUSR1: the handler sleeps 0.2–3 ms), so writers
 *                                 are lapped mid-copy: fences (§8.3 P3–P4) must keep their bytes out of
 *                                 newer records                                     "topic stall ok: ..."
 *   topic_stress hostile SEED [chaos]  2 publishers and a hostile thread scribbling header words (or, with
 *                                 chaos, also random words and fake claims) into the ring: every reader
 *                                 must stay responsive and count what it sees broken "topic hostile ok: ..."
 * Run under ThreadSanitizer as topic-stress-tsan (test/events/c-stress.test.ts, ring.test.ts). */
#include "topic.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PUBS 4
#define SUBS 4

enum { MODE_LOAD, MODE_STALL, MODE_HOSTILE };
static int mode = MODE_LOAD, chaos = 0, npubs = 3;
static uint32_t capacity = 1 << 20, seed = 0;
static sb_topic *shared; /* publisher 0's handle, also subscriber 1's */
static pthread_t pub_threads[MAX_PUBS];
static atomic_int pubs_started;

static const char *TYPES[] = {"a", "b.x", "b.y", "c"};
static char topic_name[64];
static uint32_t events_per_pub = 100000;
static atomic_int subscribed, publishers_done, opened;

typedef struct {
  int mode;          /* filter mode */
  const char *type;  /* for exact / prefix */
  const char *key;   /* equality-matched routing key k, or NULL */
  uint32_t queue;
  int park;          /* wait by parking instead of spinning */
  uint64_t expected; /* filled by publishers */
  uint64_t received, lagged, estimates, corrupt, last_seq[MAX_PUBS];
  int failed;
  char why[160];
} sub_spec;

static sub_spec specs[SUBS] = {
    {.mode = SB_FILTER_ANY, .type = "", .queue = 4096},
    {.mode = SB_FILTER_EXACT, .type = "a", .queue = 16, .park = 1},
    {.mode = SB_FILTER_PREFIX, .type = "b.", .queue = 256, .park = 1},
    {.mode = SB_FILTER_ANY, .type = "", .key = "1", .queue = 1},
};
static _Atomic uint64_t expected[SUBS];

static int spec_matches(const sub_spec *s, const char *type, const char *k) {
  if (s->mode == SB_FILTER_EXACT && strcmp(type, s->type) != 0) return 0;
  if (s->mode == SB_FILTER_PREFIX && strncmp(type, s->type, strlen(s->type)) != 0) return 0;
  return s->key == NULL || strcmp(k, s->key) == 0;
}

static uint32_t encode_filter(const sub_spec *s, uint8_t *f) {
  uint32_t n = 0, tl = (uint32_t)strlen(s->type);
  f[n++] = (uint8_t)s->mode;
  f[n++] = (uint8_t)tl;
  memcpy(f + n, s->type, tl), n += tl;
  f[n++] = s->key ? 1 : 0;
  if (s->key) {
    f[n++] = 1, f[n++] = (uint8_t)strlen(s->key);
    f[n++] = 'k';
    memcpy(f + n, s->key, strlen(s->key)), n += (uint32_t)strlen(s->key);
  }
  return n;
}

/* The byte a publisher writes at data offset i of its event seq: any other byte there is foreign. */
static uint8_t pattern(uint32_t pub, uint32_t seq, uint32_t i) { return (uint8_t)(pub * 131u + seq * 7u + i * 13u + (i >> 8)); }

/* An encoded event (topic.h): u32 pid, u16 type_len, u8 keys, u8 enc, u32 data_len, u32 0, type, keys, data. */
static uint32_t encode_event(uint8_t *b, const char *type, const char *k, uint32_t pub, uint32_t seq, uint32_t pad) {
  uint16_t tl = (uint16_t)strlen(type);
  uint32_t data_len = 8 + pad, n = 16;
  memset(b, 0, 16);
  memcpy(b + 4, &tl, 2);
  b[6] = 1;
  memcpy(b + 8, &data_len, 4);
  memcpy(b + n, type, tl), n += tl;
  b[n++] = 1, b[n++] = 1, b[n++] = 'k', b[n++] = (uint8_t)k[0];
  memcpy(b + n, &pub, 4), memcpy(b + n + 4, &seq, 4);
  for (uint32_t i = 0; i < pad; i++) b[n + 8 + i] = pattern(pub, seq, i);
  return n + data_len;
}

static sb_topic *open_topic(void) {
  int err = 0;
  sb_topic *t = sb_topic_open(topic_name, capacity, SB_CREATE_IF_MISSING, 10000, &err);
  if (!t) {
    fprintf(stderr, "open: %d\n", err);
    exit(1);
  }
  atomic_fetch_add(&opened, 1);
  return t;
}

static void count_expected(const char *type, const char *k, int add) {
  for (int s = 0; s < SUBS; s++)
    if (spec_matches(&specs[s], type, k)) atomic_fetch_add(&expected[s], (uint64_t)(int64_t)add);
}

static void *publisher(void *arg) {
  uint32_t id = (uint32_t)(uintptr_t)arg;
  sb_topic *t = id == 0 ? shared : open_topic();
  atomic_fetch_add(&pubs_started, 1);
  while (atomic_load(&subscribed) < SUBS) usleep(100);
  static _Thread_local uint8_t buf[16384];
  uint32_t rnd = id * 7919u + 1 + seed * 104729u;
  for (uint32_t seq = 1; seq <= events_per_pub; seq++) {
    rnd = rnd * 1103515245u + 12345u;
    const char *type = TYPES[(rnd >> 8) % 4];
    const char *k = ((rnd >> 12) & 1) ? "1" : "2";
    uint32_t pad = (rnd >> 16) % 7 == 0 ? 600 : (rnd >> 16) % 64; /* some large ones force padding */
    if (mode == MODE_STALL) pad = 2000 + (rnd >> 10) % 10000; /* 2–12 KB on a 64 KiB ring */
    count_expected(type, k, 1);
    int r = sb_topic_publish(t, buf, encode_event(buf, type, k, id, seq, pad));
    if (r == -11 && mode == MODE_HOSTILE) { /* EAGAIN: the hostile thread aborted it again and again */
      count_expected(type, k, -1);
      continue;
    }
    if (r != 0) {
      fprintf(stderr, "publish: %d\n", r);
      exit(1);
    }
  }
  atomic_fetch_add(&publishers_done, 1);
  if (t != shared) sb_topic_close(t);
  return NULL;
}

/* ---- stall mode: a thread that stops publishers at random points, mid-copy included ---- */

static _Atomic uint32_t stall_rnd = 1;
static atomic_ulong stalls;

static void on_stall(int sig) {
  (void)sig;
  uint32_t r = atomic_fetch_add_explicit(&stall_rnd, 2654435761u, memory_order_relaxed);
  struct timespec ts = {0, 200000 + (long)(r >> 8) % 2800000}; /* 0.2–3 ms: many laps of a 64 KiB ring */
  nanosleep(&ts, NULL);
  atomic_fetch_add_explicit(&stalls, 1, memory_order_relaxed);
}

static void *staller(void *arg) {
  (void)arg;
  uint32_t rnd = 12345u + seed;
  while (atomic_load(&pubs_started) < npubs) usleep(100);
  while (atomic_load(&publishers_done) < npubs) {
    rnd = rnd * 1103515245u + 12345u;
    struct timespec ts = {0, 20000 + (long)(rnd >> 8) % 300000};
    nanosleep(&ts, NULL);
    pthread_kill(pub_threads[(rnd >> 4) % (uint32_t)npubs], SIGUSR1);
  }
  return NULL;
}

/* ---- hostile mode: a member writing where it should not ---- */

typedef _Atomic uint64_t a64;
#define POS_MASK ((1ull << 40) - 1)
static uint64_t hdr(uint64_t pos, uint64_t alen, uint32_t state) { return ((pos >> 4) & POS_MASK) << 24 | (alen >> 4) << 4 | state; }
static atomic_ulong scribbles;

static void *hostile(void *arg) {
  (void)arg;
  sb_topic *t = open_topic();
  uint8_t buf[64];
  count_expected("c", "2", 1);
  if (sb_topic_publish(t, buf, encode_event(buf, "c", "2", MAX_PUBS, 1, 0)) != 0) exit(1); /* maps the ring writable */
  uint8_t *base = sb_topic_region(t);
  a64 *tail = (a64 *)(base + SB_TOPIC_OFF_TAIL);
  uint8_t *ring = base + SB_TOPIC_OFF_DATA;
  uint64_t rnd = 0x9E3779B97F4A7C15ull * (seed + 1);
  while (atomic_load(&publishers_done) < npubs) {
    rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
    uint64_t tl = atomic_load_explicit(tail, memory_order_relaxed), back = (rnd >> 8) % capacity & ~15ull;
    uint64_t pos = tl - back, off = pos & (capacity - 1);
    a64 *w = (a64 *)(ring + off);
    switch ((rnd >> 40) % (chaos ? 6 : 3)) {
    case 0: /* a random word where a header may be */
      atomic_store_explicit(w, rnd * 0x2545F4914F6CDD1Dull, memory_order_relaxed);
      break;
    case 1: { /* a header for its own position with a random extent and state */
      uint64_t alen = 16 + ((rnd >> 20) % (capacity / 2) & ~15ull);
      atomic_store_explicit(w, hdr(pos, alen, (uint32_t)(rnd >> 50) % 6), memory_order_relaxed);
      break;
    }
    case 2: { /* the nearest real header before it: change its len, its extent or its state */
      for (uint64_t o = off; o + 16 <= capacity && o < off + 4096; o += 16) {
        a64 *h = (a64 *)(ring + o);
        uint64_t v = atomic_load_explicit(h, memory_order_relaxed);
        if ((v & 15) < 1 || (v & 15) > 4 || ((v >> 24) << 4 & (capacity - 1)) != o) continue;
        if (rnd & 1) atomic_store_explicit(h + 1, (rnd >> 16) & 0xFFFFF, memory_order_relaxed); /* len */
        else atomic_store_explicit(h, (v & ~0xFFFFF0ull) | (((rnd >> 24) & 0xFFFF) << 4), memory_order_relaxed);
        break;
      }
      break;
    }
    case 3: /* chaos: a burst of random words */
      for (int i = 0; i < 64; i++)
        atomic_store_explicit((a64 *)(ring + ((rnd >> 3) + 8u * (uint64_t)i * 977u) % capacity / 8 * 8),
                              rnd * (uint64_t)(i + 1), memory_order_relaxed);
      break;
    case 4: { /* chaos: a claim at the tail of a record no reader can take, or one that lies about its len */
      uint64_t v = atomic_load_explicit((a64 *)(ring + (tl & (capacity - 1))), memory_order_relaxed);
      uint64_t room = capacity - (tl & (capacity - 1)), alen = 16 + ((rnd >> 20) % room & ~15ull);
      if (alen > room) break;
      if (!atomic_compare_exchange_strong((a64 *)(ring + (tl & (capacity - 1))), &v, hdr(tl, alen, 2))) break;
      atomic_store_explicit((a64 *)(ring + (tl & (capacity - 1))) + 1, rnd & 1 ? alen : (rnd >> 12) & 0xFFFFFF, memory_order_relaxed);
      uint64_t expect = tl;
      atomic_compare_exchange_strong(tail, &expect, tl + alen);
      break;
    }
    case 5: /* chaos: a claim left WRITING for readers to abort */
      atomic_store_explicit(w, hdr(pos, 16 + ((rnd >> 20) % 4096 & ~15ull), 1), memory_order_relaxed);
      break;
    }
    atomic_fetch_add_explicit(&scribbles, 1, memory_order_relaxed);
    usleep(20 + (uint32_t)(rnd >> 56) % 180);
  }
  sb_topic_close(t);
  return NULL;
}

static void check_batch(sub_spec *s, sb_sub *sub, int n) {
  uint8_t *b = sb_sub_batch(sub);
  if (mode == MODE_HOSTILE) return; /* its scribbles reach committed data too: no reader can tell */
  for (int i = 0; i < n; i++) {
    uint32_t len;
    uint16_t tl;
    memcpy(&len, b + 8, 4);
    memcpy(&tl, b + 20, 2);
    char type[16] = {0};
    memcpy(type, b + 32, tl < 15 ? tl : 15);
    const uint8_t *keys = b + 32 + tl;
    char k[2] = {(char)keys[3], 0};
    uint32_t pub, seq;
    memcpy(&pub, keys + 4, 4);
    memcpy(&seq, keys + 8, 4);
    if (!s->failed && !spec_matches(s, type, k)) {
      s->failed = 1;
      snprintf(s->why, sizeof s->why, "got %s k=%s outside the filter", type, k);
    }
    if (!s->failed && (pub >= (uint32_t)npubs || seq <= s->last_seq[pub])) {
      s->failed = 1;
      snprintf(s->why, sizeof s->why, "publisher %u: seq %u after %llu", pub, seq,
               pub < (uint32_t)npubs ? (unsigned long long)s->last_seq[pub] : 0ull);
    }
    uint32_t data_len;
    memcpy(&data_len, b + 24, 4);
    const uint8_t *data = keys + 4;
    for (uint32_t j = 8; !s->failed && j < data_len; j++)
      if (data[j] != pattern(pub, seq, j - 8)) {
        s->failed = 1;
        snprintf(s->why, sizeof s->why, "publisher %u seq %u: data byte %u is 0x%02x, a foreign byte (0x%02x expected)",
                 pub, seq, j - 8, data[j], pattern(pub, seq, j - 8));
      }
    if (pub < (uint32_t)npubs) s->last_seq[pub] = seq;
    b += (len + 15) & ~15u;
  }
}

static void *subscriber(void *arg) {
  sub_spec *s = &specs[(uintptr_t)arg];
  sb_topic *t = (uintptr_t)arg == 1 ? shared : open_topic();
  uint8_t f[64];
  int err;
  sb_sub *sub = sb_sub_open(t, f, encode_filter(s, f), s->queue, SB_FROM_NOW, &err);
  if (!sub) {
    fprintf(stderr, "subscribe: %d\n", err);
    exit(1);
  }
  atomic_fetch_add(&subscribed, 1);
  int idle_after_done = 0;
  while (idle_after_done < 3) {
    int n = sb_sub_poll(sub, s->queue);
    if (n < 0) {
      fprintf(stderr, "poll: %d\n", n);
      exit(1);
    }
    check_batch(s, sub, n);
    if (n > 0) continue;
    if (atomic_load(&publishers_done) == npubs) {
      idle_after_done += !sb_sub_pending(sub);
      continue;
    }
    if (s->park) sb_sub_wait(sub, 5);
    else sched_yield();
  }
  s->received = (uint64_t)sb_sub_received(sub);
  s->lagged = (uint64_t)sb_sub_lagged(sub);
  s->estimates = (uint64_t)sb_sub_estimates(sub);
  s->corrupt = (uint64_t)sb_sub_corrupt(sub);
  sb_sub_close(sub);
  if (t != shared) sb_topic_close(t);
  return NULL;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "topic stress: a reader stopped making progress (60 s watchdog)\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(3);
}

int main(int argc, char **argv) {
  int arg = 1;
  if (argc > 1 && strcmp(argv[1], "stall") == 0) {
    mode = MODE_STALL, npubs = 4, capacity = 1 << 16, events_per_pub = 20000, arg = 2;
  } else if (argc > 1 && strcmp(argv[1], "hostile") == 0) {
    mode = MODE_HOSTILE, npubs = 2, capacity = 1 << 18, events_per_pub = 40000, arg = 3;
    seed = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1;
    chaos = argc > 3 && strcmp(argv[3], "chaos") == 0;
  }
  if (mode != MODE_HOSTILE && argc > arg) events_per_pub = (uint32_t)strtoul(argv[arg], NULL, 10);
  snprintf(topic_name, sizeof topic_name, "stress-%d", (int)getpid());
  signal(SIGALRM, on_alarm);
  alarm(mode == MODE_LOAD ? 600 : 120);
  int err;
  sb_topic *keeper = sb_topic_open(topic_name, capacity, SB_CREATE_MUST, 1000, &err);
  if (!keeper || !sb_topic_is_keeper(keeper)) {
    fprintf(stderr, "create: %d\n", err);
    return 1;
  }
  if (mode == MODE_STALL) {
    struct sigaction sa = {0};
    sa.sa_handler = on_stall;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
  }
  /* the shared handle is opened here, so this thread (the keeper) answers it itself */
  shared = sb_topic_open_start(topic_name, capacity, SB_CREATE_NEVER, &err);
  if (!shared) return 1;
  while (err == -11 && (err = sb_topic_open_finish(shared)) == -11) sb_topic_tick(keeper), usleep(1000);
  if (err) {
    fprintf(stderr, "open shared: %d\n", err);
    return 1;
  }
  pthread_t th[SUBS], extra;
  for (uintptr_t i = 0; i < SUBS; i++) pthread_create(&th[i], NULL, subscriber, (void *)i);
  for (uintptr_t i = 0; i < (uintptr_t)npubs; i++) pthread_create(&pub_threads[i], NULL, publisher, (void *)i);
  int members = (SUBS - 1) + (npubs - 1) + (mode == MODE_HOSTILE);
  if (mode == MODE_STALL) pthread_create(&extra, NULL, staller, NULL);
  if (mode == MODE_HOSTILE) pthread_create(&extra, NULL, hostile, NULL);
  /* the keeper answers newcomers and collects the dead, like a member's event loop would */
  while (atomic_load(&opened) < members) {
    sb_topic_tick(keeper);
    usleep(1000);
  }
  /* the staller signals publisher threads until the last is done: joined after it, never one it may still signal
   * (pthread_kill of a joined thread is a use after free) */
  if (mode == MODE_STALL) pthread_join(extra, NULL);
  for (int i = 0; i < npubs; i++) pthread_join(pub_threads[i], NULL);
  if (mode == MODE_HOSTILE) pthread_join(extra, NULL);
  for (int i = 0; i < SUBS; i++) pthread_join(th[i], NULL);
  alarm(0);
  int ok = 1;
  uint64_t total_lagged = 0, estimates = 0, corrupt = 0;
  for (int s = 0; s < SUBS; s++) {
    sub_spec *sp = &specs[s];
    uint64_t want = atomic_load(&expected[s]);
    total_lagged += sp->lagged;
    printf("sub %d: expected %llu received %llu lagged %llu estimates %llu corrupt %llu%s%s\n", s,
           (unsigned long long)want, (unsigned long long)sp->received, (unsigned long long)sp->lagged,
           (unsigned long long)sp->estimates, (unsigned long long)sp->corrupt,
           sp->failed ? " FAIL " : "", sp->why);
    /* Exact unless the count had to be estimated (docs/PROTOCOL.md §8.4): a subscriber lapped before any
     * publisher could push it, or a corrupt record skipped. Not checked against a hostile member: its
     * scribbles can change a committed record in ways no reader can tell from a real one (a type byte, so it
     * no longer matches; an extent that ends exactly at a later record, so the ones between are skipped);
     * there every reader must finish (the watchdog) and count what it sees broken (the test sums corrupt). */
    uint64_t got = sp->received + sp->lagged;
    if (mode == MODE_HOSTILE) {
      /* nothing to compare: finishing is the check */
    } else if (mode == MODE_STALL) {
      /* fences keep every record whole (§8.3): no foreign byte, nothing corrupt, no loss uncounted. A
       * subscriber lapped before any (descheduled) pusher reached it is estimated, +1 each (§8.4). */
      if (sp->failed || sp->corrupt != 0 || got < want || got > want + sp->estimates) ok = 0;
    } else {
      if (sp->failed || got > want + sp->estimates) ok = 0;
      if (sp->estimates == 0 && got != want) ok = 0;
    }
    estimates += sp->estimates;
    corrupt += sp->corrupt;
  }
  uint64_t abandoned = *(uint64_t *)(sb_topic_region(keeper) + SB_TOPIC_OFF_ABANDONED);
#if SB_TOPIC_VERSION >= 2
  uint64_t fenced = *(uint64_t *)(sb_topic_region(keeper) + SB_TOPIC_OFF_FENCED);
#else
  uint64_t fenced = 0;
#endif
  sb_topic_close(shared);
  sb_topic_close(keeper);
  if (!ok) return 2;
#if defined(__SANITIZE_THREAD__)
  int tsan = 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  int tsan = 1;
#else
  int tsan = 0;
#endif
#else
  int tsan = 0;
#endif
  if (mode == MODE_HOSTILE)
    printf("topic hostile ok: seed=%u mode=%s scribbles=%lu lagged=%llu estimates=%llu corrupt=%llu abandoned=%llu\n", seed,
           chaos ? "chaos" : "headers", atomic_load(&scribbles), (unsigned long long)total_lagged,
           (unsigned long long)estimates, (unsigned long long)corrupt, (unsigned long long)abandoned);
  else
    printf("topic %s ok: events=%u publishers=%d subscribers=%d lagged=%llu estimates=%llu abandoned=%llu fenced=%llu "
           "stalls=%lu tsan=%d\n", mode == MODE_STALL ? "stall" : "stress", events_per_pub * (uint32_t)npubs, npubs, SUBS,
           (unsigned long long)total_lagged, (unsigned long long)estimates, (unsigned long long)abandoned,
           (unsigned long long)fenced, atomic_load(&stalls), tsan);
  return 0;
}
