/* forking-worker: a plain C worker whose process forks without exec and exits, the child living on with the
 * channel's fds (a worker forking helpers, a fork-based pool): no EOF reaches the hub. For
 * test/native/forking-worker.test.ts.
 * Usage: forking-worker <name>
 *   raw requests: the body "fork" is never answered: the process forks, the child prints "child <pid>" and waits
 *   for a signal, the parent exits 0; any other body comes back reversed.
 * Prints "ready" once connected; exits 0 when the hub is gone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "slotbus.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: forking-worker <name>\n");
    return 2;
  }
  int err = 0;
  sb_chan *ch = sb_connect(argv[1], -1, 5000, &err);
  if (!ch) {
    fprintf(stderr, "sb_connect = %d\n", err);
    return 2;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int slot = sb_worker_poll(ch);
    if (slot == -1) {
      int r = sb_idle(ch, 0, 0);
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
    if (len == 4 && memcmp(req, "fork", 4) == 0) {
      pid_t child = fork();
      if (child < 0) return 3;
      if (child == 0) {
        printf("child %d\n", (int)getpid());
        fflush(stdout);
        for (;;) pause(); /* holds the socket, the doorbells and the region until killed */
      }
      _exit(0);
    }
    for (uint32_t i = 0; i < len; i++) res[i] = req[len - 1 - i];
    int r = sb_worker_complete(ch, (uint32_t)slot, m.gen, 0, 0, 0, len);
    if (r != 0) {
      fprintf(stderr, "sb_worker_complete = %d\n", r);
      return 3;
    }
  }
}
