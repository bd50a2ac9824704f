/* sb_idle: how a thread that polls a channel waits for its peer, the Bun side's idle strategies (src/core/wire/idle.ts,
 * the Pump) for a plain polling loop. The same constants and the same two signs, so a C worker idles as a Bun
 * worker does: it spins while requests flow, gives the CPU up every few µs (after every empty poll while its peer
 * shares its CPU), parks on the doorbell after 1 ms without work (20 µs while the machine is oversubscribed), and
 * at once when more processes serve the bus than there are CPUs (§2's bus-processes word, §5). */
#include "slot_internal.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define YIELD_EVERY_NS 5000ull          /* a spinner gives the CPU up this often */
#define POLLS_PER_CLOCK 8u              /* empty polls per clock read (a poll ~10 ns, a clock read ~30 ns) */
#define PARK_AFTER_NS 1000000ull        /* adaptive: park after this long without work */
#define SPELL_SPIN_NS 20000ull          /* adaptive, machine oversubscribed: spin this long after work, then park */
#define STARTUP_POLL_NS 250000000ull    /* adaptive: a new connection polls this long before it first parks */
#define PEER_CHECK_EVERY_NS 1000000ull  /* a spinner looks at the socket (the peer gone?) this often */
/* the machine is oversubscribed (idle.ts's Contention): three yields in a row each kept off the CPU this long, or
 * two 20 ms periods in a row with 3/4 of the time runnable but waiting for a CPU; then park at once for a spell */
#define CONTENDED_YIELD_NS 50000ull
#define CONTENDED_AFTER_SLOW_YIELDS 3u
#define RUN_DELAY_EVERY_NS 20000000ull
#define RUN_DELAY_SHARE 0.75
#define CONTENDED_FOR_NS 50000000ull
#define CONTENDED_MAX_NS 1000000000ull
/* the peer runs on this CPU (idle.ts's CpuSharing): a yield that ran another thread, followed by work, says so
 * unless the peer's CPU word names another CPU (§5.1); 16 yields in a row
 * that ran nobody clear it */
#define SWITCHED_YIELD_NS 2000ull
#define QUICK_YIELDS_TO_CLEAR 16u
#define NOTE_CPU_EVERY 64u
#define BUS_PROCESSES_OFF 40 /* §2: how many processes on this host serve the bus */

/* ns this thread spent runnable but not running (the second field of /proc/thread-self/schedstat): 1, or 0 where
 * the system does not say. */
static int read_run_delay(uint64_t *ns) {
  int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char *field = strchr(buf, ' ');
  if (!field) return 0;
  *ns = strtoull(field + 1, NULL, 10);
  return 1;
}

/* More processes serve the bus on this host than there are CPUs (the hub keeps the count, §2). */
static int crowded(sb_chan *ch) {
  static long cpus;
  if (cpus == 0) cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 && (long)shm_load_relaxed(shm_u32(ch->base, BUS_PROCESSES_OFF)) > cpus;
}

/* ---- the two signs (idle.ts's Contention and CpuSharing) ---- */

static void contention_start(slot_idle *s, uint64_t t) {
  uint64_t doubled = 2 * s->spell < CONTENDED_MAX_NS ? 2 * s->spell : CONTENDED_MAX_NS;
  s->spell = s->probing ? doubled : CONTENDED_FOR_NS;
  s->until = t + s->spell;
  s->probing = !s->no_run_delay; /* the first run_delay period after the spell decides the next one's length */
  s->slow_yields = 0;
  s->waited_before = 0;
}

/* Reads run_delay when a period is due (never during a spell). */
static void contention_sample(slot_idle *s, uint64_t t) {
  if (t < s->until || s->no_run_delay || t - s->delay_at < RUN_DELAY_EVERY_NS) return;
  uint64_t d;
  if (!read_run_delay(&d)) {
    s->no_run_delay = 1;
    return;
  }
  /* a period that began before the spell ended is not judged: it would count the spell's sleep as not waiting */
  int judged = s->delay_at > 0 && s->delay_at >= s->until;
  int waited = judged && (double)(d - s->run_delay) >= RUN_DELAY_SHARE * (double)(t - s->delay_at);
  if (waited && (s->waited_before || s->probing)) contention_start(s, t);
  else {
    if (judged) s->probing = 0;
    s->waited_before = (uint8_t)waited;
  }
  s->delay_at = t;
  s->run_delay = d;
}

/* Gives the CPU up at t; returns the time it got it back, having told both signs how long that took. */
static uint64_t yield_cpu(sb_chan *ch, slot_idle *s, uint64_t t) {
  sched_yield();
  uint64_t back = mono_ns(), took = back - t;
  /* where it runs now: read where the sign needs it, and every NOTE_CPU_EVERY yields (idle.ts's whereAfterYield) */
  s->cpu = -1;
  if (took >= SWITCHED_YIELD_NS || ++s->yields % NOTE_CPU_EVERY == 0) note_cpu(ch, s->cpu = plat_cpu());
  if (took < CONTENDED_YIELD_NS) s->slow_yields = 0;
  else if (++s->slow_yields >= CONTENDED_AFTER_SLOW_YIELDS) contention_start(s, back);
  s->switched = took >= SWITCHED_YIELD_NS;
  if (s->shared) {
    if (s->switched) s->quick = 0;
    else if (++s->quick >= QUICK_YIELDS_TO_CLEAR) s->shared = 0, s->quick = 0;
  }
  s->yield_at = back + YIELD_EVERY_NS;
  return back;
}

/* Sleeps until work may be there or the peer is gone; the wake-up counts as progress. */
static int park(sb_chan *ch, slot_idle *s, int use_futex) {
  int r = sb_wait(ch, -1, use_futex);
  note_cpu(ch, s->cpu = plat_cpu());
  uint64_t t = mono_ns();
  s->last_progress = s->peer_checked = t;
  s->yield_at = t + YIELD_EVERY_NS;
  s->progressed = 0;
  s->polls = 0;
  return r == -EPIPE ? r : 1;
}

int sb_idle(sb_chan *ch, int mode, uint32_t work) {
  if (mode < SB_IDLE_ADAPTIVE || mode > SB_IDLE_PARK_FUTEX) return -EINVAL;
  slot_idle *s = &ch->idle;
  if (s->started == 0) {
    uint64_t t = mono_ns();
    s->started = s->last_progress = s->peer_checked = t;
    s->yield_at = t + YIELD_EVERY_NS;
    s->cpu = -1;
  }
  /* the poll after a yield that ran another thread found work: the peer ran here, unless it says it runs elsewhere */
  if (s->switched && work > 0)
    s->shared = (uint8_t)peer_may_share(ch, s->cpu);
  s->switched = 0;
  if (work > 0) { /* no clock: the next empty poll that reads one dates the progress */
    s->progressed = 1;
    s->polls = 0;
    return 1;
  }
  if (mode == SB_IDLE_PARK || mode == SB_IDLE_PARK_FUTEX) return park(ch, s, mode == SB_IDLE_PARK_FUTEX);
  int adaptive = mode == SB_IDLE_ADAPTIVE;
  if (adaptive && crowded(ch)) return park(ch, s, 0);
  if (!s->shared && ++s->polls % POLLS_PER_CLOCK != 0) {
    cpu_relax();
    return 1;
  }
  uint64_t t = mono_ns();
  if (s->progressed) {
    s->last_progress = t;
    s->progressed = 0;
  }
  if (s->shared || t >= s->yield_at) t = yield_cpu(ch, s, t);
  if (t - s->peer_checked >= PEER_CHECK_EVERY_NS) {
    s->peer_checked = t;
    if (slot_peer_gone(ch)) return -EPIPE;
  }
  if (!adaptive) return 1;
  contention_sample(s, t);
  /* as the Bun side's turn: a spin of 20 µs after work, then a park, so a burst still costs its peer no ring */
  if (t < s->until && t - s->last_progress >= SPELL_SPIN_NS) return park(ch, s, 0);
  if (t - s->last_progress >= PARK_AFTER_NS && t - s->started >= STARTUP_POLL_NS) return park(ch, s, 0);
  return 1;
}
