/* libslotbus lease contests: claim/yield over a shared table of subjects, with fencing tokens and death
 * detection. The table and its state machines are docs/PROTOCOL.md §7. Every call is non-blocking unless its
 * name says wait. Errors are negative errno values; -SBL_ECORRUPT means a member scribbled the table. */
#ifndef SLOTBUS_LEASE_H
#define SLOTBUS_LEASE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SBL_MAGIC 0x5342434Cu
#define SBL_VERSION 2u
#define SBL_MAX_MEMBERS 256u
#define SBL_LABEL_MAX 96u
#define SBL_OWNER_MAX 64u
/* A claim's W3C trace context, binary (docs/PROTOCOL.md §7.2): trace id [0,16), span id [16,24), flags [24],
 * 1 at [25] when there is one; all zero: none. */
#define SBL_TRACE_BYTES 32u
#define SBL_MIN_CAPACITY 64u
#define SBL_MAX_CAPACITY 65536u
#define SBL_ECORRUPT 1000 /* returned negated, as SB_ECORRUPT */

enum sbl_member_state { SBL_MEMBER_FREE = 0, SBL_MEMBER_JOINING = 1, SBL_MEMBER_ALIVE = 2 };
enum sbl_key_state { SBL_KEY_EMPTY = 0, SBL_KEY_WRITING = 1, SBL_KEY_READY = 2, SBL_KEY_ABANDONED = 3 };
enum sbl_claim_state { SBL_FREE = 0, SBL_CLAIMING = 1, SBL_HELD = 2 };
/* How a claim was won: the subject was free, its claim had expired, or its holder had died. */
enum sbl_how { SBL_HOW_FREE = 0, SBL_HOW_EXPIRED = 1, SBL_HOW_DEAD = 2 };

typedef struct sbl_contest sbl_contest; /* this process's membership of one contest */
typedef struct sbl_wait sbl_wait;       /* one waiting claimant: a thread sleeping on an entry's futex */

/* A claim as seen by a call: ours (claimed, renewed) or the holder we yield to. */
typedef struct sbl_holder {
  uint32_t entry;     /* index of the subject's entry */
  uint32_t version;   /* claim word version: identifies this claim for release/renew */
  uint32_t member;    /* holder's member index */
  uint32_t pid;       /* holder's pid */
  uint32_t kind;
  uint32_t label_len;
  uint32_t owner_len;
  uint32_t how;       /* enum sbl_how, for a claim just won */
  uint64_t token;     /* fencing token */
  double claimed_at;  /* ms, on the clock the claimant passed */
  double expires_at;  /* ms; +inf: no expiry */
  uint8_t owner[SBL_OWNER_MAX];
  uint8_t label[SBL_LABEL_MAX];
  uint8_t trace[SBL_TRACE_BYTES]; /* the holder's context; for a claim just won, the context of the claim it replaced */
} sbl_holder;

/* sbl_open: whether it may create the contest (iceoryx2's open / create / open_or_create) */
#define SBL_CREATE_IF_MISSING 0 /* join it, or create it if nobody holds the name */
#define SBL_CREATE_NEVER 1      /* join it; -ENOENT if it does not exist */
#define SBL_CREATE_MUST 2       /* create it; -EEXIST if it exists */

/* Join the contest "name" ([A-Za-z0-9._-]{1,64}) or create it, as `create` allows (SBL_CREATE_*), with room
 * for `capacity` subjects (a power of two in SBL_MIN_CAPACITY..SBL_MAX_CAPACITY; a joined contest keeps its
 * own: sbl_stats tells it). Waits up to timeout_ms for a member to answer. Returns NULL with *err = -EINVAL,
 * -ETIMEDOUT, -EACCES (the name is bound by another uid), -EPERM (its member refused our uid), -EHOSTDOWN
 * (every member is stopped, SIGSTOP or a debugger: the first stopped_max of their pids in stopped, how many
 * there are in *stopped_n, which may be more; 0 after any other outcome), -EUSERS (256 members), -ENOENT
 * (SBL_CREATE_NEVER and nobody holds it), -EEXIST (SBL_CREATE_MUST and somebody does), -SBL_ECORRUPT or -errno.
 * stopped and stopped_n may be NULL. Starts this member's accept thread. */
sbl_contest *sbl_open(const char *name, uint32_t capacity, uint32_t create, int timeout_ms, int *err,
                      uint32_t *stopped, uint32_t stopped_max, uint32_t *stopped_n);
/* Leave: every claim of this member stops blocking at once; stop the accept thread; unmap. End waits first. */
void sbl_close(sbl_contest *c);

/* Claim a subject at time now_ms for ttl_ms (<= 0 or inf: until released), stored with the claimer's trace context
 * (SBL_TRACE_BYTES, or NULL for none). 1: claimed, *out is our claim (owner and label left out: the caller has
 * them; its trace is the replaced claim's).
 * 0: yield, *out is the active holder. -E2BIG (label or owner too long), -ENOSPC (table full),
 * -SBL_ECORRUPT. */
int sbl_try_claim(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t label_len, const uint8_t *owner,
                  uint32_t owner_len, double now_ms, double ttl_ms, const uint8_t *trace, sbl_holder *out);
/* sbl_try_claim on the wall clock, spinning (no syscall while the holder keeps it) for up to spin_ns until
 * the claim is released, expires or its holder dies: a spinning waiter. Same results as sbl_try_claim. */
int sbl_try_claim_spin(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t label_len, const uint8_t *owner,
                       uint32_t owner_len, double ttl_ms, double spin_ns, const uint8_t *trace, sbl_holder *out);
/* Release our claim (entry, version). 1: released, 0: it was no longer ours (lost). */
int sbl_release(sbl_contest *c, uint32_t entry, uint32_t version);
/* Release whatever claim (entry, version) is, if it is still the current one. 1: released, 0: not current. */
int sbl_release_holder(sbl_contest *c, uint32_t entry, uint32_t version);
/* Extend our claim to now_ms + ttl_ms. 1: renewed, *out updated (new version); 0: lost (or expired). */
int sbl_renew(sbl_contest *c, uint32_t entry, uint32_t version, double now_ms, double ttl_ms, sbl_holder *out);
/* 1 if (entry, version) is still our claim and not expired at now_ms, 0 if not, -SBL_ECORRUPT. */
int sbl_check(sbl_contest *c, uint32_t entry, uint32_t version, double now_ms);
/* The first entry >= from with an active claim at now_ms into *out: its index, -ENOENT when none left. */
int sbl_next_holder(sbl_contest *c, uint32_t from, double now_ms, sbl_holder *out);
/* Clear the claim on one subject (1 cleared, 0 none) or on all of them (count). Waiters are woken. */
int sbl_reset(sbl_contest *c, uint32_t kind, const uint8_t *label, uint32_t label_len);
int sbl_reset_all(sbl_contest *c);
/* out[0..7]: claims, yields, expiries, takeovers, releases, members, subjects, capacity. */
void sbl_stats(sbl_contest *c, double *out);

/* Start a thread that sleeps on the entry until its claim is released, expires or its holder dies, then
 * makes sbl_wait_fd readable. Returns NULL with *err = -errno. */
sbl_wait *sbl_wait_start(sbl_contest *c, uint32_t entry, int *err);
int sbl_wait_fd(sbl_wait *w);
/* Stop the thread (if still sleeping), close the fd, free. */
void sbl_wait_end(sbl_wait *w);

/* This process's one waiter thread for the contest, however many claims wait (docs/PROTOCOL.md §7.4). It sleeps
 * (futex_waitv) on the armed entries only and makes its fd (a doorbell read end, PROTOCOL.md §1.2) readable when some became claimable; read them
 * with sbl_waiter_ready (each is disarmed then: arm it again to keep waiting). Not thread-safe against
 * sbl_close; arm/disarm/ready may be called while the thread runs. */
int sbl_waiter_fd(sbl_contest *c);                      /* starts the thread if needed; the fd or -errno */
int sbl_waiter_arm(sbl_contest *c, uint32_t entry);     /* wake me when entry may be claimable; 0 or -EINVAL */
int sbl_waiter_disarm(sbl_contest *c, uint32_t entry);  /* nobody here waits on entry any more */
int sbl_waiter_ready(sbl_contest *c, uint32_t *out, uint32_t max); /* entries that became claimable: count */
void sbl_waiter_stop(sbl_contest *c);                   /* disarm everything, join the thread, close its fd */

uint8_t *sbl_table(sbl_contest *c);      /* the shared table, for diagnostics */
double sbl_table_size(sbl_contest *c);
int32_t sbl_member_index(sbl_contest *c);
double sbl_epoch(sbl_contest *c);
const char *sbl_error(sbl_contest *c);   /* what the last -SBL_ECORRUPT was about */
uint32_t sbl_layout_hash(void);

#ifdef __cplusplus
}
#endif
#endif
