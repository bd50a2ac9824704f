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

/* Ordering, named once (as liburing's barrier.h does it), so every acquire and release in csrc/ is greppable and a
 * portability or TSan change has one home. Every atomic in csrc/ goes through these; nothing else calls atomic_*.
 *   release  a store (or the store half of a read-modify-write) that publishes: every write this thread made before
 *            it is visible to a thread whose acquire reads the value it stored (or a later one in its chain).
 *   acquire  a load (or the load half) that receives: nothing this thread does after it is moved before it, so it
 *            sees everything the releasing thread wrote before its release.
 *   acq_rel  both halves of one read-modify-write.
 *   seq_cst  acquire and release, and one total order over all seq_cst operations: what a "store my flag, then
 *            load yours" handshake (parking, §5) needs, where acquire/release alone lets both sides miss the other.
 *   relaxed  atomic but unordered: a counter, or a word whose ordering comes from another word's acquire/release.
 * A compare-exchange that fails reads with its order's load half (C++'s rule: release -> relaxed, acq_rel ->
 * acquire), and stores nothing. The macros take any _Atomic object, so a32, a64 and process-local words alike. */
#define shm_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define shm_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define shm_load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define shm_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define shm_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define shm_store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define shm_xchg_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define shm_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define shm_fetch_add_release(p, v) atomic_fetch_add_explicit((p), (v), memory_order_release)
#define shm_fetch_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define shm_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define shm_fetch_sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
/* Strong compare-exchange: true when *p was *expected and is now desired; false with *expected = *p. */
#define shm_cas_relaxed(p, expected, desired)                                                                          \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_relaxed, memory_order_relaxed)
#define shm_cas_acquire(p, expected, desired)                                                                          \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acquire, memory_order_acquire)
#define shm_cas_release(p, expected, desired)                                                                          \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_release, memory_order_relaxed)
#define shm_cas_acq_rel(p, expected, desired)                                                                          \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_acq_rel, memory_order_acquire)
#define shm_cas_seq_cst(p, expected, desired)                                                                          \
  atomic_compare_exchange_strong_explicit((p), (expected), (desired), memory_order_seq_cst, memory_order_seq_cst)
/* A fence orders the relaxed accesses around it as the named half would: release before later stores, acquire
 * after earlier loads (the seqlock steps of §7 and §11). */
#define shm_fence_acquire() atomic_thread_fence(memory_order_acquire)
#define shm_fence_release() atomic_thread_fence(memory_order_release)

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
    uint64_t w = shm_load_relaxed(&s[i]);
    memcpy(d + 8 * i, &w, 8);
  }
}
static inline void shm_store_words(void *dst, const void *src, size_t n) {
  a64 *d = dst;
  const uint8_t *s = src;
  for (size_t i = 0; i < n / 8; i++) {
    uint64_t w;
    memcpy(&w, s + 8 * i, 8);
    shm_store_relaxed(&d[i], w);
  }
  if (n % 8) {
    uint64_t w = 0;
    memcpy(&w, s + (n & ~(size_t)7), n % 8);
    shm_store_relaxed(&d[n / 8], w);
  }
}
#endif
