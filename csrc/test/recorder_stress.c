/* The flight recorder's seqlock (docs/PROTOCOL.md §16.3) under a concurrent reader: the hub's thread publishes and
 * answers requests "GET /n-<n>" on a hub channel standing in for a real one (only what the recorder touches is
 * set), while a reader thread copies records as §16.3 says (acquire seq, copy, acquire fence, seq again) and checks
 * every whole copy: its id, serial and path name the same request. Exits 0 and prints a line on success; 2 on a
 * torn copy taken as whole. Run under ThreadSanitizer as recorder-stress-tsan (test/native/c-stress.test.ts). */
#include "../slot_internal.h"
#include "../recorder.h"

#define RECORDS 4u /* few, so each is rewritten often while the reader copies it */
#define SLOTS 8u

static _Atomic int stop;
static uint8_t *file;
static unsigned long checked, torn, bad;

static void *reader(void *arg) {
  (void)arg;
  while (!shm_load_relaxed(&stop)) {
    for (uint32_t i = 0; i < RECORDS; i++) {
      sbr_record *x = (sbr_record *)(file + SBR_HEADER_BYTES) + i, c;
      uint32_t s1 = shm_load_acquire(&x->seq);
      if (s1 == 0 || (s1 & 1)) {
        torn += s1 != 0;
        continue;
      }
      /* in two halves with a pause between, so a rewrite lands inside a copy often: only seq may tell */
      shm_load_words(&c, x, SBR_R_TRACE_ID);
      for (int spin = 0; spin < 64; spin++) (void)shm_load_relaxed(&x->seq);
      shm_load_words((uint8_t *)&c + SBR_R_TRACE_ID, (uint8_t *)x + SBR_R_TRACE_ID, sizeof c - SBR_R_TRACE_ID);
      shm_fence_acquire(); /* the copy before the second look at seq */
      if (shm_load_relaxed(&x->seq) != s1) {
        torn++;
        continue;
      }
      checked++;
      char want[SBR_WHAT_BYTES];
      snprintf(want, sizeof want, "GET /n-%u", c.id);
      if (c.id != (uint32_t)c.serial || strncmp((const char *)c.what, want, sizeof want) != 0 || c.worker_pid != 42 ||
          c.phase < SBR_IN_FLIGHT || c.phase > SBR_DONE)
        bad++;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  uint32_t n_requests = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 300000;
  char path[64];
  snprintf(path, sizeof path, "/tmp/recorder-stress.%d.rec", (int)getpid());
  int err;
  sb_rec *r = sb_rec_open(path, "recorder-stress", RECORDS, &err);
  if (!r) return fprintf(stderr, "sb_rec_open: %d\n", err), 1;
  file = rec_base(r);
  sb_chan *ch = calloc(1, sizeof *ch);
  ch->is_hub = 1;
  ch->peer_pid = 42;
  ch->g.slot_count = SLOTS;
  ch->g.arena_size = PAGE;
  ch->base = calloc(2 * SLOTS, PAGE);
  if (sb_rec_attach(r, ch)) return 1;
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  double *stage = sb_rec_stage(r);
  for (uint32_t n = 1; n <= n_requests; n++) {
    uint32_t slot = n % SLOTS;
    char head[32];
    int len = snprintf(head, sizeof head, "GET%c/n-%u%c", 0, n, 0);
    memcpy(arena(ch, slot, 0), head, (size_t)len);
    rec_publish(ch, slot, SB_KIND_HTTP, n, (uint32_t)len, 0);
    stage[2] = 0; /* a poll pass per answer */
    rec_answer(ch, slot, 200, 0, 0);
  }
  shm_store_relaxed(&stop, 1);
  pthread_join(t, NULL);
  rec_chan_gone(ch);
  sb_rec_close(r);
  free(ch->base);
  free(ch);
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
  if (bad) return fprintf(stderr, "recorder stress: %lu torn copies taken as whole\n", bad), 2;
  printf("recorder stress ok: requests=%u checked=%lu torn=%lu tsan=%d\n", n_requests, checked, torn, tsan);
  return 0;
}
