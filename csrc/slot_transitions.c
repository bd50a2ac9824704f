/* The slot transitions of docs/PROTOCOL.md §3-§6: the hub's claim, publish, cancel, poll and release, the worker's
 * poll and cancel checks. A slot answered as a stream goes on to stream.c from the hub's poll. */
#include "slot_internal.h"
#include "recorder.h"

/* The first two lines of a slot's arena (where a small message lies), fetched while the slot header's line comes:
 * one cache miss's wait instead of two in a row (docs/perf/request-path.md). */
static inline void prefetch_arena(sb_chan *ch, uint32_t slot, int response, int for_write) {
  uint8_t *a = arena(ch, slot, response);
  if (for_write) __builtin_prefetch(a, 1, 3), __builtin_prefetch(a + 64, 1, 3);
  else __builtin_prefetch(a, 0, 3), __builtin_prefetch(a + 64, 0, 3);
}

/* ---- hub side: slot transitions ---- */

static void trim(sb_chan *ch, uint32_t slot, int response);

int sb_hub_claim(sb_chan *ch) {
  if (ch->free_top == 0) return -1;
  uint32_t i = ch->free_stack[--ch->free_top];
  ch->busy[i] = HUB_CLAIMED;
  shm_store_relaxed(&slot_at(ch, i)->state, word(ch->gen[i], SB_WRITING));
  return (int)i;
}

int sb_hub_unclaim(sb_chan *ch, uint32_t slot) {
  if (slot >= ch->g.slot_count || ch->busy[slot] != HUB_CLAIMED) return -EINVAL;
  /* however much of the arena the failed fill wrote, hand it back */
  ch->hiwater[2 * slot] = ch->g.arena_size;
  trim(ch, slot, 0);
  /* relaxed: the worker never saw this generation (nothing was pushed), so there is nothing to order against */
  shm_store_relaxed(&slot_at(ch, slot)->state, word(ch->gen[slot], SB_FREE));
  ch->busy[slot] = HUB_FREE;
  ch->free_stack[ch->free_top++] = slot;
  return 0;
}

int sb_hub_publish(sb_chan *ch, uint32_t slot, uint32_t kind, uint32_t id, uint32_t head_len, uint32_t body_len) {
  if (slot >= ch->g.slot_count || ch->busy[slot] != HUB_CLAIMED) return -EINVAL;
  if (kind > SB_KIND_HTTP) return -EINVAL;
  if (!fits(ch, head_len, body_len)) return -E2BIG;
  slot_hdr *s = slot_at(ch, slot);
  SHM_WRITE(s->kind, kind);
  SHM_WRITE(s->id, id);
  SHM_WRITE(s->req_head, head_len);
  SHM_WRITE(s->req_body, body_len);
  /* the stream offer (§9.1): every request gets the channel's window, and a fresh credit */
  hub_stream *st = &ch->hs[slot];
  *st = (hub_stream){.window = ch->stream_window, .limit = ch->stream_window};
  SHM_WRITE(s->window, ch->stream_window);
  shm_store_relaxed(&s->limit, ch->stream_window);
  shm_store_relaxed(&s->notify, 0);
  uint32_t used = align8(head_len) + body_len;
  if (used > ch->hiwater[2 * slot]) ch->hiwater[2 * slot] = used;
  ch->busy[slot] = HUB_PUBLISHED;
  /* release: the worker's acquire CAS on this word makes the arena and fields above visible */
  shm_store_release(&s->state, word(ch->gen[slot], SB_READY));
  ring_push(ch, sq(ch), &ch->hdr->sq_tail, slot);
  wake_peer(ch, &ch->hdr->worker_parked, &ch->hdr->sq_tail);
  /* the record after the push: written while the worker has the request, not before it does (§16.3) */
  if (ch->rec) rec_publish(ch, slot, kind, id, head_len, body_len);
  return 0;
}

int sb_hub_cancel(sb_chan *ch, uint32_t slot) {
  if (slot >= ch->g.slot_count || (ch->busy[slot] != HUB_PUBLISHED && ch->busy[slot] != HUB_STREAMING)) return -EINVAL;
  slot_hdr *s = slot_at(ch, slot);
  uint32_t expect = word(ch->gen[slot], SB_READY);
  if (ch->rec) rec_cancel(ch, slot);
  /* relaxed: the CAS only decides who owns the edge; nothing else is published with it */
  if (shm_cas_relaxed(&s->state, &expect, word(ch->gen[slot], SB_CANCELLED))) return 1;
  /* The worker has it (or already answered): ask it to give up. The cancel word goes first, then the counter with
   * seq_cst, which orders both before our load of worker_parked (§5) and pairs with the worker's acquire of it. */
  ch->hs[slot].flags |= HS_CANCEL; /* from now on an END may say "cancelled" (§9.5) */
  SHM_WRITE(s->cancel, word(ch->gen[slot], 1));
  shm_fetch_add_seq_cst(&ch->hdr->cancel_seq, 1);
  wake_peer(ch, &ch->hdr->worker_parked, &ch->hdr->sq_tail);
  return 2;
}

int sb_hub_poll(sb_chan *ch) {
  int r = ring_pop(ch, cq(ch), &ch->hdr->cq_tail, &ch->hdr->cq_head);
  if (r < 0) return r;
  uint32_t i = (uint32_t)r;
  slot_hdr *s = slot_at(ch, i);
  prefetch_arena(ch, i, 1, 0);
  /* acquire: pairs with the worker's release store of DONE, so the response is complete */
  uint32_t w = shm_load_acquire(&s->state);
  if (w == word(ch->gen[i], SB_STREAMING)) return slot_stream_notified(ch, i);
  if (ch->busy[i] != HUB_PUBLISHED) return corrupt(ch, "completed a slot the hub did not publish", i, w);
  if (w != word(ch->gen[i], SB_DONE)) return corrupt(ch, "completed slot has a bad state word", i, w);
  sb_msg *m = &ch->msg;
  m->slot = (int32_t)i;
  m->id = SHM_READ(s->id);
  m->kind = SHM_READ(s->kind);
  m->status = SHM_READ(s->status);
  m->flags = SHM_READ(s->flags);
  m->head_len = SHM_READ(s->resp_head);
  m->body_len = SHM_READ(s->resp_body);
  m->gen = ch->gen[i];
  /* read once into private memory above, then validate the private copies only */
  if (m->flags > (SB_RESP_ERROR | SB_RESP_CANCELLED)) return corrupt(ch, "bad response flags", i, m->flags);
  if (!fits(ch, m->head_len, m->body_len)) return corrupt(ch, "response does not fit its arena", m->head_len, m->body_len);
  m->body_off = align8(m->head_len);
  uint32_t used = m->body_off + m->body_len;
  if (used > ch->hiwater[2 * i + 1]) ch->hiwater[2 * i + 1] = used;
  ch->busy[i] = HUB_COMPLETED;
  if (ch->rec) rec_answer(ch, i, m->status, m->flags, m->body_len);
  return (int)i;
}

static void trim(sb_chan *ch, uint32_t slot, int response) {
  uint32_t *hw = &ch->hiwater[2 * slot + (response ? 1 : 0)];
  uint64_t keep = align_up(ch->trim_bytes, PAGE);
  if (*hw <= keep) return;
  off_t off = (off_t)(arena(ch, slot, response) - ch->base + keep);
  plat_region_trim(ch->memfd, off, (off_t)(align_up(*hw, PAGE) - keep));
  *hw = (uint32_t)keep;
}

int sb_hub_release(sb_chan *ch, uint32_t slot) {
  if (slot >= ch->g.slot_count) return -EINVAL;
  /* a stream goes back after its END and its final notification, never before: a late one would name the next request */
  if (ch->busy[slot] != HUB_COMPLETED &&
      (ch->busy[slot] != HUB_STREAMING || (ch->hs[slot].flags & (HS_END | HS_FINAL)) != (HS_END | HS_FINAL)))
    return -EINVAL;
  trim(ch, slot, 0);
  trim(ch, slot, 1);
  ch->gen[slot] = (ch->gen[slot] + 1) & 0xFFFFFFu;
  shm_store_relaxed(&slot_at(ch, slot)->state, word(ch->gen[slot], SB_FREE));
  ch->busy[slot] = HUB_FREE;
  ch->free_stack[ch->free_top++] = slot;
  return 0;
}

/* ---- worker side ---- */

static void worker_finish(sb_chan *ch, slot_hdr *s, uint32_t slot, uint32_t gen) {
  shm_store_release(&s->state, word(gen, SB_DONE));
  ring_push(ch, cq(ch), &ch->hdr->cq_tail, slot);
  wake_peer(ch, &ch->hdr->hub_parked, &ch->hdr->cq_tail);
}

int sb_worker_poll(sb_chan *ch) {
  /* Each slot can be in the sq once, so more than ring_size cancelled entries in one call means a hub that keeps
   * pushing: return and let the caller come back, rather than spin here for as long as it pushes. */
  for (uint32_t budget = ch->g.ring_size; budget > 0; budget--) {
    int r = ring_pop(ch, sq(ch), &ch->hdr->sq_tail, &ch->hdr->sq_head);
    if (r < 0) return r;
    uint32_t i = (uint32_t)r;
    slot_hdr *s = slot_at(ch, i);
    prefetch_arena(ch, i, 0, 0);
    prefetch_arena(ch, i, 1, 1); /* for writing: the answer goes there */
    uint32_t w = shm_load_relaxed(&s->state);
    /* acquire on success: pairs with the hub's release store of READY. Strong, and tried once: on failure w holds
     * the new word, and the only legal change is the hub's cancel; a hub flipping the word cannot keep us here. */
    int claimed = (w & 0xFF) == SB_READY && shm_cas_acquire(&s->state, &w, word(w >> 8, SB_CLAIMED));
    if (!claimed && (w & 0xFF) == SB_CANCELLED) {
      SHM_WRITE(s->status, 0);
      SHM_WRITE(s->flags, SB_RESP_CANCELLED);
      SHM_WRITE(s->resp_head, 0);
      SHM_WRITE(s->resp_body, 0);
      worker_finish(ch, s, i, w >> 8);
      continue;
    }
    if (!claimed) return corrupt(ch, "published slot is not ready", i, w);
    sb_msg *m = &ch->msg;
    m->slot = (int32_t)i;
    m->kind = SHM_READ(s->kind);
    m->id = SHM_READ(s->id);
    m->head_len = SHM_READ(s->req_head);
    m->body_len = SHM_READ(s->req_body);
    m->status = m->flags = 0;
    m->gen = w >> 8;
    m->pos = 0;
    m->window = SHM_READ(s->window); /* the stream offer, read once (§9.6) */
    ch->ws[i] = (worker_stream){.gen = m->gen, .window = m->window};
    if (m->window && (m->window & (m->window - 1) || m->window < 4096 || m->window > ch->g.arena_size ||
                      m->window > (1u << 30)))
      return corrupt(ch, "bad stream window", i, m->window);
    if (m->kind > SB_KIND_HTTP) return corrupt(ch, "bad request kind", i, m->kind);
    if (!fits(ch, m->head_len, m->body_len)) return corrupt(ch, "request does not fit its arena", m->head_len, m->body_len);
    m->body_off = align8(m->head_len);
    return (int)i;
  }
  return -1;
}

uint32_t sb_worker_cancel_seq(sb_chan *ch) {
  /* acquire: pairs with the hub's seq_cst increment, so the cancel words written before it are visible */
  ch->cancel_seen = shm_load_acquire(&ch->hdr->cancel_seq);
  return ch->cancel_seen;
}

int sb_worker_cancelled(sb_chan *ch, uint32_t slot, uint32_t gen) {
  if (slot >= ch->g.slot_count || gen > 0xFFFFFFu) return -EINVAL;
  /* one read; any value the hub writes is harmless: it only matters when it names exactly this generation */
  return SHM_READ(slot_at(ch, slot)->cancel) == word(gen, 1);
}

int sb_worker_complete(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t status, uint32_t flags, uint32_t head_len,
                       uint32_t body_len) {
  if (slot >= ch->g.slot_count || flags > SB_RESP_ERROR || !fits(ch, head_len, body_len)) return -EINVAL;
  slot_hdr *s = slot_at(ch, slot);
  /* relaxed: only this side moves a slot out of CLAIMED, so the word cannot change under us legitimately.
   * The generation is what makes a second completion of an old request fail instead of answering the next one. */
  uint32_t w = shm_load_relaxed(&s->state);
  if (gen > 0xFFFFFFu || w != word(gen, SB_CLAIMED)) return -EINVAL;
  SHM_WRITE(s->status, status);
  SHM_WRITE(s->flags, flags);
  SHM_WRITE(s->resp_head, head_len);
  SHM_WRITE(s->resp_body, body_len);
  worker_finish(ch, s, slot, gen);
  return 0;
}
