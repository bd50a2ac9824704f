/* Internal to the slot channel files: the region's layout (docs/PROTOCOL.md §2), the channel handle, and the
 * ring and wake-up steps both use. Not part of the public API: csrc/slotbus.h is.
 *   slot_open.c         rendezvous: listen, accept and the hello, connect, close, the accept watcher (§1)
 *   slot_transitions.c  the hub's and the worker's slot transitions (§3–§6); a streamed answer's pop goes to stream.c
 *   stream.c            answers as streams of frames with credit (§9)
 *   park.c              parking (§5): sleeping until the peer pushes, cancels, grants credit or goes
 *   idle.c              sb_idle: the Bun side's idle strategies for a thread that polls (§5)
 *   recorder.c          the flight recorder file the hub's transitions write (§16, recorder.h) */
#ifndef SLOTBUS_SLOT_INTERNAL_H
#define SLOTBUS_SLOT_INTERNAL_H
#include "sys.h"
#include "shm.h"
#include "slotbus.h"

#define HDR_BYTES 1024u
#define SLOT_BYTES 64u
#define PAGE 4096u
#define LAYOUT_DESC "slotbus/2 hdr=1024 slot=64 ring=pos20:slot12 state=gen24:state8 parked=320,384 cancel=448,36"

/* ---- region layout (docs/PROTOCOL.md §2) ---- */

typedef struct {
  uint32_t magic, version, layout_hash, slot_count, ring_size, arena_size;
  uint64_t region_size;
  uint32_t hub_pid, worker_pid;
} hdr_identity;

typedef struct {
  _Alignas(64) hdr_identity id;
  _Alignas(64) _Atomic uint32_t sq_tail;
  _Alignas(64) _Atomic uint32_t sq_head;
  _Alignas(64) _Atomic uint32_t cq_tail;
  _Alignas(64) _Atomic uint32_t cq_head;
  /* Each on its own line: the producer reads it after every push, and a line the consumer keeps writing
   * (its head) would cost that read a cache miss each time. */
  _Alignas(64) _Atomic uint32_t worker_parked;
  _Atomic uint32_t worker_cpu; /* §5.1: the CPU it last ran on + 1, a hint written only when it changes */
  _Alignas(64) _Atomic uint32_t hub_parked;
  _Atomic uint32_t hub_cpu;
  /* Bumped by the hub after it asks the worker to cancel a request it already claimed (§3, cancel requests). */
  _Alignas(64) _Atomic uint32_t cancel_seq;
} region_hdr;

typedef struct {
  _Atomic uint32_t state;
  uint32_t kind, id, req_head, req_body;
  uint32_t status, flags, resp_head, resp_body;
  uint32_t cancel; /* hub writes gen << 8 | 1: "give up the request of this generation" */
  /* streams (§9.1): the window the hub offers, its credit, the worker's position and the notify word */
  uint32_t window;
  _Atomic uint32_t limit;
  _Atomic uint32_t produced;
  _Atomic uint32_t notify;
  uint32_t reserved[2];
} slot_hdr;

_Static_assert(offsetof(region_hdr, sq_tail) == 64, "layout");
_Static_assert(offsetof(region_hdr, sq_head) == 128 && offsetof(region_hdr, worker_parked) == 320, "layout");
_Static_assert(offsetof(region_hdr, cq_tail) == 192, "layout");
_Static_assert(offsetof(region_hdr, cq_head) == 256 && offsetof(region_hdr, hub_parked) == 384, "layout");
_Static_assert(offsetof(region_hdr, worker_cpu) == 324 && offsetof(region_hdr, hub_cpu) == 388, "layout");
_Static_assert(offsetof(region_hdr, cancel_seq) == 448 && offsetof(slot_hdr, cancel) == 36, "layout");
_Static_assert(offsetof(slot_hdr, window) == 40 && offsetof(slot_hdr, notify) == 52, "layout");
_Static_assert(sizeof(region_hdr) <= HDR_BYTES && sizeof(slot_hdr) == SLOT_BYTES, "layout");

/* Geometry is copied out of the region once and trusted only from the private copy. */
typedef struct {
  uint32_t slot_count, ring_size, arena_size;
  uint64_t slots_off, arenas_off, region_size;
} geometry;

/* Where the hub holds each slot (private, never shared: the worker cannot move it). */
enum hub_slot {
  HUB_FREE = 0,      /* on the free stack */
  HUB_CLAIMED = 1,   /* claimed by sb_hub_claim, being filled */
  HUB_PUBLISHED = 2, /* published to the worker, not yet completed */
  HUB_COMPLETED = 3, /* its completion was polled; the caller still reads the response */
  HUB_STREAMING = 4, /* answered as a stream (§9): at least one notification popped */
};

/* The hub's private view of one slot's stream (§9): nothing here is read back from shared memory. */
enum hub_stream_flag { HS_HEAD = 1, HS_END = 2, HS_FINAL = 4, HS_CANCEL = 8 };
typedef struct {
  uint32_t window;   /* offered at publish, 0 = none */
  uint32_t r;        /* read cursor: the position of the next frame */
  uint32_t P;        /* produced, as loaded at the last pop */
  uint32_t limit;    /* the credit granted */
  uint32_t consumed; /* the position before which nothing is needed any more */
  uint32_t flags;    /* enum hub_stream_flag */
} hub_stream;

/* The worker's private view of one slot's stream. */
typedef struct {
  uint32_t gen, window;  /* as read once when it claimed the request */
  uint32_t produced;     /* its own position */
  uint32_t limit_seen;   /* the credit it last saw while waiting for more */
  uint32_t need;         /* while waiting: the credit (limit − produced) its next frame needs */
  uint8_t streaming;     /* begun and not ended */
  uint8_t waiting;       /* out of credit: parking must look at this slot's limit */
} worker_stream;

/* sb_idle's state (csrc/idle.c): the adaptive strategy's clocks and the two signs it watches, as src/core/wire/idle.ts. */
typedef struct {
  uint64_t started;       /* the first sb_idle call: adaptive polls STARTUP_POLL_NS from here before it first parks */
  uint64_t last_progress; /* the last work (or wake-up) seen with a clock read */
  uint64_t yield_at;      /* the next sched_yield while spinning */
  uint64_t peer_checked;  /* the last look at the socket while spinning */
  uint32_t polls;         /* empty polls since work, for reading the clock every few only */
  uint8_t progressed;     /* work since the clock was last read: last_progress is due */
  /* the machine is oversubscribed (Contention in idle.ts): park at once before `until` */
  uint64_t until, spell, delay_at, run_delay;
  uint32_t slow_yields;
  uint8_t probing, waited_before, no_run_delay;
  /* this side's peer runs on this side's CPU (CpuSharing in idle.ts): yield after every empty poll */
  uint8_t shared, switched;
  uint32_t quick, yields;
  int cpu; /* this thread's CPU after its last yield or wake (-1: unknown), as published in its CPU word (§5.1) */
} slot_idle;

struct sb_chan {
  sb_msg msg; /* first, so sb_last_msg is the handle itself */
  int is_hub;
  int sock, memfd, my_bell, peer_bell;
  int32_t peer_pid, peer_uid;
  uint64_t peer_start; /* the peer process's start time when the socket was made (sys_proc_start), 0 if unread */
  uint8_t *base;
  region_hdr *hdr;
  geometry g;
  uint32_t trim_bytes;
  /* my ring cursors, private: the shared copies are only ever written, never trusted */
  uint32_t prod_tail, cons_head;
  /* hub only: slot ownership and the generation published in each slot */
  uint32_t *gen;
  uint8_t *busy; /* the hub's own view of each slot: enum hub_slot */
  uint32_t *free_stack;
  uint32_t free_top;
  uint32_t *hiwater; /* bytes written per slot, both arenas, for trimming */
  /* worker only: the hub's cancel_seq as of the last sb_worker_cancel_seq or the last park it woke, so parking
   * notices a newer one, once */
  uint32_t cancel_seen;
  /* streams (§9): hub_streams on the hub, worker_streams on the worker, one per slot */
  uint32_t stream_window; /* hub: offered with every request */
  hub_stream *hs;
  worker_stream *ws;
  uint32_t waiting_streams; /* worker: streams with waiting set */
  /* worker only: the hello as it arrives, and how many of its fds came */
  sys_hello hello;
  uint32_t hello_got, hello_fds;
  char error[160];
  /* hub only: the flight recorder (csrc/recorder.c, §16), its record per slot (index + 1, 0: none) and worker entry */
  struct sb_rec *rec;
  uint32_t *rec_at;
  void *rec_worker;
  slot_idle idle; /* sb_idle's, zero until its first call */
};


static inline uint32_t align8(uint32_t n) { return (n + 7u) & ~7u; }
static inline uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) & ~(a - 1); }

static inline uint32_t ring_size_for(uint32_t slots) {
  uint32_t r = 1;
  while (r < slots) r <<= 1;
  return r;
}

static inline geometry geometry_for(uint32_t slot_count, uint32_t arena_size) {
  geometry g;
  g.slot_count = slot_count;
  g.ring_size = ring_size_for(slot_count);
  g.arena_size = arena_size;
  g.slots_off = align_up(HDR_BYTES + 8ull * g.ring_size, 64);
  g.arenas_off = align_up(g.slots_off + (uint64_t)SLOT_BYTES * slot_count, PAGE);
  g.region_size = g.arenas_off + 2ull * slot_count * arena_size;
  return g;
}

static inline _Atomic uint32_t *sq(sb_chan *ch) { return shm_u32(ch->base, HDR_BYTES); }
static inline _Atomic uint32_t *cq(sb_chan *ch) { return sq(ch) + ch->g.ring_size; }
static inline slot_hdr *slot_at(sb_chan *ch, uint32_t i) { return (slot_hdr *)(ch->base + ch->g.slots_off) + i; }
static inline uint8_t *arena(sb_chan *ch, uint32_t i, int response) {
  return ch->base + ch->g.arenas_off + (2ull * i + (response ? 1 : 0)) * ch->g.arena_size;
}
static inline uint32_t word(uint32_t gen, uint32_t state) { return (gen << 8) | state; }

static inline int corrupt(sb_chan *ch, const char *what, uint32_t a, uint32_t b) {
  snprintf(ch->error, sizeof ch->error, "%s (%u, %u)", what, a, b);
  return -SB_ECORRUPT;
}

/* A message fits when the padded head and the body both lie inside the arena. */
static inline int fits(sb_chan *ch, uint32_t head_len, uint32_t body_len) {
  return head_len <= ch->g.arena_size && (uint64_t)align8(head_len) + body_len <= ch->g.arena_size;
}

/* ---- rings (§4): single producer, single consumer ---- */

/* An entry names its slot and its position (§4): the consumer polls the entry at its head, not the tail, so a
 * push costs it one cache miss instead of two. The entry of position n holds the low 20 bits of n + 1 above the
 * slot index (never 0 in the first lap, so a zeroed ring is empty); slots are < 4096. */
#define RING_SLOT_BITS 12u
_Static_assert(SB_MAX_SLOTS <= (1u << RING_SLOT_BITS), "a slot index fits a ring entry");
static inline uint32_t ring_entry(uint32_t pos, uint32_t slot) { return ((pos + 1u) << RING_SLOT_BITS) | slot; }
static inline int ring_tagged(uint32_t e, uint32_t pos) { return (e >> RING_SLOT_BITS) == ((pos + 1u) & 0xFFFFFu); }

static inline void ring_push(sb_chan *ch, _Atomic uint32_t *ring, _Atomic uint32_t *tail, uint32_t slot) {
  /* release: a consumer that sees the entry sees what was published before it */
  shm_store_release(&ring[ch->prod_tail & (ch->g.ring_size - 1)], ring_entry(ch->prod_tail, slot));
  ch->prod_tail++;
  /* seq_cst, not just release: it must be ordered before our load of the peer's parked word (§5). */
  shm_store_seq_cst(tail, ch->prod_tail);
}

/* Whether the producer's tail says there is nothing to take: it equals our head, or is one behind it (the entry
 * we took last is visible before its tail store, which may still be on its way). Anything else means entries. */
static inline int ring_tail_empty(sb_chan *ch, uint32_t t) { return t == ch->cons_head || t + 1u == ch->cons_head; }

/* Returns the slot index, -1 when empty, -SB_ECORRUPT when the producer's tail or entry is impossible. */
static inline int ring_pop(sb_chan *ch, _Atomic uint32_t *ring, _Atomic uint32_t *tail, _Atomic uint32_t *head) {
  if (plat_region_lost(ch->base)) return corrupt(ch, "the shared region was truncated by the peer (SIGBUS caught)", 0, 0);
  _Atomic uint32_t *at = &ring[ch->cons_head & (ch->g.ring_size - 1)];
  uint32_t e = shm_load_acquire(at);
  if (!ring_tagged(e, ch->cons_head)) {
    /* Not there yet, or the producer is lying: its tail tells, and is read only on this (empty) path. Release on
     * the entry, then the tail: a tail that moved past our head guarantees the entry is visible. */
    uint32_t t = shm_load_acquire(tail);
    if (ring_tail_empty(ch, t)) return -1;
    if (t - ch->cons_head > ch->g.ring_size) return corrupt(ch, "ring tail out of range", t, ch->cons_head);
    e = shm_load_acquire(at);
    if (!ring_tagged(e, ch->cons_head)) return corrupt(ch, "ring entry out of sequence", e, ch->cons_head);
  }
  uint32_t slot = e & ((1u << RING_SLOT_BITS) - 1);
  ch->cons_head++;
  shm_store_release(head, ch->cons_head);
  if (slot >= ch->g.slot_count) return corrupt(ch, "ring entry is not a slot", slot, ch->g.slot_count);
  return (int)slot;
}

/* ---- waking (§5) ---- */

static inline void wake_peer(sb_chan *ch, _Atomic uint32_t *peer_parked, _Atomic uint32_t *tail) {
  /* A polling peer costs us one load of a line it does not write: no syscall, no cache miss. */
  uint32_t how = shm_load_seq_cst(peer_parked);
  if (how == SB_PARK_FUTEX) {
    /* Never cleared from here: a futex wake is not remembered, so a stale clear could hide the peer's
     * next sleep from every later push. The sleeper clears it when it wakes. */
    plat_wake(tail, 1);
  } else if (how == SB_PARK_EVENTFD) {
    /* Cleared here so a burst of pushes pays one write. Safe even if stale: the doorbell remembers. */
    uint32_t expect = SB_PARK_EVENTFD;
    if (shm_cas_seq_cst(peer_parked, &expect, SB_AWAKE)) {
      plat_bell_ring(ch->peer_bell); /* a full doorbell has rung already: the peer will wake anyway */
    }
  }
}

static inline _Atomic uint32_t *my_parked(sb_chan *ch) { return ch->is_hub ? &ch->hdr->hub_parked : &ch->hdr->worker_parked; }

/* §5.1: tells the peer this side now runs on cpu (-1: unknown, nothing written), storing only a change. */
static inline void note_cpu(sb_chan *ch, int cpu) {
  _Atomic uint32_t *w = ch->is_hub ? &ch->hdr->hub_cpu : &ch->hdr->worker_cpu;
  if (cpu >= 0 && shm_load_relaxed(w) != (uint32_t)cpu + 1) shm_store_relaxed(w, (uint32_t)cpu + 1);
}

/* §5.1: whether the peer may run on cpu, this side's: 1 unless both CPUs are known and differ. */
static inline int peer_may_share(sb_chan *ch, int cpu) {
  uint32_t peer = shm_load_relaxed(ch->is_hub ? &ch->hdr->worker_cpu : &ch->hdr->hub_cpu);
  return cpu < 0 || peer == 0 || peer == (uint32_t)cpu + 1;
}
static inline _Atomic uint32_t *my_tail(sb_chan *ch) { return ch->is_hub ? &ch->hdr->cq_tail : &ch->hdr->sq_tail; }

/* Whether the hub asked for a cancellation since the worker last looked or woke for one (the worker's other reason
 * to wake). Taken as it is seen: one cancel wakes a park once, so a worker that never reads cancel_seq (§3 allows
 * it) does not find the same reason not to sleep forever. */
static inline int cancel_wakes(sb_chan *ch) {
  if (ch->is_hub) return 0;
  uint32_t seq = shm_load_seq_cst(&ch->hdr->cancel_seq);
  if (seq == ch->cancel_seen) return 0;
  ch->cancel_seen = seq;
  return 1;
}


/* Shared by the slot files (hidden: libslotbus exports only what its public headers declare). */
#pragma GCC visibility push(hidden)
/* park.c: reads and drops control bytes; 1 when the peer is gone. */
int slot_peer_gone(sb_chan *ch);
/* stream.c: sb_hub_poll popped slot i in state STREAMING. */
int slot_stream_notified(sb_chan *ch, uint32_t i);
#pragma GCC visibility pop
#endif
