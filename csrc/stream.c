/* Streams (docs/PROTOCOL.md §9): a worker answers a claimed request as frames written into the slot's response
 * arena used as a ring, within the credit the hub grants; the hub reads them out as they are published. */
#include "slot_internal.h"
#include "recorder.h"

#define FRAME_HDR 8u
#define MIN_DATA 16u /* align8(FRAME_HDR + 1): the smallest DATA frame */
#define DATA_NEED (MIN_DATA + FRAME_HDR) /* credit for a DATA frame: itself and END's reserve */

/* ---- frames (§9.2): u32 length, u16 type, u16 status or flags, payload, zero padding to 8 ---- */

static void frame_put(uint8_t *ring, uint32_t off, uint32_t type, uint32_t aux, const void *payload, uint32_t len) {
  SHM_WRITE(*(uint32_t *)(ring + off), len);
  SHM_WRITE(*(uint32_t *)(ring + off + 4), type | aux << 16);
  if (payload && len) memcpy(ring + off + FRAME_HDR, payload, len); /* a PAD's payload is whatever was there */
  uint32_t pad = align8(FRAME_HDR + len) - FRAME_HDR - len;
  if (pad) memset(ring + off + FRAME_HDR + len, 0, pad);
}

/* ---- worker ---- */

static int cancelled(sb_chan *ch, uint32_t slot, uint32_t gen) {
  return SHM_READ(slot_at(ch, slot)->cancel) == word(gen, 1);
}

/* The worker's stream in `slot` if (slot, gen) names the request it holds; NULL otherwise. */
static worker_stream *held(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t state) {
  if (ch->is_hub || slot >= ch->g.slot_count || gen > 0xFFFFFFu) return NULL;
  worker_stream *w = &ch->ws[slot];
  if (w->gen != gen || shm_load_relaxed(&slot_at(ch, slot)->state) != word(gen, state)) return NULL;
  return w;
}

/* The credit, checked (§9.6): 8 ≤ limit − produced ≤ window, and a frame boundary. 0 when the hub broke it. */
static int load_limit(sb_chan *ch, slot_hdr *s, worker_stream *w, uint32_t *limit) {
  uint32_t l = shm_load_acquire(&s->limit);
  uint32_t ahead = l - w->produced;
  if (ahead < FRAME_HDR || ahead > w->window || (l & 7)) return corrupt(ch, "stream credit out of range", l, w->produced);
  *limit = l;
  return 0;
}

/* Publish what was written up to w->produced and notify with v (1 frames, 2 the END): push unless a notification
 * is already pending (§9.3). */
static int publish(sb_chan *ch, slot_hdr *s, uint32_t slot, worker_stream *w, uint32_t v) {
  shm_store_release(&s->produced, w->produced);
  uint32_t old = shm_xchg_acq_rel(&s->notify, v);
  if (old == 1) return 0;
  if (old != 0) return corrupt(ch, "stream notify word rewritten", slot, old);
  /* only the hub's pop clears it, so the slot is not in the cq: a full cq means a hub that cleared without popping */
  if (ch->prod_tail - shm_load_acquire(&ch->hdr->cq_head) >= ch->g.ring_size)
    return corrupt(ch, "completion ring full while streaming", slot, ch->prod_tail);
  ring_push(ch, cq(ch), &ch->hdr->cq_tail, slot);
  wake_peer(ch, &ch->hdr->hub_parked, &ch->hdr->cq_tail);
  return 0;
}

/* Out of credit: need is what limit − produced must reach for the frame that did not fit (sb_worker_stream_wait
 * waits for that much, so an END with pairs does not return at once for credit that would only take DATA). */
static void set_waiting(sb_chan *ch, worker_stream *w, uint32_t limit, uint32_t need) {
  w->limit_seen = limit;
  w->need = need;
  if (!w->waiting) ch->waiting_streams++;
  w->waiting = 1;
}

static void clear_waiting(sb_chan *ch, worker_stream *w) {
  if (w->waiting) ch->waiting_streams--;
  w->waiting = 0;
  w->need = 0;
}

int sb_worker_stream_begin(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t status, const void *head, uint32_t head_len) {
  worker_stream *w = held(ch, slot, gen, SB_CLAIMED);
  if (!w || status > 999 || (head_len && !head)) return -EINVAL;
  if (!w->window) return -ENOTSUP;
  if (cancelled(ch, slot, gen)) return -ECANCELED;
  /* the fresh credit is the whole window, of which END's 8 bytes stay in reserve */
  if (head_len > w->window || align8(FRAME_HDR + head_len) > w->window - FRAME_HDR) return -E2BIG;
  slot_hdr *s = slot_at(ch, slot);
  frame_put(arena(ch, slot, 1), 0, SB_FRAME_HEAD, status, head, head_len);
  w->produced = align8(FRAME_HDR + head_len);
  w->streaming = 1;
  /* produced before the state word: a hub that sees STREAMING and exchanges notify then finds HEAD published */
  shm_store_release(&s->produced, w->produced);
  shm_store_release(&s->state, word(gen, SB_STREAMING));
  return publish(ch, s, slot, w, 1);
}

int sb_worker_stream_write(sb_chan *ch, uint32_t slot, uint32_t gen, const void *data, uint32_t len) {
  worker_stream *w = held(ch, slot, gen, SB_STREAMING);
  if (!w || !w->streaming || (len && !data)) return -EINVAL;
  if (cancelled(ch, slot, gen)) return -ECANCELED;
  slot_hdr *s = slot_at(ch, slot);
  uint32_t limit;
  int r = load_limit(ch, s, w, &limit);
  if (r) return r;
  uint8_t *ring = arena(ch, slot, 1);
  const uint8_t *src = data;
  uint32_t taken = 0, p = w->produced;
  while (taken < len) {
    uint32_t off = p & (w->window - 1), to_end = w->window - off;
    uint32_t credit = limit - FRAME_HDR - p; /* what frames other than END may use */
    if (to_end < MIN_DATA) {
      if (to_end > credit) break;
      frame_put(ring, off, SB_FRAME_PAD, 0, NULL, to_end - FRAME_HDR);
      p += to_end;
      continue;
    }
    if (credit < MIN_DATA) break;
    uint32_t room = (to_end < credit ? to_end : credit) - FRAME_HDR;
    uint32_t n = len - taken < room ? len - taken : room;
    frame_put(ring, off, SB_FRAME_DATA, 0, src + taken, n);
    p += align8(FRAME_HDR + n);
    taken += n;
  }
  if (taken < len) set_waiting(ch, w, limit, DATA_NEED);
  else clear_waiting(ch, w);
  if (p == w->produced) return (int)taken;
  w->produced = p;
  r = publish(ch, s, slot, w, 1);
  return r ? r : (int)taken;
}

int sb_worker_stream_wait(sb_chan *ch, uint32_t slot, uint32_t gen, int timeout_ms) {
  worker_stream *w = held(ch, slot, gen, SB_STREAMING);
  if (!w || !w->streaming) return -EINVAL;
  slot_hdr *s = slot_at(ch, slot);
  int64_t deadline = timeout_ms < 0 ? -1 : sys_now_ms() + timeout_ms;
  for (;;) {
    if (cancelled(ch, slot, gen)) return 1;
    uint32_t limit;
    int r = load_limit(ch, s, w, &limit);
    if (r) return r;
    uint32_t need = w->need ? w->need : DATA_NEED;
    if (limit - w->produced >= need) return clear_waiting(ch, w), 1;
    set_waiting(ch, w, limit, need);
    /* Our own park, not sb_wait's: requests queued in the sq must not wake a worker that only wants credit. The
     * hub stores limit (seq_cst) and then loads worker_parked; we store it and then load limit: one sees the other. */
    shm_store_seq_cst(&ch->hdr->worker_parked, SB_PARK_EVENTFD);
    int moved = shm_load_seq_cst(&s->limit) != limit || cancelled(ch, slot, gen);
    int left = deadline < 0 ? -1 : (int)(deadline - sys_now_ms());
    if (!moved && deadline >= 0 && left <= 0) {
      sb_unpark(ch);
      return 0;
    }
    if (!moved) {
      struct pollfd fds[2] = {{ch->my_bell, POLLIN, 0}, {ch->sock, POLLIN, 0}};
      int n = poll(fds, 2, left);
      if (n > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && slot_peer_gone(ch)) {
        sb_unpark(ch);
        return -EPIPE;
      }
    }
    sb_unpark(ch);
  }
}

int sb_worker_stream_end(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t flags, const void *pairs, uint32_t pairs_len) {
  worker_stream *w = held(ch, slot, gen, SB_STREAMING);
  if (!w || !w->streaming || flags > SB_RESP_CANCELLED || flags == (SB_RESP_ERROR | SB_RESP_CANCELLED) ||
      (pairs_len && !pairs))
    return -EINVAL;
  uint32_t size = align8(FRAME_HDR + pairs_len);
  if (pairs_len > w->window || size > w->window - FRAME_HDR) return -E2BIG;
  slot_hdr *s = slot_at(ch, slot);
  uint32_t limit;
  int r = load_limit(ch, s, w, &limit);
  if (r) return r;
  uint8_t *ring = arena(ch, slot, 1);
  uint32_t p = w->produced, off = p & (w->window - 1), to_end = w->window - off;
  /* an empty END is 8 bytes: it always fits before the ring's end and within the reserve */
  uint32_t need = size > to_end ? to_end + size : size;
  /* The hub never grants more than a window past produced: an END that fits neither before the ring's end nor after
   * a PAD to it never will (one of at most half the window always does). */
  if (need > w->window) return -E2BIG;
  if (need > limit - p) return set_waiting(ch, w, limit, need), -EAGAIN;
  if (size > to_end) {
    frame_put(ring, off, SB_FRAME_PAD, 0, NULL, to_end - FRAME_HDR);
    p += to_end;
    off = 0;
  }
  frame_put(ring, off, SB_FRAME_END, flags, pairs, pairs_len);
  w->produced = p + size;
  w->streaming = 0;
  clear_waiting(ch, w);
  return publish(ch, s, slot, w, 2); /* from here on the slot is the hub's */
}

/* ---- hub ---- */

/* sb_hub_poll popped slot i in state STREAMING: take the notification and what it published (§9.3, §9.6). */
int slot_stream_notified(sb_chan *ch, uint32_t i) {
  hub_stream *st = &ch->hs[i];
  if (ch->busy[i] != HUB_PUBLISHED && ch->busy[i] != HUB_STREAMING)
    return corrupt(ch, "streamed in a slot the hub did not publish", i, ch->busy[i]);
  if (!st->window) return corrupt(ch, "streamed without a window", i, 0);
  if (st->flags & HS_FINAL) return corrupt(ch, "notified after its final notification", i, 0);
  slot_hdr *s = slot_at(ch, i);
  /* the exchange first, then produced: the other order could miss a frame signalled to nobody */
  uint32_t v = shm_xchg_acq_rel(&s->notify, 0);
  uint32_t P = shm_load_acquire(&s->produced);
  if (v != 1 && v != 2) return corrupt(ch, "stream notified without notify", i, v);
  if ((P & 7) || P - st->r > st->limit - st->r || P - st->r < st->P - st->r)
    return corrupt(ch, "stream position out of range", P, st->limit);
  st->P = P;
  if (v == 2) st->flags |= HS_FINAL;
  ch->busy[i] = HUB_STREAMING;
  sb_msg *m = &ch->msg;
  m->slot = (int32_t)i;
  m->id = SHM_READ(s->id);
  m->kind = SHM_READ(s->kind);
  m->gen = ch->gen[i];
  m->flags = SB_MSG_STREAM | (v == 2 ? SB_MSG_FINAL : 0);
  m->status = m->head_len = m->body_len = m->body_off = 0;
  m->pos = P;
  return (int)i;
}

int sb_hub_stream_next(sb_chan *ch, uint32_t slot) {
  if (!ch->is_hub || slot >= ch->g.slot_count || ch->busy[slot] != HUB_STREAMING) return -EINVAL;
  hub_stream *st = &ch->hs[slot];
  const uint8_t *ring = arena(ch, slot, 1);
  for (;;) {
    if (st->r == st->P) {
      if ((st->flags & (HS_FINAL | HS_END)) == HS_FINAL) return corrupt(ch, "final notification without END", slot, st->P);
      return -1;
    }
    if (st->flags & HS_END) return corrupt(ch, "frame after END", slot, st->r);
    uint32_t off = st->r & (st->window - 1), to_end = st->window - off;
    uint32_t len = SHM_READ(*(const uint32_t *)(ring + off)); /* each header word read once */
    uint32_t x = SHM_READ(*(const uint32_t *)(ring + off + 4));
    uint32_t type = x & 0xFFFF, aux = x >> 16;
    if (len > to_end - FRAME_HDR) return corrupt(ch, "frame straddles the ring's end", st->r, len);
    uint32_t size = align8(FRAME_HDR + len);
    if (size > st->P - st->r) return corrupt(ch, "frame beyond the published position", st->r, len);
    int head = !(st->flags & HS_HEAD);
    if (head != (type == SB_FRAME_HEAD) || (type == SB_FRAME_HEAD && st->r != 0))
      return corrupt(ch, "HEAD is not the first frame", st->r, type);
    switch (type) {
      case SB_FRAME_PAD:
        if (size != to_end) return corrupt(ch, "PAD does not reach the ring's end", st->r, len);
        st->r += size;
        continue;
      case SB_FRAME_HEAD:
        if (aux > 999) return corrupt(ch, "bad stream status", slot, aux);
        st->flags |= HS_HEAD;
        if (ch->rec) rec_stream_head(ch, slot, aux);
        break;
      case SB_FRAME_DATA:
        if (len == 0 || aux) return corrupt(ch, "bad DATA frame", st->r, aux);
        break;
      case SB_FRAME_END:
        if (aux > SB_RESP_CANCELLED || aux == (SB_RESP_ERROR | SB_RESP_CANCELLED) ||
            ((aux & SB_RESP_CANCELLED) && !(st->flags & HS_CANCEL)))
          return corrupt(ch, "bad END flags", slot, aux);
        if ((st->flags & HS_FINAL) && st->r + size != st->P) return corrupt(ch, "final position is not the END's", st->P, st->r);
        st->flags |= HS_END;
        if (ch->rec) rec_stream_end(ch, slot, aux);
        break;
      default:
        return corrupt(ch, "unknown frame type", st->r, type);
    }
    st->r += size;
    sb_msg *m = &ch->msg;
    m->slot = (int32_t)slot;
    m->kind = type;
    m->status = aux;
    m->head_len = m->body_len = len;
    m->body_off = off + FRAME_HDR;
    m->pos = st->r;
    if (m->body_off + len > ch->hiwater[2 * slot + 1]) ch->hiwater[2 * slot + 1] = m->body_off + len;
    return (int)type;
  }
}

int sb_hub_stream_consumed(sb_chan *ch, uint32_t slot, uint32_t pos) {
  if (!ch->is_hub || slot >= ch->g.slot_count || ch->busy[slot] != HUB_STREAMING) return -EINVAL;
  hub_stream *st = &ch->hs[slot];
  if (pos - st->consumed > st->r - st->consumed || (pos & 7)) return -EINVAL;
  st->consumed = pos;
  /* a cancelled or ended stream needs no more room; otherwise grant a quarter window at a time, or all of it
   * once everything published is consumed (§9.2) */
  if (st->flags & (HS_CANCEL | HS_END)) return 0;
  uint32_t limit = pos + st->window;
  if (limit == st->limit || (limit - st->limit < st->window / 4 && pos != st->P)) return 0;
  st->limit = limit;
  /* seq_cst: our reads of the freed bytes come before the worker's writes over them, and the store comes before our
   * load of worker_parked (§9.4) */
  shm_store_seq_cst(&slot_at(ch, slot)->limit, limit);
  wake_peer(ch, &ch->hdr->worker_parked, &ch->hdr->sq_tail);
  return 0;
}
