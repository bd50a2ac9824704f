/* SPIN model of the topic ring's claim protocol with publisher fences, docs/PROTOCOL.md §8.3 (ring version 2),
 * following sb_topic_publish / claim_at in csrc/topic_publish.c and read_record in csrc/topic_ring.c. What it
 * proves, its bounds and what it leaves out: docs/model/README.md.
 *
 * The ring has N cells; a position p lives in cell p % N. A record of length n takes the cells of [p, p + n):
 * its header word in the first (position, length, state: one word, so every change of it is one CAS), its
 * data in the others. A header and data share memory: a data store into a cell destroys the header there and
 * a header store the data. Positions only grow; tail is the next free position.
 *
 * Two publishers, A (one event of LEN_A cells) and B (NB events of LEN_B cells), and one reader that reads
 * everything, in order, as sb_sub_poll does. Every shared access is one step, so SPIN also runs every
 * schedule where a publisher stops for as long as it likes between any two of its stores: SIGSTOP, or a
 * preemption mid-copy, while the other one laps the ring. A data cell holds the position of the record its
 * writer claimed, so a store that lands in someone else's record is seen by the reader's check.
 *
 * Known bugs, each switched on by a macro; SPIN must find each (test/events/model.test.ts):
 *   -DBUG_NO_FENCE       claimers ignore other publishers' fences (ring version 1): a lapped writer's late
 *                        stores land in records committed since
 *   -DBUG_FENCE_AFTER    the fence is stored after the claim: a claimer that read the tail in between misses it
 *   -DBUG_NO_RECHECK     the reader does not re-check the header and tail after copying a record
 *   -DBUG_LAP_BY_TAIL    the reader calls a foreign header below the tail lapped only when tail - p > N (R1
 *                        says >= N): a claim at p + N that has not moved the tail yet is then read as corrupt
 */

#ifndef N
#define N 3          /* ring cells (any size: the model never masks) */
#endif
#ifndef LEN_A
#define LEN_A 2      /* A's event: header + 1 data cell */
#endif
#ifndef LEN_B
#define LEN_B 1      /* B's events: a header only; their headers are what A's late stores could destroy */
#endif
#ifndef NB
#define NB 3
#endif
#ifndef MAXPOS
#define MAXPOS 6     /* a publisher gives up past this position (keeps the state space finite) */
#endif

/* record states (topic.h) */
#define NONE 0       /* not a header: zeroes, or data stored over it */
#define WRITING 1
#define EVENT 2
#define PADDING 3
#define ABORTED 4

/* ---- shared memory ---- */
byte hpos[N];        /* header word of a cell: position */
byte hlen[N];        /*                         length */
byte hst[N];         /*                         state (NONE: the cell holds no header) */
byte dat[N];         /* data word of a cell: the position its writer claimed, 255: none */
byte tail = 0;
bool fset[2];        /* publisher fences: set, position, length (one word in the region) */
byte fpos[2];
byte flen[2];
byte done = 0;       /* publishers finished (the reader stops when both have and it has caught up) */

#define HDR_IS(c, p) (hst[c] != NONE && hpos[c] == (p))

/* ---- a publisher: one event of n cells, again and again until it is committed (or past MAXPOS) ---- */
proctype publisher(byte me; byte n; byte events) {
  byte T, c, ln, e, i, q, k, stop;
  byte vp, vl, vs;                                        /* the header word at T as claim_at read it */
  bool ok;
  e = 0;
  do
  :: e == events -> break
  :: else ->
claim:
    /* P2. seq_cst load of the tail; the claim wanted: the event, or padding to the ring's end
     *     (the other locals are dead here: cleared, which no other process can tell) */
    atomic {
      T = tail; c = T % N; k = 0; vp = 0; vl = 0; vs = 0; ok = 0;
      if
      :: c + n > N -> ln = N - c; stop = PADDING
      :: else -> ln = n; stop = WRITING
      fi
    }
    if
    :: T + ln > MAXPOS -> break
    :: else -> skip
    fi;
#ifndef BUG_FENCE_AFTER
#ifndef BUG_NO_FENCE
    d_step { fset[me] = 1; fpos[me] = T; flen[me] = ln }; /* P3. own fence, before anything is claimed */
#endif
#endif
    /* P4. stalled_writer(): the other publisher's fence, if its image (cells) overlaps ours and it is not
     *     for T, is a hazard: pad up to its start, or, from its start on, to its end; then claim again.
     *     One load of the fence word, the rest private arithmetic: one step. */
#ifndef BUG_NO_FENCE
    q = 1 - me;
    atomic {
      k = fpos[q] % N;                                    /* the hazard image: [k, k + flen[q]) */
      if
      :: fset[q] && fpos[q] != T && k < c + ln && c < k + flen[q] ->
        stop = PADDING;
        if
        :: k > c -> ln = k - c
        :: else -> ln = k + flen[q] - c
        fi
      :: else -> skip
      fi;
      k = 0
    }
#endif
    /* P5. claim_at(T, ln, state): help a claim made at T, or win the header word at T, then move the tail */
    d_step { vp = hpos[c]; vl = hlen[c]; vs = hst[c] };  /* acquire load of the header word */
    if
    :: vs != NONE && vp == T ->                           /* claimed, tail not moved yet: move it for them */
      atomic { if :: tail == T -> tail = T + vl :: else -> skip fi }; goto claim
    :: else -> skip
    fi;
    if
    :: tail != T -> goto claim                            /* acquire load: moved on, touch nothing */
    :: else -> skip
    fi;
    atomic {                                              /* seq_cst CAS of the header word from what was read */
      if
      :: hpos[c] == vp && hlen[c] == vl && hst[c] == vs ->
        hpos[c] = T; hlen[c] = ln; hst[c] = stop; dat[c] = 255; ok = 1
      :: else -> ok = 0
      fi
    }
    if
    :: !ok -> goto claim
    :: else -> skip
    fi;
    atomic { if :: tail == T -> tail = T + ln :: else -> skip fi };
#ifdef BUG_FENCE_AFTER
    d_step { fset[me] = 1; fpos[me] = T; flen[me] = ln };
#endif
    if
    :: stop == PADDING -> goto claim                      /* padding is committed as it is claimed */
    :: else -> skip
    fi;
    /* P7. copy: one store per data cell; the publisher may stop between any two */
    i = 1;
    do
    :: i < n -> d_step { dat[(T + i) % N] = T; hst[(T + i) % N] = NONE; i++ }
    :: else -> i = 0; break
    od;
    /* P8. commit: CAS WRITING -> EVENT; fails if a reader aborted it or a padding claim replaced it (then
     *     publish again, further on) */
    atomic {
      if
      :: hst[c] == WRITING && hpos[c] == T -> hst[c] = EVENT; ok = 1
      :: else -> ok = 0
      fi
    }
    if
    :: ok -> e++
    :: else -> skip
    fi;
    fset[me] = 0                                          /* P9. release store: our stores are all done */
  od;
  fset[me] = 0;
  done++
}

/* ---- the reader: every record in order; an event it hands out must be its publisher's bytes ---- */
active proctype reader() {
  byte p = 0, t, c, ln, st, i, d, hp;
  bool same;
  do
  :: done == 2 && p == tail -> break
  :: else ->
    d_step { t = tail; ln = 0; st = 0; hp = 0; same = 0; d = 0; i = 0 } /* acquire load (dead locals cleared) */
    if
    :: p == t -> goto next                                /* nothing new: poll again */
    :: t - p > N -> p = t; goto next                      /* lapped: start again at the tail, counted */
    :: else -> skip
    fi;
    c = p % N;
    d_step { ln = hlen[c]; st = hst[c]; hp = hpos[c]; same = HDR_IS(c, p) };
    if
    :: !same ->
      /* R1. Below the tail a position's header is claimed before the tail passes it, so anything else
       * there is a later lap: that lap's header (position p + k N, claimed once the tail reached p + N),
       * or its data (the tail moved past p + N). Corrupt is for hostile members only: an honest run never
       * gets one. */
#ifdef BUG_LAP_BY_TAIL
      assert(tail - p > N);
#else
      assert(tail - p >= N);                              /* R1: lapped iff tail - p >= capacity */
#endif
      p = tail
    :: same && (st == PADDING || st == ABORTED) -> p = p + ln
    :: same && st == WRITING ->
      if
      :: skip                                             /* wait for the commit */
      :: atomic { if :: hst[c] == WRITING && hpos[c] == p -> hst[c] = ABORTED :: else -> skip fi }
      fi                                                  /* or, past its patience, abort it */
    :: same && st == EVENT ->
      i = 1;
      do                                                  /* copy the data words, one load each */
      :: i < ln ->
        d = dat[(p + i) % N];
#ifndef BUG_NO_RECHECK
        if
        :: HDR_IS(c, p) && tail - p < N -> skip           /* R3: after the copy, same header, not lapped */
        :: else -> p = tail; goto next
        fi;
#endif
        assert(d == p);                                   /* the committed record's own bytes */
        i++
      :: else -> break
      od;
      p = p + ln
    fi;
next: skip
  od
}

init {
  byte i = 0;
  atomic {
    do
    :: i < N -> dat[i] = 255; i++
    :: else -> break
    od;
    run publisher(0, LEN_A, 1);
    run publisher(1, LEN_B, NB)
  }
}
