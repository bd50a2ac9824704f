// Waiting on a Supervisor's (supervisor.ts) processes: a reload successor's readiness and dwell, a bounded wait, how
// one ended.
import { existsSync, readFileSync } from "node:fs"
import { longTimeout, type LongTimer } from "../basics/timers.ts"
import type { Proc, SupervisorSettings } from "./options.ts"

/**
 * Resolves once a reload successor is ready (`ready`, else at once); rejects when it exits first or `readyMs` passes.
 * Either way `ready`'s signal is aborted as it settles: a check that polls for the successor stops.
 */
export async function readyOrExit(
  proc: Proc,
  ready: SupervisorSettings["ready"],
  index: number,
  readyMs: number,
  minReadyMs: number,
): Promise<void> {
  const exited = proc.exited.then(() => {
    throw new Error(`exited (${describeProc(proc)}) before it was ready`)
  })
  const over = new AbortController()
  const isReady = ready ? Promise.resolve(ready(proc.pid, { proc, index, minReadyMs, signal: over.signal })) : null
  let timer: LongTimer | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = longTimeout(() => reject(new Error(`was not ready within ${readyMs} ms (readyTimeoutMs)`)), readyMs)
  })
  try {
    await Promise.race([isReady ?? Promise.resolve(), exited, timeout])
  } finally {
    timer?.clear()
    over.abort()
    isReady?.catch(() => {}) // a check that fails once the wait is over (aborted, say) is no unhandled rejection
  }
}

/** readyOrExit, then stayedUp `minReadyMs`: a successor that serves. */
export async function upFor(
  proc: Proc,
  ready: SupervisorSettings["ready"],
  index: number,
  readyMs: number,
  minReadyMs: number,
): Promise<void> {
  await readyOrExit(proc, ready, index, readyMs, minReadyMs)
  await stayedUp(proc, minReadyMs)
}

/** Resolves once `proc` has stayed up `ms`; rejects when it exits first (a reload successor's minReadyMs). */
export async function stayedUp(proc: Proc, ms: number): Promise<void> {
  if (ms <= 0) return
  const since = performance.now()
  let timer: LongTimer | undefined
  const dwelt = new Promise<boolean>((r) => (timer = longTimeout(() => r(false), ms)))
  // A busy front hears of an exit late (Bun's notice came 200-570 ms after the kernel had it, with the pool under
  // load on 2 busy CPUs), so the end of the dwell also asks the kernel.
  const exited = (await Promise.race([proc.exited.then(() => true), dwelt])) || endedUnreaped(proc.pid)
  timer?.clear()
  if (!exited) return
  const after = Math.round(performance.now() - since)
  await proc.exited // for its exit code
  throw new Error(`exited (${describeProc(proc)}) ${after} ms after it was ready, within minReadyMs (${ms} ms)`)
}

/**
 * Whether our child `pid` has ended though Bun has not said so yet: a zombie, or reaped meanwhile (no entry).
 * Without /proc (macOS) only Bun's notice tells.
 */
function endedUnreaped(pid: number): boolean {
  const state = procState(pid)
  // no entry: reaped meanwhile, if /proc is there at all
  if (state === null) return process.platform === "linux" && existsSync(`/proc/${process.pid}`)
  return state === "Z" || state === "X"
}

/** Whether process `pid` is stopped (SIGSTOP, SIGTSTP, a debugger): it takes no work until continued. Linux only. */
export function stoppedProcess(pid: number): boolean {
  const state = procState(pid)
  return state === "T" || state === "t"
}

/** The state letter of /proc/<pid>/stat (R, S, D, T, t, Z, X…), or null where there is none to read. */
export function procState(pid: number): string | null {
  return procStat(pid)?.[0] ?? null
}

/**
 * The fields of /proc/<pid>/stat after the command, which may hold spaces and ")": [0] the state, [1] the parent's
 * pid. Null where there is none to read (the process is gone, or no /proc).
 */
export function procStat(pid: number): string[] | null {
  if (process.platform !== "linux") return null
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return null
  }
}

/** Waits for `p` at most `ms` (its failure ignored: a drain that fails is a drain that is over). */
export async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: LongTimer | undefined
  await Promise.race([p.catch(() => {}), new Promise<void>((r) => (timer = longTimeout(r, ms)))])
  timer?.clear()
}

export function describeProc(p: Proc): string {
  return p.signalCode ? `killed by ${p.signalCode}` : `code ${p.exitCode}`
}
