/* Stress test of the slot state machine (docs/PROTOCOL.md §3-5), through the public API only.
 * The main thread is the hub; each phase connects a fresh worker thread with its own idle strategy.
 * Usage: stress [requests] [--seed=N]. Prints one "stress ok: ..." line, or exits 1 on any mismatch,
 * lost or duplicated completion. `zig build stress` builds it (stress-tsan, stress-asan, stress-ubsan: sanitized). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "slotbus.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tsan-shared-maps.h"

#define SLOTS 8u
#define ARENA 16384u /* four pages, so TRIM can keep one and punch the rest */
#define TRIM 4096u
#define CANCEL_PERCENT 25u
#define STALL_NS 5000000000ll /* requests outstanding and no completion for this long: one was lost */
/* A correct wake protocol only shows a late wake-up when the peer pushes between a timed-out wait and its
 * unpark: a microsecond on an idle machine, longer when a loaded one deschedules us right there. A broken one
 * loses the wake-up of nearly every wait. So the bound grows with the waits: a few, plus one in 20 waits. */
#define LATE_WAKEUPS_MAX 3u
#define LATE_WAKEUPS_PER_WAITS 20u

/* ---- helpers ---- */

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("stress FAILED: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stdout);
  fflush(stderr);
  _exit(1); /* not exit(): the other thread may still be touching the region */
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

static uint32_t align8(uint32_t n) { return (n + 7u) & ~7u; }

static uint8_t *arena_of(sb_chan *ch, uint32_t slot, int response) {
  return sb_region(ch) + (size_t)sb_arena_offset(ch, slot, response);
}

static const char *volatile g_step = "setup"; /* for the watchdog's message */
/* where the current phase stands, for the watchdog's message: a hang and a crawl read differently */
static volatile uint64_t g_progress[6]; /* completed, outstanding, hub waits, hub late, worker waits, worker late */

static void put(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  ssize_t r = write(2, s, n);
  (void)r;
}

static void put_u64(uint64_t v) {
  char b[24];
  int i = (int)sizeof b - 1;
  b[i] = 0;
  do b[--i] = (char)('0' + v % 10); while ((v /= 10) && i > 0);
  put(b + i);
}

static void watchdog_fired(int sig) {
  (void)sig;
  static const char *const names[] = {" completed=", " outstanding=", " hub_waits=", " hub_late=", " worker_waits=",
                                      " worker_late="};
  put("stress FAILED: watchdog: hung in ");
  put(g_step);
  for (int i = 0; i < 6; i++) {
    put(names[i]);
    put_u64(g_progress[i]);
  }
  put("\n");
  _exit(1);
}

/* Every step runs under a watchdog: a lost wake-up or completion hangs instead of failing. A phase re-arms it
 * as it completes requests, so it catches a hang, not a slow machine (two CPU burners made a phase take 40 s). */
#define PHASE_WATCHDOG_S 60u
#define PHASE_REARM_EVERY 1024u
static void step_begin(const char *step, unsigned seconds) {
  g_step = step;
  alarm(seconds);
}

/* ---- what every request looks like, derived from its id so both sides can check it ---- */

static uint32_t g_seed;

typedef struct {
  uint32_t kind, head_len, body_len; /* request */
  uint32_t status, flags;            /* response; its head and body are the request's, transformed */
} request_spec;

static request_spec spec_for(uint32_t id) {
  uint32_t h = mix32(id ^ g_seed);
  request_spec s;
  s.kind = h & 1u;
  s.head_len = s.kind == SB_KIND_HTTP ? (h >> 1) % 48u : 0; /* odd lengths too: the body sits at align8 */
  uint32_t room = ARENA - align8(s.head_len);
  /* one in 64 is larger than TRIM, so releasing it punches a hole */
  s.body_len = ((h >> 8) & 63u) == 0 ? TRIM + (h >> 14) % (room - TRIM + 1) : (h >> 14) % 257u;
  s.status = id ^ 0xC0FFEEu;
  s.flags = id % 11u == 0 ? SB_RESP_ERROR : 0;
  return s;
}

static uint8_t head_byte(uint32_t id, uint32_t k) { return (uint8_t)((id * 2654435761u >> 24) + k * 31u); }
static uint8_t body_byte(uint32_t id, uint32_t k) { return (uint8_t)((id * 2246822519u >> 24) + k * 13u + (k >> 8)); }
static uint8_t head_reply(uint8_t b) { return b ^ 0x5Au; }
static uint8_t body_reply(uint8_t b) { return (uint8_t)~b; }

/* ---- idle strategies ---- */

typedef enum { IDLE_SPIN, IDLE_EVENTFD, IDLE_FUTEX, IDLE_MIXED } idle_kind;
static const char *idle_name[] = {"spin", "eventfd", "futex", "mixed"};

typedef struct {
  const char *side;
  idle_kind kind;
  uint64_t rng;
  uint32_t polls;       /* empty polls since the last work */
  uint32_t spin_budget; /* IDLE_MIXED: spins before this idle period turns into a wait */
  int use_futex;        /* IDLE_MIXED: which wait */
  int timed_out;        /* the last step was a wait that ran into its timeout */
  uint64_t waits;
  uint64_t late_wakeups; /* work found right after a wait timed out: the peer pushed it but never woke us */
} idler;

static void idler_worked(idler *d) {
  d->polls = 0;
  int w = d->side[0] == 'w';
  g_progress[2 + 2 * w] = d->waits;
  g_progress[3 + 2 * w] = d->late_wakeups;
  if (d->timed_out && ++d->late_wakeups > LATE_WAKEUPS_MAX + d->waits / LATE_WAKEUPS_PER_WAITS)
    die("%s: %llu of %llu waits timed out although work was pushed meanwhile: lost wake-ups", d->side,
        (unsigned long long)d->late_wakeups, (unsigned long long)d->waits);
  d->timed_out = 0;
}

/* One idle step after an empty poll. Returns sb_wait's result (1 work may be ready, 0 timeout, -EPIPE). */
static int idler_step(idler *d, sb_chan *ch) {
  idle_kind k = d->kind;
  if (d->polls++ == 0 && k == IDLE_MIXED) {
    uint64_t r = rng_next(&d->rng);
    d->spin_budget = (r & 3) == 0 ? 0 : (uint32_t)(r >> 8) % 2048u;
    d->use_futex = (int)((r >> 4) & 1);
  }
  if (k == IDLE_MIXED) k = d->polls <= d->spin_budget ? IDLE_SPIN : (d->use_futex ? IDLE_FUTEX : IDLE_EVENTFD);
  d->timed_out = 0;
  if (k != IDLE_SPIN) {
    d->waits++;
    int r = sb_wait(ch, 100, k == IDLE_FUTEX);
    d->timed_out = r == 0;
    return r;
  }
  cpu_relax();
  /* a spinning side still notices its peer leaving: a zero-timeout wait checks the socket */
  if (d->polls % 1024u == 0) return sb_wait(ch, 0, 0);
  /* two cores and two spinners: let the kernel run anything else that needs a core */
  if (d->polls % 64u == 0) sched_yield();
  return 1;
}

/* ---- worker thread ---- */

typedef struct {
  const char *name;
  idle_kind idle;
  uint32_t serve_limit; /* 0: serve until the hub goes away; else close the channel after this many */
  /* results, read by the hub after join */
  uint64_t served, late_wakeups;
  int exit_reason; /* -EPIPE when it saw the hub leave, 0 when it stopped at serve_limit */
} worker_args;

/* last_gen[slot]: the generation this slot's previous request had, or UINT32_MAX */
static void worker_serve(sb_chan *ch, int slot, uint32_t *last_gen) {
  const sb_msg *m = sb_last_msg(ch);
  uint32_t id = m->id;
  request_spec s = spec_for(id);
  if (m->slot != slot || m->kind != s.kind || m->head_len != s.head_len || m->body_len != s.body_len ||
      m->body_off != align8(s.head_len))
    die("worker: request %u in slot %d: msg slot=%d kind=%u head=%u body=%u off=%u, published kind=%u head=%u body=%u",
        id, slot, m->slot, m->kind, m->head_len, m->body_len, m->body_off, s.kind, s.head_len, s.body_len);
  const uint8_t *req = arena_of(ch, (uint32_t)slot, 0);
  uint8_t *resp = arena_of(ch, (uint32_t)slot, 1);
  for (uint32_t k = 0; k < s.head_len; k++) {
    if (req[k] != head_byte(id, k))
      die("worker: request %u head byte %u is %u, published %u", id, k, req[k], head_byte(id, k));
    resp[k] = head_reply(req[k]);
  }
  for (uint32_t k = s.head_len; k < align8(s.head_len); k++) {
    if (req[k] != 0) die("worker: request %u head padding byte %u is %u", id, k, req[k]);
    resp[k] = 0;
  }
  const uint8_t *body = req + m->body_off;
  uint8_t *out = resp + m->body_off;
  for (uint32_t k = 0; k < s.body_len; k++) {
    if (body[k] != body_byte(id, k))
      die("worker: request %u body byte %u is %u, published %u", id, k, body[k], body_byte(id, k));
    out[k] = body_reply(body[k]);
  }
  /* a late second answer to the slot's previous request must not answer this one */
  if (last_gen[slot] != UINT32_MAX && last_gen[slot] != m->gen &&
      sb_worker_complete(ch, (uint32_t)slot, last_gen[slot], 0, 0, 0, 0) != -EINVAL)
    die("worker: a completion with slot %d's old generation %u was taken for request %u (gen %u)", slot, last_gen[slot], id, m->gen);
  last_gen[slot] = m->gen;
  /* the cancel request path (§3) under the sanitizers: a moved cancel_seq is checked against the held request */
  static _Thread_local uint32_t cancel_seen;
  uint32_t seq = sb_worker_cancel_seq(ch);
  if (seq != cancel_seen) {
    cancel_seen = seq;
    if (sb_worker_cancelled(ch, (uint32_t)slot, m->gen) < 0) die("worker: sb_worker_cancelled(slot %d) refused", slot);
  }
  if (sb_worker_cancelled(ch, SLOTS + 1000u, 0) != -EINVAL) die("worker: sb_worker_cancelled took a slot out of range");
  int r = sb_worker_complete(ch, (uint32_t)slot, m->gen, s.status, s.flags, s.head_len, s.body_len);
  if (r != 0) die("worker: sb_worker_complete(slot %d) = %d", slot, r);
}

static void *worker_main(void *p) {
  worker_args *a = p;
  int err = 0;
  sb_chan *ch = sb_connect(a->name, -1, 5000, &err);
  if (!ch) die("worker: sb_connect(%s) = %d", a->name, err);
  idler d = {.side = "worker", .kind = a->idle, .rng = (uint64_t)g_seed * 7919u + 1};
  uint32_t last_gen[SLOTS];
  memset(last_gen, 0xFF, sizeof last_gen);
  for (;;) {
    int slot = sb_worker_poll(ch);
    if (slot >= 0) {
      worker_serve(ch, slot, last_gen);
      idler_worked(&d);
      if (++a->served == a->serve_limit) {
        a->exit_reason = 0;
        break;
      }
      continue;
    }
    if (slot != -1) die("worker: sb_worker_poll = %d (%s)", slot, sb_error(ch));
    /* Nothing is held here: take note of a moved cancel_seq (it named requests already answered), or every
     * sb_wait returns at once for it and this idle worker spins until its next request (docs/PROTOCOL.md §3).
     * Under load that spinning starved the hub until the phase watchdog fired. */
    (void)sb_worker_cancel_seq(ch);
    int r = idler_step(&d, ch);
    if (r == -EPIPE) {
      a->exit_reason = -EPIPE;
      break;
    }
    if (r < 0) die("worker: sb_wait = %d", r);
  }
  a->late_wakeups = d.late_wakeups;
  sb_close(ch);
  return NULL;
}

/* ---- hub ---- */

typedef struct {
  uint32_t id;
  int outstanding;
  int cancel; /* -1 not tried, 0 the worker had it, 1 cancelled */
} inflight;

typedef struct {
  int listen_fd;
  const char *name;
  sb_hub_config cfg;
  uint64_t rng;
  uint32_t next_id;
  uint8_t *seen; /* per id: completed once */
  uint32_t seen_len;
  inflight slot[SLOTS];
  /* totals */
  uint64_t requests, cancelled, cancel_lost, cancel_asked, errors_flagged, trims_checked, late_wakeups;
  int64_t elapsed_ns;
} hub;

static sb_chan *hub_accept(hub *h, uint32_t slots) {
  sb_hub_config cfg = h->cfg;
  cfg.slot_count = slots;
  int64_t deadline = now_ns() + 5000000000ll;
  for (;;) {
    int err = 0;
    uint32_t uid = 0;
    sb_chan *ch = sb_accept(h->listen_fd, &cfg, &err, &uid);
    if (ch) {
      if (sb_slot_count(ch) != slots || sb_arena_size(ch) != ARENA)
        die("hub: accepted %u slots of %u bytes, asked for %u of %u", sb_slot_count(ch), sb_arena_size(ch), slots,
            ARENA);
      return ch;
    }
    if (err != -EAGAIN) die("hub: sb_accept = %d (uid %u)", err, uid);
    if (now_ns() > deadline) die("hub: no worker connected within 5 s");
    struct pollfd pfd = {h->listen_fd, POLLIN, 0};
    poll(&pfd, 1, 100);
  }
}

static uint32_t hub_publish(hub *h, sb_chan *ch) {
  int slot = sb_hub_claim(ch);
  if (slot < 0) die("hub: sb_hub_claim found no free slot below the depth limit");
  if ((uint32_t)slot >= SLOTS || h->slot[slot].outstanding) die("hub: sb_hub_claim returned busy slot %d", slot);
  uint32_t id = h->next_id++;
  if (id >= h->seen_len) die("hub: ran out of ids");
  request_spec s = spec_for(id);
  uint8_t *req = arena_of(ch, (uint32_t)slot, 0);
  for (uint32_t k = 0; k < s.head_len; k++) req[k] = head_byte(id, k);
  memset(req + s.head_len, 0, align8(s.head_len) - s.head_len);
  uint8_t *body = req + align8(s.head_len);
  for (uint32_t k = 0; k < s.body_len; k++) body[k] = body_byte(id, k);
  int r = sb_hub_publish(ch, (uint32_t)slot, s.kind, id, s.head_len, s.body_len);
  if (r != 0) die("hub: sb_hub_publish(slot %d, id %u) = %d", slot, id, r);
  h->slot[slot] = (inflight){.id = id, .outstanding = 1, .cancel = -1};
  return (uint32_t)slot;
}

static void hub_cancel(hub *h, sb_chan *ch, uint32_t slot) {
  inflight *f = &h->slot[slot];
  if (!f->outstanding) return;
  int r = sb_hub_cancel(ch, slot);
  /* 2: the worker already had it and was asked to give up (cancel word + cancel_seq); it still answers */
  if (r < 0 || r > 2) die("hub: sb_hub_cancel(slot %u) = %d", slot, r);
  if (r == 1 && f->cancel == 1) die("hub: request %u cancelled twice", f->id);
  if (r == 1) f->cancel = 1;
  else if (f->cancel == -1) f->cancel = 0;
  if (r == 2) h->cancel_asked++;
}

/* Pages beyond TRIM must have been punched out by the release: they read as zero. */
static void check_trimmed(hub *h, sb_chan *ch, uint32_t slot, int response, uint32_t used, uint32_t id) {
  if (used <= TRIM || strcmp(sb_platform(), "linux") != 0) return; /* the portable backend trims nothing (§13.3) */
  const uint8_t *a = arena_of(ch, slot, response);
  const char *which = response ? "response" : "request";
  for (uint32_t off = TRIM; off < used; off += 4096u)
    if (a[off] != 0) die("hub: %s arena of slot %u (request %u) not trimmed at %u", which, slot, id, off);
  if (a[used - 1] != 0) die("hub: %s arena of slot %u (request %u) not trimmed at %u", which, slot, id, used - 1);
  h->trims_checked++;
}

static void hub_check_and_release(hub *h, sb_chan *ch, int slot) {
  const sb_msg *m = sb_last_msg(ch);
  if (m->slot != slot) die("hub: sb_hub_poll returned %d but sb_last_msg says slot %d", slot, m->slot);
  inflight *f = &h->slot[slot];
  if (!f->outstanding) die("hub: slot %d completed but nothing is outstanding in it (duplicate completion)", slot);
  uint32_t id = f->id;
  if (m->id != id) die("hub: slot %d completed request %u, published %u", slot, m->id, id);
  if (h->seen[id]) die("hub: request %u completed twice", id);
  h->seen[id] = 1;
  request_spec s = spec_for(id);
  if (m->kind != s.kind) die("hub: request %u came back as kind %u, published %u", id, m->kind, s.kind);
  if (f->cancel == 1) {
    if (m->flags != SB_RESP_CANCELLED || m->status != 0 || m->head_len != 0 || m->body_len != 0)
      die("hub: cancelled request %u came back flags=%u status=%u head=%u body=%u", id, m->flags, m->status,
          m->head_len, m->body_len);
    h->cancelled++;
  } else {
    if (m->flags & SB_RESP_CANCELLED) die("hub: request %u came back cancelled, but sb_hub_cancel never won", id);
    if (m->flags != s.flags || m->status != s.status || m->head_len != s.head_len || m->body_len != s.body_len ||
        m->body_off != align8(s.head_len))
      die("hub: request %u: response flags=%u status=%u head=%u body=%u off=%u, expected %u %u %u %u", id, m->flags,
          m->status, m->head_len, m->body_len, m->body_off, s.flags, s.status, s.head_len, s.body_len);
    const uint8_t *resp = arena_of(ch, (uint32_t)slot, 1);
    for (uint32_t k = 0; k < s.head_len; k++)
      if (resp[k] != head_reply(head_byte(id, k))) die("hub: request %u response head byte %u is %u", id, k, resp[k]);
    const uint8_t *body = resp + m->body_off;
    for (uint32_t k = 0; k < s.body_len; k++)
      if (body[k] != body_reply(body_byte(id, k))) die("hub: request %u response body byte %u is %u", id, k, body[k]);
    if (f->cancel == 0) h->cancel_lost++;
    if (m->flags & SB_RESP_ERROR) h->errors_flagged++;
  }
  f->outstanding = 0;
  int r = sb_hub_release(ch, (uint32_t)slot);
  if (r != 0) die("hub: sb_hub_release(slot %d) = %d", slot, r);
  uint32_t used = align8(s.head_len) + s.body_len;
  check_trimmed(h, ch, (uint32_t)slot, 0, used, id);
  if (f->cancel != 1) check_trimmed(h, ch, (uint32_t)slot, 1, used, id);
}

static void dump_slots(hub *h, sb_chan *ch) {
  for (uint32_t i = 0; i < sb_slot_count(ch); i++)
    fprintf(stderr, "  slot %u: state word %#x, outstanding=%d id=%u cancel=%d\n", i, sb_slot_state(ch, i),
            h->slot[i].outstanding, h->slot[i].id, h->slot[i].cancel);
}

typedef struct {
  const char *name;
  idle_kind hub_idle, worker_idle;
  uint32_t slots;  /* slot_count: 5 has a ring of 8, 1 a ring of 1 (index mask 0) */
  uint32_t depth;  /* requests in flight at most */
  uint32_t weight; /* share of the requests */
} phase;

static const phase phases[] = {
    {"spin/depth1", IDLE_SPIN, IDLE_SPIN, SLOTS, 1, 3},
    {"spin/depth8", IDLE_SPIN, IDLE_SPIN, SLOTS, 8, 6},
    {"eventfd/depth1", IDLE_EVENTFD, IDLE_EVENTFD, SLOTS, 1, 1},
    {"eventfd/depth8", IDLE_EVENTFD, IDLE_EVENTFD, SLOTS, 8, 2},
    {"futex/depth1", IDLE_FUTEX, IDLE_FUTEX, SLOTS, 1, 1},
    {"futex/depth8", IDLE_FUTEX, IDLE_FUTEX, SLOTS, 8, 2},
    {"hub-spin,worker-eventfd/depth8", IDLE_SPIN, IDLE_EVENTFD, SLOTS, 8, 1},
    {"hub-futex,worker-spin/depth8", IDLE_FUTEX, IDLE_SPIN, SLOTS, 8, 1},
    {"mixed/depth8", IDLE_MIXED, IDLE_MIXED, SLOTS, 8, 3},
    {"spin/1-slot", IDLE_SPIN, IDLE_SPIN, 1, 1, 1},
    {"mixed/5-slots", IDLE_MIXED, IDLE_MIXED, 5, 5, 1},
};
#define PHASES (sizeof phases / sizeof phases[0])

static void run_phase(hub *h, const phase *p, uint32_t count) {
  step_begin(p->name, PHASE_WATCHDOG_S);
  worker_args wa = {.name = h->name, .idle = p->worker_idle};
  pthread_t t;
  if (pthread_create(&t, NULL, worker_main, &wa) != 0) die("pthread_create");
  sb_chan *ch = hub_accept(h, p->slots);
  idler d = {.side = "hub", .kind = p->hub_idle, .rng = h->rng};
  uint64_t cancelled0 = h->cancelled;
  uint32_t published = 0, completed = 0, outstanding = 0;
  int64_t t0 = now_ns(), idle_since = t0;
  while (completed < count) {
    while (published < count && outstanding < p->depth) {
      uint32_t slot = hub_publish(h, ch);
      published++;
      outstanding++;
      /* right after publishing races the worker's claim; now and then also cancel an older one */
      uint64_t r = rng_next(&h->rng);
      if (r % 100u < CANCEL_PERCENT) hub_cancel(h, ch, slot);
      if (((r >> 32) & 63u) == 0) hub_cancel(h, ch, (uint32_t)(r >> 40) % p->slots);
    }
    int progress = 0, slot;
    while ((slot = sb_hub_poll(ch)) >= 0) {
      hub_check_and_release(h, ch, slot);
      if (++completed % PHASE_REARM_EVERY == 0) alarm(PHASE_WATCHDOG_S);
      outstanding--;
      g_progress[0] = completed;
      g_progress[1] = outstanding;
      progress = 1;
    }
    if (slot != -1) die("hub: sb_hub_poll = %d (%s)", slot, sb_error(ch));
    if (progress) {
      idler_worked(&d);
      continue;
    }
    if (d.polls == 0) {
      idle_since = now_ns();
    } else if ((d.polls % 1024u == 0 || p->hub_idle != IDLE_SPIN) && now_ns() - idle_since > STALL_NS) {
      fprintf(stderr, "phase %s: %u outstanding, no completion for 5 s\n", p->name, outstanding);
      dump_slots(h, ch);
      die("hub: lost completion in phase %s", p->name);
    }
    int w = idler_step(&d, ch);
    if (w == -EPIPE) die("hub: the worker went away in phase %s", p->name);
    if (w < 0) die("hub: sb_wait = %d", w);
  }
  int64_t elapsed = now_ns() - t0;
  sb_close(ch);
  pthread_join(t, NULL);
  alarm(0);
  uint64_t cancelled = h->cancelled - cancelled0;
  if (wa.exit_reason != -EPIPE) die("worker of phase %s stopped with %d, not -EPIPE", p->name, wa.exit_reason);
  if (wa.served != published - cancelled)
    die("phase %s: worker served %llu, hub published %u of which %llu cancelled", p->name,
        (unsigned long long)wa.served, published, (unsigned long long)cancelled);
  h->requests += count;
  h->elapsed_ns += elapsed;
  h->late_wakeups += d.late_wakeups + wa.late_wakeups;
  printf("phase %-31s requests=%u cancelled=%llu hub_waits=%llu late_wakeups=%llu+%llu ns_per_rt=%.0f\n", p->name,
         count, (unsigned long long)cancelled, (unsigned long long)d.waits, (unsigned long long)d.late_wakeups,
         (unsigned long long)wa.late_wakeups, (double)elapsed / count);
}

/* The worker closes its channel with requests still queued: the hub's wait must say -EPIPE. */
static void run_worker_dies(hub *h, int use_futex) {
  step_begin(use_futex ? "worker dies, hub waits on futex" : "worker dies, hub waits on eventfd", 20);
  worker_args wa = {.name = h->name, .idle = IDLE_SPIN, .serve_limit = 3};
  pthread_t t;
  if (pthread_create(&t, NULL, worker_main, &wa) != 0) die("pthread_create");
  sb_chan *ch = hub_accept(h, SLOTS);
  for (uint32_t i = 0; i < SLOTS; i++) hub_publish(h, ch);
  uint32_t completed = 0;
  int64_t deadline = now_ns() + 5000000000ll;
  int slot, w;
  for (;;) {
    while ((slot = sb_hub_poll(ch)) >= 0) {
      hub_check_and_release(h, ch, slot);
      completed++;
    }
    if (slot != -1) die("hub: sb_hub_poll = %d (%s)", slot, sb_error(ch));
    w = sb_wait(ch, 1000, use_futex);
    if (w == -EPIPE) break;
    if (w < 0 || now_ns() > deadline)
      die("hub: sb_wait(%s) = %d, the worker's exit went unnoticed", use_futex ? "futex" : "eventfd", w);
  }
  /* completions pushed before the worker left are still in the ring */
  while ((slot = sb_hub_poll(ch)) >= 0) {
    hub_check_and_release(h, ch, slot);
    completed++;
  }
  pthread_join(t, NULL);
  if (completed != 3 || wa.served != 3)
    die("hub: worker served %llu then left, hub saw %u completions", (unsigned long long)wa.served, completed);
  for (uint32_t i = 0; i < SLOTS; i++) h->slot[i].outstanding = 0;
  sb_close(ch);
  alarm(0);
}

/* The hub says it is closing and closes its channel with requests still queued: the worker serves what
 * it already has, then its wait must say -EPIPE. Its completions land in a region the hub let go of. */
static void run_hub_dies(hub *h, idle_kind worker_idle) {
  step_begin("hub dies", 20);
  worker_args wa = {.name = h->name, .idle = worker_idle};
  pthread_t t;
  if (pthread_create(&t, NULL, worker_main, &wa) != 0) die("pthread_create");
  sb_chan *ch = hub_accept(h, SLOTS);
  for (uint32_t i = 0; i < SLOTS; i++) hub_publish(h, ch);
  /* the closing control byte (PROTOCOL.md §1) comes before the EOF and must not hide it */
  if (send(sb_socket_fd(ch), "C", 1, MSG_NOSIGNAL) != 1) die("hub: cannot send the closing byte");
  sb_close(ch);
  pthread_join(t, NULL);
  if (wa.exit_reason != -EPIPE)
    die("worker (%s) stopped with %d after the hub left, not -EPIPE", idle_name[worker_idle], wa.exit_reason);
  for (uint32_t i = 0; i < SLOTS; i++) h->slot[i].outstanding = 0;
  alarm(0);
}

/* Hub and worker on one thread: sb_connect_start/finish never block. Then sb_disconnect: both ends see
 * -EPIPE, and the worker's region stays mapped until sb_close. */
static void run_one_thread(hub *h) {
  step_begin("hub and worker on one thread", 20);
  int err = 0;
  sb_chan *w = sb_connect_start(h->name, -1, &err);
  if (!w) die("sb_connect_start(%s) = %d", h->name, err);
  int r = sb_connect_finish(w, 0);
  if (r != -EAGAIN) die("sb_connect_finish before the hub accepted = %d, expected -EAGAIN", r);
  sb_chan *ch = hub_accept(h, SLOTS);
  if ((r = sb_connect_finish(w, 1000)) != 0) die("sb_connect_finish after the hub accepted = %d", r);
  if ((r = sb_connect_finish(w, 0)) != 0) die("sb_connect_finish once attached = %d, expected 0", r);
  uint32_t last_gen[SLOTS]; /* the same slot comes back each time: worker_serve tries its old generation on it */
  memset(last_gen, 0xFF, sizeof last_gen);
  for (int i = 0; i < 100; i++) {
    uint32_t slot = hub_publish(h, ch);
    int got = sb_worker_poll(w);
    if (got != (int)slot) die("one thread: worker polled %d, hub published slot %u", got, slot);
    worker_serve(w, got, last_gen);
    if ((got = sb_hub_poll(ch)) != (int)slot) die("one thread: hub polled %d, expected slot %u", got, slot);
    hub_check_and_release(h, ch, got);
  }
  uint32_t slot = hub_publish(h, ch);
  sb_disconnect(w);
  if ((r = sb_wait(ch, 1000, 0)) != -EPIPE) die("hub: sb_wait after the worker's sb_disconnect = %d", r);
  if ((r = sb_worker_poll(w)) != (int)slot) die("worker: sb_worker_poll after sb_disconnect = %d, not %u", r, slot);
  if ((r = sb_wait(w, 1000, 1)) != -EPIPE) die("worker: sb_wait after its own sb_disconnect = %d, expected -EPIPE", r);
  h->slot[slot].outstanding = 0;
  sb_close(w);
  sb_close(ch);
  alarm(0);
}

static void check_rendezvous_errors(const char *name) {
  char long_name[66];
  memset(long_name, 'a', 65);
  long_name[65] = 0;
  const char *bad[] = {"", "has space", "slash/", "dot/../x", "tab\t", "dollar$", "\xc3\xa4", "colon:", long_name};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int r = sb_listen(bad[i]);
    if (r != -EINVAL) die("sb_listen(\"%s\") = %d, expected -EINVAL", bad[i], r);
    int err = 0;
    sb_chan *ch = sb_connect(bad[i], -1, 100, &err);
    if (ch || err != -EINVAL) die("sb_connect(\"%s\") gave err %d, expected -EINVAL", bad[i], err);
  }
  if (sb_listen(NULL) != -EINVAL) die("sb_listen(NULL) is not -EINVAL");

  long_name[64] = 0; /* 64 characters is the longest good name */
  memcpy(long_name, name, strlen(name));
  int fd = sb_listen(long_name);
  if (fd < 0) die("sb_listen(64-character name) = %d", fd);
  close(fd);

  char nobody[96];
  snprintf(nobody, sizeof nobody, "%s-nobody", name);
  int err = 0;
  sb_chan *ch = sb_connect(nobody, -1, 100, &err);
  if (ch || err != -ECONNREFUSED) die("sb_connect to a name nobody listens on gave %d, expected -ECONNREFUSED", err);
}

static int listen_checked(hub *h) {
  int fd = sb_listen(h->name);
  if (fd < 0) die("sb_listen(%s) = %d", h->name, fd);
  int again = sb_listen(h->name);
  if (again != -EADDRINUSE) die("second sb_listen(%s) = %d, expected -EADDRINUSE", h->name, again);
  int err = 0;
  /* the portable backend found the name taken without a connection (docs/PROTOCOL.md §13.2): nothing of that
   * look waits in our queue to be taken for a worker, on either backend */
  if (sb_accept(fd, &h->cfg, &err, NULL) || err != -EAGAIN)
    die("sb_accept with nobody waiting gave %d, expected -EAGAIN", err);
  sb_hub_config bad = h->cfg;
  bad.slot_count = 0;
  if (sb_accept(fd, &bad, &err, NULL) || err != -EINVAL) die("sb_accept with 0 slots gave %d, expected -EINVAL", err);
  bad.slot_count = SB_MAX_SLOTS + 1;
  if (sb_accept(fd, &bad, &err, NULL) || err != -EINVAL)
    die("sb_accept with too many slots gave %d, expected -EINVAL", err);
  /* a worker that gives up before the hub accepts: it times out, and the hub's accept then fails cleanly */
  sb_chan *ch = sb_connect(h->name, -1, 50, &err);
  if (ch || err != -ETIMEDOUT) die("sb_connect to a hub that never accepts gave %d, expected -ETIMEDOUT", err);
  ch = sb_accept(fd, &h->cfg, &err, NULL);
  if (ch || err == -EAGAIN || err == 0) die("sb_accept of a worker that already left gave %d, expected an error", err);
  return fd;
}

int main(int argc, char **argv) {
  uint32_t requests = STRESS_TSAN ? 200000u : 2000000u;
  uint64_t seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--seed=", 7) == 0) seed = strtoull(argv[i] + 7, NULL, 0);
    else if (argv[i][0] >= '0' && argv[i][0] <= '9') requests = (uint32_t)strtoul(argv[i], NULL, 0);
    else {
      fprintf(stderr, "usage: stress [requests] [--seed=N]\n");
      return 2;
    }
  }
  g_seed = (uint32_t)mix32((uint32_t)seed ^ (uint32_t)(seed >> 32));
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGALRM, watchdog_fired);
  signal(SIGPIPE, SIG_IGN);

  char name[64];
  snprintf(name, sizeof name, "stress-%d-%u", (int)getpid(), (unsigned)(seed & 0xFFFF));
  hub h = {.name = name, .rng = seed | 1, .cfg = {.slot_count = SLOTS, .arena_size = ARENA, .trim_bytes = TRIM}};
  h.seen_len = requests + 1024u;
  h.seen = calloc(h.seen_len, 1);
  if (!h.seen) die("out of memory");

  step_begin("rendezvous errors", 20);
  check_rendezvous_errors(name);
  h.listen_fd = listen_checked(&h);
  alarm(0);

  uint32_t total_weight = 0;
  for (size_t i = 0; i < PHASES; i++) total_weight += phases[i].weight;
  uint32_t assigned = 0;
  for (size_t i = 0; i < PHASES; i++) {
    uint32_t share = (uint32_t)((uint64_t)requests * phases[i].weight / total_weight);
    uint32_t n = i + 1 == PHASES ? requests - assigned : share;
    assigned += n;
    if (n) run_phase(&h, &phases[i], n);
  }
  uint32_t ids_in_phases = h.next_id;
  for (uint32_t id = 0; id < ids_in_phases; id++)
    if (!h.seen[id]) die("request %u never completed", id);

  run_worker_dies(&h, 0);
  run_worker_dies(&h, 1);
  run_hub_dies(&h, IDLE_EVENTFD);
  run_hub_dies(&h, IDLE_FUTEX);
  run_hub_dies(&h, IDLE_SPIN);
  run_one_thread(&h);

  close(h.listen_fd);
  int again = sb_listen(name); /* closing the listener frees the name */
  if (again < 0) die("sb_listen(%s) after close = %d", name, again);
  close(again);
  free(h.seen);

#if STRESS_TSAN
  if (shared_maps_aliased == 0) die("TSan build: the worker's region mapping was never aliased to the hub's");
#endif
  printf("stress ok: requests=%llu cancelled=%llu cancel_lost=%llu errors=%llu trims=%llu late_wakeups=%llu "
         "elapsed_ms=%.0f ns_per_rt=%.0f seed=%llu tsan=%d\n",
         (unsigned long long)h.requests, (unsigned long long)h.cancelled, (unsigned long long)h.cancel_lost,
         (unsigned long long)h.errors_flagged, (unsigned long long)h.trims_checked, (unsigned long long)h.late_wakeups,
         h.elapsed_ns / 1e6, h.requests ? (double)h.elapsed_ns / h.requests : 0.0, (unsigned long long)seed,
         STRESS_TSAN);
  return 0;
}
