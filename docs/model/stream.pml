/* SPIN model of a streamed response, docs/PROTOCOL.md §9: one slot, one stream, the hub (its pump and its
 * caller) and the worker as concurrent processes, a kill -9 of either side at any step. Conventions as in
 * slotbus.pml: every access to shared memory or a kernel object the peer can observe is its own step; memory
 * is sequentially consistent (the exchanges of `notify` are acq_rel, the credit store and the parked-word
 * loads seq_cst, as §9 says).
 *
 * The ring is counted in frames: every frame takes one cell, the window is CELLS cells, and the last cell of
 * credit is END's reserve (every frame but END must end at limit - 1 or before, END at limit). The frame at
 * position p holds p + 1 in cell p % CELLS, plus 16 if it is END and 32 if that END says "cancelled"; the hub
 * checks each frame it reads against its position, so a frame overwritten before the hub was done with it,
 * read twice or skipped fails an assertion.
 *
 * Known bugs, each switched on by a macro; SPIN must find each:
 *   -DBUG_NO_END_RESERVE      END needs credit like any frame: after a cancel with a full window it never fits
 *   -DBUG_LOAD_BEFORE_CLEAR   the hub loads `produced` before it clears `notify`: a notification is lost
 *   -DBUG_RECLAIM_AT_END      the hub reclaims once it read END, without waiting for notify = 2
 *   -DBUG_NO_CREDIT_RECHECK   the worker parks for credit without re-reading the limit
 */

#ifndef ND
#define ND 3          /* DATA frames the worker sends unless cancelled */
#endif
#ifndef WIN
#define WIN 2         /* credit for frames other than END, in frames */
#endif
#define CELLS (WIN + 1)
#define END_BIT 16
#define CANCELLED_BIT 32

#define AWAKE 0
#define PARK_EVENTFD 1

/* notify */
#define FRAMES 1
#define FINAL 2

/* ---- shared memory ---- */
byte ring[CELLS];
byte produced;          /* worker writes (release) */
byte limit = CELLS;     /* hub writes: set to the window at publish, then consumed + window */
byte notify;            /* worker: exchange(1 or 2); hub: exchange(0) */
bit streaming;          /* the state word: CLAIMED (0) or STREAMING (1) */
bit cancel_req;         /* the cancel word naming this generation, and cancel_seq moved */
byte cq_tail;           /* one slot, so the cq has one entry */
byte worker_parked;
byte hub_parked;

/* ---- kernel objects ---- */
bit worker_bell;
bit hub_bell;
bit hub_dead;
bit worker_dead;

/* ---- hub private ---- */
byte h_cq_head;         /* also the shared cq_head: stored in the same step */
byte h_r;               /* read cursor: position of the next frame to parse */
byte h_c;               /* consumed: the caller has taken every frame before it */
byte h_v, h_p, h_f, h_t;
bit h_sleeping;
bit h_cancelled;        /* the caller gave up: its stream failed at once */
bit h_end_seen;         /* END parsed */
bit h_final;            /* popped with notify = 2 */
bit h_reclaimed;

/* ---- worker private ---- */
byte w_p;               /* next position */
byte w_lim;             /* limit as last loaded */
byte w_old, w_t;
bit w_cancel_seen;
bit w_sleeping;

/* ---- ghosts ---- */
bit hub_over;
bit worker_over;

/* wake_peer after a push or a credit grant: t holds the peer's parked word, loaded seq_cst after the store. */
inline wake(parked, bell, t) {
  if
  :: t == PARK_EVENTFD ->
     atomic { if :: parked == PARK_EVENTFD -> parked = AWAKE; t = 9 :: else -> t = 0 fi }; /* CAS 1 -> 0 */
     if :: t == 9 -> atomic { bell = 1; t = 0 } :: else fi
  :: else -> t = 0
  fi
}

/* Woken by the doorbell (poll, then sb_unpark: store AWAKE, empty the eventfd). */
#define WOKEN(sleeping, parked, bell) \
  :: atomic { sleeping && bell -> sleeping = 0 }; parked = AWAKE; bell = 0

/* ---------------------------------------------------------------------------------------------- worker */

/* After the frame bytes: produced (release), exchange notify, push and wake if it was 0. */
inline publish(v) {
  produced = w_p;
  atomic { w_old = notify; notify = v };
  if
  :: w_old == 0 ->
     atomic { assert(cq_tail == h_cq_head); cq_tail++ }; /* the cq (one entry) never overflows */
     w_t = hub_parked; /* seq_cst, after the seq_cst tail store */
     wake(hub_parked, hub_bell, w_t)
  :: else
  fi;
  w_old = 0
}

/* No credit for the next frame: park on the doorbell (parked = 1), re-read the limit and cancel_seq (a
 * cancel not seen yet), sleep unless either moved. */
inline park_for_credit() {
  worker_parked = PARK_EVENTFD;
#ifdef BUG_NO_CREDIT_RECHECK
  w_sleeping = 1;
#else
  if
  :: limit != w_lim -> worker_parked = AWAKE
  :: else ->
     if
     :: cancel_req && !w_cancel_seen -> w_cancel_seen = 1; worker_parked = AWAKE
     :: else -> w_sleeping = 1
     fi
  fi;
#endif
  if
  :: w_sleeping -> atomic { w_sleeping && worker_bell -> w_sleeping = 0 }; worker_parked = AWAKE; worker_bell = 0
  :: else
  fi
}

active proctype worker() {
  {
    /* begin: HEAD at 0 (always fits: the window is fresh), produced, state STREAMING (release), notify */
    ring[0] = 1;
    w_p = 1;
    produced = 1;
    streaming = 1;
    atomic { w_old = notify; notify = FRAMES };
    if
    :: w_old == 0 ->
       atomic { assert(cq_tail == h_cq_head); cq_tail++ };
       w_t = hub_parked;
       wake(hub_parked, hub_bell, w_t)
    :: else
    fi;
    w_old = 0;

    do
    /* the cancel word, read when cancel_seq moved (or at the next stream call) */
    :: !w_cancel_seen && cancel_req -> w_cancel_seen = 1
    /* the next DATA frame, if the credit allows it */
    :: !w_cancel_seen && w_p <= ND ->
       w_lim = limit;
#ifdef BUG_NO_END_RESERVE
       if
       :: w_p + 1 <= w_lim ->
#else
       if
       :: w_p + 1 <= w_lim - 1 ->
#endif
          ring[w_p % CELLS] = w_p + 1;
          w_p++;
          publish(FRAMES)
       :: else -> park_for_credit()
       fi
    /* END: every DATA sent, or cancelled */
    :: w_cancel_seen || w_p > ND ->
       w_lim = limit;
       if
       :: w_p + 1 <= w_lim -> /* the reserve: an empty END always fits */
          ring[w_p % CELLS] = w_p + 1 + END_BIT + (w_cancel_seen -> CANCELLED_BIT : 0);
          w_p++;
          publish(FINAL);
          break
       :: else -> park_for_credit() /* only reachable without the reserve */
       fi
    od;
    worker_over = 1
  } unless { atomic { (worker_dead || hub_dead) && !worker_over -> worker_over = 1 } }
}

/* ------------------------------------------------------------------------------------------------ hub */

active proctype hub() {
  {
    do
    /* the pump: pop a notification, clear notify, then load produced, then parse the frames */
    :: atomic { !h_sleeping && cq_tail != h_cq_head -> assert(!h_reclaimed); h_cq_head++ };
       assert(streaming); /* the state word (acquire): gen|STREAMING */
#ifdef BUG_LOAD_BEFORE_CLEAR
       h_p = produced;
       atomic { h_v = notify; notify = 0 };
#else
       atomic { h_v = notify; notify = 0 };
       h_p = produced;
#endif
       assert(h_v == FRAMES || h_v == FINAL);
       assert(h_p >= h_r && h_p <= limit); /* within the credit granted, never backwards */
       do
       :: h_r < h_p ->
          h_f = ring[h_r % CELLS];
          assert(!h_end_seen);                /* nothing after END */
          assert(h_f % END_BIT == h_r + 1);   /* the frame written for this position: none lost or overwritten */
          if
          :: h_f >= END_BIT ->
             h_end_seen = 1;
             assert(h_f < CANCELLED_BIT || h_cancelled) /* "cancelled" only when the hub asked */
          :: else
          fi;
          h_r++
       :: else -> break
       od;
       if
       :: h_v == FINAL -> assert(h_end_seen); h_final = 1 /* no further notification of this slot */
       :: else
       fi;
#ifdef BUG_RECLAIM_AT_END
       if :: h_end_seen -> h_final = 1 :: else fi;
#endif
       h_v = 0; h_p = 0; h_f = 0

    /* the caller takes the next frame (copies it, or gives back the borrowed view): credit */
    :: !h_cancelled && h_c < h_r ->
       h_c++;
       if
       :: !h_end_seen ->
          limit = h_c + CELLS; /* seq_cst */
          h_t = worker_parked; /* seq_cst */
          wake(worker_parked, worker_bell, h_t)
       :: else /* the worker needs no more credit */
       fi

    /* the caller gives up (abort, timeout, idle bound, body cancelled) before the stream ended: cancel
     * word, cancel_seq, wake; no more credit from here on */
    :: !h_cancelled && !(h_end_seen && h_c == h_r) && !h_reclaimed ->
       h_cancelled = 1;
       cancel_req = 1;
       h_t = worker_parked;
       wake(worker_parked, worker_bell, h_t)

    /* reclaim: the final notification popped and nothing of the ring lent to the caller any more */
    :: !h_reclaimed && h_final && (h_cancelled || h_c == h_r) ->
       h_reclaimed = 1;
       /* the caller got every frame, HEAD to END, or gave up */
       assert(h_cancelled || (h_end_seen && h_r == ND + 2))

    /* nothing to pop: park on the doorbell (the caller may still read meanwhile) */
    :: !h_sleeping && cq_tail == h_cq_head && !h_reclaimed ->
       hub_parked = PARK_EVENTFD;
       if
       :: cq_tail != h_cq_head -> hub_parked = AWAKE
       :: else -> h_sleeping = 1
       fi
    WOKEN(h_sleeping, hub_parked, hub_bell)

    /* the slot is the hub's again and its next request goes out; it hears nothing more of this one
     * (ghost: wait for the worker to have finished, so a late notification would still be seen above) */
    :: h_reclaimed && worker_over -> break
    od;
    hub_over = 1
  } unless { atomic { (worker_dead || hub_dead) && !hub_over -> hub_over = 1 } }
}

/* kill -9 of at most one side, at any point; the survivor reads EOF on the socket and stops (the hub fails
 * the caller's stream with WorkerGoneError, the worker's stream calls fail with EPIPE) */
active proctype killer() {
  if
  :: hub_dead = 1
  :: worker_dead = 1
  :: skip
  fi
}

/* Both sides stop in every run: no deadlock, no livelock, no lost wake-up, with a full window included. */
ltl terminates { <> (hub_over && worker_over) }
/* A cancel ends both sides. */
ltl cancel_ends { [] (cancel_req -> <> (hub_over && worker_over)) }
