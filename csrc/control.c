/* A bus's control socket, docs/PROTOCOL.md §14: "\0slotbus-ctl.<name>" (the portable backend: its socket file,
 * §13.2), where a tool of the bus's own uid sends one request for the bus's workers. Only the rendezvous and the
 * uid check are here; the request and its answer are read and written by the TS side (src/core/ops/control.ts). */
#include "slot_internal.h"

int sb_ctl_listen(const char *name) { return plat_listen("slotbus-ctl.", name, NULL, 0, 16); }

int sb_ctl_accept(int listen_fd, uint32_t *peer_uid) {
  int fd = plat_accept(listen_fd, 1);
  if (fd < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  uint32_t uid = 0;
  int32_t pid = -1;
  int r = plat_peer(fd, &uid, &pid);
  if (peer_uid) *peer_uid = uid;
  if (r || uid != geteuid()) {
    /* refused before a byte is read: the peer sees EOF with no answer (its client reports the refusal) */
    close(fd);
    return r ? r : -EPERM;
  }
  return fd;
}

int sb_ctl_connect(const char *name) {
  uint32_t uid = 0;
  int32_t pid = -1;
  int fd = plat_dial("slotbus-ctl.", name, NULL, -1, &uid, &pid);
  if (fd >= 0 && uid != geteuid()) {
    close(fd); /* a listener of another uid squatting the name: never send it anything */
    return -EPERM;
  }
  return fd;
}
