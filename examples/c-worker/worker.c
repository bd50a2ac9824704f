/* c-worker: a slotbus worker in plain C, written from docs/PROTOCOL.md and csrc/slotbus.h.
 * Usage: c-worker <name> [--futex|--spin]
 *   raw requests (kind 0):  the reply is the body, reversed.
 *   http requests (kind 1): 200, header "x-worker: c", body "<METHOD> <path> <body length>";
 *                           path /fail replies with the handler-error flag and a message instead;
 *                           path /hold is not answered until the hub gives it up (a cancel request, PROTOCOL.md §3):
 *                           then it prints "gave up <slot>" and answers 499 (the hub discards it).
 * Exits 0 when the hub goes away. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "slotbus.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef enum { IDLE_EVENTFD, IDLE_FUTEX, IDLE_SPIN } idle_mode;

static const char x_worker_head[] = "x-worker\0c"; /* name \0 value \0: sizeof counts the final \0 */

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

static int serve_raw(sb_chan *ch, const sb_msg *m) {
  const uint8_t *body = arena_of(ch, (uint32_t)m->slot, 0) + m->body_off;
  uint8_t *out = arena_of(ch, (uint32_t)m->slot, 1);
  for (uint32_t k = 0; k < m->body_len; k++) out[k] = body[m->body_len - 1 - k];
  return sb_worker_complete(ch, (uint32_t)m->slot, m->gen, 0, 0, 0, m->body_len);
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
  idle_mode idle = IDLE_EVENTFD;
  if (argc == 3 && strcmp(argv[2], "--futex") == 0) idle = IDLE_FUTEX;
  else if (argc == 3 && strcmp(argv[2], "--spin") == 0) idle = IDLE_SPIN;
  else if (argc != 2) {
    fprintf(stderr, "usage: c-worker <name> [--futex|--spin]\n");
    return 2;
  }
  sb_chan *ch = connect_with_retry(argv[1]);
  if (!ch) return 1;

  uint32_t idle_polls = 0;
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
      if (r != 0) {
        fprintf(stderr, "c-worker: sb_worker_complete: %s\n", describe(r));
        break;
      }
      idle_polls = 0;
      continue;
    }
    if (slot != -1) {
      fprintf(stderr, "c-worker: the hub broke the protocol: %s\n", sb_error(ch));
      break;
    }
    int r;
    if (idle == IDLE_SPIN) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      __asm__ volatile("yield");
#endif
      /* spinning never sleeps, so look at the socket now and then: a zero-timeout wait does that */
      if (++idle_polls % 4096u != 0) continue;
      r = sb_wait(ch, 0, 0);
    } else {
      r = sb_wait(ch, -1, idle == IDLE_FUTEX);
    }
    if (r == -EPIPE) {
      sb_close(ch);
      return 0;
    }
  }
  sb_close(ch);
  return 1;
}
