// The signals a pump reads before it spins, yields or parks (as Agrona's ControllableIdleStrategy reads its status
// indicator): whether the machine is oversubscribed (Contention), and whether the peer shares this CPU (CpuSharing).
import { readFileSync } from "node:fs"

// A sched_yield that kept this side off the CPU this long ran a third process (a peer sharing our CPU answers
// sooner): the machine is oversubscribed. Yielding then costs a whole time slice of the other process, while a
// parked side that is woken preempts it; so a pump that may park does, at once, for the next while.
const CONTENDED_YIELD_NS = 50_000
const CONTENDED_FOR_NS = 50_000_000
// A machine that stays busy would cost tens of ms of polling against it at the end of every spell: the first
// run_delay period after a spell decides, and one still over the share doubles the next spell, up to this.
const CONTENDED_MAX_NS = 1_000_000_000
// Slow yields in a row that mean "contended": one alone is often just a timer tick, a neighbour's burst or one
// of our own runtime's threads (JIT, GC).
const CONTENDED_AFTER_SLOW_YIELDS = 3
// The other sign, for when slow yields are rare (~1 in 150 with two CPU burners: most yields return at once,
// and a poller then holds its CPU until its time slice ends while its peer waits for one): this thread spent
// 3/4 of each of the last two 20 ms periods or more runnable but waiting for a CPU (the kernel's run_delay).
// 3/4 sits between the shares a busy and an idle machine show (measured: docs/perf/request-path.md).
const RUN_DELAY_EVERY_NS = 20_000_000
const RUN_DELAY_SHARE = 0.75
// Both sides' threads on one CPU (the other one busy, e.g. with a fresh process's JIT threads): a poll finds the
// peer's answer only after this side gives the CPU up, so spinning YIELD_EVERY_NS between yields made every hop
// ~5 µs (13 µs round trips, measured with both threads seen on one CPU). A yield that switched to another thread
// (it took this long) followed by work is the sign; QUICK_YIELDS_TO_CLEAR yields in a row that returned at once
// (nobody else wanted this CPU) end it.
export const SWITCHED_YIELD_NS = 2_000
const QUICK_YIELDS_TO_CLEAR = 16

/** ns this thread has spent runnable but not running (/proc/thread-self/schedstat), null where unknown. */
export function runDelayNs(): number | null {
  try {
    const ns = Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[1])
    return Number.isFinite(ns) ? ns : null
  } catch {
    return null
  }
}

/**
 * Whether the machine is oversubscribed, so that a pump that may park should park at once: told of every
 * sched_yield's duration and, every RUN_DELAY_EVERY_NS outside a spell, reading this thread's run_delay.
 * Either sign starts a spell (`until`); the first run_delay period after a spell decides whether the next
 * one is twice as long (still waiting) or back to CONTENDED_FOR_NS (calm). Times are ns on one clock.
 */
export class Contention {
  /** Park at once before this time. */
  until = 0
  /** The spell began because this thread waited for a CPU most of the time (run_delay), not on slow yields. */
  starved = false
  private spell = CONTENDED_FOR_NS
  private probing = false // a spell ended and the first run_delay period after it has not been judged
  private slowYields = 0 // in a row
  private delayAt = 0 // when runDelay was read (Infinity: not on this system)
  private runDelay = 0
  private waitedBefore = false // the previous period was over RUN_DELAY_SHARE

  constructor(private readonly readRunDelay: () => number | null = runDelayNs) {}

  /** A sched_yield that ended at `t` after `ns`. */
  yielded(t: number, ns: number) {
    if (ns < CONTENDED_YIELD_NS) this.slowYields = 0
    else if (++this.slowYields >= CONTENDED_AFTER_SLOW_YIELDS) this.start(t, false)
  }

  /** Reads run_delay if a period is due (never during a spell). */
  sample(t: number) {
    if (t < this.until || t - this.delayAt < RUN_DELAY_EVERY_NS) return
    const d = this.readRunDelay()
    if (d === null) {
      this.delayAt = Infinity
      return
    }
    // a period that began before the spell ended is not judged: it would count the spell's sleep as not waiting
    const judged = this.delayAt > 0 && this.delayAt >= this.until
    const waited = judged && d - this.runDelay >= RUN_DELAY_SHARE * (t - this.delayAt)
    if (waited && (this.waitedBefore || this.probing)) this.start(t, true)
    else {
      if (judged) this.probing = false
      this.waitedBefore = waited
    }
    this.delayAt = t
    this.runDelay = d
  }

  private start(t: number, starved: boolean) {
    this.starved = starved
    this.spell = this.probing ? Math.min(2 * this.spell, CONTENDED_MAX_NS) : CONTENDED_FOR_NS
    this.until = t + this.spell
    this.probing = this.delayAt !== Infinity // without run_delay nothing judges the period after a spell
    this.slowYields = 0
    this.waitedBefore = false
  }
}

let ofThread: Contention | undefined
/**
 * The Contention of this thread's pumps, one for all of them: whether the machine keeps this thread from a CPU is
 * the thread's fact, not a bus's, and a process with four buses read run_delay four times as often for it.
 */
export function threadContention(): Contention {
  return (ofThread ??= new Contention())
}

/**
 * Whether this side's peer runs on this side's CPU, so that a poll that finds nothing should give the CPU up at
 * once (the peer can answer only then): told of every sched_yield's duration and of the poll after it. A yield that
 * ran another thread, followed by work, is the sign, unless the peer's CPU word names another CPU
 * (docs/PROTOCOL.md §5.1): then the time went to some other thread of this CPU's (a runtime's JIT or GC helpers),
 * and yielding after every poll would only hand it more.
 */
export class CpuSharing {
  /** Yield after every empty poll. */
  shared = false
  private switched = false // the last yield ran another thread: does the next poll find work?
  private quick = 0 // yields in a row that ran nobody else, while shared
  private cpu = -1 // this thread's CPU after its last yield (-1: unknown)

  /** `peerCpu`: the CPU the peer last said it runs on, -1 if it did not say. */
  constructor(private readonly peerCpu: () => number = () => -1) {}

  /** A sched_yield that took `ns`, after which this thread ran on `cpu` (-1: unknown). */
  yielded(ns: number, cpu = -1) {
    this.switched = ns >= SWITCHED_YIELD_NS
    this.cpu = cpu
    if (!this.shared) return
    if (this.switched) this.quick = 0
    else if (++this.quick >= QUICK_YIELDS_TO_CLEAR) (this.shared = false), (this.quick = 0)
  }

  /** The poll after a yield found `work` items. */
  polled(work: number) {
    if (this.switched && work > 0) this.shared = this.peerMayShare()
    this.switched = false
  }

  private peerMayShare(): boolean {
    const peer = this.cpu < 0 ? -1 : this.peerCpu()
    return peer < 0 || peer === this.cpu
  }
}

// A side kept off its peer's CPU (CpuKeeper) narrows its mask again no sooner than this after the last time: each
// narrowing is two syscalls and a migration, and a peer the scheduler moves after it would make it chase.
const KEEP_EVERY_NS = 2_000_000
// A kept-off thread that waits for a CPU most of the time (Contention's run_delay sign) is put back only after this
// long kept off: a fresh process's JIT threads starve it so for a few hundred ms (and are why it was kept off), a
// busy machine for longer, where the scheduler should place it freely again.
const KEEP_STARVED_NS = 1_000_000_000

/**
 * Keeps a side's thread off the CPU its peer runs on while the pair is busy. Two threads taking turns on one CPU
 * (each sched_yield handing it to the other: ~6 µs round trips against ~1.5 on two) stay there once put there,
 * both being cache-hot for the load balancer, and they are put there whenever something else of theirs holds the
 * other CPU for a moment (a fresh process's JIT compiler threads, docs/perf/round-nine-cliffs.md). Apart, the
 * thread that shares a CPU with such a helper still answers at once in most turns. So on the sharing sign with the
 * peer's CPU word naming this thread's CPU, the thread's affinity mask leaves that CPU out (sb_keep_off_cpu) until
 * `release()`: when the pump parks for want of work (the pair went idle) or because the bus is crowded, or has
 * been starved of a CPU past KEEP_STARVED_NS kept off (`starved()`), where the scheduler should place it freely.
 * One per process (a thread has one mask), owned by the pump that narrowed it; only one side of a pair (the
 * worker) has one, or both would move.
 */
export class CpuKeeper {
  private owner: object | null = null
  private at = -Infinity // when it last narrowed the mask
  private able = true

  constructor(
    /** sb_keep_off_cpu: keep off `cpu` (the CPU after, < 0 if it could not), or -1: put the mask back. */
    private readonly keepOff: (cpu: number) => number,
  ) {}

  /** At `t` `owner`'s thread runs on `cpu` and its peer on `peer` (-1: unknown), sharing by CpuSharing's sign: the
   * CPU it runs on now. */
  sharing(owner: object, t: number, cpu: number, peer: number): number {
    if (!this.able || cpu < 0 || peer !== cpu || t - this.at < KEEP_EVERY_NS) return cpu
    this.at = t
    const moved = this.keepOff(cpu)
    if (moved < 0) {
      this.able = false // one CPU in the mask, or an OS that cannot: never again
      return cpu
    }
    this.owner = owner
    return moved
  }

  /** At `t` `owner` parks, its thread starved of a CPU (Contention's run_delay sign). */
  starved(owner: object, t: number) {
    if (t - this.at >= KEEP_STARVED_NS) this.release(owner)
  }

  /** `owner` parks for want of work or on a crowded bus: the thread's mask as it was, if `owner` narrowed it. */
  release(owner: object) {
    if (this.owner !== owner) return
    this.owner = null
    this.keepOff(-1)
  }
}
