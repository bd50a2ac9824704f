/* Internal to libslotbus: how the C files read and write memory another process maps too (the slot region,
 * the lease table, the topic ring). Every shared word is touched as an atomic with the order its call site
 * names, so a peer rewriting it meanwhile is a protocol error we check for, never undefined behaviour or a
 * TSan report. Include it after sys.h. Not part of the public API. */
#ifndef SLOTBUS_SHM_H
#define SLOTBUS_SHM_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef _Atomic uint32_t a32;
typedef _Atomic uint64_t a64;

/* The word at byte offset off of shared memory p: every layout of docs/PROTOCOL.md aligns it naturally. */
static inline a32 *shm_u32(uint8_t *p, size_t off) { return (a32 *)(p + off); }
static inline a64 *shm_u64(uint8_t *p, size_t off) { return (a64 *)(p + off); }

/* A plain field of a shared struct, read or written exactly once where the source says so: relaxed atomics,
 * because the peer may change it at any time and a compiler may otherwise repeat a plain load after we
 * validated it. Ordering comes from a state word's release/acquire, never from these. */
#define SHM_READ(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define SHM_WRITE(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

/* Bytes that another process may rewrite while we copy them are copied as relaxed 8-byte atomics: the copy
 * is checked afterwards (seqlock style), and this keeps it free of undefined behaviour and TSan reports.
 * n is rounded up to 8; both sides are 8-aligned in shared memory. */
static inline void shm_load_words(void *dst, const void *src, size_t n) {
  const a64 *s = src;
  uint8_t *d = dst;
  for (size_t i = 0; i < (n + 7) / 8; i++) {
    uint64_t w = atomic_load_explicit(&s[i], memory_order_relaxed);
    memcpy(d + 8 * i, &w, 8);
  }
}
static inline void shm_store_words(void *dst, const void *src, size_t n) {
  a64 *d = dst;
  const uint8_t *s = src;
  for (size_t i = 0; i < n / 8; i++) {
    uint64_t w;
    memcpy(&w, s + 8 * i, 8);
    atomic_store_explicit(&d[i], w, memory_order_relaxed);
  }
  if (n % 8) {
    uint64_t w = 0;
    memcpy(&w, s + (n & ~(size_t)7), n % 8);
    atomic_store_explicit(&d[n / 8], w, memory_order_relaxed);
  }
}
#endif
