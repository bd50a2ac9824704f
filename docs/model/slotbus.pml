/* SPIN model of the slot protocol, docs/PROTOCOL.md §3-§5, following csrc/slot_transitions.c step by step.
 * What it proves, its bounds and abstractions, and how to run it: docs/model/README.md.
 *
 * Two processes share the region: the hub (claims, publishes, unclaims, cancels, polls, releases) and one
 * worker (polls, claims, completes, returns cancelled slots). Each parks on its parked word + doorbell
 * eventfd (the NEED_WAKEUP pattern: announce, re-check the ring, sleep) or waits on a futex on the tail it
 * consumes. A third process, the killer, may kill -9 either side between any two of its steps (see
 * "Deaths" below for how the survivor learns of it).
 *
 * Granularity: every access to shared memory or a kernel object the peer can observe is its own step.
 * Purely private work (the hub's free list, generations, cursors; ghost bookkeeping) is folded into the
 * neighbouring shared access with atomic, which no other process can tell apart. Memory is sequentially
 * consistent: the code makes every parked-word access and the tail store before it seq_cst, and the rest
 * is release/acquire on one word that the model's step order already respects.
 *
 * Known bugs, each switched on by a macro; SPIN must find each (test/native/model.test.ts):
 *   -DBUG_NO_RECHECK          the parker does not re-read the tail after announcing it parks
 *   -DBUG_WAKER_CLEARS_FUTEX  the waker clears a futex sleeper's parked word (the lost wake-up of 14ad90c)
 *   -DBUG_TAIL_AFTER_PARKED   the producer reads the peer's parked word before its tail store is visible
 *                             (what a release-only tail store allows on x86: the store waits in the buffer)
 *   -DBUG_NO_GEN_CHECK        sb_worker_complete without the generation: a stale completion is accepted
 *   -DBUG_TAIL_BEFORE_ENTRY   the producer stores the tail before the entry: a consumer that finds the tail
 *                             moved and the entry missing calls an honest peer corrupt
 */

#ifndef NS
#define NS 2      /* slots, 1..3 */
#endif
#ifndef RING
#define RING 2    /* ring entries: the smallest power of two >= NS */
#endif
#ifndef NREQ
#define NREQ 3    /* requests the hub makes in one run */
#endif

/* slot states (slotbus.h) */
#define FREE 0
#define WRITING 1
#define READY 2
#define CLAIMED 3
#define DONE 4
#define CANCELLED 5
/* the state word is generation << 8 | state; here generation * 8 + state (no wrap within NREQ requests) */
#define W(g, s) ((g) * 8 + (s))
#define ST(w) ((w) % 8)
#define GEN(w) ((w) / 8)

/* parked words */
#define AWAKE 0
#define PARK_EVENTFD 1
#define PARK_FUTEX 2

/* what the hub's caller gets for a request (documentation only: the model keeps one bit, settled) */
#define ANSWERED 1  /* the worker's response to that very request */
#define TIMEDOUT 2  /* timeout or abort: sb_hub_cancel, the caller is rejected at once */
#define GONE 3      /* WorkerGoneError: the worker died with it */
#define FAILED 4    /* filling the slot threw: sb_hub_unclaim */

/* ---- shared memory ---- */
byte word[NS];          /* slot state words */
byte req_id[NS];        /* request fields of the slot header (hub writes before READY) */
byte resp_of[NS];       /* response fields, reduced to the id of the request they answer (worker, before DONE) */
bit resp_cancelled[NS]; /* response flags bit 1 */
byte sq[RING];          /* entries (PROTOCOL.md §4): ENTRY(position, slot), polled by the consumer */
byte sq_tail;           /* hub writes; the worker's futex word */
byte cq[RING];
byte cq_tail;           /* worker writes; the hub's futex word */
byte worker_parked;
byte hub_parked;

/* ---- kernel objects ---- */
bit worker_bell;        /* the worker's doorbell eventfd counter is non-zero */
bit hub_bell;
bit worker_fwait;       /* the worker is queued in FUTEX_WAIT on sq_tail */
bit hub_fwait;
bit hub_dead;           /* kill -9: its socket closes */
bit worker_dead;
bit hub_closed;         /* the hub closed the connection on purpose: its socket closes too */
#define HUB_GONE (hub_dead || hub_closed)
#define WORKER_GONE (worker_dead)

/* ---- private memory of each side (global only so that a death can forget it in one step) ---- */
byte h_busy[NS];        /* hub: 0 free, 1 claimed (WRITING), 2 published, 3 polled: ch->busy */
byte h_gen[NS];         /* generation the hub put in each slot: ch->gen */
byte h_req[NS];         /* request published in each slot */
byte h_free[NS];        /* free list, a stack: ch->free_stack */
byte h_nfree;
byte h_next = 1;        /* next request to make */
byte h_cq_head;         /* consumer cursor: ch->cons_head */
bit h_sleeping;         /* the pump parked: sb_park returned 0 */
byte h_i, h_t;
byte w_gen[NS];         /* worker: generation of the request it holds in each slot, from sb_worker_poll */
byte w_req[NS];         /* its request id */
byte w_sq_head;         /* consumer cursor */
bit w_sleeping;
bit w_ok;
bit w_stale_sent;       /* a careless C worker completes its first request a second time, once */
byte w_old_slot = 255, w_old_gen, w_old_id;
byte w_i, w_w, w_t;

/* ---- ghosts ---- */
bit worker_has[NS];     /* the worker holds a claimed request in this slot */
bit settled[NREQ + 1];  /* the caller of request r got its one outcome */
bit hub_over;
bit worker_over;

/* A ring entry: its position's tag and the slot (the C packs (n + 1) << 12 | slot). A zeroed ring holds none. */
#define ENTRY(n, slot) (((n) + 1) * 4 + (slot))
#define TAGGED(ring, head) (ring[(head) % RING] / 4 == (head) + 1)
#define SLOT_OF(e) ((e) % 4)
/* The consumer's tail check (ring_tail_empty): its head, or one behind it while the push it took last lands. */
#define TAIL_EMPTY(tail, head) ((tail) == (head) || (tail) + 1 == (head))

inline settle(r, how) {
  assert(!settled[r]); /* one outcome per request, never two */
  settled[r] = 1
}

/* The producer after its push (wake_peer): t holds the peer's parked word, loaded seq_cst after the tail
 * store (PUSH below). */
inline wake(parked, bell, fwait, t) {
  if
  :: t == PARK_FUTEX ->
#ifdef BUG_WAKER_CLEARS_FUTEX
     fwait = 0; /* FUTEX_WAKE */
     parked = AWAKE; t = 0
#else
     atomic { fwait = 0; t = 0 } /* FUTEX_WAKE: wakes whoever is queued now, remembered by nobody; the word is left alone */
#endif
  :: t == PARK_EVENTFD ->
     atomic { if :: parked == PARK_EVENTFD -> parked = AWAKE; t = 9 :: else -> t = 0 fi }; /* CAS 1 -> 0 */
     if :: t == 9 -> atomic { bell = 1; t = 0 } /* write(peer_bell): the eventfd remembers */ :: else fi
  :: else
  fi
}

/* ring_push + wake_peer: the entry (release), then the tail (seq_cst), then the peer's parked word (seq_cst).
 * The consumer polls the entry, so it may take it before the tail store lands. (A macro: Promela cannot pass an
 * array to an inline.) */
#if defined(BUG_TAIL_AFTER_PARKED)
#define PUSH(ring, tail, slot, parked, bell, fwait, t) \
  t = parked; ring[tail % RING] = ENTRY(tail, slot); tail++; wake(parked, bell, fwait, t)
#elif defined(BUG_TAIL_BEFORE_ENTRY)
#define PUSH(ring, tail, slot, parked, bell, fwait, t) \
  tail++; ring[(tail - 1) % RING] = ENTRY(tail - 1, slot); t = parked; wake(parked, bell, fwait, t)
#else
#define PUSH(ring, tail, slot, parked, bell, fwait, t) \
  ring[tail % RING] = ENTRY(tail, slot); tail++ /* seq_cst */; t = parked /* seq_cst */; wake(parked, bell, fwait, t)
#endif

/* ring_pop found no entry at head, so it reads the tail: moved past head, the entry was stored before the tail
 * and must be there now (else an honest peer would be called corrupt), and the side polls again; equal to head or
 * one behind: empty, and the side parks (the option that follows this one). */
#define THERE_NOW(ring, tail, head) \
  atomic { !TAIL_EMPTY(tail, head) -> assert(tail - head <= RING && TAGGED(ring, head)) }

/* sb_park: announce (seq_cst store), re-check the tail (seq_cst load); then the side sleeps in its event
 * loop until its doorbell rings (see the do-loops) or its socket closes. */
inline park_eventfd(parked, tail, head, sleeping) {
  parked = PARK_EVENTFD;
#ifdef BUG_NO_RECHECK
  sleeping = 1
#else
  if
  :: !TAIL_EMPTY(tail, head) -> parked = AWAKE /* work arrived meanwhile: returns 1, poll again */
  :: else -> sleeping = 1
  fi
#endif
}

/* Woken by the doorbell: the TS pump (Bun reads the eventfd, the parked word stays as the waker left it),
 * or sb_wait's eventfd mode in C (poll() returns, then sb_unpark: store AWAKE, drain the eventfd). */
#define WOKEN(sleeping, parked, bell) \
  :: atomic { sleeping && bell -> bell = 0; sleeping = 0 } \
  :: atomic { sleeping && bell -> sleeping = 0 }; parked = AWAKE; bell = 0

/* sb_wait(use_futex = 1): blocks until a FUTEX_WAKE or, at a 10 ms slice, the socket's EOF. The slices'
 * timeouts are left out, so a lost FUTEX_WAKE hangs here where the real code would be up to 10 ms late. */
inline wait_futex(parked, tail, head, fwait, bell, seen) {
  parked = PARK_FUTEX;
#ifdef BUG_NO_RECHECK
  if :: false -> skip
#else
  if
  :: !TAIL_EMPTY(tail, head) -> parked = AWAKE /* park_as returned 1 */
#endif
  :: else ->
     do
     :: seen = tail; /* the tail as found: head, or one behind while the last push lands */
        if
        :: TAIL_EMPTY(seen, head) ->
           if
           :: atomic { tail == seen -> fwait = 1 }; /* FUTEX_WAIT(tail, seen): queued only if unchanged */
              fwait == 0
           :: tail != seen /* FUTEX_WAIT returned at once */
           fi
        :: else
        fi;
        if :: !TAIL_EMPTY(tail, head) -> break :: else fi; /* work: the tail moved past head */
        seen = 0
     od;
     seen = 0;
     parked = AWAKE; /* sb_unpark */
     bell = 0
  fi
}

/* ------------------------------------------------------------------------------------------- deaths
 * A side that dies stops between two of its steps; its peer learns of it when its socket reports EOF and
 * then stops using the region (the hub first fails every request in flight with WorkerGoneError). Here
 * the peer learns at once, in the same step. Learning later changes nothing the model could miss: until
 * then the peer sees exactly what it sees of a peer that is alive but slow, and every interleaving in which
 * one side makes no step for a while is explored anyway. From the death on, nothing reads the region or
 * either side's private memory again, so all of it is forgotten (zeroed): a few states per death point,
 * not a copy of the whole space. */
#define FORGET(v, n) k = 0; do :: k < n -> v[k] = 0; k++ :: else -> break od
#define FORGET_ALL \
  FORGET(word, NS); FORGET(req_id, NS); FORGET(resp_of, NS); FORGET(resp_cancelled, NS); FORGET(worker_has, NS); \
  FORGET(sq, RING); FORGET(cq, RING); FORGET(settled, NREQ + 1); \
  FORGET(h_busy, NS); FORGET(h_gen, NS); FORGET(h_req, NS); FORGET(h_free, NS); FORGET(w_gen, NS); FORGET(w_req, NS); \
  sq_tail = 0; cq_tail = 0; worker_parked = 0; hub_parked = 0; worker_bell = 0; hub_bell = 0; \
  worker_fwait = 0; hub_fwait = 0; h_nfree = 0; h_next = 0; h_cq_head = 0; h_sleeping = 0; h_i = 0; h_t = 0; \
  w_sq_head = 0; w_sleeping = 0; w_ok = 0; w_stale_sent = 0; w_old_slot = 0; w_old_gen = 0; w_old_id = 0; \
  w_i = 0; w_w = 0; w_t = 0; k = 0

/* kill -9 of at most one side, at any point of its run */
active proctype killer() {
  byte k;
  if
  :: atomic { !hub_closed -> hub_dead = 1; FORGET_ALL } /* the worker reads EOF and stops */
  :: atomic {
       !hub_closed -> worker_dead = 1;
       k = 0;
       do /* the hub reads EOF: WorkerGoneError for every request in flight */
       :: k < NS -> if :: h_busy[k] == 2 && !settled[h_req[k]] -> settle(h_req[k], GONE) :: else fi; k++
       :: else -> break
       od;
       FORGET_ALL
     }
  :: skip
  fi
}

/* ---------------------------------------------------------------------------------------------- hub */

/* sb_hub_cancel for a timeout or an abort; the slot stays pending until the worker hands it back. */
#define CANCEL_OPT(k) \
  :: atomic { h_busy[k] == 2 && !settled[h_req[k]] -> \
       if :: word[k] == W(h_gen[k], READY) -> word[k] = W(h_gen[k], CANCELLED) :: else fi; /* CAS */ \
       settle(h_req[k], TIMEDOUT) }

active proctype hub() {
  byte k;
  /* the free stack, reversed so slot 0 is claimed first */
  atomic { k = 0; do :: k < NS -> h_free[k] = NS - 1 - k; k++ :: else -> break od; k = 0; h_nfree = NS };
  {
    do
    /* a caller's request: sb_hub_claim, fill the arena, then publish it, or unclaim it if filling threw */
    :: atomic {
         h_next <= NREQ && h_nfree > 0 ->
         h_nfree--; h_i = h_free[h_nfree]; h_free[h_nfree] = 0;
         /* never two requests in one slot */
         assert(h_busy[h_i] == 0 && word[h_i] == W(h_gen[h_i], FREE) && !worker_has[h_i]);
         h_busy[h_i] = 1;
         word[h_i] = W(h_gen[h_i], WRITING)
       };
       if
       :: atomic { /* sb_hub_unclaim: WRITING -> FREE. The worker never saw this generation, so no bump is
                    * needed; -DUNCLAIM_BUMPS checks the variant that bumps it anyway */
#ifdef UNCLAIM_BUMPS
            h_gen[h_i]++;
#endif
            word[h_i] = W(h_gen[h_i], FREE);
            h_busy[h_i] = 0; h_free[h_nfree] = h_i; h_nfree++;
            settle(h_next, FAILED); h_next++; h_i = 0 }
       :: atomic { /* sb_hub_publish: fields, then READY (release) */
            req_id[h_i] = h_next; h_req[h_i] = h_next; h_busy[h_i] = 2; h_next++;
            word[h_i] = W(h_gen[h_i], READY) };
          PUSH(sq, sq_tail, h_i, worker_parked, worker_bell, worker_fwait, h_t);
          h_i = 0;
          /* Pump.kick: adaptive mode unparks to poll for the answer; park mode leaves it to the doorbell */
          if
          :: h_sleeping -> atomic { hub_parked = AWAKE; h_sleeping = 0 }; hub_bell = 0 /* sb_unpark */
          :: true
          fi
       fi

    /* timeouts and aborts */
    CANCEL_OPT(0)
#if NS > 1
    CANCEL_OPT(1)
#endif
#if NS > 2
    CANCEL_OPT(2)
#endif

    /* the pump's drain: sb_hub_poll (validate), answer the caller, sb_hub_release */
    :: atomic {
         !h_sleeping && TAGGED(cq, h_cq_head) ->
         h_i = SLOT_OF(cq[h_cq_head % RING]); h_cq_head++;
         assert(h_busy[h_i] == 2);                  /* "completed a slot the hub did not publish" */
         assert(word[h_i] == W(h_gen[h_i], DONE));  /* acquire load: DONE, with the generation it published */
         if
         :: !settled[h_req[h_i]] ->
            assert(!resp_cancelled[h_i]);           /* cancelled only if the hub cancelled it */
            assert(resp_of[h_i] == h_req[h_i]);     /* the response to this very request */
            settle(h_req[h_i], ANSWERED)
         :: else /* timed out meanwhile: the late answer is dropped */
         fi;
         h_busy[h_i] = 3
       };
       atomic { /* sb_hub_release: generation + 1, FREE, back on the free stack */
         h_gen[h_i]++; word[h_i] = W(h_gen[h_i], FREE); h_busy[h_i] = 0; h_free[h_nfree] = h_i; h_nfree++;
         /* Model only: forget the old request's fields. Nothing reads them before the next writer, and a
          * reader that did would see 0, which no check accepts. */
         req_id[h_i] = 0; resp_of[h_i] = 0; resp_cancelled[h_i] = 0; h_req[h_i] = 0;
         h_i = 0 }

    /* nothing to poll: park. The TS pump uses sb_park (also when idle); a C hub may sb_wait */
    :: !h_sleeping && !TAGGED(cq, h_cq_head) ->
       if
       :: THERE_NOW(cq, cq_tail, h_cq_head)
       :: TAIL_EMPTY(cq_tail, h_cq_head) ->
       if
       :: park_eventfd(hub_parked, cq_tail, h_cq_head, h_sleeping)
       :: h_nfree < NS -> /* blocks the thread: only worth it with requests out */
          wait_futex(hub_parked, cq_tail, h_cq_head, hub_fwait, hub_bell, h_t)
       fi
       fi

    /* the doorbell rang */
    WOKEN(h_sleeping, hub_parked, hub_bell)

    /* every request made, every slot back: close the connection (the worker reads EOF and stops) */
    :: atomic {
         h_next > NREQ && h_nfree == NS ->
         k = 0;
         do
         :: k < NS -> assert(word[k] == W(h_gen[k], FREE)); k++ /* every slot FREE again */
         :: else -> break
         od;
         k = 1;
         do
         :: k <= NREQ -> assert(settled[k]); k++ /* every request got its outcome */
         :: else -> break
         od;
         /* forget first: once hub_closed is set, the unless below takes over before another statement runs.
          * (A completion the hub took whose tail store had not landed would otherwise outlive the connection.) */
         FORGET_ALL;
         hub_closed = 1
       }
    od
  } unless { atomic { hub_dead || worker_dead || hub_closed -> hub_over = 1 } }
}

/* ------------------------------------------------------------------------------------------- worker */

/* sb_worker_complete(slot, gen, ...): accepted only for the request it belongs to, i.e. the state word is
 * gen|CLAIMED with the generation sb_worker_poll gave. One step: between the load and the DONE store only
 * this worker can move the slot, so nobody can observe the difference. own: the worker's own request
 * (must be accepted; the first is remembered for the stale repeat); else the stale repeat. */
inline complete(k, g, id, own) {
  atomic {
    w_i = k; /* k, g and id may name the variables cleared below: read them all first */
#ifdef BUG_NO_GEN_CHECK
    w_ok = (ST(word[w_i]) == CLAIMED);
#else
    w_ok = (word[w_i] == W(g, CLAIMED));
#endif
    assert(w_ok || !own);
    if
    :: w_ok ->
       resp_of[w_i] = id; resp_cancelled[w_i] = 0;
       word[w_i] = W(GEN(word[w_i]), DONE); /* release */
       worker_has[w_i] = 0                  /* ghost: its ownership ends here */
    :: else /* -EINVAL, nothing written */
    fi;
    if
    :: own && w_old_slot == 255 && !w_stale_sent -> w_old_slot = w_i; w_old_gen = g; w_old_id = id
    :: else
    fi;
    if
    :: own -> w_gen[w_i] = 0; w_req[w_i] = 0
    :: else -> w_old_slot = 255; w_old_gen = 0; w_old_id = 0
    fi
  };
  if
  :: w_ok -> w_ok = 0; PUSH(cq, cq_tail, w_i, hub_parked, hub_bell, hub_fwait, w_t)
  :: else
  fi;
  w_i = 0
}

/* A handler settles: completes the worker's own request. */
#define COMPLETE_OPT(k) :: worker_has[k] -> complete(k, w_gen[k], w_req[k], 1)

#if NS == 1
#define HOLDS_NONE (!worker_has[0])
#elif NS == 2
#define HOLDS_NONE (!worker_has[0] && !worker_has[1])
#else
#define HOLDS_NONE (!worker_has[0] && !worker_has[1] && !worker_has[2])
#endif

active proctype worker() {
  {
    do
    /* the pump's drain: sb_worker_poll */
    :: atomic {
         !w_sleeping && TAGGED(sq, w_sq_head) ->
         w_i = SLOT_OF(sq[w_sq_head % RING]); w_sq_head++
       };
       /* CAS READY -> CLAIMED (acquire), reloaded on failure: the only other change is the hub's cancel */
       atomic {
         w_w = word[w_i];
         if
         :: ST(w_w) == READY ->
            word[w_i] = W(GEN(w_w), CLAIMED);
            assert(!worker_has[w_i]); /* never two requests in one slot */
            worker_has[w_i] = 1; w_gen[w_i] = GEN(w_w); w_req[w_i] = req_id[w_i];
            w_i = 0; w_w = 0
         :: ST(w_w) == CANCELLED -> /* never run: returned as cancelled */
            resp_cancelled[w_i] = 1;
            word[w_i] = W(GEN(w_w), DONE); w_w = 1 /* to be pushed */
         :: else -> assert(false) /* "published slot is not ready": a corrupt region */
         fi
       };
       if
       :: w_w == 1 -> PUSH(cq, cq_tail, w_i, hub_parked, hub_bell, hub_fwait, w_t); atomic { w_w = 0; w_i = 0 }
       :: else
       fi

    /* a handler settles, at any time: between polls, or while the pump is parked */
    COMPLETE_OPT(0)
#if NS > 1
    COMPLETE_OPT(1)
#endif
#if NS > 2
    COMPLETE_OPT(2)
#endif

    /* the stale second completion of the first request: refused, unless the generation check is missing */
    :: w_old_slot != 255 && !w_stale_sent ->
       w_stale_sent = 1;
       complete(w_old_slot, w_old_gen, w_old_id, 0)

    /* nothing to poll: park on the doorbell (TS pump), or sb_wait on the futex (a C worker, which runs its
     * handlers before it waits: sb_wait blocks the thread) */
    :: !w_sleeping && !TAGGED(sq, w_sq_head) ->
       if
       :: THERE_NOW(sq, sq_tail, w_sq_head)
       :: TAIL_EMPTY(sq_tail, w_sq_head) ->
       if
       :: park_eventfd(worker_parked, sq_tail, w_sq_head, w_sleeping)
       :: HOLDS_NONE -> wait_futex(worker_parked, sq_tail, w_sq_head, worker_fwait, worker_bell, w_t)
       fi
       fi

    WOKEN(w_sleeping, worker_parked, worker_bell)
    od
  } unless { atomic { worker_dead || HUB_GONE -> worker_over = 1 } }
}

/* ---------------------------------------------------------------------------------------- liveness
 * pan -a -N name (terminates holds with no fairness assumed; the others were checked with -f). The first
 * implies the others, given the assertions at the hub's close; they are spelt out for the reader. A death forgets the region (zeroes it), which is how
 * "unless a side died" reads below: the dead side's rings and the hub's slots are gone with it. */

/* Both sides stop in every run: no deadlock, no livelock, no lost wake-up. */
ltl terminates { <> (hub_over && worker_over) }
/* A published request is eventually popped by the worker, a completion by the hub. */
ltl requests_seen { [] (sq_tail != w_sq_head -> <> (sq_tail == w_sq_head)) }
ltl completions_seen { [] (cq_tail != h_cq_head -> <> (cq_tail == h_cq_head)) }
/* Every slot taken (claimed, published, cancelled, timed out) comes back to the free list. */
ltl slots_return { [] (h_busy[0] != 0 -> <> (h_busy[0] == 0)) && [] (h_busy[NS - 1] != 0 -> <> (h_busy[NS - 1] == 0)) }
