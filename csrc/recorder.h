/* Internal to libslotbus: the flight recorder's file layout (docs/PROTOCOL.md §16) and the hooks the slot
 * transitions call (csrc/recorder.c). The public calls are in csrc/slotbus.h. */
#ifndef SLOTBUS_RECORDER_H
#define SLOTBUS_RECORDER_H
#include "sys.h"
#include "shm.h"
#include "slotbus.h"

#define SBR_MAGIC 0x53425243u
#define SBR_VERSION 1u
#define SBR_HEADER_BYTES 4096u
#define SBR_RECORD_BYTES 192u
#define SBR_WORKER_ENTRIES 120u
#define SBR_MAX_RECORDS 65536u
#define SBR_WHAT_BYTES 96u
#define SBR_NO_SLOT 0xFFFFFFFFu /* a record's slot for a request to a worker on another host */

enum sbr_phase { SBR_IN_FLIGHT = 1, SBR_STREAMING = 2, SBR_DONE = 3 };
enum sbr_outcome { SBR_NONE = 0, SBR_ANSWERED = 1, SBR_ERROR = 2, SBR_CANCELLED = 3, SBR_TIMEOUT = 4, SBR_WORKER_GONE = 5 };

/* Byte offsets of the header (§16.2): the layout test reads this enum against PROTOCOL.md and the TS reader. */
enum sbr_header_off {
  SBR_H_MAGIC = 0, SBR_H_VERSION = 4, SBR_H_HEADER_BYTES = 8, SBR_H_RECORD_BYTES = 12, SBR_H_RECORD_COUNT = 16,
  SBR_H_PID = 20, SBR_H_PID_START = 24, SBR_H_ANCHOR_WALL_NS = 32, SBR_H_ANCHOR_MONO_NS = 40, SBR_H_UID = 48,
  SBR_H_WORKER_ENTRIES = 52, SBR_H_WRITTEN = 56, SBR_H_NAME = 64, SBR_H_WORKERS = 128, SBR_H_IN_FLIGHT = 132,
  SBR_H_QUEUED = 136, SBR_H_REQUESTS = 144, SBR_H_ANSWERED = 152, SBR_H_ERRORS = 160, SBR_H_CANCELLED = 168,
  SBR_H_TIMEOUTS = 176, SBR_H_WORKER_GONE = 184, SBR_H_CRASH_RESTARTS = 192, SBR_H_CRASH_LOOP = 200,
  SBR_H_WORKER_TABLE = 256
};
enum sbr_worker_off { SBR_W_PID = 0, SBR_W_IN_FLIGHT = 4, SBR_W_REQUESTS = 8, SBR_W_ATTACHED_NS = 16, SBR_W_BYTES = 32 };
enum sbr_record_off {
  SBR_R_SEQ = 0, SBR_R_PHASE = 4, SBR_R_OUTCOME = 8, SBR_R_KIND = 12, SBR_R_SERIAL = 16, SBR_R_ID = 24,
  SBR_R_WORKER_PID = 28, SBR_R_SLOT = 32, SBR_R_STATUS = 36, SBR_R_ENQUEUED_NS = 40, SBR_R_DISPATCHED_NS = 48,
  SBR_R_FIRST_BYTE_NS = 56, SBR_R_DONE_NS = 64, SBR_R_REQUEST_BYTES = 72, SBR_R_ANSWER_BYTES = 76,
  SBR_R_TRACE_ID = 80, SBR_R_WHAT = 96
};

typedef struct {
  a32 seq;
  uint32_t phase, outcome, kind;
  uint64_t serial;
  uint32_t id, worker_pid, slot, status;
  uint64_t enqueued_ns, dispatched_ns, first_byte_ns, done_ns;
  uint32_t request_bytes, answer_bytes;
  uint8_t trace_id[16];
  uint8_t what[SBR_WHAT_BYTES];
} sbr_record;

typedef struct {
  uint32_t pid, in_flight;
  uint64_t requests, attached_ns, reserved;
} sbr_worker;

_Static_assert(sizeof(sbr_record) == SBR_RECORD_BYTES, "layout");
_Static_assert(offsetof(sbr_record, serial) == SBR_R_SERIAL && offsetof(sbr_record, status) == SBR_R_STATUS, "layout");
_Static_assert(offsetof(sbr_record, enqueued_ns) == SBR_R_ENQUEUED_NS && offsetof(sbr_record, done_ns) == SBR_R_DONE_NS, "layout");
_Static_assert(offsetof(sbr_record, trace_id) == SBR_R_TRACE_ID && offsetof(sbr_record, what) == SBR_R_WHAT, "layout");
_Static_assert(sizeof(sbr_worker) == SBR_W_BYTES && offsetof(sbr_worker, attached_ns) == SBR_W_ATTACHED_NS, "layout");
_Static_assert(SBR_H_WORKER_TABLE + SBR_WORKER_ENTRIES * SBR_W_BYTES == SBR_HEADER_BYTES, "layout");

/* The hooks of the hub's slot transitions (§16.3), each a no-op unless the channel has a recorder (ch->rec). */
#pragma GCC visibility push(hidden)
void rec_publish(sb_chan *ch, uint32_t slot, uint32_t kind, uint32_t id, uint32_t head_len, uint32_t body_len);
void rec_cancel(sb_chan *ch, uint32_t slot);
void rec_answer(sb_chan *ch, uint32_t slot, uint32_t status, uint32_t flags, uint32_t body_len);
void rec_stream_head(sb_chan *ch, uint32_t slot, uint32_t status);
void rec_stream_end(sb_chan *ch, uint32_t slot, uint32_t flags);
void rec_chan_gone(sb_chan *ch);
/* The writer's own mapping of the file: for csrc/test/recorder_stress.c, whose reader must use the same addresses
 * for ThreadSanitizer to see both sides. */
uint8_t *rec_base(sb_rec *r);
#pragma GCC visibility pop
#endif
