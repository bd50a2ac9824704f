/* The public calls of csrc/slotbus.h that the platform layer answers (docs/PROTOCOL.md §13, §15.2): which backend
 * runs, why the socket directory was refused, the per-host lock, who holds a name and freeing one for an election. Above csrc/platform.h, which
 * knows nothing of the public API: the numbers it returns are slotbus.h's, checked here. */
#include "sys.h"
#include "slotbus.h"

_Static_assert(PLAT_ESOCKDIR == SB_ESOCKDIR, "the platform's socket directory error is slotbus.h's SB_ESOCKDIR");

const char *sb_platform(void) { return plat_name(); }

const char *sb_socket_dir_error(void) { return plat_socket_dir_error(); }

int sb_host_lock(const char *prefix, const char *name, int exclusive) {
  int r = plat_host_lock(prefix, name, exclusive);
  return r == -EWOULDBLOCK ? -SB_EHELD : r;
}

void sb_host_unlock(int fd) {
  if (fd >= 0) close(fd);
}

/* Connecting costs the listener nothing but an accept queue entry it may never take. */
int sb_host_holder(const char *prefix, const char *name, uint32_t *uid) {
  struct sockaddr_un a;
  socklen_t len;
  int r = plat_check();
  if (r || !prefix || !uid || (r = plat_addr(prefix, name, NULL, &a, &len))) return r ? r : -EINVAL;
  int fd = plat_socket(SOCK_STREAM);
  if (fd < 0) return -errno;
  if (!(r = plat_connect(fd, &a, len))) r = plat_peer(fd, uid, NULL);
  close(fd);
  return r == -EWOULDBLOCK ? -EAGAIN : r;
}

int sb_host_free(const char *prefix, const char *name, uint8_t *path, uint32_t n) {
  char p[128];
  int r = plat_check();
  if (r || !path || n < sizeof p) return r ? r : -EINVAL;
  p[0] = 0;
  r = plat_host_free(prefix, name, p);
  if (p[0]) snprintf((char *)path, n, "%s", p);
  return r;
}
