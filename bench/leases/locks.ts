// The locks the lease bench compares, behind one small interface: slotbus contests, flock(2) on a file
// (through libc with bun:ffi, the kernel releases it at process death too), a SharedArrayBuffer + Atomics
// futex mutex (Workers of one process only), and Redis SET NX PX with a compare-and-delete release.
import { dlopen, FFIType } from "bun:ffi"
import { closeSync, openSync, readdirSync } from "node:fs"
import { Contest, type Lease } from "../../src/leases/index.ts"

export interface Lock {
  /** One attempt; true if now held. */
  tryAcquire(): boolean | Promise<boolean>
  /** Wait until held, sleeping (not spinning) if the lock offers a way to. */
  acquire(): void | Promise<void>
  release(): void | Promise<void>
  close(): void | Promise<void>
  /** A spinning wait done by the lock itself (slotbus: in C, no JS per attempt); true if now held. */
  spin?(): boolean
}

export type ProcessMethod = "slotbus" | "flock" | "redis"

/** slotbus: the contest `name`, subject 1/`label` */
export async function slotbusLock(name: string, label = "bench"): Promise<Lock> {
  const contest = await Contest.open(name)
  const subject = { kind: 1, label }
  let lease: Lease | undefined
  return {
    tryAcquire() {
      const r = contest.tryClaim(subject)
      if (r.claimed) lease = r.lease
      return r.claimed
    },
    async acquire() {
      lease = await contest.claim(subject)
    },
    release() {
      lease!.release()
    },
    spin() {
      const r = contest.tryClaim(subject, { spinUs: 100_000 })
      if (r.claimed) lease = r.lease
      return r.claimed
    },
    close: () => contest.close(),
  }
}

const LOCK_EX = 2
const LOCK_NB = 4
const LOCK_UN = 8
let libc: { flock: (fd: number, op: number) => number } | undefined
function flockFn() {
  libc ??= dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } }).symbols
  return libc.flock
}

export function flockLock(path: string): Lock {
  const flock = flockFn()
  const fd = openSync(path, "a+")
  return {
    tryAcquire: () => flock(fd, LOCK_EX | LOCK_NB) === 0,
    acquire() {
      if (flock(fd, LOCK_EX) !== 0) throw new Error("flock(LOCK_EX) failed")
    },
    release() {
      flock(fd, LOCK_UN)
    },
    close: () => closeSync(fd),
  }
}

const RELEASE_SCRIPT =
  'if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end'
export async function redisLock(url: string, key: string): Promise<Lock> {
  const { RedisClient } = await import("bun")
  const client = new RedisClient(url)
  await client.connect()
  const me = `${process.pid}-${Math.random().toString(36).slice(2)}`
  return {
    tryAcquire: async () => (await client.set(key, me, "NX", "PX", "10000")) === "OK",
    async acquire() {
      while ((await client.set(key, me, "NX", "PX", "10000")) !== "OK") {} // Redis has no wait: spin
    },
    async release() {
      await client.send("EVAL", [RELEASE_SCRIPT, "1", key, me])
    },
    close: () => client.close(),
  }
}

/** A futex mutex (Drepper's: 0 free, 1 held, 2 held with waiters) on a SharedArrayBuffer, for Workers. */
export function atomicsLock(word: Int32Array): Lock {
  return {
    tryAcquire: () => Atomics.compareExchange(word, 0, 0, 1) === 0,
    acquire() {
      let c = Atomics.compareExchange(word, 0, 0, 1)
      if (c === 0) return
      if (c !== 2) c = Atomics.exchange(word, 0, 2)
      while (c !== 0) {
        Atomics.wait(word, 0, 2)
        c = Atomics.exchange(word, 0, 2)
      }
    },
    release() {
      if (Atomics.sub(word, 0, 1) !== 1) {
        Atomics.store(word, 0, 0)
        Atomics.notify(word, 0, 1)
      }
    },
    close() {},
  }
}

// CLOCK_MONOTONIC straight from libc: it is one clock for every process (Bun's hrtime starts at 0 per process)
// (read as 32-bit halves: a BigInt64Array read allocates a BigInt, which the timed path should not pay for)
let clockGettime: ((id: number, ts: Int32Array) => number) | undefined
const ts = new Int32Array(4) // struct timespec: tv_sec (low, high), tv_nsec (low, high)
export function nowNs(): number {
  clockGettime ??= dlopen("libc.so.6", { clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } })
    .symbols.clock_gettime
  clockGettime(1, ts)
  return (ts[1]! * 2 ** 32 + (ts[0]! >>> 0)) * 1e9 + ts[2]!
}

/** Contended loop: for `ms`, take the lock (spinning once, then waiting), count, release. Returns the count. */
export async function contend(lock: Lock, ms: number, spinOnly: boolean): Promise<number> {
  let n = 0
  const end = performance.now() + ms
  while (performance.now() < end) {
    if (!(await lock.tryAcquire())) {
      if (spinOnly) continue
      await lock.acquire()
    }
    n++
    await lock.release()
  }
  return n
}

let affinity:
  | {
      get: (tid: number, size: number, mask: Uint8Array) => number
      set: (tid: number, size: number, mask: Uint8Array) => number
    }
  | undefined
/**
 * Pins the calling thread (or, with `process`, every thread of this process: the runtime's helper threads
 * then cannot wake up on the other party's CPU either) to the `nth` CPU this process may use; false if there
 * are not that many. The handover parties take CPUs 0 and 1: a spinning waiter has a CPU of its own only if
 * the releaser cannot wake up on it. Unpinned, on 2 CPUs, the releaser often preempts the waiter on its CPU
 * and the waiter only sees the release once the releaser sleeps again (~10 µs), which the bench would
 * count as handover time.
 */
export function pinToCpu(nth: number, scope: "thread" | "process" = "thread"): boolean {
  affinity ??= (() => {
    const s = dlopen("libc.so.6", {
      sched_getaffinity: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
      sched_setaffinity: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    }).symbols
    return { get: s.sched_getaffinity, set: s.sched_setaffinity }
  })()
  const mask = new Uint8Array(128)
  if (affinity.get(0, mask.length, mask) !== 0) return false
  const cpus: number[] = []
  for (let i = 0; i < mask.length * 8; i++) if (mask[i >> 3]! & (1 << (i & 7))) cpus.push(i)
  const cpu = cpus[nth]
  if (cpus.length < 2 || cpu === undefined) return false
  const mine = new Uint8Array(mask.length)
  mine[cpu >> 3] = 1 << (cpu & 7)
  if (affinity.set(0, mine.length, mine) !== 0) return false // 0: the calling thread
  if (scope === "process")
    for (const tid of readdirSync("/proc/self/task")) affinity.set(Number(tid), mine.length, mine)
  return true
}

/**
 * Runs the code paths a handover takes (acquire, spin, release, the clock) `n` times on a lock nobody else
 * uses, so that the timed handovers run JIT-compiled code: a party that only did 200 handovers would be
 * timed in JavaScriptCore's interpreter, which costs several µs per handover on its own. With `rival`, a
 * second handle on the same lock in this process whose acquire() does not block the thread (slotbus), the
 * sleeping wait is warmed too: `rival` holds, `lock` waits, `rival` releases.
 */
export async function warmUp(lock: Lock, n: number, rival?: Lock): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (lock.spin) lock.spin()
    else await lock.tryAcquire()
    nowNs()
    await lock.release()
    nowNs()
    if (i % 8 === 0) {
      await lock.acquire()
      await lock.release()
    }
  }
  for (let i = 0; rival && i < n / 10; i++) {
    if (!(await rival.tryAcquire())) throw new Error("warm-up: the rival could not take the warm-up lock")
    const waiting = lock.acquire()
    await new Promise((resolve) => setImmediate(resolve))
    await rival.release()
    await waiting
    nowNs()
    await lock.release()
  }
}

/**
 * What a sleep costs the release that follows it: the median ns of `release()` right after a `ms` sleep
 * (cold) and in a loop without sleeps (hot), on a lock nobody else uses. The handover-asleep figures pay
 * the first.
 */
export async function releaseAfterSleep(lock: Lock, n: number, ms = 4): Promise<{ cold: number; hot: number }> {
  const acquire = async () => {
    if (!(await lock.tryAcquire())) throw new Error("releaseAfterSleep: the lock is taken")
  }
  const release = async () => {
    const t = nowNs()
    await lock.release()
    return nowNs() - t
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!
  const hot: number[] = []
  for (let i = 0; i < 20_000; i++) {
    await acquire() // also the JIT warm-up
    hot.push(await release())
  }
  const cold: number[] = []
  for (let i = 0; i < n; i++) {
    await acquire()
    await Bun.sleep(ms)
    cold.push(await release())
  }
  return { cold: median(cold), hot: median(hot) }
}

/** How a holder spends its hold: computing (on its CPU, as a holder doing the work it claimed) or asleep. */
export type Hold = "work" | "sleep"

/** Keeps this thread busy for `ms` with arithmetic that touches nothing of the lock. */
function work(ms: number): number {
  const end = performance.now() + ms
  let x = 1
  while (performance.now() < end) for (let k = 0; k < 64; k++) x = Math.sqrt(x + k)
  return x
}

/**
 * Handover: two parties alternate. The holder holds 4 ms (the first time 100 ms, so the other is surely
 * waiting), working or asleep (`hold`), notes the time and releases, sleeps 2 ms (so the other, already
 * waiting, takes it) and waits for its turn again. Party "a" must hold the lock when called. Call warmUp
 * first. Spinning parties pin themselves to CPUs 0 and 1 (pinToCpu: a process party pins all its threads, a
 * Worker only itself). Returns the release and acquire times (ns), which are matched up by latencies().
 *
 * Why both holds: on this VM a thread that slept 4 ms comes back with cold caches (the hypervisor ran
 * something else on its CPU), and its release() then costs 0.9-6.9 µs instead of 60-120 ns
 * (releaseAfterSleep); a releaser that slept pays that inside the timed window, a working one does not.
 */
export async function handover(
  lock: Lock,
  role: "a" | "b",
  n: number,
  spin: boolean,
  hold: Hold,
  sleep: (ms: number) => Promise<void> | void,
  pin: "thread" | "process",
) {
  // a spinning waiter needs a CPU of its own; a sleeping one is better off where the kernel wakes it (often
  // the releaser's CPU, about to go idle: pinned elsewhere, every wake-up would cross CPUs)
  const pinned = spin && pinToCpu(role === "a" ? 0 : 1, pin)
  const releases: number[] = []
  const acquires: number[] = []
  const take = async () => {
    if (spin && lock.spin) while (!lock.spin()) {}
    else if (spin) while (!(await lock.tryAcquire())) {}
    else await lock.acquire()
    acquires.push(nowNs())
  }
  const give = async (first: boolean) => {
    if (hold === "work") work(first ? 100 : 4)
    else await sleep(first ? 100 : 4)
    releases.push(nowNs())
    await lock.release()
    await sleep(2)
  }
  if (role === "a") {
    for (let i = 0; i < n; i++) {
      await give(i === 0)
      await take()
    }
    await lock.release()
  } else {
    for (let i = 0; i < n; i++) {
      await take()
      await give(false)
    }
  }
  return { releases, acquires, pinned }
}

export interface Handover {
  releases: number[]
  acquires: number[]
  /** the party had a CPU of its own (pinToCpu) */
  pinned?: boolean
}

/**
 * Handover latencies in ns from the two parties' records: every acquire whose previous event (in time) is the
 * other party's release. Acquires after anything else (the machine starved the waiter, and the releaser took
 * the lock back) are counted as starved.
 */
export function latencies(a: Handover, b: Handover): { ns: number[]; starved: number } {
  type Ev = { t: number; party: "a" | "b"; kind: "rel" | "acq" }
  const evs: Ev[] = []
  for (const [party, h] of [
    ["a", a],
    ["b", b],
  ] as const) {
    for (const t of h.releases) evs.push({ t, party, kind: "rel" })
    for (const t of h.acquires) evs.push({ t, party, kind: "acq" })
  }
  evs.sort((x, y) => x.t - y.t)
  const ns: number[] = []
  let starved = 0
  for (let i = 1; i < evs.length; i++) {
    const e = evs[i]!
    if (e.kind !== "acq") continue
    const prev = evs[i - 1]!
    if (prev.kind === "rel" && prev.party !== e.party) ns.push(e.t - prev.t)
    else starved++
  }
  return { ns: ns.sort((x, y) => x - y), starved }
}
