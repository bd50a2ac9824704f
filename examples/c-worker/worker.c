/* c-worker: a slotbus worker in plain C, written from docs/PROTOCOL.md and csrc/slotbus.h.
 * Usage: c-worker <name> [--eventfd|--futex|--spin]
 *   idle (no request to serve): sb_idle with the Bun worker's strategies. By default "adaptive", the Bun worker's
 *   default: keep polling while requests flow, park on the doorbell after 1 ms with none (after 20 µs
 *   while the machine is oversubscribed); --eventfd parks on it at once, --futex parks at once on the submission
 *   ring's futex, --spin never parks.
 *   raw requests (kind 0):  the reply is the body, reversed.
 *   http requests (kind 1): 200, header "x-worker: c", body "<METHOD> <path> <body length>";
 *                           path /fail replies with the handler-error flag and a message instead;
 *                           path /hold is not answered until the hub gives it up (a cancel request, PROTOCOL.md §3):
 *                           then it prints "gave up <slot>" and answers 499 (the hub discards it);
 *                           path /stream/<n>/<size> answers as a stream (PROTOCOL.md §9): HEAD 200 with "x-worker: c"
 *                           and "x-stream: frames", then n chunks of <size> bytes, byte k of chunk i being
 *                           (i * 131 + k) mod 256, then END. A hub that offered no window gets the same body whole
 *                           with "x-stream: whole". If the hub cancels the stream it prints "stream cancelled <slot>"
 *                           and ends it as cancelled. Path /stream-fail/<n>/<size> sends the n chunks, then ends
 *                           with an error (message "c worker failed mid-stream", name "StreamError").
 * Exits 0 when the hub goes away. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "slotbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char x_worker_head[] = "x-worker\0c"; /* name \0 value \0: sizeof counts the final \0 */
static const char streamed_head[] = "x-worker\0c\0x-stream\0frames";
static const char whole_head[] = "x-worker\0c\0x-stream\0whole";
static const char stream_error[] = "message\0c worker failed mid-stream\0name\0StreamError"; /* an error END's pairs */

#define MAX_CHUNK (1u << 20)
static uint8_t chunk[MAX_CHUNK];

static uint32_t align8(uint32_t n) { return (n + 7u) & ~7u; }

static uint8_t *arena_of(sb_chan *ch, uint32_t slot, int response) {
  return sb_region(ch) + (size_t)sb_arena_offset(ch, slot, response);
}

static const char *describe(int err) {
  return err == -SB_ECORRUPT ? "the hub's region or hello is not slotbus protocol 1" : strerror(-err);
}

/* A handler error: the body is the message (PROTOCOL.md §6). */
static int reply_error(sb_chan *ch, uint32_t slot, const char *message) {
  uint32_t len = (uint32_t)strlen(message);
  if (len > sb_arena_size(ch)) len = sb_arena_size(ch);
  memcpy(arena_of(ch, slot, 1), message, len);
  return sb_worker_complete(ch, slot, sb_last_msg(ch)->gen, 500, SB_RESP_ERROR, 0, len);
}

/* Requests on /hold: kept until the hub asks to cancel them. */
static struct { uint32_t slot, gen; } held[SB_MAX_SLOTS];
static uint32_t held_count, cancel_seen;

/* The hub's cancel_seq moved: answer each held request it gave up. */
static int release_cancelled(sb_chan *ch) {
  uint32_t seq = sb_worker_cancel_seq(ch);
  if (seq == cancel_seen) return 0;
  cancel_seen = seq;
  for (uint32_t i = 0; i < held_count;) {
    if (sb_worker_cancelled(ch, held[i].slot, held[i].gen) != 1) {
      i++;
      continue;
    }
    printf("gave up %u\n", held[i].slot);
    fflush(stdout);
    int r = sb_worker_complete(ch, held[i].slot, held[i].gen, 499, 0, 0, 0);
    if (r != 0) return r;
    held[i] = held[--held_count];
  }
  return 0;
}

/* out = in, reversed. restrict and a length in a local let the compiler copy a vector at a time: with out[k]
 * able to alias the sb_msg that holds the length, it reloaded it after every byte (1 byte a cycle, 64 KiB in ~25 µs). */
static void reverse_copy(uint8_t *restrict out, const uint8_t *restrict in, uint32_t len) {
  for (uint32_t k = 0; k < len; k++) out[k] = in[len - 1 - k];
}

static int serve_raw(sb_chan *ch, const sb_msg *m) {
  uint32_t slot = (uint32_t)m->slot, len = m->body_len;
  reverse_copy(arena_of(ch, slot, 1), arena_of(ch, slot, 0) + m->body_off, len);
  return sb_worker_complete(ch, slot, m->gen, 0, 0, 0, len);
}

/* ---- /stream/<n>/<size> and /stream-fail/<n>/<size>: an answer as a stream (PROTOCOL.md §9) ---- */

/* Chunk i of a streamed answer: byte k is (i * 131 + k) mod 256, so a chunk lost, doubled or shifted shows. */
static void fill_chunk(uint32_t i, uint32_t size) {
  for (uint32_t k = 0; k < size; k++) chunk[k] = (uint8_t)(i * 131u + k);
}

/* path is prefix + "<n>/<size>": 1 with n and size (at most MAX_CHUNK); -1 if the numbers are bad; 0 another path. */
static int stream_path(const char *path, const char *prefix, uint32_t *n, uint32_t *size) {
  size_t len = strlen(prefix);
  if (strncmp(path, prefix, len) != 0) return 0;
  const char *p = path + len;
  char *end;
  if (*p < '0' || *p > '9') return -1;
  unsigned long count = strtoul(p, &end, 10);
  if (*end != '/' || end[1] < '0' || end[1] > '9') return -1;
  unsigned long bytes = strtoul(end + 1, &end, 10);
  if (*end != '\0' || count > 0xFFFFFFFFul || bytes > MAX_CHUNK) return -1;
  *n = (uint32_t)count;
  *size = (uint32_t)bytes;
  return 1;
}

/* The hub offered no window (a hub that does not read streams, or one listening with streamWindowBytes: 0):
 * the same body, whole, if it fits the arena. */
static int answer_whole(sb_chan *ch, const sb_msg *m, uint32_t n, uint32_t size, int fail) {
  uint32_t slot = (uint32_t)m->slot;
  if (fail) return reply_error(ch, slot, "c worker failed mid-stream");
  uint32_t head_len = sizeof whole_head, body_off = align8(head_len);
  if ((uint64_t)n * size > sb_arena_size(ch) - body_off) return reply_error(ch, slot, "response does not fit the arena");
  uint8_t *out = arena_of(ch, slot, 1);
  memcpy(out, whole_head, head_len);
  memset(out + head_len, 0, body_off - head_len);
  for (uint32_t i = 0; i < n; i++) {
    fill_chunk(i, size);
    memcpy(out + body_off + (size_t)i * size, chunk, size);
  }
  return sb_worker_complete(ch, slot, m->gen, 200, 0, head_len, n * size);
}

/* The hub gave the stream up: stop, and end it as cancelled. That END is empty, so it fits the credit's
 * reserve and never waits (§9.2). */
static int end_cancelled(sb_chan *ch, uint32_t slot, uint32_t gen) {
  printf("stream cancelled %u\n", slot);
  fflush(stdout);
  return sb_worker_stream_end(ch, slot, gen, SB_RESP_CANCELLED, NULL, 0);
}

/* The window is full until the hub's caller reads on: 0 when there is credit again, 1 when the hub cancelled
 * meanwhile, -EPIPE when it is gone. One stream at a time, so this thread may block here (§9.7). */
static int await_credit(sb_chan *ch, uint32_t slot, uint32_t gen) {
  int r = sb_worker_stream_wait(ch, slot, gen, -1);
  if (r < 0) return r;
  return sb_worker_cancelled(ch, slot, gen) == 1;
}

static int serve_stream(sb_chan *ch, const sb_msg *m, uint32_t n, uint32_t size, int fail) {
  uint32_t slot = (uint32_t)m->slot, gen = m->gen;
  int r = sb_worker_stream_begin(ch, slot, gen, 200, streamed_head, sizeof streamed_head);
  if (r == -ENOTSUP) return answer_whole(ch, m, n, size, fail);
  if (r == -ECANCELED) { /* given up before the HEAD: answer as /hold does, the hub discards it */
    printf("stream cancelled %u\n", slot);
    fflush(stdout);
    return sb_worker_complete(ch, slot, gen, 499, 0, 0, 0);
  }
  if (r != 0) return r;
  for (uint32_t i = 0; i < n; i++) {
    fill_chunk(i, size);
    for (uint32_t done = 0; done < size;) {
      int taken = sb_worker_stream_write(ch, slot, gen, chunk + done, size - done);
      if (taken == -ECANCELED) return end_cancelled(ch, slot, gen);
      if (taken < 0) return taken;
      done += (uint32_t)taken;
      if (done == size) break;
      r = await_credit(ch, slot, gen); /* it took less than asked: out of credit */
      if (r == 1) return end_cancelled(ch, slot, gen);
      if (r < 0) return r;
    }
  }
  if (!fail) return sb_worker_stream_end(ch, slot, gen, 0, NULL, 0);
  /* the handler "fails" after its chunks: an error END, whose pairs may need more credit than is left */
  for (;;) {
    r = sb_worker_stream_end(ch, slot, gen, SB_RESP_ERROR, stream_error, sizeof stream_error);
    if (r != -EAGAIN) return r;
    r = await_credit(ch, slot, gen);
    if (r == 1) return end_cancelled(ch, slot, gen);
    if (r < 0) return r;
  }
}

static int serve_http(sb_chan *ch, const sb_msg *m) {
  uint32_t slot = (uint32_t)m->slot;
  /* head: method \0 path \0 then name \0 value \0 pairs; only the first two matter here */
  const char *method = (const char *)arena_of(ch, slot, 0);
  size_t method_len = strnlen(method, m->head_len);
  if (method_len == m->head_len) return reply_error(ch, slot, "bad http head: no method");
  const char *path = method + method_len + 1;
  size_t path_len = strnlen(path, m->head_len - method_len - 1);
  if (path_len == m->head_len - method_len - 1) return reply_error(ch, slot, "bad http head: no path");
  if (strcmp(path, "/fail") == 0) return reply_error(ch, slot, "c worker failed on purpose");
  uint32_t chunks, size;
  int streamed = stream_path(path, "/stream/", &chunks, &size), failing = 0;
  if (!streamed) streamed = failing = stream_path(path, "/stream-fail/", &chunks, &size);
  if (streamed == 1) return serve_stream(ch, m, chunks, size, failing);
  if (streamed < 0) return reply_error(ch, slot, "bad stream path: /stream/<n>/<size>, size at most 1048576");
  if (strcmp(path, "/hold") == 0 && held_count < SB_MAX_SLOTS) {
    held[held_count].slot = slot;
    held[held_count++].gen = m->gen;
    printf("holding %u\n", slot);
    fflush(stdout);
    return 0;
  }

  uint8_t *out = arena_of(ch, slot, 1);
  uint32_t head_len = sizeof x_worker_head;
  memcpy(out, x_worker_head, head_len);
  memset(out + head_len, 0, align8(head_len) - head_len);
  size_t room = sb_arena_size(ch) - align8(head_len);
  int n = snprintf((char *)out + align8(head_len), room, "%.*s %.*s %u", (int)method_len, method, (int)path_len, path,
                   m->body_len);
  if (n < 0 || (size_t)n >= room) return reply_error(ch, slot, "response does not fit the arena");
  return sb_worker_complete(ch, slot, m->gen, 200, 0, head_len, (uint32_t)n);
}

/* The hub may still be starting up: retry a refused connection for a few seconds. */
static sb_chan *connect_with_retry(const char *name) {
  for (int attempt = 0;; attempt++) {
    int err = 0;
    sb_chan *ch = sb_connect(name, -1, 5000, &err);
    if (ch) return ch;
    int retryable = err == -ECONNREFUSED || err == -ENOENT || err == -ECONNRESET || err == -EPIPE; /* no hub, or a dying one */
    if (!retryable || attempt == 100) {
      fprintf(stderr, "c-worker: cannot connect to hub \"%s\": %s\n", name, describe(err));
      return NULL;
    }
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
  }
}

int main(int argc, char **argv) {
  int idle = SB_IDLE_ADAPTIVE;
  if (argc == 3 && strcmp(argv[2], "--eventfd") == 0) idle = SB_IDLE_PARK;
  else if (argc == 3 && strcmp(argv[2], "--futex") == 0) idle = SB_IDLE_PARK_FUTEX;
  else if (argc == 3 && strcmp(argv[2], "--spin") == 0) idle = SB_IDLE_SPIN;
  else if (argc != 2) {
    fprintf(stderr, "usage: c-worker <name> [--eventfd|--futex|--spin]\n");
    return 2;
  }
  sb_chan *ch = connect_with_retry(argv[1]);
  if (!ch) return 1;

  cancel_seen = sb_worker_cancel_seq(ch);
  for (;;) {
    if (held_count > 0 && release_cancelled(ch) != 0) {
      fprintf(stderr, "c-worker: could not answer a cancelled request\n");
      break;
    }
    int slot = sb_worker_poll(ch);
    if (slot >= 0) {
      const sb_msg *m = sb_last_msg(ch);
      int r = m->kind == SB_KIND_HTTP ? serve_http(ch, m) : serve_raw(ch, m);
      if (r == -EPIPE) { /* the hub went away in the middle of a stream */
        sb_close(ch);
        return 0;
      }
      if (r != 0) {
        fprintf(stderr, "c-worker: could not answer slot %d: %s\n", slot, r == -SB_ECORRUPT ? sb_error(ch) : describe(r));
        break;
      }
    } else if (slot != -1) {
      fprintf(stderr, "c-worker: the hub broke the protocol: %s\n", sb_error(ch));
      break;
    }
    /* poll again at once after a request; after an empty poll spin, yield or park as the mode says */
    if (sb_idle(ch, idle, slot >= 0) == -EPIPE) { /* the hub went away */
      sb_close(ch);
      return 0;
    }
  }
  sb_close(ch);
  return 1;
}
