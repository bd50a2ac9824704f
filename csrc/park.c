/* Parking (docs/PROTOCOL.md §5): a side with nothing to do says so in its parked word and sleeps on its doorbell or
 * futex until the peer pushes, cancels, grants stream credit or goes. Below slot_transitions.c and stream.c, which
 * both park; it calls neither. */
#include "slot_internal.h"

/* A worker's reason not to sleep besides its rings and cancels: the credit of a stream waiting for it moved (§9.4;
 * stream.c marks the streams that wait). */
static int credit_moved(sb_chan *ch) {
  if (ch->is_hub || !ch->waiting_streams) return 0;
  for (uint32_t i = 0; i < ch->g.slot_count; i++)
    if (ch->ws[i].waiting && shm_load_seq_cst(&slot_at(ch, i)->limit) != ch->ws[i].limit_seen) return 1;
  return 0;
}

static int park_as(sb_chan *ch, uint32_t how) {
  shm_store_seq_cst(my_parked(ch), how);
  /* seq_cst loads after the seq_cst store: either we see the peer's push or cancel, or it sees us parked */
  if (!ring_tail_empty(ch, shm_load_seq_cst(my_tail(ch))) || cancel_wakes(ch) || credit_moved(ch)) {
    shm_store_relaxed(my_parked(ch), SB_AWAKE);
    return 1;
  }
  return 0;
}

int sb_park(sb_chan *ch) { return park_as(ch, SB_PARK_EVENTFD); }

void sb_yield(void) { sched_yield(); }

int sb_cpu(void) { return plat_cpu(); }

int sb_keep_off_cpu(int cpu) { return plat_keep_off_cpu(cpu); }

void sb_unpark(sb_chan *ch) {
  shm_store_relaxed(my_parked(ch), SB_AWAKE);
  plat_bell_drain(ch->my_bell);
}

/* Reads and discards control bytes (§1): a C side has no use for them, and unread they would keep the
 * socket readable forever and hide the EOF behind them. */
int slot_peer_gone(sb_chan *ch) {
  char buf[256];
  /* Bounded: a peer that keeps writing must not keep us here. Whatever is left is read on the next call;
   * the protocol sends a handful of bytes per connection, so this bound is never reached by an honest one. */
  for (int reads = 0; reads < 16; reads++) {
    ssize_t r = recv(ch->sock, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) continue;
    return r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  return 0;
}

int sb_wait(sb_chan *ch, int timeout_ms, int use_futex) {
  /* A grant moves no ring tail, so a stream waiting for credit must sleep on the doorbell (§9.4). */
  if (ch->waiting_streams) use_futex = 0;
  /* Every return looks at the socket: work or a cancel that keeps coming must not hide the hub's EOF. */
  if (park_as(ch, use_futex ? SB_PARK_FUTEX : SB_PARK_EVENTFD)) return slot_peer_gone(ch) ? -EPIPE : 1;
  int result = 0;
  if (!use_futex) {
    struct pollfd fds[2] = {{ch->my_bell, POLLIN, 0}, {ch->sock, POLLIN, 0}};
    int n = poll(fds, 2, timeout_ms);
    if (n > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && slot_peer_gone(ch)) result = -EPIPE;
    else if (n > 0 && (fds[0].revents & POLLIN)) {
      cancel_wakes(ch); /* a cancel that rang us is taken here, so the next park does not wake for it again */
      result = 1;
    }
  } else {
    int left = timeout_ms;
    for (;;) {
      int slice = (left < 0 || left > 10) ? 10 : left;
      /* the tail as park_as found it: our head, or one behind while the push we took last completes */
      uint32_t seen = shm_load_acquire(my_tail(ch));
      if (ring_tail_empty(ch, seen)) plat_wait(my_tail(ch), seen, slice, 1);
      if (slot_peer_gone(ch)) { result = -EPIPE; break; }
      if (!ring_tail_empty(ch, shm_load_acquire(my_tail(ch))) || cancel_wakes(ch)) {
        result = 1;
        break;
      }
      if (left >= 0 && (left -= slice) <= 0) break;
    }
  }
  sb_unpark(ch);
  return result;
}
