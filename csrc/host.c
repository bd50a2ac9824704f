/* The public calls of csrc/slotbus.h that the platform layer answers (docs/PROTOCOL.md §13, §15.2): which backend
 * runs, why the socket directory was refused, the per-host lock, who holds a name and freeing one for an election,
 * systemd's readiness note and the event-loop probe. Above csrc/platform.h, which
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
  if (fd >= 0) plat_host_unlock(fd);
}

/* Connecting costs the listener nothing but an accept queue entry it may never take. */
int sb_host_holder(const char *prefix, const char *name, uint32_t *uid, int32_t *pid) {
  int32_t p = -1;
  int r = plat_check();
  if (r || !prefix || !uid) return r ? r : -EINVAL;
  int fd = plat_dial(prefix, name, NULL, -1, uid, &p);
  if (pid) *pid = p;
  if (fd < 0) return fd;
  close(fd);
  return 0;
}

static int host_free(const char *prefix, const char *name, uint8_t *path, uint32_t n, int keep) {
  char p[128];
  int r = plat_check();
  if (r || !path || n < sizeof p) return r ? r : -EINVAL;
  p[0] = 0;
  r = plat_host_free(prefix, name, p, keep);
  if (p[0]) snprintf((char *)path, n, "%s", p);
  return r;
}

int sb_host_free(const char *prefix, const char *name, uint8_t *path, uint32_t n) {
  return host_free(prefix, name, path, n, 0);
}

int sb_host_stand(const char *prefix, const char *name, uint8_t *path, uint32_t n) {
  return host_free(prefix, name, path, n, 1);
}

int sb_notify(const char *socket_path, const char *state) {
  return plat_dgram_send(socket_path, state, state ? strlen(state) : 0);
}

int sb_any_readable(const int32_t *fds, uint32_t n) {
  struct pollfd p[8];
  if (n > 8) n = 8;
  for (uint32_t i = 0; i < n; i++) p[i] = (struct pollfd){fds[i], POLLIN, 0};
  if (poll(p, n, 0) <= 0) return 0;
  for (uint32_t i = 0; i < n; i++)
    if (p[i].revents & POLLIN) return 1;
  return 0;
}
