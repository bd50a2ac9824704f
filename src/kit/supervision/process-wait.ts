// Waiting on a Supervisor's (supervisor.ts) processes: a reload successor's dwell, a bounded wait, how one ended.
import { existsSync, readFileSync } from "node:fs"
import { longTimeout, type LongTimer } from "../basics/timers.ts"
import type { Proc } from "./options.ts"

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
  if (process.platform !== "linux") return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    const state = stat[stat.lastIndexOf(")") + 2] // the field after the command, which may hold ")"
    return state === "Z" || state === "X"
  } catch {
    return existsSync(`/proc/${process.pid}`) // gone, if /proc is there at all
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
