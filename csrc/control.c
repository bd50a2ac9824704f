/* A bus's control socket, docs/PROTOCOL.md §14: "\0slotbus-ctl.<name>" (the portable backend: its socket file,
 * §13.2), where a tool of the bus's own uid sends one request for the bus's workers. Only the rendezvous and the
 * uid check are here; the request and its answer are read and written by the TS side (src/core/ops/control.ts). */
#include "slot_internal.h"

static int ctl_addr(const char *name, struct sockaddr_un *a, socklen_t *len) {
  return plat_addr("slotbus-ctl.", name, NULL, a, len);
}

int sb_ctl_listen(const char *name) {
  struct sockaddr_un a;
  socklen_t len;
  int r = plat_check();
  if (r || (r = ctl_addr(name, &a, &len))) return r;
  int fd = plat_socket(SOCK_STREAM);
  if (fd < 0) return -errno;
  if ((r = plat_bind(fd, &a, len, 16))) {
    close(fd);
    return r;
  }
  return fd;
}

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
  struct sockaddr_un a;
  socklen_t len;
  int r = plat_check();
  if (r || (r = ctl_addr(name, &a, &len))) return r;
  int fd = plat_socket(SOCK_STREAM);
  if (fd < 0) return -errno;
  uint32_t uid = 0;
  int32_t pid = -1;
  if ((r = plat_connect(fd, &a, len)) || (r = plat_peer(fd, &uid, &pid))) {
    close(fd);
    return r == -EWOULDBLOCK ? -EAGAIN : r;
  }
  if (uid != geteuid()) {
    close(fd); /* a listener of another uid squatting the name: never send it anything */
    return -EPERM;
  }
  return fd;
}

int sb_notify(const char *socket_path, const char *state) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t n = socket_path ? strlen(socket_path) : 0;
  size_t m = state ? strlen(state) : 0;
  if (n == 0 || n >= sizeof a.sun_path || m == 0) return -EINVAL;
  memcpy(a.sun_path, socket_path, n);
  if (a.sun_path[0] == '@') a.sun_path[0] = '\0'; /* systemd's spelling of an abstract name */
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return -errno;
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  /* never blocks: a manager whose queue is full (busy, or a socket nobody reads) is -EAGAIN (macOS says ENOBUFS),
   * which the caller reports, instead of a sendto that would hold the front's event loop until it reads */
  ssize_t sent = sendto(fd, state, m, MSG_DONTWAIT, (struct sockaddr *)&a,
                        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
  int r = sent < 0 ? (errno == EWOULDBLOCK || errno == ENOBUFS ? -EAGAIN : -errno) : (size_t)sent == m ? 0 : -EMSGSIZE;
  close(fd);
  return r;
}
