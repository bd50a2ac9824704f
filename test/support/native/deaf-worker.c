/* deaf-worker: a plain synchronous C worker that ignores cancellation, as docs/PROTOCOL.md §3 allows: it never calls
 * sb_worker_cancel_seq. For test/native/deaf-worker.test.ts.
 * Usage: deaf-worker <name> <sb_idle mode: 0 adaptive, 2 park, 3 park on the futex>
 *   raw requests: the body "sleep" is answered "late" after 300 ms of work; any other body comes back reversed.
 * Prints "ready" once connected; exits 0 when sb_idle says the hub is gone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "slotbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: deaf-worker <name> <idle mode>\n");
    return 2;
  }
  int err = 0;
  sb_chan *ch = sb_connect(argv[1], -1, 5000, &err);
  if (!ch) {
    fprintf(stderr, "sb_connect = %d\n", err);
    return 2;
  }
  int mode = atoi(argv[2]);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int slot = sb_worker_poll(ch);
    if (slot == -1) {
      int r = sb_idle(ch, mode, 0);
      if (r == 1) continue;
      sb_close(ch);
      return r == -EPIPE ? 0 : 3;
    }
    if (slot < 0) {
      fprintf(stderr, "sb_worker_poll = %d: %s\n", slot, sb_error(ch));
      return 3;
    }
    sb_msg m = *sb_last_msg(ch);
    uint8_t *req = sb_region(ch) + (size_t)sb_arena_offset(ch, (uint32_t)slot, 0) + m.body_off;
    uint8_t *res = sb_region(ch) + (size_t)sb_arena_offset(ch, (uint32_t)slot, 1);
    uint32_t len = m.body_len;
    if (len == 5 && memcmp(req, "sleep", 5) == 0) {
      usleep(300000);
      memcpy(res, "late", 4);
      len = 4;
    } else {
      for (uint32_t i = 0; i < len; i++) res[i] = req[len - 1 - i];
    }
    int r = sb_worker_complete(ch, (uint32_t)slot, m.gen, 0, 0, 0, len);
    if (r != 0) {
      fprintf(stderr, "sb_worker_complete = %d\n", r);
      return 3;
    }
  }
}
