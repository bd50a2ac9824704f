/* The per-request calls again, every argument a double: sbd_<name> is sb_<name>. Node's FFI (node:ffi, Node 26)
 * checks each integer or pointer argument in JavaScript before a call (~25 ns for one, ~0.5 µs for six) and calls a
 * function whose arguments are all doubles directly (~9 ns for six); bun:ffi needs none of this. A channel pointer is
 * passed as a double: user-space addresses on x86-64 and arm64 are below 2^53, so the double holds it exactly. */
#include "slotbus.h"

#define CH(d) ((sb_chan *)(uintptr_t)(d))
#define U32(d) ((uint32_t)(int64_t)(d)) /* through int64: a negative double to uint32_t is undefined in C */

int sbd_hub_claim(double ch) { return sb_hub_claim(CH(ch)); }
int sbd_hub_unclaim(double ch, double slot) { return sb_hub_unclaim(CH(ch), U32(slot)); }
int sbd_hub_publish(double ch, double slot, double kind, double id, double head_len, double body_len) {
  return sb_hub_publish(CH(ch), U32(slot), U32(kind), U32(id), U32(head_len), U32(body_len));
}
int sbd_hub_cancel(double ch, double slot) { return sb_hub_cancel(CH(ch), U32(slot)); }
int sbd_hub_poll(double ch) { return sb_hub_poll(CH(ch)); }
int sbd_hub_release(double ch, double slot) { return sb_hub_release(CH(ch), U32(slot)); }
int sbd_hub_stream_next(double ch, double slot) { return sb_hub_stream_next(CH(ch), U32(slot)); }
int sbd_hub_stream_consumed(double ch, double slot, double pos) {
  return sb_hub_stream_consumed(CH(ch), U32(slot), U32(pos));
}
int sbd_worker_poll(double ch) { return sb_worker_poll(CH(ch)); }
int sbd_worker_complete(double ch, double slot, double gen, double status, double flags, double head_len,
                        double body_len) {
  return sb_worker_complete(CH(ch), U32(slot), U32(gen), U32(status), U32(flags), U32(head_len), U32(body_len));
}
uint32_t sbd_worker_cancel_seq(double ch) { return sb_worker_cancel_seq(CH(ch)); }
int sbd_worker_cancelled(double ch, double slot, double gen) { return sb_worker_cancelled(CH(ch), U32(slot), U32(gen)); }
int sbd_worker_stream_wait(double ch, double slot, double gen, double timeout_ms) {
  return sb_worker_stream_wait(CH(ch), U32(slot), U32(gen), (int)timeout_ms);
}
int sbd_park(double ch) { return sb_park(CH(ch)); }
void sbd_unpark(double ch) { sb_unpark(CH(ch)); }
double sbd_arena_offset(double ch, double slot, double response) {
  return sb_arena_offset(CH(ch), U32(slot), (int)response);
}
