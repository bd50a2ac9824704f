// Shared test helpers: unique names, waiting without timing asserts, payloads, and the test's child processes
// (the one child-process helper is bench/lib/child.ts; these start the fixtures in test/support with it).
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { SlotBus, type ListenOptions } from "../../src/index.ts"
import { spawn, type Child, type SpawnOptions } from "../../bench/lib/child.ts"

export {
  Child,
  run,
  spawn,
  stopAll,
  type RunOptions,
  type RunResult,
  type SpawnOptions,
} from "../../bench/lib/child.ts"
export { findTool } from "../../bench/lib/tools.ts"

/**
 * Whether libslotbus runs its Linux backend here. Tests that count its kernel objects (memfds, eventfds, abstract
 * names, the /proc diagnosis of stopped members) skip on the portable backend (docs/PROTOCOL.md §13), which has
 * none of them; test/native/portable.test.ts checks what it has instead.
 */
export const linuxBackend = process.env.SLOTBUS_PLATFORM !== "posix"

/** The fixtures folder (this one). */
export const FIXTURES = import.meta.dir
export const REPO = join(import.meta.dir, "..", "..")
export const ECHO_WORKER = join(FIXTURES, "echo-worker.ts")

/** mulberry32: a small seeded generator in [0, 1), so a failing run can be replayed from its seed. */
export function rng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

let counter = 0
/** A bus (or lease table) name no other test, or concurrently running test process, uses. */
export function busName(tag = "t"): string {
  return `${tag}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`
}

/** Runs a fixture of test/support with this bun. */
export function bunChild(fixture: string, args: string[], opts?: SpawnOptions): Child {
  return spawn([process.execPath, join(FIXTURES, fixture), ...args], opts)
}

export interface WorkerOptions {
  /** "spin" | "adaptive" | "park" | "<spinMicros>,<parkAfterMs>" */
  idle?: string
  /** Delay before answering every request (raw calls included). */
  delayMs?: number
  waitForHubMs?: number
  /** The timeoutMs of the worker.close() that SIGTERM triggers. */
  closeTimeoutMs?: number
}

/** Spawns test/support/echo-worker.ts for `bus` and waits until it prints "ready" (it is then connected). */
export async function spawnWorker(bus: string, opts: WorkerOptions = {}, readyTimeoutMs = 10_000): Promise<Child> {
  const args = [bus]
  if (opts.idle !== undefined) args.push(`--idle=${opts.idle}`)
  if (opts.delayMs !== undefined) args.push(`--delay-ms=${opts.delayMs}`)
  if (opts.waitForHubMs !== undefined) args.push(`--wait-for-hub-ms=${opts.waitForHubMs}`)
  if (opts.closeTimeoutMs !== undefined) args.push(`--close-timeout-ms=${opts.closeTimeoutMs}`)
  const w = spawn([process.execPath, ECHO_WORKER, ...args])
  try {
    await w.waitLine(/^ready$/, readyTimeoutMs)
  } catch (e) {
    await w.kill()
    throw e
  }
  return w
}

/**
 * Listens on a fresh bus, starts one worker process per entry of `workers`, waits until the hub sees them
 * all, runs `fn`, and always kills the workers and closes the bus afterwards.
 */
export async function withHub(
  opts: ListenOptions,
  workers: WorkerOptions[],
  fn: (bus: SlotBus, procs: Child[]) => Promise<void>,
): Promise<void> {
  const bus = await SlotBus.listen(busName(), opts)
  const procs: Child[] = []
  try {
    for (const w of workers) procs.push(await spawnWorker(bus.name, w))
    await bus.waitForWorkers(procs.length)
    await fn(bus, procs)
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    await bus.close({ drain: false })
  }
}

/** Whether a process with this pid exists (a zombie not yet reaped counts). */
/** A TCP port on 127.0.0.1 that was free a moment ago (for a server a test starts in another process). */
export async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } })
  const port = s.port
  s.stop(true)
  return port
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Whether every thread of `pid` is stopped (SIGSTOP): kill() returns before they are, and a thread of the process (a
 * topic's accept thread) may run meanwhile. Linux's /proc; elsewhere true.
 */
export function allStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((t) => {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8")
      return /^[Tt]$/.test(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3))
    })
  } catch {
    return process.platform !== "linux"
  }
}

/**
 * Publishes `{ type, data }` on `topic` until `member` (a topic-member.ts child, on this host or another) printed
 * "ev <data>": its interest has reached the publisher's side. Resolves with the milliseconds it took.
 */
export function publishUntilHeard(
  topic: { publish(event: { type: string; data: string }): unknown },
  member: Child,
  type: string,
  data: string,
  what: string,
  pollMs = 20,
): Promise<number> {
  return until(
    () => {
      topic.publish({ type, data })
      return member.lines.includes(`ev ${data}`)
    },
    what,
    20_000,
    pollMs,
  )
}

/**
 * Resolves with the milliseconds it waited once `cond()` holds, polling every `pollMs`; rejects after timeoutMs
 * naming `what` (a hang guard, not a timing assert).
 */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  pollMs = 10,
): Promise<number> {
  const start = performance.now()
  while (!(await cond())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs}ms waiting until ${what}`)
    await Bun.sleep(pollMs)
  }
  return performance.now() - start
}

/** Polls `cond` every 5 ms; resolves true once it holds, false after `timeoutMs`. */
export async function eventually(cond: () => boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!cond()) {
    if (performance.now() > deadline) return false
    await Bun.sleep(5)
  }
  return true
}

export type Outcome<T> =
  | { state: "resolved"; value: T; ms: number }
  | { state: "rejected"; error: unknown; ms: number }
  | { state: "hung"; ms: number }

/** How `p` settles, measured from `since`; "hung" if it has not settled `guardMs` after this call. */
export async function outcome<T>(p: Promise<T>, guardMs: number, since = performance.now()): Promise<Outcome<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const guard = new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), guardMs)))
  const settled = p.then(
    (value) => ({ state: "resolved" as const, value, ms: performance.now() - since }),
    (error: unknown) => ({ state: "rejected" as const, error, ms: performance.now() - since }),
  )
  const r = await Promise.race([settled, guard])
  clearTimeout(timer)
  return r === "hung" ? { state: "hung", ms: performance.now() - since } : r
}

/** Marks `p` as handled, so a test that fails before judging it reports no unhandled rejection. */
export function observed<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error("expected the promise to reject, but it resolved")
}

/** Deterministic bytes, the same function the echo workers use for /large and /zero-copy. */
export function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 255
  return out
}

/**
 * Requests the bus handed to its workers (each connected worker's count): what "nothing was sent" is about, where
 * `stats().requests` counts every request made, those refused before they were queued too.
 */
export const sentToWorkers = (bus: { workers: readonly { requests: number }[] }) =>
  bus.workers.reduce((n, w) => n + w.requests, 0)

/** A page of `n` characters, some of them over one UTF-8 byte (so n + 3 bytes). */
export const textPage = (n: number) => "<p>é—</p>".padEnd(n, "x")

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)))
  return out
}

export function sha256(bytes: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex")
}
