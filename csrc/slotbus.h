/* libslotbus: shared-memory request/response between a hub and its workers.
 * The wire format is docs/PROTOCOL.md. Every call is non-blocking unless its name says wait.
 * Errors are negative errno values; SB_ECORRUPT means the peer broke the protocol: close the channel. */
#ifndef SLOTBUS_H
#define SLOTBUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SB_MAGIC 0x534C4254u
#define SB_VERSION 4u /* 4: doorbells are stream socketpairs (§1.2); 3: names in the socket directory on Linux too (§1.1); 2: abstract names */
/* Bumped whenever a function below changes its signature or meaning; the TS loader refuses a mismatch. */
#ifndef SB_ABI_VERSION /* overridable only so a test can build a mismatching library */
#define SB_ABI_VERSION 25u /* what each version added: CHANGELOG.md, "libslotbus ABI versions" */
#endif
#define SB_MAX_SLOTS 4096u
#define SB_MAX_ALLOW_UIDS 8u
#define SB_ECORRUPT 1000 /* returned negated */
#define SB_EHELD 1001 /* sb_host_lock: another process holds the lock (the same number on every OS) */
/* The portable backend's socket directory cannot be used (docs/PROTOCOL.md §13.2): sb_socket_dir_error says why */
#define SB_ESOCKDIR 1002

enum sb_state { SB_FREE = 0, SB_WRITING = 1, SB_READY = 2, SB_CLAIMED = 3, SB_DONE = 4, SB_CANCELLED = 5, SB_STREAMING = 6 };
enum sb_kind { SB_KIND_RAW = 0, SB_KIND_HTTP = 1 };
enum sb_resp_flags { SB_RESP_ERROR = 1, SB_RESP_CANCELLED = 2 };
enum sb_frame { SB_FRAME_PAD = 0, SB_FRAME_HEAD = 1, SB_FRAME_DATA = 2, SB_FRAME_END = 3 };
/* sb_msg.flags from sb_hub_poll: frames to read (sb_hub_stream_next), not a completion; FINAL: the last notification */
#define SB_MSG_STREAM 0x100u
#define SB_MSG_FINAL 0x200u
enum sb_park { SB_AWAKE = 0, SB_PARK_EVENTFD = 1, SB_PARK_FUTEX = 2 };

typedef struct sb_chan sb_chan; /* one side of one hub<->worker connection */

/* What sb_hub_poll / sb_worker_poll validated, in private memory the caller can read after the call. */
typedef struct sb_msg {
  int32_t slot;
  uint32_t kind;     /* request kind (worker side) */
  uint32_t id;       /* request id */
  uint32_t status;   /* response status (hub side) */
  uint32_t flags;    /* response flags (hub side) */
  uint32_t head_len;
  uint32_t body_len;
  uint32_t body_off; /* offset of the body inside the slot's arena: align8(head_len) */
  uint32_t gen;      /* the slot's generation: pass it back to sb_worker_complete (worker side) */
  uint32_t pos;      /* streams: the position after the frame sb_hub_stream_next returned, or published so far */
  uint32_t window;   /* worker side: the stream window the hub offered, 0 = answer whole (§9.1) */
} sb_msg;

typedef struct sb_hub_config {
  uint32_t slot_count;      /* 1..SB_MAX_SLOTS */
  uint32_t arena_size;      /* bytes per direction per slot, rounded up to 4096 */
  uint32_t trim_bytes;      /* arena bytes kept resident after a reclaim; beyond are punched out */
  /* Connection caps, set by the caller before each sb_accept: bit i refuses allow_uids[i], SB_FULL_OWN_UID the
   * hub's own uid, SB_FULL_ALL everyone. A refused peer gets a hello with status EUSERS. */
  uint32_t full_mask;
  uint32_t allow_uid_count; /* uids allowed besides the hub's own, which always is */
  /* Ring bytes offered to every request for a streamed answer (§9.1): 0 = never, or a power of two from 4096 to
   * min(arena_size, 2^30). */
  uint32_t stream_window;
  uint32_t allow_uids[SB_MAX_ALLOW_UIDS];
} sb_hub_config;
#define SB_FULL_OWN_UID (1u << 8)
#define SB_FULL_ALL (1u << 9)

/* ---- rendezvous ---- */

/* Fronts of one shared name (docs/PROTOCOL.md §15): front k > 0 listens as "<name>~k", k < SB_MAX_FRONTS. */
#define SB_MAX_FRONTS 64
/* Listen on the socket file slotbus.<name> of the socket directory (docs/PROTOCOL.md §1.1, §13.2). Returns a
 * non-blocking listening fd ("<name>~k" too, and sb_connect*), or -EINVAL (bad name, or SLOTBUS_PLATFORM names no
 * backend), -EADDRINUSE, -SB_ESOCKDIR. */
int sb_listen(const char *name);
/* Listen on the door of a hub that allows other uids (§1.1): the socket file slotbus.<name>, mode 0666, in this
 * euid's door directory (mode 0711: $SLOTBUS_DOOR_DIR, else /tmp/slotbus-door-<uid> or one of its .* siblings),
 * which sb_connect* uses when told a hub uid that is not the caller's. Linux backend only (-ENOTSUP on the
 * portable one); -EADDRINUSE when a live door of the name is there, -SB_ESOCKDIR. Watched and accepted like
 * sb_listen's fd. */
int sb_listen_door(const char *name);
/* Before closing a listening fd: removes its socket file (a door's too). */
void sb_unlisten(int listen_fd);
/* "linux" or "posix": the backend this process runs (§13.1); NULL when SLOTBUS_PLATFORM names neither. */
const char *sb_platform(void);
/* After -SB_ESOCKDIR: which directory, what is there (type, owner uid, mode) and what to do; this thread's last. */
const char *sb_socket_dir_error(void);
/* A host-wide advisory lock (§12.5's markers): <socket dir>/<prefix><name>.lock
 * locked exclusive or shared (never waiting) and held by the returned fd until sb_host_unlock or death.
 * name: 1-64 of [A-Za-z0-9._-]. fd, -SB_EHELD when another holds it, or -errno. */
int sb_host_lock(const char *prefix, const char *name, int exclusive);
/* Closes fd, first unlinking its file if no other process holds a lock on it (§12.5). */
void sb_host_unlock(int fd);
/* Who listens on the socket file <prefix><name> of the socket directory (§1.1): its effective uid in *uid and its
 * pid in *pid (pid may be NULL; -1 where the OS does not say), from SO_PEERCRED of one connection closed at once
 * (§15.2's election, §15.5's cover). 0, -ECONNREFUSED (or -ENOENT) when nobody listens, -EAGAIN when its accept
 * queue is full, or -errno. name: 1-64 of [A-Za-z0-9._-]. */
int sb_host_holder(const char *prefix, const char *name, uint32_t *uid, int32_t *pid);
/* The socket file of <prefix><name> in the socket directory (§1.1): its path into path (n >= 128 bytes; with 0
 * and -EADDRINUSE), a stale file (its holder died) recovered under the directory's lock; a candidate that binds it
 * itself stands with sb_host_stand instead (§15.2). 0 when nobody holds it, -EADDRINUSE when a process
 * does, -SB_ESOCKDIR, or -errno. name: 1-64 of [A-Za-z0-9._-]. */
int sb_host_free(const char *prefix, const char *name, uint8_t *path, uint32_t n);
/* sb_host_free for a candidate that binds the file itself (an election, §15.2: Bun.listen): when nobody holds the
 * name, the directory's lock is kept and its fd returned (>= 0); the caller binds and listens on path, then closes
 * the fd (binding nothing through libslotbus meanwhile: that waits for the same lock). Another's probe of the file
 * would otherwise run mid-bind, read it as stale and unlink it (two holders). -EADDRINUSE when a process holds it,
 * -SB_ESOCKDIR, or -errno. */
int sb_host_stand(const char *prefix, const char *name, uint8_t *path, uint32_t n);
/* A bus's control socket (§14): listen on the socket file slotbus-ctl.<name>, as sb_listen; close
 * it with sb_unlisten, then close. */
int sb_ctl_listen(const char *name);
/* Accept one pending control connection: its fd (non-blocking, close-on-exec) when the peer's effective uid is ours;
 * -EAGAIN when nobody waits; -EPERM when the peer was of another uid (closed at once; the uid in *peer_uid). */
int sb_ctl_accept(int listen_fd, uint32_t *peer_uid);
/* Connect to a bus's control socket: the fd (non-blocking), -ECONNREFUSED when no bus of that name listens, -EAGAIN
 * when its accept queue is full, -EPERM when the listener is not of our effective uid, or -errno. */
int sb_ctl_connect(const char *name);
/* Tell the service manager `state` ("READY=1", "RELOADING=1", …): one datagram to the unix socket `socket_path`
 * ($NOTIFY_SOCKET; a leading '@' is an abstract name), as systemd's sd_notify. Never blocks: 0 when sent, -EAGAIN
 * when the manager's queue is full (macOS: ENOBUFS), -EINVAL for an empty or too long path or state, else -errno. */
int sb_notify(const char *socket_path, const char *state);
/* Accept one pending worker: create its region and doorbells, check its uid, send them.
 * Returns NULL with *err = -EAGAIN when nobody is waiting, -EPERM when a peer was refused (its uid in *err_uid),
 * -EUSERS when it was refused by cfg->full_mask (its uid in *err_uid), or another -errno. */
sb_chan *sb_accept(int listen_fd, const sb_hub_config *cfg, int *err, uint32_t *err_uid);
/* A thread named "slotbus-accept" that poll()s listen_fd and, when a peer is waiting, rings a doorbell (PROTOCOL.md §1.2)
 * the caller reads (sb_accept_watch_fd), then sleeps until sb_accept_watch_rearm: so an event loop that cannot
 * poll a listening socket still accepts on readable, and the thread costs nothing while nobody connects.
 * Returns NULL with *err = -errno. */
typedef struct sb_accept_watch sb_accept_watch;
sb_accept_watch *sb_accept_watch_start(int listen_fd, int *err);
int sb_accept_watch_fd(sb_accept_watch *w); /* a doorbell read end (§1.2), readable when a peer may be waiting */
void sb_accept_watch_rearm(sb_accept_watch *w); /* the caller accepted what it will this turn: watch again */
void sb_accept_watch_stop(sb_accept_watch *w);  /* joins the thread, closes its fds (not listen_fd) */
/* Worker: connect by name and attach the hub's region, waiting up to timeout_ms for the hub's hello.
 * hub_uid < 0 means "my own effective uid". Returns NULL with *err = -ECONNREFUSED (no hub), -EAGAIN (the hub's
 * accept queue is full: retry), -EPERM (refused either way), -EUSERS (the hub is at its connection cap),
 * -ETIMEDOUT, -SB_ECORRUPT (including fds that are not what §1 says), or -errno. */
sb_chan *sb_connect(const char *name, int64_t hub_uid, int timeout_ms, int *err);
/* The same in two steps, for event loops that must not block (the hub may run on the same thread):
 * start connects without waiting and checks the hub's uid; finish waits up to timeout_ms (0: not at all, <0:
 * forever) and returns 0 once attached, -EAGAIN while the hello is not complete (the socket fd becomes readable
 * when more arrives), or -errno: then sb_close the channel. */
sb_chan *sb_connect_start(const char *name, int64_t hub_uid, int *err);
int sb_connect_finish(sb_chan *ch, int timeout_ms);
/* Unmap, close every fd. The peer sees its socket close. */
void sb_close(sb_chan *ch);
/* Tell the peer we are gone (it sees EOF); nothing is freed yet. */
void sb_disconnect(sb_chan *ch);
/* Free the shared memory and every fd now, but keep the address range mapped to private zero pages, so views
 * still held into the region stay harmless; sb_close frees the range. Returns 0, or -errno when the zero pages
 * were refused (strict overcommit): the region then stays mapped as it was until sb_close, views still valid
 * (-EFAULT: it could not even be mapped back, and held views are dangling). */
int sb_detach(sb_chan *ch);

/* ---- channel facts ---- */
uint8_t *sb_region(sb_chan *ch);
double sb_region_size(sb_chan *ch);          /* double: exact below 2^53, cheap over FFI */
uint32_t sb_slot_count(sb_chan *ch);
uint32_t sb_arena_size(sb_chan *ch);
double sb_arena_offset(sb_chan *ch, uint32_t slot, int response); /* offset of a slot's arena in the region */
int sb_socket_fd(sb_chan *ch);               /* readable at EOF when the peer is gone */
int sb_doorbell_fd(sb_chan *ch);             /* this side's doorbell read end, a unix stream socket (non-blocking) */
/* A close-on-exec duplicate of fd, or -errno: for an event loop whose socket closes the fd it is given. */
int sb_fd_dup(int fd);
int32_t sb_peer_pid(sb_chan *ch);
int32_t sb_peer_uid(sb_chan *ch);
/* 1 once the peer's process has exited, or its pid names another process (start time): a child it forked may
 * still hold the socket, so no EOF comes (docs/PROTOCOL.md §1). One kill(pid, 0) and one /proc read; not per request. */
int sb_peer_gone(sb_chan *ch);
sb_msg *sb_last_msg(sb_chan *ch);            /* stable pointer, filled by the poll calls */
const char *sb_error(sb_chan *ch);           /* what the last SB_ECORRUPT was about */
uint32_t sb_slot_state(sb_chan *ch, uint32_t slot); /* raw state word, for diagnostics */
uint32_t sb_layout_hash(void);
uint32_t sb_abi_version(void);             /* SB_ABI_VERSION of the built library */

/* ---- hub side ---- */

/* Take a free slot for writing. Returns its index, or -1 if all are in use. */
int sb_hub_claim(sb_chan *ch);
/* Publish a claimed slot whose request arena holds head (+pad) + body. Wakes the worker if parked. 0, or (nothing
 * published, the slot still claimed: sb_hub_unclaim it) -EINVAL: slot is not one sb_hub_claim gave and not yet
 * published, or kind is no sb_kind; -E2BIG: align8(head_len) + body_len is past sb_arena_size. */
int sb_hub_publish(sb_chan *ch, uint32_t slot, uint32_t kind, uint32_t id, uint32_t head_len, uint32_t body_len);
/* Give back a claimed slot that was never published (filling it failed): WRITING -> FREE. */
int sb_hub_unclaim(sb_chan *ch, uint32_t slot);
/* Withdraw a published request. 1: cancelled before the worker claimed it (it still comes back through
 * sb_hub_poll, flagged cancelled); 2: the worker already has it: it is asked to give up (its cancel word and
 * cancel_seq, waking it if parked) and still answers through sb_hub_poll as usual. */
int sb_hub_cancel(sb_chan *ch, uint32_t slot);
/* Pop one completed slot, validated, into sb_last_msg. Returns its index, -1 if none, -SB_ECORRUPT. */
int sb_hub_poll(sb_chan *ch);
/* Return a polled slot to the free list (generation + 1) and trim large arenas. */
int sb_hub_release(sb_chan *ch, uint32_t slot);

/* ---- worker side ---- */

/* Pop and claim one request, validated, into sb_last_msg. Returns its index, -1 if none (for now: a call does at
 * most ring_size slots' work), -SB_ECORRUPT. Cancelled requests are completed internally and never returned. */
int sb_worker_poll(sb_chan *ch);
/* Publish the response written into the slot's response arena. gen is sb_last_msg's gen from the poll that
 * returned this slot: a completion with any other (a request answered twice) is refused with -EINVAL.
 * The check guards the state word, not the arena: never write a slot's response arena after completing it,
 * or a late writer may overwrite the next request's answer (docs/model/README.md). Wakes the hub if parked. */
int sb_worker_complete(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t status, uint32_t flags, uint32_t head_len,
                       uint32_t body_len);

/* The hub's cancel counter (docs/PROTOCOL.md §3): when it differs from the last value, ask sb_worker_cancelled about
 * each request you still hold. sb_park / sb_wait wake for a cancellation when it differs from the value this call
 * last returned or they last woke for: once per cancel, so a worker that never calls this is not kept awake. */
uint32_t sb_worker_cancel_seq(sb_chan *ch);
/* 1 if the hub gave up the request in `slot` of generation `gen` (sb_last_msg's gen): stop, and answer anything
 * (it is discarded). 0 if not, -EINVAL for a bad slot. */
int sb_worker_cancelled(sb_chan *ch, uint32_t slot, uint32_t gen);

/* ---- streams (docs/PROTOCOL.md §9): a worker answers as HEAD, DATA…, END frames within the hub's credit ---- */

/* Worker. gen is sb_last_msg's gen for the slot, as for sb_worker_complete. None of these blocks but _wait. */
/* Send HEAD: 0; -ENOTSUP: the hub offered no window (answer whole); -E2BIG: the head does not fit the window;
 * -ECANCELED: the hub gave the request up (complete it anyhow, §3); -EINVAL: not this slot's request. */
int sb_worker_stream_begin(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t status, const void *head, uint32_t head_len);
/* Copy up to len bytes as DATA frames within the credit. Returns the bytes taken, 0 … len (0: no credit now,
 * sb_worker_stream_wait); -ECANCELED: end the stream with SB_RESP_CANCELLED; -EINVAL; -SB_ECORRUPT. */
int sb_worker_stream_write(sb_chan *ch, uint32_t slot, uint32_t gen, const void *data, uint32_t len);
/* Block (doorbell and socket) until this stream has the credit its last write or end lacked (a DATA frame's when
 * neither did) or is cancelled: 1; timeout: 0; the hub gone: -EPIPE. timeout_ms < 0: forever. */
int sb_worker_stream_wait(sb_chan *ch, uint32_t slot, uint32_t gen, int timeout_ms);
/* Send END with flags 0, SB_RESP_ERROR or SB_RESP_CANCELLED and its pairs: 0, and the slot is the hub's;
 * -EAGAIN: the pairs do not fit the credit yet (sb_worker_stream_wait, or end with fewer); -E2BIG: they never fit
 * at this position (end with fewer). Pairs of at most window / 2 − 8 bytes always fit in time; never -EAGAIN or
 * -E2BIG for pairs_len 0. */
int sb_worker_stream_end(sb_chan *ch, uint32_t slot, uint32_t gen, uint32_t flags, const void *pairs, uint32_t pairs_len);

/* Hub. After sb_hub_poll returned a slot with SB_MSG_STREAM: the next published frame, validated, into sb_last_msg
 * (kind = its type, status = HEAD's status or END's flags, head_len = body_len = its payload's length, body_off = its
 * offset in the response arena, pos = the position after it). Returns its type, -1 when no further complete frame
 * is published yet (the next sb_hub_poll of the slot says when), -SB_ECORRUPT. PAD is skipped. */
int sb_hub_stream_next(sb_chan *ch, uint32_t slot);
/* The ring before pos (a pos sb_hub_stream_next gave) is no longer needed: grant credit, wake the worker. */
int sb_hub_stream_consumed(sb_chan *ch, uint32_t slot, uint32_t pos);

/* ---- parking ---- */

/* Announce that this side is about to sleep on its doorbell. Returns 1 if work (or, for a worker, a
 * cancellation: cancel_seq moved since sb_worker_cancel_seq or the last wake for one) arrived meanwhile
 * (the announcement is withdrawn: poll again), 0 if parked: wait for the doorbell fd to become readable. */
int sb_park(sb_chan *ch);
/* Withdraw the announcement and empty the doorbell (one read, whatever the peer rang). */
void sb_unpark(sb_chan *ch);
/* Give the CPU to another runnable thread, if any: a poller sharing a CPU with its peer must, or it only
 * delays the answer it waits for. */
void sb_yield(void);
/* The CPU the calling thread runs on, -1 where the OS does not say (macOS): what a side publishes in its CPU word
 * (docs/PROTOCOL.md §5.1, at 324 for the worker and 388 for the hub, the CPU + 1). */
int sb_cpu(void);
/* Keeps the calling thread off `cpu`, which it shares with its peer (Linux: its affinity mask less `cpu`, so the
 * scheduler cannot put the two back together), until sb_keep_off_cpu(-1) puts the mask it had back. Returns the CPU
 * it runs on after (0 for -1); -EINVAL if `cpu` is not in the thread's mask or the mask has one CPU; -ENOSYS where
 * the OS cannot (macOS). */
int sb_keep_off_cpu(int cpu);
/* 1 if any of the first n (at most 8) fds is readable now, else 0 (poll, no wait): asked of the event loop's epoll
 * fds, whether the loop has I/O to do. */
int sb_any_readable(const int32_t *fds, uint32_t n);

/* ---- the per-request calls with double arguments (csrc/doubles.c): sbd_<name> is sb_<name>, for an FFI that
 * calls a function of doubles directly and checks integer and pointer arguments in a slower path (Node's node:ffi).
 * The channel pointer is passed as a double (exact below 2^53); every other argument is an integer in a double. ---- */
int sbd_hub_claim(double ch);
int sbd_hub_unclaim(double ch, double slot);
int sbd_hub_publish(double ch, double slot, double kind, double id, double head_len, double body_len);
int sbd_hub_cancel(double ch, double slot);
int sbd_hub_poll(double ch);
int sbd_hub_release(double ch, double slot);
int sbd_hub_stream_next(double ch, double slot);
int sbd_hub_stream_consumed(double ch, double slot, double pos);
int sbd_worker_poll(double ch);
int sbd_worker_complete(double ch, double slot, double gen, double status, double flags, double head_len,
                        double body_len);
uint32_t sbd_worker_cancel_seq(double ch);
int sbd_worker_cancelled(double ch, double slot, double gen);
int sbd_worker_stream_wait(double ch, double slot, double gen, double timeout_ms);
int sbd_park(double ch);
void sbd_unpark(double ch);
double sbd_arena_offset(double ch, double slot, double response);
/* Block until work may be available, the peer is gone, or timeout_ms passes (<0: forever).
 * use_futex: sleep on the ring's futex word instead of the doorbell (slices of 10 ms check the socket).
 * Returns 1 work may be ready, 0 timeout (or early: a control byte arrived; just wait again), -EPIPE peer gone
 * (looked for on every return, work or not). A worker is woken once per cancellation (see sb_worker_cancel_seq). */
int sb_wait(sb_chan *ch, int timeout_ms, int use_futex);

/* ---- idle strategies: the Bun side's, for a thread that polls (csrc/idle.c) ---- */

/* ADAPTIVE (the Bun side's default): spin while work flows, giving the CPU up every 5 µs (after every empty poll
 * while the peer shares this CPU, or it could not answer), park on the doorbell after 1 ms without work (not in the
 * connection's first 250 ms), after 20 µs while the machine is oversubscribed (this thread's run_delay, slow
 * sched_yields), at once when more processes serve the bus than there are CPUs (§2). SPIN: spin, never park.
 * PARK: park on the doorbell at once; PARK_FUTEX: on the futex of the ring's tail (sb_wait's use_futex). */
enum sb_idle_mode { SB_IDLE_ADAPTIVE = 0, SB_IDLE_SPIN = 1, SB_IDLE_PARK = 2, SB_IDLE_PARK_FUTEX = 3 };
/* Call after every poll with the number of items it took (0: none); one thread per channel. After work it returns
 * at once; after an empty poll it spins, yields or parks as mode says (a spinner looks at the socket every 1 ms).
 * Returns 1: poll again; -EPIPE: the peer is gone (sb_close); -EINVAL: no such mode. */
int sb_idle(sb_chan *ch, int mode, uint32_t work);

/* ---- the flight recorder (docs/PROTOCOL.md §16): a file of the hub's requests any process may read ---- */

typedef struct sb_rec sb_rec;
/* Create the recorder file at path (O_EXCL, mode 0600; its directory is the caller's to check, §16.1) for the bus
 * `name` (1-64 bytes) with record_count records (1 … 65536). NULL with *err = -errno (-EEXIST, -EINVAL …). */
sb_rec *sb_rec_open(const char *path, const char *name, uint32_t record_count, int *err);
/* Unlink the file; its memory goes when the last attached channel closes. */
void sb_rec_close(sb_rec *r);
/* Record the requests of a hub channel from now on, until it is closed: 0, -EINVAL, -ENOMEM. */
int sb_rec_attach(sb_rec *r, sb_chan *ch);
/* Private, never shared, CLOCK_MONOTONIC ns the caller already has, so the hot path reads no clock for them:
 * [0] the enqueue time and [1] the dispatch time (0: read the clock, once the slot went out) of the next
 * sb_hub_publish on an attached channel, read by it, which zeroes [0] and leaves in [1] the dispatch time it used
 * (the caller's clock for a request it read none for); [2] the time of the caller's poll pass: 0 before each pass
 * (the caller zeroes it), set by the pass's first completion popped with a record, and the done time of every
 * answer of the pass. */
double *sb_rec_stage(sb_rec *r);
/* Requests waiting for a free slot (the header's queued). */
void sb_rec_queued(sb_rec *r, uint32_t n);
/* The front's superviseWorkers pools on this bus: their crash restarts, and whether one is in a crash loop (§16.2). */
void sb_rec_pools(sb_rec *r, double crash_restarts, uint32_t crash_loop);
/* Why the hub gives up the request in `slot`, before sb_hub_cancel: 3 cancelled, 4 timeout, 5 worker gone (§16.2).
 * 1 noted, 0 not recorded (no recorder, or no record), -EINVAL. */
int sb_rec_note(sb_chan *ch, uint32_t slot, uint32_t outcome);
/* CLOCK_MONOTONIC in ns (the records' clock). */
double sb_rec_now(void);
/* A request sent to a worker on another host (docs/PROTOCOL.md §16.3), its enqueue and dispatch times staged as for
 * sb_hub_publish: its record begun, slot 0xFFFFFFFF, what and trace id from `head` (head_len bytes of §6's head;
 * 0 for raw). Its number for the two calls below, or 0 when it goes unrecorded (r NULL, every record in flight). */
uint32_t sb_rec_far_begin(sb_rec *r, uint32_t kind, uint32_t worker_pid, const uint8_t *head, uint32_t head_len,
                          uint32_t body_len);
/* Its stream's first frame came, at `status`: phase 2. A number not in flight is ignored, as by the next call; once
 * ended, a number may name a later request: the caller ends each one once and uses it no more. */
void sb_rec_far_head(sb_rec *r, uint32_t at, uint32_t status);
/* It ended with `outcome` (1 … 5, §16.2); an answer's status (0: keep the HEAD's) and bytes: phase 3. */
void sb_rec_far_end(sb_rec *r, uint32_t at, uint32_t outcome, uint32_t status, uint32_t answer_bytes);

#ifdef __cplusplus
}
#endif
#endif
